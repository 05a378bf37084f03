//! What carries UDP. Community HAProxy has no UDP proxying, so UDP backends go to nginx's
//! `stream` module (default) or to keepalived's LVS `virtual_server` blocks.

use serde::Serialize;

use std::{
    collections::{HashMap, hash_map::Entry},
    net::IpAddr,
};

use crate::{
    source::VarMap,
    source::field,
    source::{Diagnostic, Diagnostics, Node},
    spec::backend::Backend,
    spec::keepalived::{self, Keepalived},
    spec::keepalived_text::{self, Place, Shown},
    spec::managed_path,
    spec::reload::{self, Reload},
    spec::service::Service,
    spec::udp_health_check::UdpHealthCheck,
};

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "engine", rename_all = "lowercase")]
pub enum UdpEngine {
    Nginx {
        config_path: String,
        reload: Reload,
        /// `nginx_resolver`: the DNS servers nginx asks for the UDP servers given by name,
        /// each as nginx writes it (`10.0.0.53`, `[fd00::53]`).
        resolver: Vec<String>,
        /// `nginx_pid_file`: where nginx's master writes its pid (the `pid` directive of its
        /// nginx.conf; Debian's is `/run/nginx.pid`), for lbctl to see whether nginx runs.
        pid_file: String,
    },
    Lvs,
}

pub const KEYS: &[&str] = &[
    "lbctl_udp_engine",
    managed_path::CONFINE_KEY,
    "nginx_stream_config_path",
    "nginx_reload_method",
    "nginx_reload_command",
    "nginx_resolver",
    "nginx_pid_file",
];

pub fn parse(vars: &VarMap, diags: &mut Diagnostics) -> Option<UdpEngine> {
    let engine = match vars.get("lbctl_udp_engine") {
        Some(n) => field::one_of(
            n,
            "lbctl_udp_engine",
            &["nginx", "lvs"],
            "UDP engine",
            diags,
        )?,
        None => "nginx".to_string(),
    };
    if engine == "lvs" {
        return Some(UdpEngine::Lvs);
    }
    let config_path = managed_path::parse(
        vars,
        "nginx_stream_config_path",
        "/etc/nginx/lbctl-stream.conf",
        Service::Nginx,
        diags,
    )?;
    let reload = reload::parse(vars, "nginx", None, diags)?;
    let resolver = match vars.get("nginx_resolver") {
        Some(n) => resolver(n, diags)?,
        None => Vec::new(),
    };
    let pid_file = match vars.get("nginx_pid_file") {
        Some(n) => field::abs_path(n, "nginx_pid_file", diags)?,
        None => "/run/nginx.pid".to_string(),
    };
    Some(UdpEngine::Nginx {
        config_path,
        reload,
        resolver,
        pid_file,
    })
}

/// `nginx_resolver`: one IP address or a list of them.
fn resolver(node: &Node, diags: &mut Diagnostics) -> Option<Vec<String>> {
    let before = diags.len();
    let mut out = Vec::new();
    for (path, item) in field::one_or_many(node, "nginx_resolver", diags) {
        let text = item.as_text().unwrap_or_default();
        match text.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => out.push(ip.to_string()),
            Ok(IpAddr::V6(ip)) => out.push(format!("[{ip}]")),
            Err(_) => diags.push(
                Diagnostic::new(
                    &item.loc,
                    path,
                    format!("{} is not an IP address", field::quote(&text)),
                )
                .hint("give the DNS servers the load balancers use by address, e.g. `nginx_resolver: [10.0.0.53]`"),
            ),
        }
    }
    (diags.len() == before).then_some(out)
}

/// Whether the UDP backends can be carried by `engine` on this host: LVS needs a keepalived
/// VIP, and each engine takes only some of the servers' addresses.
pub fn check(
    vars: &VarMap,
    engine: &UdpEngine,
    backends: &[Backend],
    keepalived: Option<&Keepalived>,
    diags: &mut Diagnostics,
) {
    if matches!(engine, UdpEngine::Lvs) && keepalived.is_none() && !backends.is_empty() {
        let n = &vars["lbctl_udp_engine"];
        diags.push(
            Diagnostic::new(
                &n.loc,
                "lbctl_udp_engine",
                "the LVS UDP engine needs a keepalived VIP",
            )
            .hint("set `keepalived_vip`, or use `lbctl_udp_engine: nginx`"),
        );
    }
    check_addresses(backends, engine, keepalived, diags);
    match engine {
        UdpEngine::Lvs => check_lvs_paths(backends, diags),
        UdpEngine::Nginx { .. } => check_upstream_names(backends, diags),
    }
}

/// Each UDP backend is an nginx `upstream udp_<name>`, and nginx compares upstream names
/// ignoring case: `WG` and `wg` would be one upstream defined twice, which nginx refuses.
fn check_upstream_names(backends: &[Backend], diags: &mut Diagnostics) {
    let mut first: HashMap<String, &Backend> = HashMap::with_capacity(backends.len());
    for b in backends {
        match first.entry(b.name.to_ascii_lowercase()) {
            Entry::Vacant(e) => {
                e.insert(b);
            }
            // the same name exactly is already reported as a duplicate
            Entry::Occupied(e) if e.get().name != b.name => {
                diags.push(
                    Diagnostic::new(
                        &b.loc,
                        format!("{}.name", b.path()),
                        format!(
                            "backend `{}` differs from backend `{}` ({}) only in case, but nginx compares upstream names ignoring case: both would be `udp_{}`",
                            b.name,
                            e.get().name,
                            e.get().loc,
                            b.name.to_ascii_lowercase()
                        ),
                    )
                    .hint("give the UDP backends names that differ in more than case"),
                );
            }
            Entry::Occupied(_) => {}
        }
    }
}

/// LVS checks a server by HTTP from keepalived.conf, where the path is a bare word: keepalived
/// would cut it at `!` or `#` and replace `$NAME` in it ([`keepalived_text`]), checking
/// another path than the one written.
fn check_lvs_paths(backends: &[Backend], diags: &mut Diagnostics) {
    for b in backends {
        let Some(UdpHealthCheck::Http { http, path_loc, .. }) = &b.udp_health_check else {
            continue;
        };
        if let Some(reason) = keepalived_text::problem(&http.path, Place::Word, Shown::Quoted) {
            diags.push(
                Diagnostic::new(
                    path_loc,
                    format!("{}.health_check.path", b.path()),
                    format!(
                        "{}: {reason} (the LVS engine writes this check into keepalived.conf)",
                        field::quote(&http.path)
                    ),
                )
                .hint("write the path without `!`, `#` and `$` (percent-encode them: %21, %23, %24), or use `lbctl_udp_engine: nginx`, whose checks HAProxy makes"),
            );
        }
    }
}

/// What each UDP engine can do with a server's address. LVS (kernel IPVS) forwards to an IP
/// address of the VIP's family, never a name. nginx resolves the names of an `upstream` once,
/// when it starts, and refuses its whole configuration if one does not resolve; lbctl reaches a
/// server given by name through a relay that resolves it per session instead (as HAProxy's
/// `init-addr` keeps TCP alive), and that relay needs to know which DNS server to ask.
fn check_addresses(
    backends: &[Backend],
    engine: &UdpEngine,
    keepalived: Option<&Keepalived>,
    diags: &mut Diagnostics,
) {
    // (the key is written out only for a server that has a problem)
    let servers = backends
        .iter()
        .flat_map(|b| b.servers.iter().enumerate().map(move |(j, s)| (b, j, s)));
    let key = |b: &Backend, j: usize| format!("{}.servers[{j}].address", b.path());
    match engine {
        UdpEngine::Lvs => {
            let Some(vip) = keepalived.and_then(|k| k.vips.first()) else {
                return;
            };
            let v6 = keepalived::is_ipv6(vip);
            // keepalived refuses a virtual server that lists one real server twice.
            for b in backends {
                if b.servers.iter().all(|s| s.weight == Some(0)) {
                    diags.push(
                        Diagnostic::new(
                            &b.loc,
                            format!("{}.servers", b.path()),
                            format!("every server of `{}` has weight 0: keepalived refuses an LVS service that can take no connection", b.name),
                        )
                        .hint("give at least one server a weight from 1 to 256"),
                    );
                }
                let mut seen = std::collections::HashSet::new();
                for (j, s) in b.servers.iter().enumerate() {
                    if !seen.insert((s.address.as_str(), s.port)) {
                        diags.push(
                            Diagnostic::new(
                                &s.address_loc,
                                format!("{}.servers[{j}].address", b.path()),
                                format!("{}:{} is already a server of this backend: LVS keeps one real server per address and port", s.address, s.port),
                            )
                            .hint("list each worker's address and port once per UDP backend"),
                        );
                    }
                }
            }
            for (b, j, s) in servers {
                let problem = match s.address.parse::<std::net::IpAddr>() {
                    Err(_) => format!(
                        "`{}` is a DNS name, but LVS forwards to IP addresses only",
                        s.address
                    ),
                    Ok(ip) if ip.is_ipv6() != v6 => format!(
                        "{} is not of the VIP's address family ({vip}): LVS forwards within one family",
                        s.address
                    ),
                    Ok(_) => continue,
                };
                diags.push(
                    Diagnostic::new(&s.address_loc, key(b, j), problem)
                        .hint("give the worker's IP address, of the VIP's family, or use `lbctl_udp_engine: nginx`"),
                );
            }
        }
        UdpEngine::Nginx { resolver, .. } if resolver.is_empty() => {
            let mut named = servers.filter(|(_, _, s)| s.relay.is_some());
            if let Some((b, j, s)) = named.next() {
                let more = named.count();
                let others = match more {
                    0 => String::new(),
                    n => format!(
                        " (and {n} more UDP server{} given by name)",
                        if n == 1 { "" } else { "s" }
                    ),
                };
                diags.push(
                    Diagnostic::new(
                        &s.address_loc,
                        key(b, j),
                        format!(
                            "`{}` is a DNS name{others}: nginx would refuse its whole configuration whenever one name does not resolve, so lbctl has nginx resolve it for each session, which needs `nginx_resolver`",
                            s.address
                        ),
                    )
                    .hint("set `nginx_resolver` to the DNS server(s) the load balancers use, e.g. `nginx_resolver: [10.0.0.53]`, or give the worker's IP address"),
                );
            }
        }
        UdpEngine::Nginx { .. } => {}
    }
}
