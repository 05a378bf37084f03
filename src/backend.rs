//! A service the load balancers publish: the seed's `haproxy_tcp_backends` /
//! `haproxy_udp_backends` entries, typed and validated.

use std::{collections::HashMap, sync::Arc};

use serde::Serialize;

use crate::{
    diagnostic::{Diagnostic, Diagnostics},
    field::{self, Duration},
    node::{Loc, Node, Value},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn var_name(self) -> &'static str {
        match self {
            Protocol::Tcp => "haproxy_tcp_backends",
            Protocol::Udp => "haproxy_udp_backends",
        }
    }
}

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
    #[serde(skip)]
    pub loc: Loc,
    #[serde(skip)]
    pub port_loc: Loc,
}

#[derive(Debug, Clone, Serialize)]
pub struct Server {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub check: bool,
    pub check_interval: Duration,
    pub rise: u32,
    pub fall: u32,
    pub weight: Option<u32>,
    pub backup: bool,
}

const BACKEND_KEYS: &[&str] = &["name", "port", "mode", "balance", "servers", "bind"];
const SERVER_KEYS: &[&str] = &[
    "name",
    "address",
    "port",
    "check",
    "check_interval",
    "rise",
    "fall",
    "weight",
    "backup",
];
/// Fields that only mean something for HAProxy's active TCP health checks.
const TCP_ONLY_SERVER_KEYS: &[&str] = &["check", "check_interval", "rise", "fall", "backup"];
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
/// (the usual case) share one parse and one copy of the result.
#[derive(Default)]
pub struct ListCache(HashMap<(usize, Protocol, String), Arc<Vec<Backend>>>);

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
        if let Some(hit) = self.0.get(&key) {
            return Arc::clone(hit);
        }
        let before = diags.len();
        let list = Arc::new(parse_list(node, protocol, default_bind, diags));
        if diags.len() == before {
            self.0.insert(key, Arc::clone(&list));
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
    let items = match &node.value {
        Value::Null => return Vec::new(),
        Value::Seq(items) => items,
        _ => {
            diags.push(
                Diagnostic::new(
                    &node.loc,
                    var,
                    format!("expected a list of backends, found {}", node.kind()),
                )
                .hint("each backend is a list item starting with `- name:`"),
            );
            return Vec::new();
        }
    };
    let backends: Vec<Backend> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            parse_backend(item, &format!("{var}[{i}]"), protocol, default_bind, diags)
        })
        .collect();
    let mut first_by_name: HashMap<&str, &Loc> = HashMap::with_capacity(backends.len());
    for (i, b) in backends.iter().enumerate() {
        if let Some(first) = first_by_name.insert(&b.name, &b.loc) {
            diags.push(
                Diagnostic::new(
                    &b.loc,
                    format!("{var}[{i}].name"),
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

fn parse_backend(
    node: &Node,
    path: &str,
    protocol: Protocol,
    default_bind: &str,
    diags: &mut Diagnostics,
) -> Option<Backend> {
    let entries = field::mapping(node, path, BACKEND_KEYS, diags)?;
    let before = diags.len();
    let get = |k: &str| {
        entries
            .iter()
            .find(|(key, _, _)| key == k)
            .map(|(_, _, v)| v)
    };
    let name = required(node, get("name"), path, "name", diags)
        .and_then(|n| field::identifier(n, &field::join(path, "name"), diags));
    let port_node = required(node, get("port"), path, "port", diags);
    let port = port_node.and_then(|n| field::port(n, &field::join(path, "port"), diags));
    if let Some(mode) = get("mode") {
        check_mode(mode, path, protocol, diags);
    }
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
        Some(n) => parse_servers(n, &field::join(path, "servers"), protocol, diags),
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
        loc: node.loc.clone(),
        port_loc: port_node?.loc.clone(),
    })
}

fn parse_servers(
    node: &Node,
    path: &str,
    protocol: Protocol,
    diags: &mut Diagnostics,
) -> Vec<Server> {
    let Value::Seq(items) = &node.value else {
        diags.push(
            Diagnostic::new(
                &node.loc,
                path,
                format!("expected a list of servers, found {}", node.kind()),
            )
            .hint("each server is a list item starting with `- name:`"),
        );
        return Vec::new();
    };
    if items.is_empty() {
        diags.push(
            Diagnostic::new(&node.loc, path, "a backend needs at least one server")
                .hint("list the workers' NodePort endpoints under `servers:`"),
        );
    }
    let mut servers: Vec<(Server, Loc)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let spath = format!("{path}[{i}]");
        if let Some(s) = parse_server(item, &spath, protocol, diags) {
            if let Some((_, first)) = servers.iter().find(|(o, _)| o.name == s.name) {
                diags.push(
                    Diagnostic::new(
                        &item.loc,
                        format!("{spath}.name"),
                        format!("duplicate server name `{}`", s.name),
                    )
                    .hint(format!(
                        "already used at {first}; server names must be unique within a backend"
                    )),
                );
            }
            servers.push((s, item.loc.clone()));
        }
    }
    servers.into_iter().map(|(s, _)| s).collect()
}

fn parse_server(
    node: &Node,
    path: &str,
    protocol: Protocol,
    diags: &mut Diagnostics,
) -> Option<Server> {
    let entries = field::mapping(node, path, SERVER_KEYS, diags)?;
    let before = diags.len();
    let get = |k: &str| {
        entries
            .iter()
            .find(|(key, _, _)| key == k)
            .map(|(_, _, v)| v)
    };
    if protocol == Protocol::Udp {
        for (key, loc, _) in entries
            .iter()
            .filter(|(k, _, _)| TCP_ONLY_SERVER_KEYS.contains(&k.as_str()))
        {
            diags.push(
                Diagnostic::new(loc, field::join(path, key), format!("`{key}` is a TCP health-check field and does not apply to UDP"))
                    .hint("remove it: UDP health is passive (the UDP engine stops using a server whose exchanges fail), HAProxy-style active checks do not exist for UDP"),
            );
        }
    }
    let name = required(node, get("name"), path, "name", diags)
        .and_then(|n| field::identifier(n, &field::join(path, "name"), diags));
    let address = required(node, get("address"), path, "address", diags)
        .and_then(|n| field::address(n, &field::join(path, "address"), diags));
    let port = required(node, get("port"), path, "port", diags)
        .and_then(|n| field::port(n, &field::join(path, "port"), diags));
    let check = get("check")
        .map(|n| field::boolean(n, &field::join(path, "check"), diags).unwrap_or(false))
        .unwrap_or(protocol == Protocol::Tcp);
    let check_interval = match get("check_interval") {
        Some(n) => field::duration(n, &field::join(path, "check_interval"), diags),
        None => Some(Duration {
            text: "2s".into(),
            ms: 2000,
        }),
    };
    let count = |key: &str, default: u32, diags: &mut Diagnostics| match get(key) {
        Some(n) => field::int(n, &field::join(path, key), 1, 1000, diags).map(|v| v as u32),
        None => Some(default),
    };
    let rise = count("rise", 2, diags);
    let fall = count("fall", 3, diags);
    let weight = match get("weight") {
        Some(n) => {
            field::int(n, &field::join(path, "weight"), 0, 256, diags).map(|w| Some(w as u32))
        }
        None => Some(None),
    };
    let backup = get("backup")
        .map(|n| field::boolean(n, &field::join(path, "backup"), diags).unwrap_or(false))
        .unwrap_or(false);
    if diags.len() > before {
        return None;
    }
    Some(Server {
        name: name?,
        address: address?,
        port: port?,
        check,
        check_interval: check_interval?,
        rise: rise?,
        fall: fall?,
        weight: weight?,
        backup,
    })
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

/// The value of a key that must be present; a missing key is reported at its parent's line.
fn required<'a>(
    parent: &Node,
    value: Option<&'a Node>,
    path: &str,
    key: &str,
    diags: &mut Diagnostics,
) -> Option<&'a Node> {
    if value.is_none() {
        diags.push(
            Diagnostic::new(
                &parent.loc,
                field::join(path, key),
                format!("missing required key `{key}`"),
            )
            .hint(format!("add `{key}:` to this entry")),
        );
    }
    value
}

pub fn one_of(
    node: &Node,
    path: &str,
    allowed: &[&str],
    what: &str,
    diags: &mut Diagnostics,
) -> Option<String> {
    let text = node.as_text().unwrap_or_default();
    if allowed.contains(&text.as_str()) {
        return Some(text);
    }
    let d = Diagnostic::new(
        &node.loc,
        path,
        format!("unknown {what} {}", field::quote(&text)),
    );
    diags.push(match field::suggest(&text, allowed.iter().copied()) {
        Some(s) => d.hint(format!(
            "did you mean `{s}`? (one of: {})",
            allowed.join(", ")
        )),
        None => d.hint(format!("use one of: {}", allowed.join(", "))),
    });
    None
}

/// `*` or an IP address: where a frontend listens.
pub fn bind_address(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<String> {
    let text = node.as_text().unwrap_or_default();
    if text == "*" || text.parse::<std::net::IpAddr>().is_ok() {
        Some(text)
    } else {
        diags.push(
            Diagnostic::new(
                &node.loc,
                path,
                format!("{} is not a bind address", field::quote(&text)),
            )
            .hint("use `*` for every address, or an IP address"),
        );
        None
    }
}
