//! How a UDP backend's servers are health-checked. A UDP service says nothing when it dies,
//! so without an active check a dead worker keeps receiving its share of new flows. Three
//! kinds, chosen per backend:
//!
//! - `{port: N}`: a TCP connect to another port of the worker (kube-proxy's `:10256`);
//! - `{port: N, path: /healthz}`: an HTTP GET there (kube-proxy's `/healthz`, or a
//!   `healthCheckNodePort` of an `externalTrafficPolicy: Local` service);
//! - `{udp: {send: ..., expect: ...}}`: a datagram to the server (or to `port`), whose reply
//!   must begin with `expect`, for request/response protocols such as DNS.

use serde::Serialize;

use crate::{
    source::field,
    source::{Diagnostic, Diagnostics},
    source::{Loc, Node},
    spec::health_check::{self, HealthCheck},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum UdpHealthCheck {
    /// A TCP connect to `port`.
    Tcp { port: u16 },
    /// An HTTP request to `port`, as a TCP backend's `health_check`.
    Http {
        port: u16,
        #[serde(flatten)]
        http: HealthCheck,
        /// Where `path` is written.
        #[serde(skip)]
        path_loc: Loc,
    },
    /// The datagram `send` to `port` (the server's own port when unset); the check passes
    /// when a reply arrives that begins with `expect` (any reply, when unset).
    Udp {
        port: Option<u16>,
        send: String,
        expect: Option<String>,
    },
}

impl UdpHealthCheck {
    /// The port the check goes to when it is not the server's own.
    pub fn port(&self) -> Option<u16> {
        match self {
            UdpHealthCheck::Tcp { port } | UdpHealthCheck::Http { port, .. } => Some(*port),
            UdpHealthCheck::Udp { port, .. } => *port,
        }
    }
}

const KEYS: &[&str] = &["port", "path", "expect_status", "host", "tls", "udp"];
const HTTP_KEYS: &[&str] = &["path", "expect_status", "host", "tls"];
const UDP_KEYS: &[&str] = &["send", "expect"];
/// Longest datagram a check sends, and longest reply prefix it compares.
const MAX_SEND: usize = 512;
const MAX_EXPECT: usize = 255;

/// Reads a UDP backend's `health_check`.
pub fn parse(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<UdpHealthCheck> {
    let entries = field::mapping(node, path, KEYS, diags)?;
    let before = diags.len();
    let get = |k: &str| field::entry(entries, k);
    let port = get("port").and_then(|n| field::port(n, &field::join(path, "port"), diags));
    if let Some(udp) = get("udp") {
        for (key, loc, _) in entries.iter().filter(|(k, _, _)| HTTP_KEYS.contains(&&**k)) {
            diags.push(
                Diagnostic::new(
                    loc,
                    field::join(path, key),
                    format!("`{key}` does not go with `udp`"),
                )
                .hint("a check is either HTTP (`port` and `path`) or a datagram (`udp`): keep one"),
            );
        }
        let (send, expect) = datagram(udp, &field::join(path, "udp"), diags)?;
        return (diags.len() == before).then_some(UdpHealthCheck::Udp { port, send, expect });
    }
    let Some(port) = port else {
        if get("port").is_none() {
            diags.push(
                Diagnostic::new(&node.loc, path, "a UDP backend's health check needs `port` or `udp`")
                    .hint("`port: 10256` checks kube-proxy by TCP connect (add `path: /healthz` for HTTP); `udp: {send: ..., expect: ...}` sends a datagram to the server"),
            );
        }
        return None;
    };
    if get("path").is_none() {
        for (key, loc, _) in entries.iter().filter(|(k, _, _)| HTTP_KEYS.contains(&&**k)) {
            diags.push(
                Diagnostic::new(loc, field::join(path, key), format!("`{key}` needs `path`"))
                    .hint("add `path: /healthz` to make this an HTTP check, or remove the key for a TCP connect check"),
            );
        }
        return (diags.len() == before).then_some(UdpHealthCheck::Tcp { port });
    }
    let check_path =
        get("path").and_then(|n| health_check::url_path(n, &field::join(path, "path"), diags));
    let expect_status = match get("expect_status") {
        Some(n) => field::int(n, &field::join(path, "expect_status"), 100, 599, diags),
        None => Some(200),
    };
    let host = match get("host") {
        Some(n) => field::server_name(n, &field::join(path, "host"), diags).map(Some),
        None => Some(None),
    };
    let tls = get("tls")
        .and_then(|n| field::boolean(n, &field::join(path, "tls"), diags))
        .unwrap_or(false);
    if diags.len() > before {
        return None;
    }
    Some(UdpHealthCheck::Http {
        port,
        http: HealthCheck {
            path: check_path?,
            expect_status: expect_status? as u16,
            host: host?,
            tls,
        },
        path_loc: get("path")?.loc,
    })
}

/// `udp: {send: ..., expect: ...}`.
fn datagram(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<(String, Option<String>)> {
    let entries = field::mapping(node, path, UDP_KEYS, diags)?;
    let before = diags.len();
    let get = |k: &str| field::entry(entries, k);
    let send = match get("send") {
        Some(n) => payload(n, &field::join(path, "send"), MAX_SEND, diags),
        None => {
            diags.push(
                Diagnostic::new(&node.loc, field::join(path, "send"), "missing required key `send`")
                    .hint("add `send:` with the datagram the service answers, e.g. a DNS query; YAML's \"\\x01\" escapes write any byte"),
            );
            None
        }
    };
    let expect = get("expect").and_then(|n| {
        let key = field::join(path, "expect");
        let text = payload(n, &key, MAX_EXPECT, diags)?;
        if text.contains('\0') {
            diags.push(
                Diagnostic::new(&n.loc, key, "`expect` cannot hold a NUL byte")
                    .hint("expect the part of the reply before its first NUL byte, or leave `expect` out to accept any reply"),
            );
            return None;
        }
        Some(text)
    });
    if diags.len() > before {
        return None;
    }
    Some((send?, expect))
}

fn payload(node: &Node, path: &str, max: usize, diags: &mut Diagnostics) -> Option<String> {
    let text = field::string(node, path, diags)?;
    if text.is_empty() || text.len() > max {
        diags.push(
            Diagnostic::new(
                &node.loc,
                path,
                format!("expected 1 to {max} bytes, found {}", text.len()),
            )
            .hint("write the bytes as a YAML string; \"\\x00\"-style escapes in double quotes write any byte"),
        );
        return None;
    }
    Some(text)
}
