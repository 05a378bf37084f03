//! A service the load balancers publish: the seed's `haproxy_tcp_backends` /
//! `haproxy_udp_backends` entries, typed and validated.

use std::{collections::HashMap, sync::Arc};

use serde::Serialize;

use crate::{
    source::field::{self, bind_address, one_of, required},
    source::{Diagnostic, Diagnostics},
    source::{Loc, Node},
    spec::health_check::{self, HealthCheck},
    spec::protocol::Protocol,
    spec::server::{self, Server},
    spec::udp_health_check::{self, UdpHealthCheck},
};

#[derive(Debug, Clone, Serialize)]
pub struct Backend {
    pub name: String,
    pub protocol: Protocol,
    /// Address the frontend listens on; `*` means every address, so the VIP works on
    /// whichever host holds it.
    pub bind: String,
    pub port: u16,
    pub balance: String,
    pub servers: Vec<Server>,
    /// TLS server names (`req.ssl_sni`) this backend takes on a port it shares with other
    /// SNI-routed backends; `*.example.com` stands for every name under example.com.
    pub sni: Vec<String>,
    /// Takes the connections on its port that no backend's `sni` matches.
    pub sni_default: bool,
    pub sticky: Option<Sticky>,
    pub health_check: Option<HealthCheck>,
    /// A UDP backend's active health check (`health_check` in its vars).
    pub udp_health_check: Option<UdpHealthCheck>,
    /// Position in its list, for diagnostics found after parsing (`haproxy_tcp_backends[3]`).
    #[serde(skip)]
    pub index: usize,
    #[serde(skip)]
    pub loc: Loc,
    #[serde(skip)]
    pub port_loc: Loc,
    /// Where each `sni` name was written, in the order of `sni`.
    #[serde(skip)]
    pub sni_locs: Vec<Loc>,
    #[serde(skip)]
    pub sni_default_loc: Option<Loc>,
}

impl Backend {
    /// Routed by TLS server name: shares its port with the other SNI-routed backends there.
    pub fn sni_routed(&self) -> bool {
        !self.sni.is_empty() || self.sni_default
    }

    pub fn path(&self) -> String {
        format!("{}[{}]", self.protocol.var_name(), self.index)
    }
}

/// Keeps a client on one server: by a cookie HAProxy inserts (HTTP only), or by the client's
/// address in a stick table (any TCP service).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sticky {
    Cookie,
    Source,
}

impl Sticky {
    /// As serialized (and as templates compare it).
    pub fn name(self) -> &'static str {
        match self {
            Sticky::Cookie => "cookie",
            Sticky::Source => "source",
        }
    }
}

const BACKEND_KEYS: &[&str] = &[
    "name",
    "port",
    "mode",
    "balance",
    "servers",
    "bind",
    "sni",
    "sni_default",
    "sticky",
    "health_check",
    "send_proxy",
];
/// Backend fields that only HAProxy (TCP) can honour; the UDP engines have no equivalent.
const TCP_ONLY_BACKEND_KEYS: &[&str] = &["sni", "sni_default", "sticky", "send_proxy"];
pub const TCP_BALANCE: &[&str] = &[
    "roundrobin",
    "static-rr",
    "leastconn",
    "first",
    "source",
    "random",
];
pub const UDP_BALANCE: &[&str] = &["roundrobin", "leastconn", "source"];

/// Backend lists already parsed, by the node they came from: hosts that share a group's list
/// (the usual case) share one parse and one copy of the result. The cache holds the node
/// itself too, so that its address is never reused by another host's node (a list decrypted
/// from a vault is a new node for each host) while it names an entry here.
#[derive(Default)]
pub struct ListCache(HashMap<(usize, Protocol, String), Cached>);

/// A cached list, and the node it was read from (held, so its address stays taken).
type Cached = (Arc<Node>, Arc<Vec<Backend>>);

impl ListCache {
    pub fn parse(
        &mut self,
        node: &Arc<Node>,
        protocol: Protocol,
        default_bind: &str,
        diags: &mut Diagnostics,
    ) -> Arc<Vec<Backend>> {
        let key = (
            Arc::as_ptr(node) as usize,
            protocol,
            default_bind.to_string(),
        );
        if let Some((_, hit)) = self.0.get(&key) {
            return Arc::clone(hit);
        }
        let before = diags.len();
        let list = Arc::new(parse_list(node, protocol, default_bind, diags));
        if diags.len() == before {
            self.0.insert(key, (Arc::clone(node), Arc::clone(&list)));
        }
        list
    }
}

/// Reads one of the two backend lists. `default_bind` is `haproxy_bind_address`.
pub fn parse_list(
    node: &Node,
    protocol: Protocol,
    default_bind: &str,
    diags: &mut Diagnostics,
) -> Vec<Backend> {
    let var = protocol.var_name();
    let items = field::list(node, var, "backends", diags);
    let backends: Vec<Backend> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            parse_backend(item, &format!("{var}[{i}]"), protocol, default_bind, diags)
                .map(|b| Backend { index: i, ..b })
        })
        .collect();
    let mut backends = backends;
    if protocol == Protocol::Udp {
        assign_relays(&mut backends);
    }
    let mut first_by_name: HashMap<&str, &Loc> = HashMap::with_capacity(backends.len());
    for b in &backends {
        if let Some(first) = first_by_name.insert(&b.name, &b.loc) {
            diags.push(
                Diagnostic::new(
                    &b.loc,
                    format!("{var}[{}].name", b.index),
                    format!("duplicate backend name `{}`", b.name),
                )
                .hint(format!(
                    "already used at {}; backend names must be unique",
                    first
                )),
            );
        }
    }
    backends
}

/// Gives every UDP server named by DNS its own loopback address (127.77.0.1, 127.77.0.2, ...):
/// nginx resolves the names in an `upstream` once, at start, and refuses the whole
/// configuration when one does not resolve, so such a server is reached through a relay on
/// that address that resolves the name for each session (see the nginx template).
fn assign_relays(backends: &mut [Backend]) {
    let mut n: u32 = 0;
    for server in backends.iter_mut().flat_map(|b| b.servers.iter_mut()) {
        if server.address.parse::<std::net::IpAddr>().is_ok() {
            continue;
        }
        let (a, last) = (n / 254, n % 254 + 1);
        server.relay = Some(format!("127.{}.{}.{last}", 77 + a / 256, a % 256));
        n += 1;
    }
}

fn parse_backend(
    node: &Node,
    path: &str,
    protocol: Protocol,
    default_bind: &str,
    diags: &mut Diagnostics,
) -> Option<Backend> {
    let entries = field::mapping(node, path, BACKEND_KEYS, diags)?;
    let before = diags.len();
    let get = |k: &str| field::entry(entries, k);
    let name = required(node, get("name"), path, "name", diags)
        .and_then(|n| field::identifier(n, &field::Key(path, "name"), diags));
    let port_node = required(node, get("port"), path, "port", diags);
    let port = port_node.and_then(|n| field::port(n, &field::Key(path, "port"), diags));
    if let Some(mode) = get("mode") {
        check_mode(mode, path, protocol, diags);
    }
    if protocol == Protocol::Udp {
        for (key, loc, _) in entries
            .iter()
            .filter(|(k, _, _)| TCP_ONLY_BACKEND_KEYS.contains(&&**k))
        {
            diags.push(
                Diagnostic::new(
                    loc,
                    field::join(path, key),
                    format!("`{key}` does not apply to UDP backends"),
                )
                .hint("remove it: the UDP engines (nginx stream, LVS) have no server names, stickiness or PROXY protocol"),
            );
        }
    }
    let mut sni = Vec::new();
    let mut sni_locs = Vec::new();
    if let Some(n) = get("sni") {
        for (p, item) in field::one_or_many(n, &field::join(path, "sni"), diags) {
            if let Some(name) = field::server_name(item, &p, diags) {
                sni.push(name);
                sni_locs.push(item.loc);
            }
        }
    }
    let sni_default = get("sni_default")
        .and_then(|n| field::boolean(n, &field::join(path, "sni_default"), diags))
        .unwrap_or(false);
    let sticky = get("sticky").and_then(|n| sticky(n, &field::join(path, "sticky"), false, diags));
    let (health_check, udp_health_check) = match (protocol, get("health_check")) {
        (_, None) => (None, None),
        (Protocol::Tcp, Some(n)) => (
            health_check::parse(n, &field::join(path, "health_check"), None, diags),
            None,
        ),
        (Protocol::Udp, Some(n)) => (
            None,
            udp_health_check::parse(n, &field::join(path, "health_check"), diags),
        ),
    };
    let send_proxy = get("send_proxy")
        .and_then(|n| server::send_proxy(n, &field::join(path, "send_proxy"), diags))
        .flatten();
    let allowed = match protocol {
        Protocol::Tcp => TCP_BALANCE,
        Protocol::Udp => UDP_BALANCE,
    };
    let balance = match get("balance") {
        None => "roundrobin".to_string(),
        Some(n) => one_of(
            n,
            &field::join(path, "balance"),
            allowed,
            "balance algorithm",
            diags,
        )
        .unwrap_or_default(),
    };
    let bind = match get("bind") {
        None => default_bind.to_string(),
        Some(n) => bind_address(n, &field::join(path, "bind"), diags).unwrap_or_default(),
    };
    let servers = match required(node, get("servers"), path, "servers", diags) {
        Some(n) => server::parse_servers(
            n,
            &field::join(path, "servers"),
            protocol,
            send_proxy,
            get("health_check").is_some(),
            diags,
        ),
        None => Vec::new(),
    };
    if diags.len() > before {
        return None;
    }
    Some(Backend {
        name: name?,
        protocol,
        bind,
        port: port?,
        balance,
        servers,
        sni,
        sni_default,
        sticky,
        health_check,
        udp_health_check,
        index: 0,
        loc: node.loc,
        port_loc: port_node?.loc,
        sni_locs,
        sni_default_loc: get("sni_default").map(|n| n.loc),
    })
}

/// `sticky: cookie` or `sticky: source`; a cookie needs HTTP, so `http` says whether this
/// backend speaks it.
pub fn sticky(node: &Node, path: &str, http: bool, diags: &mut Diagnostics) -> Option<Sticky> {
    match one_of(node, path, &["cookie", "source"], "stickiness", diags)?.as_str() {
        "cookie" if !http => {
            diags.push(
                Diagnostic::new(&node.loc, path, "`sticky: cookie` needs an HTTP backend")
                    .hint("HAProxy cannot read or set cookies in a TCP stream: use `sticky: source`, or move this service to haproxy_http_backends"),
            );
            None
        }
        "cookie" => Some(Sticky::Cookie),
        _ => Some(Sticky::Source),
    }
}

fn check_mode(node: &Node, path: &str, protocol: Protocol, diags: &mut Diagnostics) {
    let mode = node.as_text().unwrap_or_default();
    let key = field::join(path, "mode");
    match (protocol, mode.as_str()) {
        (Protocol::Tcp, "tcp") | (Protocol::Udp, "udp") => {}
        (Protocol::Tcp, "udp") => diags.push(
            Diagnostic::new(&node.loc, key, "`mode: udp` in haproxy_tcp_backends")
                .hint("move this backend to haproxy_udp_backends"),
        ),
        (Protocol::Udp, "tcp") => diags.push(
            Diagnostic::new(&node.loc, key, "`mode: tcp` in haproxy_udp_backends")
                .hint("move this backend to haproxy_tcp_backends, or write `mode: udp`"),
        ),
        (Protocol::Tcp, "http") => diags.push(
            Diagnostic::new(&node.loc, key, "`mode: http` in haproxy_tcp_backends").hint(
                "move this backend to haproxy_http_backends and its listener to haproxy_http_frontends (README: L7 routing, TLS and SNI)",
            ),
        ),
        (_, other) => diags.push(
            Diagnostic::new(&node.loc, key, format!("unknown mode `{other}`")).hint(
                match protocol {
                    Protocol::Tcp => "haproxy_tcp_backends take `mode: tcp`",
                    Protocol::Udp => "haproxy_udp_backends take `mode: udp`",
                },
            ),
        ),
    }
}
