//! The files lbctl writes on a load balancer. Every one of them, whichever service it belongs
//! to (or lbctl itself, for its record), goes through [`parse`] and then [`check_distinct`]: an
//! absolute, normalised path (no `..`, no `//`), not one of lbctl's own staging names, under its
//! owner's usual directory unless the user opts out, and no two files sharing a path (or one
//! inside another) on one host. A new managed file (a state file, another daemon's
//! configuration) gets the same rules by calling them.

use crate::{
    source::field,
    source::{Diagnostic, Diagnostics, Loc, Node, VarMap},
    spec::service::Service,
};

/// `lbctl_confine_paths: false` lets managed files live outside their service's directory.
pub const CONFINE_KEY: &str = "lbctl_confine_paths";

/// The suffixes apply gives the staged and the previous file next to the live one.
pub const STAGING_SUFFIXES: &[&str] = &[".lbctl-new", ".lbctl-prev"];

/// Who a managed file belongs to: a service, or lbctl itself (its records on the host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Service(Service),
    Lbctl,
}

impl Owner {
    pub fn name(self) -> &'static str {
        match self {
            Owner::Service(s) => s.name(),
            Owner::Lbctl => "lbctl",
        }
    }

    /// Where the owner's files are expected, unless `lbctl_confine_paths: false`.
    pub fn usual_dirs(self) -> &'static [&'static str] {
        match self {
            Owner::Service(Service::Haproxy) => &["/etc/haproxy/", "/var/lib/haproxy/"],
            Owner::Service(Service::Keepalived) => &["/etc/keepalived/"],
            Owner::Service(Service::Nginx) => &["/etc/nginx/"],
            Owner::Service(Service::UdpHealth) => &["/etc/lbctl/"],
            Owner::Service(Service::UdpHealthUnit) => &["/etc/systemd/system/"],
            Owner::Lbctl => &["/var/lib/lbctl/"],
        }
    }

    fn example(self) -> String {
        let file = match self {
            Owner::Service(s) => s.file_name(),
            Owner::Lbctl => "admin-state",
        };
        format!("{}{file}", self.usual_dirs()[0])
    }
}

impl From<Service> for Owner {
    fn from(service: Service) -> Owner {
        Owner::Service(service)
    }
}

/// Whether managed files must stay in their service's directories (the default). A value
/// that is not a boolean counts as true here; [`check_confine_key`] reports it.
pub fn confined(vars: &VarMap) -> bool {
    vars.get(CONFINE_KEY)
        .and_then(|n| field::boolean(n, CONFINE_KEY, &mut Diagnostics::default()))
        .unwrap_or(true)
}

/// Reports a `lbctl_confine_paths` that is not a boolean.
pub fn check_confine_key(vars: &VarMap, diags: &mut Diagnostics) {
    if let Some(n) = vars.get(CONFINE_KEY) {
        field::boolean(n, CONFINE_KEY, diags);
    }
}

/// The path in `key` (or `default`) of a file lbctl writes for `owner` (a [`Service`], or
/// [`Owner::Lbctl`]).
pub fn parse(
    vars: &VarMap,
    key: &str,
    default: &str,
    owner: impl Into<Owner>,
    diags: &mut Diagnostics,
) -> Option<String> {
    match vars.get(key) {
        Some(node) => read(node, key, owner.into(), confined(vars), diags),
        None => Some(default.to_string()),
    }
}

/// Checks `path`, a file of `owner` that lbctl derives from the value of `key` (a
/// directory, say), by the same rules; reports at `node` and returns false when it breaks one.
pub fn check_derived(
    node: &Node,
    key: &str,
    path: &str,
    owner: impl Into<Owner>,
    vars: &VarMap,
    diags: &mut Diagnostics,
) -> bool {
    match problem(path, owner.into(), confined(vars)) {
        None => true,
        Some((message, hint)) => {
            diags.push(
                Diagnostic::new(&node.loc, key, format!("{}: {message}", field::quote(path)))
                    .hint(hint),
            );
            false
        }
    }
}

fn read(
    node: &Node,
    key: &str,
    owner: Owner,
    confined: bool,
    diags: &mut Diagnostics,
) -> Option<String> {
    let text = field::string(node, key, diags)?;
    let problem = problem(&text, owner, confined);
    match problem {
        None => Some(text),
        Some((message, hint)) => {
            diags.push(
                Diagnostic::new(
                    &node.loc,
                    key,
                    format!("{}: {message}", field::quote(&text)),
                )
                .hint(hint),
            );
            None
        }
    }
}

/// What is wrong with `path` as a file of `owner`, and how to fix it.
pub fn problem(path: &str, owner: Owner, confined: bool) -> Option<(String, String)> {
    let dirs = owner.usual_dirs();
    let example = owner.example();
    if !path.starts_with('/') {
        return Some((
            "is not an absolute path".into(),
            format!("write the full path, e.g. {example}"),
        ));
    }
    if let Some(c) = path
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '@' | '+')))
    {
        return Some((
            format!(
                "holds {}, which lbctl does not write into configs and commands",
                field::quote(&c.to_string())
            ),
            "use letters, digits and `/-_.@+` only".into(),
        ));
    }
    let components: Vec<&str> = path[1..].split('/').collect();
    if components.iter().any(|c| c.is_empty()) {
        return Some((
            "is not normalised: it has an empty component (`//` or a trailing `/`)".into(),
            format!("name the file itself, with single slashes, e.g. {example}"),
        ));
    }
    if components.iter().any(|c| *c == "." || *c == "..") {
        return Some((
            "is not normalised: `.` and `..` could lead anywhere on the host".into(),
            format!("write the path without `.` or `..` components, e.g. {example}"),
        ));
    }
    if let Some(suffix) = STAGING_SUFFIXES.iter().find(|s| path.ends_with(*s)) {
        return Some((
            format!("ends in `{suffix}`, the name lbctl's apply gives its own copies"),
            "choose a name without lbctl's staging suffixes (.lbctl-new, .lbctl-prev)".into(),
        ));
    }
    if confined && !dirs.iter().any(|d| path.starts_with(d)) {
        return Some((
            format!(
                "is outside {}'s usual directories ({})",
                owner.name(),
                dirs.join(", ")
            ),
            format!(
                "keep {}'s files under {} (e.g. {example}), or set `{CONFINE_KEY}: false` to write elsewhere",
                owner.name(),
                dirs.join(" or ")
            ),
        ));
    }
    None
}

/// One managed file of a host: its owner, the variable that named it and where (none for
/// lbctl's default), and its path.
pub struct Managed<'a> {
    pub owner: Owner,
    pub key: &'a str,
    pub loc: Option<Loc>,
    pub path: &'a str,
}

/// No two managed files of a host may be one file, and none may sit inside another: lbctl
/// would write one service's file (or its own record) over another's.
pub fn check_distinct(files: &[Managed], diags: &mut Diagnostics) {
    for (i, file) in files.iter().enumerate() {
        for other in &files[..i] {
            let inside = |a: &Managed, b: &Managed| is_inside(a.path, b.path);
            let message = if file.path == other.path {
                format!(
                    "`{}` and `{}` both name {}: lbctl would write {}'s and {}'s files over each other",
                    other.key,
                    file.key,
                    file.path,
                    other.owner.name(),
                    file.owner.name()
                )
            } else if let Some((inner, outer)) = [(file, other), (other, file)]
                .into_iter()
                .find(|(a, b)| inside(a, b))
            {
                format!(
                    "`{}` ({}) is inside {}, which `{}` names as a file",
                    inner.key, inner.path, outer.path, outer.key
                )
            } else {
                continue;
            };
            // Reported where the user wrote a path; lbctl's defaults never collide.
            let Some((key, loc)) = [file, other]
                .into_iter()
                .find_map(|f| f.loc.map(|loc| (f.key, loc)))
            else {
                continue;
            };
            diags.push(
                Diagnostic::new(&loc, key, message)
                    .hint("give every file its own path, e.g. the defaults under /etc/haproxy/, /etc/keepalived/, /etc/nginx/, /var/lib/haproxy/ and /var/lib/lbctl/"),
            );
        }
    }
}

/// Whether `path` lies inside `dir`, a path lbctl writes as a file.
pub fn is_inside(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_be_absolute_normalised_and_confined() {
        let ok =
            |p: &str, confined| problem(p, Owner::Service(Service::Haproxy), confined).is_none();
        assert!(ok("/etc/haproxy/haproxy.cfg", true));
        assert!(ok("/etc/haproxy/conf.d/lbctl.cfg", true));
        assert!(ok("/var/lib/haproxy/server-state", true));
        assert!(!ok("/etc/keepalived/keepalived.conf", true));
        assert!(ok("/etc/keepalived/other.cfg", false));
        for bad in [
            "etc/haproxy/haproxy.cfg",
            "/etc/haproxy/../../tmp/x.cfg",
            "/etc/haproxy/./haproxy.cfg",
            "/etc/haproxy//haproxy.cfg",
            "/etc/haproxy/",
            "/etc/haproxy/haproxy.cfg.lbctl-prev",
            "/etc/haproxy/a b",
            "/etc/haproxy/a\nb",
            "/etc/haproxyx/haproxy.cfg",
        ] {
            assert!(!ok(bad, true), "{bad:?}");
            assert!(
                bad == "/etc/haproxyx/haproxy.cfg" || !ok(bad, false),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn two_services_cannot_share_a_file() {
        let loc = Loc::new(&std::sync::Arc::from("v.yml"), 3);
        let files = [
            Managed {
                owner: Owner::Service(Service::Haproxy),
                key: "haproxy_config_path",
                loc: None,
                path: "/etc/haproxy/haproxy.cfg",
            },
            Managed {
                owner: Owner::Service(Service::Nginx),
                key: "nginx_stream_config_path",
                loc: Some(loc),
                path: "/etc/haproxy/haproxy.cfg",
            },
            Managed {
                owner: Owner::Service(Service::Keepalived),
                key: "keepalived_config_path",
                loc: Some(loc),
                path: "/etc/haproxy/haproxy.cfg/x",
            },
        ];
        let mut diags = Diagnostics::default();
        check_distinct(&files, &mut diags);
        let diags = diags.into_vec();
        assert_eq!(diags.len(), 3, "{diags:?}");
        assert_eq!(diags[0].key, "nginx_stream_config_path");
        assert!(
            diags[0]
                .message
                .contains("haproxy's and nginx's files over each other"),
            "{}",
            diags[0]
        );
    }
}
