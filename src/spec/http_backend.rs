//! An HTTP service (`haproxy_http_backends`): the seed's backend and servers, plus which
//! requests it takes on which frontend (`frontend`, `hosts`, `path_prefix`, `default`), sticky
//! sessions, HTTP health checks and the PROXY protocol.

use std::collections::HashMap;

use serde::Serialize;

use crate::{
    source::field,
    source::{Diagnostic, Diagnostics},
    source::{Loc, Node},
    spec::backend::{self, Sticky, TCP_BALANCE},
    spec::health_check::{self, HealthCheck},
    spec::http_frontend::{self, HttpFrontend, HttpRoute},
    spec::protocol::Protocol,
    spec::server::{self, SendProxy, Server},
};

#[derive(Debug, Clone, Serialize)]
pub struct HttpBackend {
    pub name: String,
    pub balance: String,
    pub sticky: Option<Sticky>,
    pub health_check: Option<HealthCheck>,
    pub servers: Vec<Server>,
    /// Which frontend it serves, as written; resolved against the frontends by [`attach`].
    #[serde(skip)]
    pub frontend: Option<(String, Loc)>,
    /// Host names (`*.example.com` for every name under it).
    pub hosts: Vec<String>,
    pub path_prefix: Option<String>,
    /// Takes the requests that no backend's route matches.
    pub default: bool,
    #[serde(skip)]
    pub index: usize,
    #[serde(skip)]
    pub loc: Loc,
    /// Where each host name was written, in the order of `hosts`.
    #[serde(skip)]
    pub host_locs: Vec<Loc>,
    #[serde(skip)]
    pub path_loc: Option<Loc>,
    #[serde(skip)]
    pub default_loc: Option<Loc>,
}

pub const VAR: &str = "haproxy_http_backends";

const KEYS: &[&str] = &[
    "name",
    "mode",
    "frontend",
    "hosts",
    "path_prefix",
    "default",
    "balance",
    "sticky",
    "health_check",
    "send_proxy",
    "servers",
];

/// TCP's algorithms, plus those that hash a part of the request.
const HTTP_BALANCE: &[&str] = &["uri", "hdr(host)"];

pub fn parse_list(node: &Node, diags: &mut Diagnostics) -> Vec<HttpBackend> {
    let items = field::list(node, VAR, "backends", diags);
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| parse_backend(item, i, diags))
        .collect()
}

fn parse_backend(node: &Node, index: usize, diags: &mut Diagnostics) -> Option<HttpBackend> {
    let path = format!("{VAR}[{index}]");
    let path = path.as_str();
    let entries = field::mapping(node, path, KEYS, diags)?;
    let before = diags.len();
    let get = |k: &str| field::entry(entries, k);
    let key = |k: &str| field::join(path, k);
    let name = field::required(node, get("name"), path, "name", diags)
        .and_then(|n| field::identifier(n, &key("name"), diags));
    if let Some(n) = get("mode")
        && n.as_text().as_deref() != Some("http")
    {
        diags.push(
            Diagnostic::new(
                &n.loc,
                key("mode"),
                format!(
                    "haproxy_http_backends take `mode: http`, not {}",
                    n.as_text()
                        .map_or(n.kind().to_string(), |t| field::quote(&t))
                ),
            )
            .hint(
                "TCP services (including TLS passed through by `sni`) go in haproxy_tcp_backends",
            ),
        );
    }
    let frontend = get("frontend")
        .and_then(|n| field::identifier(n, &key("frontend"), diags).map(|f| (f, n.loc)));
    let mut hosts = Vec::new();
    let mut host_locs = Vec::new();
    if let Some(n) = get("hosts") {
        for (p, item) in field::one_or_many(n, &key("hosts"), diags) {
            if let Some(host) = field::server_name(item, &p, diags) {
                hosts.push(host);
                host_locs.push(item.loc);
            }
        }
    }
    let path_prefix = get("path_prefix").and_then(|n| path_prefix(n, &key("path_prefix"), diags));
    let default = get("default")
        .and_then(|n| field::boolean(n, &key("default"), diags))
        .unwrap_or(false);
    let balance = match get("balance") {
        None => Some("roundrobin".to_string()),
        Some(n) => {
            let allowed: Vec<&str> = TCP_BALANCE.iter().chain(HTTP_BALANCE).copied().collect();
            field::one_of(n, &key("balance"), &allowed, "balance algorithm", diags)
        }
    };
    let sticky = get("sticky").and_then(|n| backend::sticky(n, &key("sticky"), true, diags));
    let first_host = hosts
        .iter()
        .find(|h| !h.starts_with('*'))
        .map(String::as_str);
    let health_check = get("health_check")
        .and_then(|n| health_check::parse(n, &key("health_check"), first_host, diags));
    let send_proxy: Option<SendProxy> = get("send_proxy")
        .and_then(|n| server::send_proxy(n, &key("send_proxy"), diags))
        .flatten();
    let servers = match field::required(node, get("servers"), path, "servers", diags) {
        Some(n) => {
            server::parse_servers(n, &key("servers"), Protocol::Tcp, send_proxy, true, diags)
        }
        None => Vec::new(),
    };
    if diags.len() > before {
        return None;
    }
    Some(HttpBackend {
        name: name?,
        balance: balance?,
        sticky,
        health_check,
        servers,
        frontend,
        hosts,
        path_prefix,
        default,
        index,
        loc: node.loc,
        host_locs,
        path_loc: get("path_prefix").map(|n| n.loc),
        default_loc: get("default").map(|n| n.loc),
    })
}

/// A path prefix: `/api` takes `/api` and everything under `/api/`; `/api/` only what is under
/// it; `/` everything.
fn path_prefix(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<String> {
    let text = health_check::url_path(node, path, diags)?;
    if text.contains('?') || text.contains("//") {
        diags.push(
            Diagnostic::new(
                &node.loc,
                path,
                format!("{} is not a path prefix", field::quote(&text)),
            )
            .hint("a prefix is a path without query string or empty segments, e.g. /api"),
        );
        return None;
    }
    Some(text)
}

/// What a route claims, to find two backends claiming the same requests.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum HostClaim {
    Name(String),
    Any,
}

/// Resolves each backend's frontend, builds every frontend's routes and default, and reports
/// what cannot work: an unknown frontend, a backend no request can reach, two backends taking
/// the same host and path, two defaults, a frontend with nothing behind it.
pub fn attach(frontends: &mut [HttpFrontend], backends: &[HttpBackend], diags: &mut Diagnostics) {
    if frontends.is_empty() {
        if let Some(b) = backends.first() {
            diags.push(
                Diagnostic::new(
                    &b.loc,
                    VAR,
                    "HTTP backends need a frontend to listen for them",
                )
                .hint(format!(
                    "define the listener in {}, e.g. `- name: web` with `port: 80`",
                    http_frontend::VAR
                )),
            );
        }
        return;
    }
    let names: Vec<&str> = frontends.iter().map(|f| f.name.as_str()).collect();
    let mut members: Vec<Vec<&HttpBackend>> = vec![Vec::new(); frontends.len()];
    for b in backends {
        let path = format!("{VAR}[{}]", b.index);
        let slot = match &b.frontend {
            Some((name, loc)) => match names.iter().position(|n| n == name) {
                Some(i) => Some(i),
                None => {
                    let d = Diagnostic::new(
                        loc,
                        format!("{path}.frontend"),
                        format!("unknown frontend `{name}`"),
                    );
                    diags.push(match field::suggest(name, names.iter().copied()) {
                        Some(s) => d.hint(format!("did you mean `{s}`?")),
                        None => d.hint(format!(
                            "frontends in {}: {}",
                            http_frontend::VAR,
                            names.join(", ")
                        )),
                    });
                    None
                }
            },
            None if frontends.len() == 1 => Some(0),
            None => {
                diags.push(
                    Diagnostic::new(
                        &b.loc,
                        format!("{path}.frontend"),
                        "missing `frontend`: there are several HTTP frontends",
                    )
                    .hint(format!("add `frontend:` with one of: {}", names.join(", "))),
                );
                None
            }
        };
        if let Some(i) = slot {
            members[i].push(b);
        }
    }
    for (f, group) in frontends.iter_mut().zip(members) {
        route_frontend(f, &group, diags);
    }
}

fn route_frontend(f: &mut HttpFrontend, group: &[&HttpBackend], diags: &mut Diagnostics) {
    if group.is_empty() {
        diags.push(
            Diagnostic::new(
                &f.loc,
                format!("{}[{}]", http_frontend::VAR, f.index),
                format!("frontend `{}` has no backends", f.name),
            )
            .hint(format!(
                "point a backend in {VAR} at it with `frontend: {}`, or remove it",
                f.name
            )),
        );
        return;
    }
    let mut claims: HashMap<(HostClaim, String), &HttpBackend> = HashMap::new();
    let mut routes: Vec<(usize, HttpRoute)> = Vec::new();
    for b in group {
        let path = format!("{VAR}[{}]", b.index);
        let prefix = b.path_prefix.as_deref().filter(|p| *p != "/");
        if b.hosts.is_empty() && prefix.is_none() {
            if !b.default {
                diags.push(
                    Diagnostic::new(&b.loc, path.clone(), format!("no request can reach backend `{}`", b.name))
                        .hint("give it `hosts:` and/or `path_prefix:`, or `default: true` to take the requests no other backend matches"),
                );
            }
        } else {
            let key_path = prefix.unwrap_or("").trim_end_matches('/').to_string();
            let host_claims: Vec<(HostClaim, Option<usize>)> = if b.hosts.is_empty() {
                vec![(HostClaim::Any, None)]
            } else {
                b.hosts
                    .iter()
                    .enumerate()
                    .map(|(i, h)| (HostClaim::Name(h.clone()), Some(i)))
                    .collect()
            };
            for (claim, host_index) in host_claims {
                let k = (claim.clone(), key_path.clone());
                match claims.get(&k) {
                    Some(other) if other.name != b.name => {
                        let what = match &claim {
                            HostClaim::Name(h) => format!("host `{h}`"),
                            HostClaim::Any => "every host".to_string(),
                        };
                        let on_path = prefix.map_or(String::new(), |p| format!(" under `{p}`"));
                        let (loc, key) = match (host_index, &b.path_loc) {
                            (Some(i), _) => (&b.host_locs[i], format!("{path}.hosts[{i}]")),
                            (None, Some(l)) => (l, format!("{path}.path_prefix")),
                            (None, None) => (&b.loc, path.clone()),
                        };
                        diags.push(
                            Diagnostic::new(
                                loc,
                                key,
                                format!(
                                    "{what}{on_path} on frontend `{}` is routed to both `{}` ({}) and `{}`",
                                    f.name, other.name, other.loc, b.name
                                ),
                            )
                            .hint("a request goes to one backend: remove the host from one of them, or give them different `path_prefix`es"),
                        );
                    }
                    Some(_) => {}
                    None => {
                        claims.insert(k, b);
                    }
                }
            }
            let (path_exact, path_under) = match prefix {
                None => (None, None),
                Some(p) if p.ends_with('/') => (None, Some(p.to_string())),
                Some(p) => (Some(p.to_string()), Some(format!("{p}/"))),
            };
            let route = HttpRoute {
                backend: b.name.clone(),
                hosts: b
                    .hosts
                    .iter()
                    .filter(|h| !h.starts_with('*'))
                    .cloned()
                    .collect(),
                host_suffixes: b
                    .hosts
                    .iter()
                    .filter_map(|h| h.strip_prefix('*').map(str::to_string))
                    .collect(),
                path_exact,
                path_under,
            };
            routes.push((prefix.map_or(0, str::len), route));
        }
    }
    let defaults: Vec<&&HttpBackend> = group.iter().filter(|b| b.default).collect();
    for b in defaults.iter().skip(1) {
        diags.push(
            Diagnostic::new(
                b.default_loc.as_ref().unwrap_or(&b.loc),
                format!("{VAR}[{}].default", b.index),
                format!(
                    "backends `{}` ({}) and `{}` are both the default of frontend `{}`",
                    defaults[0].name,
                    defaults[0].default_loc.as_ref().unwrap_or(&defaults[0].loc),
                    b.name,
                    f.name
                ),
            )
            .hint("requests that match no route go to one default: keep `default: true` on one of them"),
        );
    }
    // HAProxy takes the first `use_backend` that matches: longer path prefixes first, then
    // exact hosts before wildcards before any host, then the order of the list.
    routes.sort_by_key(|(prefix_len, r)| {
        let host_rank = if !r.host_suffixes.is_empty() {
            1
        } else if r.has_hosts() {
            0
        } else {
            2
        };
        (std::cmp::Reverse(*prefix_len), host_rank)
    });
    f.routes = routes.into_iter().map(|(_, r)| r).collect();
    f.default_backend = defaults.first().map(|b| b.name.clone());
}
