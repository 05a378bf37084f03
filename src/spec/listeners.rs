//! The ports a load balancer listens on: two services may not take the same address, port and
//! protocol (TLS passthrough routed by server name excepted).
//!
//! Addresses are compared as the kernel sees them, not as written: `FD00:0::1` is `fd00::1`,
//! and `*`, `0.0.0.0` and `::` each take every address. `*` and `0.0.0.0` are IPv4's only, but
//! Linux's `::` takes IPv4 too unless bound IPv6-only, so lbctl reads all three alike, as
//! every address of both families: the conservative reading, which never lets one service
//! shadow another or split its connections with it (SO_REUSEPORT).

use std::{collections::HashMap, net::IpAddr};

use crate::{
    source::{Diagnostic, Diagnostics, Loc},
    spec::host::HostSpec,
    spec::protocol::Protocol,
    spec::udp_engine::UdpEngine,
};

/// The loopback range lbctl takes its relays' addresses from (`backend.rs`, `assign_relays`).
const RELAY_RANGE: &str = "127.77.0.0/16";

/// What listens, described only when it clashes with another.
enum What<'a> {
    Stats,
    Peers,
    Backend(&'a str),
    HttpFrontend(&'a str),
    /// The relay nginx runs for a UDP server given by DNS name: (backend, server address).
    Relay(&'a str, &'a str),
}

/// Which addresses a listener takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Addr<'a> {
    Every,
    Ip(IpAddr),
    /// A host name (only the peers' address may be one): equal to itself, ignoring case.
    Name(&'a str),
}

impl<'a> Addr<'a> {
    fn of(bind: &'a str) -> Self {
        match bind.parse::<IpAddr>() {
            Ok(ip) if ip.to_canonical().is_unspecified() => Addr::Every,
            Ok(ip) => Addr::Ip(ip.to_canonical()),
            Err(_) if bind == "*" => Addr::Every,
            Err(_) => Addr::Name(bind),
        }
    }

    fn overlaps(self, other: Addr) -> bool {
        match (self, other) {
            (Addr::Every, _) | (_, Addr::Every) => true,
            (Addr::Ip(a), Addr::Ip(b)) => a == b,
            (Addr::Name(a), Addr::Name(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        }
    }
}

struct Listener<'a> {
    what: What<'a>,
    protocol: Protocol,
    /// As written.
    bind: &'a str,
    addr: Addr<'a>,
    port: u16,
    /// Where the port is set; none for lbctl's default or a relay.
    loc: Option<Loc>,
    /// The variable that sets it: `haproxy_tcp_backends[2].port`.
    key: String,
    /// TLS passthrough routed by server name: may share its address and port with others.
    sni: bool,
}

impl Listener<'_> {
    fn new<'a>(what: What<'a>, protocol: Protocol, bind: &'a str, port: u16) -> Listener<'a> {
        Listener {
            what,
            protocol,
            bind,
            addr: Addr::of(bind),
            port,
            loc: None,
            key: String::new(),
            sni: false,
        }
    }

    fn relay(&self) -> bool {
        matches!(self.what, What::Relay(..))
    }

    /// Whether `self` and `other` cannot both listen. SNI-routed backends on one address as
    /// written share one frontend. A relay has an address of its own: nginx serves it from
    /// its socket on every address when there is one, as it does any address it listens on.
    fn clashes(&self, other: &Listener) -> bool {
        self.addr.overlaps(other.addr)
            && !(self.sni && other.sni && self.bind == other.bind)
            && !((self.relay() || other.relay()) && self.addr != other.addr)
    }

    /// Who it is, as the other party of a clash.
    fn described(&self) -> String {
        match (&self.what, &self.loc) {
            (What::Stats, None) => "the stats page's default port (haproxy_stats_port)".into(),
            (What::Peers, None) => "the default peers port (haproxy_peers_port)".into(),
            (What::Relay(backend, server), _) => format!(
                "the relay nginx runs for UDP server `{server}` of backend `{backend}` (lbctl gives these relays addresses in {RELAY_RANGE})"
            ),
            (what, Some(loc)) => format!("{what} ({loc})"),
            (what, None) => format!("{what} (lbctl's default)"),
        }
    }
}

impl std::fmt::Display for What<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            What::Stats => write!(f, "the stats page (haproxy_stats_port)"),
            What::Peers => write!(f, "the stick tables' peers (haproxy_peers_port)"),
            What::Backend(name) => write!(f, "backend `{name}`"),
            What::HttpFrontend(name) => write!(f, "HTTP frontend `{name}`"),
            What::Relay(backend, server) => {
                write!(
                    f,
                    "the relay for UDP server `{server}` of backend `{backend}`"
                )
            }
        }
    }
}

/// Every address, port and protocol this host listens on.
fn listeners(spec: &HostSpec) -> Vec<Listener<'_>> {
    let mut listeners = vec![Listener {
        loc: spec.haproxy.stats_port_loc,
        key: "haproxy_stats_port".into(),
        ..Listener::new(
            What::Stats,
            Protocol::Tcp,
            &spec.haproxy.stats_bind,
            spec.haproxy.stats_port,
        )
    }];
    // before the frontends, so a frontend on its port is the one reported, at its own line
    if spec.has_stick_tables() {
        listeners.push(Listener {
            loc: spec.haproxy.peers_port_loc,
            key: "haproxy_peers_port".into(),
            ..Listener::new(
                What::Peers,
                Protocol::Tcp,
                &spec.connection.address,
                spec.haproxy.peers_port,
            )
        });
    }
    for b in spec.tcp_backends.iter().chain(spec.udp_backends.iter()) {
        listeners.push(Listener {
            loc: Some(b.port_loc),
            key: format!("{}[{}].port", b.protocol.var_name(), b.index),
            sni: b.sni_routed(),
            ..Listener::new(What::Backend(&b.name), b.protocol, &b.bind, b.port)
        });
    }
    // LVS takes no server by name, so only nginx has relays
    if matches!(spec.udp_engine, UdpEngine::Nginx { .. }) {
        for b in spec.udp_backends.iter() {
            for s in &b.servers {
                if let Some(relay) = &s.relay {
                    listeners.push(Listener::new(
                        What::Relay(&b.name, &s.address),
                        Protocol::Udp,
                        relay,
                        s.port,
                    ));
                }
            }
        }
    }
    for f in &spec.http_frontends {
        let ports = [
            (f.port, &f.port_loc, "port"),
            (f.tls_port, &f.tls_port_loc, "tls_port"),
        ];
        for (port, loc, name) in ports {
            if let (Some(port), Some(loc)) = (port, loc) {
                listeners.push(Listener {
                    loc: Some(*loc),
                    key: format!("haproxy_http_frontends[{}].{name}", f.index),
                    ..Listener::new(What::HttpFrontend(&f.name), Protocol::Tcp, &f.bind, port)
                });
            }
        }
    }
    listeners
}

/// Two services may not listen on the same address, port and protocol of one host. A clash is
/// reported at the later of the two that the user set (a default or a relay has no line).
pub fn check(spec: &HostSpec, diags: &mut Diagnostics) {
    let listeners = listeners(spec);
    let mut by_port: HashMap<(Protocol, u16), Vec<usize>> = HashMap::with_capacity(listeners.len());
    for (i, l) in listeners.iter().enumerate() {
        let same_port = by_port.entry((l.protocol, l.port)).or_default();
        let clash = same_port
            .iter()
            .map(|&j| &listeners[j])
            .find(|o| l.clashes(o));
        same_port.push(i);
        let Some(first) = clash else {
            continue;
        };
        let (at, other, loc) = match (&l.loc, &first.loc) {
            (Some(loc), _) => (l, first, loc),
            (None, Some(loc)) => (first, l, loc),
            (None, None) => continue,
        };
        diags.push(
            Diagnostic::new(
                loc,
                &at.key,
                format!(
                    "{} listens on {}/{} on host `{}`, already taken by {}{}",
                    at.what,
                    at.port,
                    match at.protocol {
                        Protocol::Tcp => "tcp",
                        Protocol::Udp => "udp",
                    },
                    spec.name,
                    other.described(),
                    overlap(at, other),
                ),
            )
            .hint(hint(at, other)),
        );
    }
}

/// Why two addresses the user wrote differently are one, or overlap; nothing when written
/// alike, or when lbctl chose one of them.
fn overlap(a: &Listener, b: &Listener) -> String {
    if a.bind == b.bind || a.loc.is_none() || b.loc.is_none() {
        return String::new();
    }
    let (a, b) = (a.bind, b.bind);
    match (Addr::of(a), Addr::of(b)) {
        (Addr::Every, Addr::Every) => format!(
            ": `{a}` and `{b}` both take every address (lbctl reads `*`, `0.0.0.0` and `::` alike: Linux's `::` takes IPv4 too unless bound IPv6-only)"
        ),
        (Addr::Every, _) | (_, Addr::Every) => {
            let every = if Addr::of(a) == Addr::Every { a } else { b };
            format!(
                ": `{every}` takes every address, {} too (lbctl reads `*`, `0.0.0.0` and `::` alike: Linux's `::` takes IPv4 too unless bound IPv6-only)",
                if every == a { b } else { a }
            )
        }
        _ => format!(": `{a}` and `{b}` are one address"),
    }
}

fn hint(at: &Listener, other: &Listener) -> String {
    if other.relay() {
        format!(
            "lbctl keeps {RELAY_RANGE} for the relays of UDP servers given by DNS name: bind this backend to another address, or give it another port"
        )
    } else if at.sni && other.sni {
        format!(
            "backends routed by TLS server name share a port when they bind the same address written the same way: write `{}` in both, or give one another port",
            other.bind
        )
    } else if at.sni || other.sni {
        "backends share a port only when all of them are routed by TLS server name: give each `sni:` names, or another port".into()
    } else if other.loc.is_none() {
        format!(
            "give {} another port, or set `{}` to a free one",
            at.what, other.key
        )
    } else {
        "give one of them another port, or bind them to different addresses".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_compared_as_the_kernel_reads_them() {
        let overlap = |a: &str, b: &str| Addr::of(a).overlaps(Addr::of(b));
        for (a, b) in [
            ("fd00::1", "FD00:0::1"),
            ("0.0.0.0", "192.168.1.100"),
            ("::", "0.0.0.0"),
            ("::", "10.0.0.1"),
            ("*", "fd00::1"),
            ("::ffff:10.0.0.1", "10.0.0.1"),
            ("lb1.example.com", "LB1.example.com"),
        ] {
            assert!(overlap(a, b), "{a} {b}");
            assert!(overlap(b, a), "{b} {a}");
        }
        for (a, b) in [
            ("10.0.0.1", "10.0.0.2"),
            ("fd00::1", "fd00::2"),
            ("lb1", "10.0.0.1"),
        ] {
            assert!(!overlap(a, b), "{a} {b}");
        }
    }
}
