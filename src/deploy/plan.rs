//! What would change on each load balancer: rendered files against what is really deployed.
//! Plain data in (rendered files, fetched state), plain data out (a diff per host and file).

use serde::Serialize;
use similar::TextDiff;

use crate::{remote::Fetched, render::RenderedHost, spec::Service};

/// What replaces a secret in every diff and log.
pub const REDACTED: &str = "<redacted>";

#[derive(Debug, Clone, Serialize)]
pub struct FilePlan {
    pub service: Service,
    pub path: String,
    /// `create`, `update` or `unchanged`.
    pub action: Action,
    /// Unified diff with secrets redacted; empty when unchanged.
    pub diff: String,
    #[serde(skip)]
    pub content: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Unchanged,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostPlan {
    pub host: String,
    pub holds_vip: bool,
    pub files: Vec<FilePlan>,
    /// The daemons an apply would start rather than reload: it installs their configuration
    /// (none of their files is on the host) and they do not run ([`starts`]).
    pub starts: Vec<Service>,
    /// The daemons that do not run on the host and that an apply does not start
    /// ([`not_running`]).
    pub not_running: Vec<String>,
}

impl HostPlan {
    pub fn changed(&self) -> bool {
        self.files.iter().any(|f| f.action != Action::Unchanged)
    }

    pub fn changed_files(&self) -> impl Iterator<Item = &FilePlan> {
        self.files.iter().filter(|f| f.action != Action::Unchanged)
    }
}

/// One host's rendered files as if the host held none of them, every one to create, without
/// diffs: what an apply script sent before the host's files are known is made for.
pub fn all_new(rendered: &RenderedHost) -> HostPlan {
    HostPlan {
        host: rendered.host.clone(),
        holds_vip: false,
        files: rendered
            .files
            .iter()
            .map(|file| FilePlan {
                service: file.service,
                path: file.path.clone(),
                action: Action::Create,
                diff: String::new(),
                content: file.content.clone(),
            })
            .collect(),
        starts: Vec::new(),
        not_running: Vec::new(),
    }
}

/// Compares one host's rendered files with what the host holds. `secrets` are the host's
/// secret values; they never appear in a diff, and neither do the values of directives that
/// carry secrets (`stats auth`, `auth_pass`), old or new.
pub fn host_plan(rendered: &RenderedHost, fetched: &Fetched, secrets: &[&str]) -> HostPlan {
    let files = rendered
        .files
        .iter()
        .map(|file| {
            let current = fetched
                .files
                .get(&file.path)
                .and_then(|c| c.as_ref())
                .map(|bytes| String::from_utf8_lossy(bytes).into_owned());
            let action = match &current {
                None => Action::Create,
                Some(c) if *c == file.content => Action::Unchanged,
                Some(_) => Action::Update,
            };
            let diff = if action == Action::Unchanged {
                String::new()
            } else {
                let old = redact(current.as_deref().unwrap_or(""), secrets);
                let new = redact(&file.content, secrets);
                let text = TextDiff::from_lines(&old, &new)
                    .unified_diff()
                    .context_radius(3)
                    .header(
                        &format!("{}:{}", rendered.host, file.path),
                        &format!("{}:{} (lbctl)", rendered.host, file.path),
                    )
                    .to_string();
                if text.is_empty() {
                    format!("# {}: only a secret value changed (not shown)\n", file.path)
                } else {
                    text
                }
            };
            FilePlan {
                service: file.service,
                path: file.path.clone(),
                action,
                diff,
                content: file.content.clone(),
            }
        })
        .collect();
    HostPlan {
        host: rendered.host.clone(),
        holds_vip: fetched.holds_any_vip(),
        files,
        starts: Vec::new(),
        not_running: Vec::new(),
    }
}

/// Which of `startable` (services whose daemon an apply starts where it installs them) an
/// apply of `plan` would start, as the apply script decides on the host (`installing`): the
/// plan creates the service's files, none of which is there yet, and `fetched` says its
/// daemon does not run. A daemon the fetch was not asked about is not named.
pub fn starts(plan: &HostPlan, fetched: &Fetched, startable: &[Service]) -> Vec<Service> {
    startable
        .iter()
        .copied()
        .filter(|&service| {
            let mut files = plan
                .changed_files()
                .filter(|f| f.service == service)
                .peekable();
            files.peek().is_some()
                && files.all(|f| f.action == Action::Create)
                && fetched.daemons.get(service.name()) == Some(&false)
        })
        .collect()
}

/// The daemons `fetched` says do not run on the host (each by its name in the fetch, as
/// `status` names it) and that an apply of `plan` does not start: it starts those of
/// [`starts`], and restarts the UDP health watcher when it changes the watcher's files. A
/// plan with nothing to change is still silent about a dead daemon otherwise.
pub fn not_running(plan: &HostPlan, fetched: &Fetched) -> Vec<String> {
    let restarts_watcher = plan
        .changed_files()
        .any(|f| matches!(f.service, Service::UdpHealth | Service::UdpHealthUnit));
    fetched
        .daemons
        .iter()
        .filter(|(_, running)| !**running)
        .map(|(name, _)| name)
        .filter(|name| !plan.starts.iter().any(|s| s.name() == name.as_str()))
        .filter(|name| !(restarts_watcher && name.as_str() == Service::UdpHealth.name()))
        .cloned()
        .collect()
}

/// Masks known secret values anywhere, and the values of secret-carrying directives.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let masked = if let Some(rest) = trimmed.strip_prefix("stats auth ") {
            let user = rest.split(':').next().unwrap_or_default();
            Some(format!("{indent}stats auth {user}:{REDACTED}\n"))
        } else if trimmed.starts_with("auth_pass ") {
            Some(format!("{indent}auth_pass {REDACTED}\n"))
        } else {
            None
        };
        match masked {
            Some(m) => out.push_str(&m),
            None => out.push_str(line),
        }
    }
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret, REDACTED);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::RenderedFile;

    fn fetched(path: &str, content: Option<&str>) -> Fetched {
        let mut f = Fetched::default();
        f.files
            .insert(path.to_string(), content.map(|c| c.as_bytes().to_vec()));
        f
    }

    fn rendered(content: &str) -> RenderedHost {
        RenderedHost {
            host: "lb1".into(),
            files: vec![RenderedFile {
                service: Service::Haproxy,
                path: "/etc/haproxy/haproxy.cfg".into(),
                content: content.into(),
            }],
        }
    }

    #[test]
    fn unchanged_create_and_update() {
        let path = "/etc/haproxy/haproxy.cfg";
        let same = host_plan(&rendered("a\n"), &fetched(path, Some("a\n")), &[]);
        assert!(!same.changed());
        let create = host_plan(&rendered("a\n"), &fetched(path, None), &[]);
        assert_eq!(create.files[0].action, Action::Create);
        let update = host_plan(&rendered("a\nb\n"), &fetched(path, Some("a\n")), &[]);
        assert_eq!(update.files[0].action, Action::Update);
        assert!(
            update.files[0].diff.contains("\n+b\n"),
            "{}",
            update.files[0].diff
        );
    }

    #[test]
    fn secrets_never_reach_a_diff() {
        let path = "/etc/haproxy/haproxy.cfg";
        let old = "    stats auth admin:old-secret\n";
        let new = "    stats auth admin:new-secret\nkey hunter2\n";
        let plan = host_plan(&rendered(new), &fetched(path, Some(old)), &["hunter2"]);
        let diff = &plan.files[0].diff;
        assert!(
            !diff.contains("old-secret")
                && !diff.contains("new-secret")
                && !diff.contains("hunter2"),
            "{diff}"
        );
        assert!(diff.contains("+key <redacted>"), "{diff}");
        let only_secret = host_plan(
            &rendered("    stats auth admin:b\n"),
            &fetched(path, Some("    stats auth admin:a\n")),
            &[],
        );
        assert_eq!(only_secret.files[0].action, Action::Update);
        assert!(
            only_secret.files[0]
                .diff
                .contains("only a secret value changed")
        );
    }
    #[test]
    fn an_apply_starts_a_daemon_it_installs_where_it_does_not_run() {
        let conf = "/etc/keepalived/keepalived.conf";
        let host = |files: &[(Service, &str)]| RenderedHost {
            host: "lb1".into(),
            files: files
                .iter()
                .map(|(service, path)| RenderedFile {
                    service: *service,
                    path: (*path).into(),
                    content: "new\n".into(),
                })
                .collect(),
        };
        let keepalived = host(&[(Service::Keepalived, conf)]);
        let with = |content: Option<&str>, running: Option<bool>| {
            let mut f = fetched(conf, content);
            if let Some(running) = running {
                f.daemons.insert("keepalived".into(), running);
            }
            f
        };
        let starts_of = |rendered: &RenderedHost, fetched: &Fetched| {
            let plan = host_plan(rendered, fetched, &[]);
            starts(&plan, fetched, &[Service::Keepalived])
        };
        // a fresh host: no file, no daemon
        assert_eq!(
            starts_of(&keepalived, &with(None, Some(false))),
            vec![Service::Keepalived]
        );
        // it runs without its file (reloaded), or its file is there (updated, or unchanged)
        assert!(starts_of(&keepalived, &with(None, Some(true))).is_empty());
        assert!(starts_of(&keepalived, &with(Some("old\n"), Some(false))).is_empty());
        assert!(starts_of(&keepalived, &with(Some("new\n"), Some(false))).is_empty());
        // not asked, or not a service lbctl starts, or nothing of it rendered
        assert!(starts_of(&keepalived, &with(None, None)).is_empty());
        let plan = host_plan(&keepalived, &with(None, Some(false)), &[]);
        assert!(starts(&plan, &with(None, Some(false)), &[]).is_empty());
        let haproxy = host(&[(Service::Haproxy, "/etc/haproxy/haproxy.cfg")]);
        assert!(starts_of(&haproxy, &with(None, Some(false))).is_empty());
    }

    #[test]
    fn a_dead_daemon_is_named_unless_the_apply_starts_it() {
        let watcher = "/etc/lbctl/udp-health";
        let rendered = RenderedHost {
            host: "lb2".into(),
            files: vec![RenderedFile {
                service: Service::UdpHealth,
                path: watcher.into(),
                content: "new\n".into(),
            }],
        };
        let survey = |watcher_file: &str, running: &[(&str, bool)], starts: &[Service]| {
            let mut f = fetched(watcher, Some(watcher_file));
            for (name, up) in running {
                f.daemons.insert((*name).into(), *up);
            }
            let mut plan = host_plan(&rendered, &f, &[]);
            plan.starts = starts.to_vec();
            not_running(&plan, &f)
        };
        let all_up = [("haproxy", true), ("nginx", true), ("udp-health", true)];
        assert!(survey("new\n", &all_up, &[]).is_empty());
        // nothing to change: a dead nginx and watcher are named, in status's order
        let dead = [("udp-health", false), ("haproxy", true), ("nginx", false)];
        assert_eq!(survey("new\n", &dead, &[]), ["nginx", "udp-health"]);
        // the watcher's script changes: the apply restarts it, which starts it
        assert_eq!(survey("old\n", &dead, &[]), ["nginx"]);
        // a daemon the apply starts where it installs it
        let keepalived = [("keepalived", false)];
        assert!(survey("new\n", &keepalived, &[Service::Keepalived]).is_empty());
        assert_eq!(survey("new\n", &keepalived, &[]), ["keepalived"]);
    }
}
