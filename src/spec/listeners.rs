//! The ports a load balancer listens on: two services may not take the same address, port and
//! protocol (TLS passthrough routed by server name excepted).

use std::collections::HashMap;

use crate::{
    source::{Diagnostic, Diagnostics, Loc},
    spec::host::HostSpec,
    spec::protocol::Protocol,
};

/// What listens, described only when it clashes with another.
enum What<'a> {
    Stats,
    Peers,
    Backend(&'a str),
    HttpFrontend(&'a str),
}

impl std::fmt::Display for What<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            What::Stats => write!(f, "the stats page (haproxy_stats_port)"),
            What::Peers => write!(f, "the stick tables' peers (haproxy_peers_port)"),
            What::Backend(name) => write!(f, "backend `{name}`"),
            What::HttpFrontend(name) => write!(f, "HTTP frontend `{name}`"),
        }
    }
}

struct Listener<'a> {
    what: What<'a>,
    protocol: Protocol,
    bind: &'a str,
    port: u16,
    /// Where the port is set; none for lbctl's default.
    loc: Option<Loc>,
    /// The variable that sets it: `haproxy_tcp_backends[2].port`.
    key: String,
    /// TLS passthrough routed by server name: may share its address and port with others.
    sni: bool,
}

/// Two services may not listen on the same address, port and protocol of one host.
pub fn check(spec: &HostSpec, diags: &mut Diagnostics) {
    let mut listeners = vec![Listener {
        what: What::Stats,
        protocol: Protocol::Tcp,
        bind: &spec.haproxy.stats_bind,
        port: spec.haproxy.stats_port,
        loc: spec.haproxy.stats_port_loc,
        key: "haproxy_stats_port".into(),
        sni: false,
    }];
    // before the frontends, so a frontend on its port is the one reported, at its own line
    if spec.has_stick_tables() {
        listeners.push(Listener {
            what: What::Peers,
            protocol: Protocol::Tcp,
            bind: &spec.connection.address,
            port: spec.haproxy.peers_port,
            loc: spec.haproxy.peers_port_loc,
            key: "haproxy_peers_port".into(),
            sni: false,
        });
    }
    for b in spec.tcp_backends.iter().chain(spec.udp_backends.iter()) {
        listeners.push(Listener {
            what: What::Backend(&b.name),
            protocol: b.protocol,
            bind: &b.bind,
            port: b.port,
            loc: Some(b.port_loc),
            key: format!("{}[{}].port", b.protocol.var_name(), b.index),
            sni: b.sni_routed(),
        });
    }
    for f in &spec.http_frontends {
        let ports = [
            (f.port, &f.port_loc, "port"),
            (f.tls_port, &f.tls_port_loc, "tls_port"),
        ];
        for (port, loc, name) in ports {
            if let (Some(port), Some(loc)) = (port, loc) {
                listeners.push(Listener {
                    what: What::HttpFrontend(&f.name),
                    protocol: Protocol::Tcp,
                    bind: &f.bind,
                    port,
                    loc: Some(*loc),
                    key: format!("haproxy_http_frontends[{}].{name}", f.index),
                    sni: false,
                });
            }
        }
    }
    let mut by_port: HashMap<(Protocol, u16), Vec<usize>> = HashMap::with_capacity(listeners.len());
    for (i, l) in listeners.iter().enumerate() {
        let same_port = by_port.entry((l.protocol, l.port)).or_default();
        let clash = same_port.iter().map(|&j| &listeners[j]).find(|o| {
            (o.bind == l.bind || o.bind == "*" || l.bind == "*")
                && !(o.sni && l.sni && o.bind == l.bind)
        });
        same_port.push(i);
        if let (Some(first), Some(loc)) = (clash, &l.loc) {
            diags.push(
                Diagnostic::new(
                    loc,
                    &l.key,
                    format!(
                        "{} listens on {}/{} on host `{}`, already taken by {} ({})",
                        l.what,
                        l.port,
                        match l.protocol {
                            Protocol::Tcp => "tcp",
                            Protocol::Udp => "udp",
                        },
                        spec.name,
                        first.what,
                        first
                            .loc
                            .as_ref()
                            .map_or("lbctl's default".into(), ToString::to_string)
                    ),
                )
                .hint(if l.sni || first.sni {
                    "backends share a port only when all of them are routed by TLS server name: give each `sni:` names, or another port"
                } else {
                    "give one of them another port, or bind them to different addresses"
                }),
            );
        }
    }
}
