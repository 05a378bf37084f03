//! A backend's server: a worker's NodePort endpoint, how HAProxy checks it, and whether it
//! is sent the PROXY protocol.

use std::fmt;

use serde::Serialize;

use crate::{
    source::field::{self, Duration, required},
    source::{Diagnostic, Diagnostics},
    source::{Loc, Node, Value},
    spec::protocol::Protocol,
};

/// The PROXY protocol header HAProxy sends first on every connection to a server, so the
/// server (Traefik, nginx, ...) sees the client's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SendProxy {
    V1,
    V2,
}

impl SendProxy {
    /// As serialized (and as templates compare it).
    pub fn name(self) -> &'static str {
        match self {
            SendProxy::V1 => "v1",
            SendProxy::V2 => "v2",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Server {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub check: bool,
    pub check_interval: Duration,
    /// HAProxy `fastinter`: the check interval once a check has failed, a quarter of
    /// `check_interval` (at least 100 ms), so a dead worker is marked DOWN within the
    /// `inter × fall + inter` that failover-test holds the tier to.
    pub fastinter: Duration,
    pub rise: u32,
    pub fall: u32,
    pub weight: Option<u32>,
    pub backup: bool,
    pub send_proxy: Option<SendProxy>,
    /// UDP through nginx: the loopback address of the relay that resolves this server's DNS
    /// name per session (`None` for an IP address, and for TCP).
    pub relay: Option<String>,
    /// Where `address` was written: rules that depend on the UDP engine are checked later.
    #[serde(skip)]
    pub address_loc: Loc,
}

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
    "send_proxy",
];
/// Fields of a server's active health check: a UDP server takes them when its backend has a
/// `health_check`.
const CHECK_SERVER_KEYS: &[&str] = &["check", "check_interval", "rise", "fall"];

/// Reads a list of servers; `send_proxy` is the backend's setting, which each server may
/// override. `checked`: the backend has a `health_check` (a UDP server is checked only then).
pub fn parse_servers(
    node: &Node,
    path: &str,
    protocol: Protocol,
    send_proxy: Option<SendProxy>,
    checked: bool,
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
    // each name's first server, by index: a linear search per server was quadratic (100,000
    // servers took two minutes)
    let mut first_of: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let spath = field::Index(path, i);
        if let Some(s) = parse_server(item, &spath, protocol, send_proxy, checked, diags) {
            let seen = first_of.get(s.name.as_str()).map(|&at| servers[at].1);
            if seen.is_none() {
                first_of.insert(s.name.to_string(), servers.len());
            }
            if let Some(first) = seen {
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
            servers.push((s, item.loc));
        }
    }
    servers.into_iter().map(|(s, _)| s).collect()
}

fn parse_server(
    node: &Node,
    path: &(impl fmt::Display + ?Sized),
    protocol: Protocol,
    backend_send_proxy: Option<SendProxy>,
    checked: bool,
    diags: &mut Diagnostics,
) -> Option<Server> {
    let entries = field::mapping(node, path, SERVER_KEYS, diags)?;
    let before = diags.len();
    let get = |k: &str| field::entry(entries, k);
    if protocol == Protocol::Udp {
        if !checked {
            for (key, loc, _) in entries
                .iter()
                .filter(|(k, _, _)| CHECK_SERVER_KEYS.contains(&&**k))
            {
                diags.push(
                    Diagnostic::new(loc, field::join(path, key), format!("`{key}` needs a `health_check` on the UDP backend"))
                        .hint("add e.g. `health_check: {port: 10256, path: /healthz}` (kube-proxy) or `health_check: {udp: {send: ..., expect: ...}}` to the backend, or remove this key"),
                );
            }
        }
        if let Some((key, loc, _)) = entries.iter().find(|(k, _, _)| &**k == "backup") {
            diags.push(
                Diagnostic::new(loc, field::join(path, key), "`backup` does not apply to UDP servers")
                    .hint("remove it: nginx cannot keep a backup server in a consistently hashed upstream"),
            );
        }
        if let Some((key, loc, _)) = entries.iter().find(|(k, _, _)| &**k == "send_proxy") {
            diags.push(
                Diagnostic::new(
                    loc,
                    field::join(path, key),
                    "`send_proxy` does not apply to UDP servers",
                )
                .hint("remove it: lbctl sends the PROXY protocol on TCP connections only"),
            );
        }
    }
    let name = required(node, get("name"), path, "name", diags)
        .and_then(|n| field::identifier(n, &field::Key(path, "name"), diags));
    let address = required(node, get("address"), path, "address", diags)
        .and_then(|n| field::address(n, &field::Key(path, "address"), diags));
    let port = required(node, get("port"), path, "port", diags)
        .and_then(|n| field::port(n, &field::Key(path, "port"), diags));
    let check = get("check")
        .map(|n| field::boolean(n, &field::Key(path, "check"), diags).unwrap_or(false))
        .unwrap_or(protocol == Protocol::Tcp || checked);
    let check_interval = match get("check_interval") {
        Some(n) => field::positive_duration(n, &field::Key(path, "check_interval"), diags),
        None => Some(Duration {
            text: "2s".into(),
            ms: 2000,
        }),
    };
    let count = |key: &str, default: u32, diags: &mut Diagnostics| match get(key) {
        Some(n) => field::int(n, &field::Key(path, key), 1, 1000, diags).map(|v| v as u32),
        None => Some(default),
    };
    let rise = count("rise", 2, diags);
    let fall = count("fall", 3, diags);
    let weight = match get("weight") {
        Some(n) => {
            field::int(n, &field::Key(path, "weight"), 0, 256, diags).map(|w| Some(w as u32))
        }
        None => Some(None),
    };
    let backup = get("backup")
        .map(|n| field::boolean(n, &field::Key(path, "backup"), diags).unwrap_or(false))
        .unwrap_or(false);
    let send_proxy = match get("send_proxy") {
        Some(n) => send_proxy(n, &field::Key(path, "send_proxy"), diags),
        None => Some(backend_send_proxy),
    };
    if diags.len() > before {
        return None;
    }
    let check_interval = check_interval?;
    let fast_ms = (check_interval.ms / 4).max(100);
    Some(Server {
        name: name?,
        address: address?,
        port: port?,
        check,
        fastinter: Duration {
            text: format!("{fast_ms}ms"),
            ms: fast_ms,
        },
        check_interval,
        rise: rise?,
        fall: fall?,
        weight: weight?,
        backup,
        send_proxy: send_proxy?,
        relay: None,
        address_loc: get("address").map_or(node.loc, |n| n.loc),
    })
}

/// `send_proxy: v2` (or `v1`); `false` turns a backend's setting off for one server.
pub fn send_proxy(
    node: &Node,
    path: &(impl fmt::Display + ?Sized),
    diags: &mut Diagnostics,
) -> Option<Option<SendProxy>> {
    match &node.value {
        Value::Bool(false) => return Some(None),
        Value::Int(2) => return Some(Some(SendProxy::V2)),
        Value::Int(1) => return Some(Some(SendProxy::V1)),
        _ => {}
    }
    match node
        .as_text()
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "v2" => Some(Some(SendProxy::V2)),
        "v1" => Some(Some(SendProxy::V1)),
        "false" | "no" | "off" => Some(None),
        _ => {
            diags.push(
                Diagnostic::new(
                    &node.loc,
                    path.to_string(),
                    format!(
                        "{} is not a PROXY protocol version",
                        node.as_text()
                            .map_or(node.kind().to_string(), |t| field::quote(&t))
                    ),
                )
                .hint(
                    "write `send_proxy: v2` (or v1 for servers that only read version 1), or false",
                ),
            );
            None
        }
    }
}
