//! HAProxy's `peers` section: the load balancers share their stick tables (sticky clients, rate
//! counters), so a client keeps its server and its count when the VIP moves to another host,
//! and a reload hands the tables from the old process to the new one (the local peer).

use std::collections::HashMap;

use serde::Serialize;

use crate::{
    source::{Diagnostic, Diagnostics},
    spec::backend::Sticky,
    spec::host::HostSpec,
    spec::http_backend,
    spec::http_frontend::HttpFrontend,
};

/// The section's name, referenced by every stick table lbctl renders.
pub const SECTION: &str = "lbctl";
/// `haproxy_peers_port` unless set.
pub const DEFAULT_PORT: u16 = 10000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Peers {
    pub section: &'static str,
    /// This host's peer name (`localpeer`): its inventory name, whatever its hostname.
    pub local: String,
    /// Every load balancer of the group, this one included, in inventory order.
    pub members: Vec<Peer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Peer {
    pub name: String,
    /// The host's `ansible_host` (or inventory name).
    pub address: String,
    pub port: u16,
}

/// HAProxy names each stick table after its proxy, and refuses two tables of one name (a
/// frontend and a backend may share a name, their tables may not). lbctl's tables: a backend's
/// with `sticky: source`, under the backend's name, and a rate-limited HTTP frontend's, under
/// `http_<name>`, the proxy lbctl renders for it; a backend named `http_web` with `sticky:
/// source` next to a frontend `web` with `rate_limit` would give two tables `http_web`.
pub fn check_table_names(spec: &HostSpec, diags: &mut Diagnostics) {
    let limited: HashMap<String, &HttpFrontend> = spec
        .http_frontends
        .iter()
        .filter(|f| f.rate_limit.is_some())
        .map(|f| (format!("http_{}", f.name), f))
        .collect();
    if limited.is_empty() {
        return;
    }
    let sticky = spec
        .tcp_backends
        .iter()
        .filter(|b| b.sticky == Some(Sticky::Source))
        .map(|b| (b.name.as_str(), b.loc, b.path()))
        .chain(
            spec.http_backends
                .iter()
                .filter(|b| b.sticky == Some(Sticky::Source))
                .map(|b| {
                    (
                        b.name.as_str(),
                        b.loc,
                        format!("{}[{}]", http_backend::VAR, b.index),
                    )
                }),
        );
    for (name, loc, path) in sticky {
        if let Some(f) = limited.get(name) {
            diags.push(
                Diagnostic::new(
                    &loc,
                    format!("{path}.name"),
                    format!(
                        "backend `{name}` keeps a stick table named after it (`sticky: source`), and so does HTTP frontend `{}` ({}) for its `rate_limit`, whose HAProxy frontend lbctl names `{name}`: HAProxy refuses two stick tables of one name",
                        f.name, f.loc
                    ),
                )
                .hint(format!(
                    "rename the backend or the frontend: lbctl names an HTTP frontend's proxy `http_<name>`, so no backend with a stick table may be called `http_{}`",
                    f.name
                )),
            );
        }
    }
}
