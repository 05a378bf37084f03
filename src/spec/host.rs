//! Everything lbctl will put on one load balancer, typed and validated: the product of the
//! inventory and vars, and the only input rendering needs.

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use serde::Serialize;

use crate::{
    input::Keyring,
    source::VarMap,
    source::field,
    source::{Diagnostic, Diagnostics},
    source::{Loc, Node},
    spec::admin_record,
    spec::backend::{Backend, ListCache, Sticky},
    spec::connection::{Connection, HostKeyPolicy},
    spec::daemon_control::{self, DaemonControl},
    spec::haproxy::{self, Haproxy},
    spec::http_backend::{self, HttpBackend},
    spec::http_frontend::{self, HttpFrontend},
    spec::keepalived::{self, Keepalived},
    spec::managed_path::{self, Managed, Owner},
    spec::peers::Peers,
    spec::protocol::Protocol,
    spec::service::Service,
    spec::sni::{self, SniFrontend},
    spec::udp_engine::{self, UdpEngine},
};

#[derive(Debug, Clone, Serialize)]
pub struct HostSpec {
    pub name: String,
    pub connection: Connection,
    pub haproxy: Haproxy,
    pub tcp_backends: Arc<Vec<Backend>>,
    pub udp_backends: Arc<Vec<Backend>>,
    /// Listeners shared by the TCP backends routed by TLS server name (`sni`).
    pub sni_frontends: Vec<SniFrontend>,
    pub http_frontends: Vec<HttpFrontend>,
    pub http_backends: Vec<HttpBackend>,
    pub udp_engine: UdpEngine,
    pub keepalived: Option<Keepalived>,
    /// Set by the fleet when this host has a stick table to share.
    pub peers: Option<Peers>,
    /// How `failover-test --lb` stops and starts this host's daemons.
    pub daemons: DaemonControl,
    /// lbctl's record of the admin state (drain, maint, weights) it set on this host.
    pub admin_record: String,
    /// The host's raw variables, for users' own templates written against Ansible's names.
    #[serde(skip)]
    pub vars: VarMap,
    /// The run's vault passwords: a template reading an inline vault decrypts it with them.
    #[serde(skip)]
    pub keyring: Arc<Keyring>,
    /// Where the inventory declares the host, for problems with the host as a whole.
    #[serde(skip)]
    pub declared: Option<Loc>,
}

impl HostSpec {
    /// Every file lbctl writes on this host, with the variable that named it: all of them go
    /// through [`managed_path`]'s rules.
    pub fn managed_files(&self) -> Vec<Managed<'_>> {
        let at = |key: &'static str| self.vars.get(key).map(|n| n.loc);
        let mut files = vec![
            Managed {
                owner: Service::Haproxy.into(),
                key: "haproxy_config_path",
                loc: at("haproxy_config_path"),
                path: &self.haproxy.config_path,
            },
            Managed {
                owner: Service::Haproxy.into(),
                key: "haproxy_server_state_file",
                loc: at("haproxy_server_state_file"),
                path: &self.haproxy.server_state_file,
            },
            Managed {
                owner: Owner::Lbctl,
                key: "lbctl_admin_state_file",
                loc: at("lbctl_admin_state_file"),
                path: &self.admin_record,
            },
        ];
        if let Some(k) = &self.keepalived {
            files.push(Managed {
                owner: Service::Keepalived.into(),
                key: "keepalived_config_path",
                loc: at("keepalived_config_path"),
                path: &k.config_path,
            });
        }
        if let UdpEngine::Nginx { config_path, .. } = &self.udp_engine
            && !self.udp_backends.is_empty()
        {
            files.push(Managed {
                owner: Service::Nginx.into(),
                key: "nginx_stream_config_path",
                loc: at("nginx_stream_config_path"),
                path: config_path,
            });
        }
        files
    }

    /// Values that must never appear in a plan, a diff or a log: the passwords lbctl knows,
    /// and every value decrypted from a vault (at least 4 characters: shorter ones would hide
    /// ordinary words of the configuration).
    pub fn secrets(&self) -> Vec<String> {
        let mut out: Vec<String> = self.haproxy.stats_password.iter().cloned().collect();
        if let Some(k) = &self.keepalived {
            out.extend(k.auth_pass.clone());
        }
        out.extend(
            self.keyring
                .revealed()
                .into_iter()
                .filter(|s| s.chars().count() >= 4),
        );
        out
    }

    /// Whether HAProxy keeps a stick table here (sticky source, a rate limit): the tables the
    /// load balancers share through `peers`.
    pub fn has_stick_tables(&self) -> bool {
        self.tcp_backends
            .iter()
            .any(|b| b.sticky == Some(Sticky::Source))
            || self
                .http_backends
                .iter()
                .any(|b| b.sticky == Some(Sticky::Source))
            || self.http_frontends.iter().any(|f| f.rate_limit.is_some())
    }

    /// The TLS certificates HAProxy loads on this host, each with the key and the place that
    /// configured it. They live on the host, not in lbctl's input, so only the host can say
    /// whether they exist.
    pub fn certificates(&self) -> impl Iterator<Item = (&str, &str, &Loc)> {
        self.http_frontends.iter().flat_map(|f| {
            f.tls_certs
                .iter()
                .zip(&f.tls_cert_sources)
                .map(|(path, (key, loc))| (path.as_str(), key.as_str(), loc))
        })
    }
}

/// Prefixes of variables lbctl owns: a misspelt one is reported instead of silently ignored.
const OWNED_PREFIXES: &[&str] = &["haproxy_", "keepalived_", "nginx_", "lbctl_"];

pub fn parse(
    name: &str,
    vars: &VarMap,
    cache: &mut ListCache,
    diags: &mut Diagnostics,
) -> Option<HostSpec> {
    let before = diags.len();
    check_variable_names(vars, diags);
    managed_path::check_confine_key(vars, diags);
    let connection = parse_connection(name, vars, diags);
    let haproxy = haproxy::parse(vars, diags);
    let bind = haproxy
        .as_ref()
        .map_or("*", |h| h.bind_address.as_str())
        .to_string();
    let mut list = |protocol: Protocol, diags: &mut Diagnostics| match vars.get(protocol.var_name())
    {
        Some(n) => cache.parse(n, protocol, &bind, diags),
        None => Arc::default(),
    };
    let lists_before = diags.len();
    let tcp_backends = list(Protocol::Tcp, diags);
    let udp_backends = list(Protocol::Udp, diags);
    let mut http_frontends = vars
        .get(http_frontend::VAR)
        .map(|n| http_frontend::parse_list(n, &bind, diags))
        .unwrap_or_default();
    let http_backends = vars
        .get(http_backend::VAR)
        .map(|n| http_backend::parse_list(n, diags))
        .unwrap_or_default();
    // Routing is checked across entries. An entry with an error of its own is left out of its
    // list, so checking the rest would report problems that are not there (a missing default,
    // an unknown frontend): those checks wait until every entry reads cleanly.
    let mut sni_frontends = Vec::new();
    if diags.len() == lists_before {
        sni_frontends = sni::frontends(&tcp_backends, diags);
        http_backend::attach(&mut http_frontends, &http_backends, diags);
    }
    let udp_engine = udp_engine::parse(vars, diags);
    let pid_file = haproxy
        .as_ref()
        .map_or("/run/haproxy.pid", |h| h.pid_file.as_str());
    let keepalived = keepalived::parse(vars, pid_file, diags);
    let daemons = daemon_control::parse(vars, diags);
    let admin_record = admin_record::parse(vars, diags);
    if matches!(udp_engine, Some(UdpEngine::Lvs))
        && keepalived.is_none()
        && !udp_backends.is_empty()
    {
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
    if let Some(engine) = &udp_engine {
        check_udp_addresses(&udp_backends, engine, keepalived.as_ref(), diags);
    }
    let tcp_names: HashMap<&str, &Backend> =
        tcp_backends.iter().map(|b| (b.name.as_str(), b)).collect();
    let mut http_names: HashMap<&str, &HttpBackend> = HashMap::new();
    for b in &http_backends {
        let other = tcp_names
            .get(b.name.as_str())
            .map(|o| (o.loc.to_string(), "TCP"))
            .or_else(|| {
                udp_backends
                    .iter()
                    .find(|o| o.name == b.name)
                    .map(|o| (o.loc.to_string(), "UDP"))
            })
            .or_else(|| {
                http_names
                    .get(b.name.as_str())
                    .map(|o| (o.loc.to_string(), "HTTP"))
            });
        if let Some((loc, kind)) = other {
            diags.push(
                Diagnostic::new(
                    &b.loc,
                    format!("{}[{}].name", http_backend::VAR, b.index),
                    format!(
                        "backend name `{}` is already used by a {kind} backend",
                        b.name
                    ),
                )
                .hint(format!(
                    "the other one is at {loc}; every backend needs its own name"
                )),
            );
        }
        http_names.entry(&b.name).or_insert(b);
    }
    for b in udp_backends.iter() {
        if let Some(first) = tcp_names.get(b.name.as_str()) {
            diags.push(
                Diagnostic::new(
                    &b.loc,
                    "haproxy_udp_backends.name",
                    format!(
                        "backend name `{}` is used by a TCP and a UDP backend",
                        b.name
                    ),
                )
                .hint(format!(
                    "the other one is at {}; give them different names",
                    first.loc
                )),
            );
        }
    }
    if diags.len() > before {
        return None;
    }
    let spec = HostSpec {
        name: name.to_string(),
        connection: connection?,
        haproxy: haproxy?,
        tcp_backends,
        udp_backends,
        sni_frontends,
        http_frontends,
        http_backends,
        udp_engine: udp_engine?,
        keepalived,
        peers: None,
        daemons: daemons?,
        admin_record: admin_record?,
        vars: vars.clone(),
        keyring: Arc::default(),
        declared: None,
    };
    check_listeners(&spec, diags);
    managed_path::check_distinct(&spec.managed_files(), diags);
    (diags.len() == before).then_some(spec)
}

/// What each UDP engine can do with a server's address. LVS (kernel IPVS) forwards to an IP
/// address of the VIP's family, never a name. nginx resolves the names of an `upstream` once,
/// when it starts, and refuses its whole configuration if one does not resolve; lbctl reaches a
/// server given by name through a relay that resolves it per session instead (as HAProxy's
/// `init-addr` keeps TCP alive), and that relay needs to know which DNS server to ask.
fn check_udp_addresses(
    backends: &[Backend],
    engine: &UdpEngine,
    keepalived: Option<&Keepalived>,
    diags: &mut Diagnostics,
) {
    let servers = backends.iter().flat_map(|b| {
        b.servers
            .iter()
            .enumerate()
            .map(move |(j, s)| (format!("{}.servers[{j}].address", b.path()), s))
    });
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
            for (key, s) in servers {
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
                    Diagnostic::new(&s.address_loc, key, problem)
                        .hint("give the worker's IP address, of the VIP's family, or use `lbctl_udp_engine: nginx`"),
                );
            }
        }
        UdpEngine::Nginx { resolver, .. } if resolver.is_empty() => {
            let mut named = servers.filter(|(_, s)| s.relay.is_some());
            if let Some((key, s)) = named.next() {
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
                        key,
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

fn check_variable_names(vars: &VarMap, diags: &mut Diagnostics) {
    let known: Vec<&str> = haproxy::KEYS
        .iter()
        .chain(keepalived::KEYS)
        .chain(udp_engine::KEYS)
        .chain(daemon_control::KEYS)
        .chain(admin_record::KEYS)
        .copied()
        .collect();
    for (key, node) in vars {
        if !OWNED_PREFIXES.iter().any(|p| key.starts_with(p))
            || known.contains(&key.as_str())
            || field::template_reads(key)
        {
            continue;
        }
        let d = Diagnostic::new(&node.loc, key, format!("unknown variable `{key}`"));
        match field::suggest(key, known.iter().copied()) {
            Some(s) => diags.push(d.hint(format!("did you mean `{s}`?"))),
            None if key.starts_with("lbctl_") => {
                diags.push(d.hint("see the README for lbctl's variables"))
            }
            // Other names under these prefixes may be the user's own, for their own templates.
            None => {}
        }
    }
}

/// A host's SSH connection from its `ansible_*` variables (load balancers and the other
/// hosts `failover-test` reaches alike).
pub fn parse_connection(name: &str, vars: &VarMap, diags: &mut Diagnostics) -> Option<Connection> {
    let before = diags.len();
    // Each setting under every name Ansible's ssh connection reads it from; when several are
    // set, the last of the list wins, as in Ansible.
    let get = |keys: &[&'static str]| {
        keys.iter()
            .rev()
            .find_map(|k| vars.get(*k).map(|n| (*k, n)))
    };
    let address = match get(&["ansible_host", "ansible_ssh_host"]) {
        Some((k, n)) => field::address(n, k, diags),
        None => Some(name.to_string()),
    };
    let port =
        get(&["ansible_port", "ansible_ssh_port"]).and_then(|(k, n)| field::port(n, k, diags));
    let user =
        get(&["ansible_user", "ansible_ssh_user"]).and_then(|(k, n)| field::word(n, k, diags));
    let private_key = get(&["ansible_private_key_file", "ansible_ssh_private_key_file"])
        .and_then(|(k, n)| field::string(n, k, diags))
        .map(|p| expand_home(&p));
    let become_root = get(&["ansible_become"])
        .and_then(|(k, n)| field::boolean(n, k, diags))
        .unwrap_or(false);
    let host_key_checking = get(&["ansible_host_key_checking", "ansible_ssh_host_key_checking"])
        .and_then(|(k, n)| field::boolean(n, k, diags))
        .unwrap_or(true);
    let mut conn = Connection {
        name: name.to_string(),
        address: address.unwrap_or_default(),
        port,
        user,
        private_key,
        known_hosts: None,
        ssh_config: None,
        become_root,
        strict_host_keys: if host_key_checking {
            HostKeyPolicy::Strict
        } else {
            HostKeyPolicy::AcceptNew
        },
    };
    for key in ["ansible_ssh_args", "ansible_ssh_common_args"] {
        if let Some(n) = vars.get(key) {
            apply_common_args(n, key, &mut conn, diags);
        }
    }
    (diags.len() == before).then_some(conn)
}

/// Takes the parts of `ansible_ssh_args` / `ansible_ssh_common_args` that change how lbctl
/// connects. Compression and connection sharing (`-C`, `-o ControlMaster/ControlPersist/
/// ControlPath`, Ansible's default `ssh_args`) are lbctl's own business and left out.
fn apply_common_args(node: &Node, key: &str, conn: &mut Connection, diags: &mut Diagnostics) {
    let Some(text) = field::string(node, key, diags) else {
        return;
    };
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '\'' || c == '"').to_string())
        .collect();
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        if word == "-C" {
            i += 1;
            continue;
        }
        let (flag, inline) = if word.len() > 2 && (word.starts_with("-o") || word.starts_with("-F"))
        {
            (&word[..2], Some(word[2..].to_string()))
        } else {
            (word.as_str(), None)
        };
        let value = inline.or_else(|| {
            i += 1;
            words.get(i).cloned()
        });
        let Some(value) = value else {
            diags.push(Diagnostic::new(
                &node.loc,
                key,
                format!("`{flag}` needs a value"),
            ));
            return;
        };
        match flag {
            "-F" => conn.ssh_config = Some(expand_home(&value)),
            "-o" => {
                let (opt, v) = value.split_once('=').unwrap_or((&value, ""));
                match opt.to_ascii_lowercase().as_str() {
                    "userknownhostsfile" => conn.known_hosts = Some(expand_home(v)),
                    "controlmaster" | "controlpersist" | "controlpath" => {}
                    "stricthostkeychecking" => {
                        conn.strict_host_keys = match v.to_ascii_lowercase().as_str() {
                            "yes" => HostKeyPolicy::Strict,
                            _ => HostKeyPolicy::AcceptNew,
                        }
                    }
                    _ => diags.push(
                        Diagnostic::new(&node.loc, key, format!("lbctl does not pass `-o {opt}` through"))
                            .hint("put this option in ~/.ssh/config (or a file given with -F), which lbctl's OpenSSH reads"),
                    ),
                }
            }
            other => diags.push(
                Diagnostic::new(&node.loc, key, format!("lbctl does not pass `{other}` through"))
                    .hint("lbctl understands -F and -o UserKnownHostsFile=/-o StrictHostKeyChecking=; put the rest in ~/.ssh/config"),
            ),
        }
        i += 1;
    }
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Two services may not listen on the same address, port and protocol of one host.
fn check_listeners(spec: &HostSpec, diags: &mut Diagnostics) {
    struct Listener<'a> {
        what: String,
        protocol: Protocol,
        bind: &'a str,
        port: u16,
        loc: String,
        diag_loc: Option<Loc>,
        /// TLS passthrough routed by server name: may share its address and port with others.
        sni: bool,
    }
    let mut listeners = vec![Listener {
        what: "the stats page (haproxy_stats_port)".into(),
        protocol: Protocol::Tcp,
        bind: &spec.haproxy.stats_bind,
        port: spec.haproxy.stats_port,
        loc: spec
            .haproxy
            .stats_port_loc
            .as_ref()
            .map_or("lbctl's default".into(), ToString::to_string),
        diag_loc: spec.haproxy.stats_port_loc,
        sni: false,
    }];
    // before the frontends, so a frontend on its port is the one reported, at its own line
    if spec.has_stick_tables() {
        listeners.push(Listener {
            what: "the stick tables' peers (haproxy_peers_port)".into(),
            protocol: Protocol::Tcp,
            bind: &spec.connection.address,
            port: spec.haproxy.peers_port,
            loc: spec
                .haproxy
                .peers_port_loc
                .as_ref()
                .map_or("lbctl's default".into(), ToString::to_string),
            diag_loc: spec.haproxy.peers_port_loc,
            sni: false,
        });
    }
    for b in spec.tcp_backends.iter().chain(spec.udp_backends.iter()) {
        listeners.push(Listener {
            what: format!("backend `{}`", b.name),
            protocol: b.protocol,
            bind: &b.bind,
            port: b.port,
            loc: b.port_loc.to_string(),
            diag_loc: Some(b.port_loc),
            sni: b.sni_routed(),
        });
    }
    for f in &spec.http_frontends {
        for (port, loc) in [(f.port, &f.port_loc), (f.tls_port, &f.tls_port_loc)] {
            if let (Some(port), Some(loc)) = (port, loc) {
                listeners.push(Listener {
                    what: format!("HTTP frontend `{}`", f.name),
                    protocol: Protocol::Tcp,
                    bind: &f.bind,
                    port,
                    loc: loc.to_string(),
                    diag_loc: Some(*loc),
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
        if let (Some(first), Some(loc)) = (clash, &l.diag_loc) {
            diags.push(
                Diagnostic::new(
                    loc,
                    "port",
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
                        first.loc
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
