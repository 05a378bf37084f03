//! Everything lbctl will put on one load balancer, typed and validated: the product of the
//! inventory and vars, and the only input rendering needs.

use std::{collections::HashMap, sync::Arc};

use serde::Serialize;

use crate::{
    input::{HostScope, Keyring},
    source::Loc,
    source::VarMap,
    source::field,
    source::{Diagnostic, Diagnostics},
    spec::admin_record,
    spec::backend::{Backend, ListCache, Sticky},
    spec::connection::{self, Connection},
    spec::daemon_control::{self, DaemonControl},
    spec::haproxy::{self, Haproxy},
    spec::http_backend::{self, HttpBackend},
    spec::http_frontend::{self, HttpFrontend},
    spec::keepalived::{self, Keepalived},
    spec::listeners,
    spec::managed_path::{self, Managed, Owner},
    spec::peers::{self, Peers},
    spec::protocol::Protocol,
    spec::service::Service,
    spec::sni::{self, SniFrontend},
    spec::udp_engine::{self, UdpEngine},
    spec::udp_health::{self, UdpHealth},
    spec::udp_health_check::UdpHealthCheck,
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
    /// The UDP health watcher, when nginx carries UDP services.
    pub udp_health: Option<UdpHealth>,
    pub keepalived: Option<Keepalived>,
    /// Set by the fleet when this host has a stick table to share.
    pub peers: Option<Peers>,
    /// How `failover-test --lb` stops and starts this host's daemons.
    pub daemons: DaemonControl,
    /// lbctl's record of the admin state (drain, maint, weights) it set on this host.
    pub admin_record: String,
    /// The host's variables as Ansible's templates see them, for users' own templates
    /// written against Ansible's names.
    #[serde(skip)]
    pub scope: Arc<HostScope>,
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
        let at = |key: &'static str| self.scope.vars().get(key).map(|n| n.loc);
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
        if let Some(w) = &self.udp_health {
            let dir = at("lbctl_udp_health_dir");
            files.push(Managed {
                owner: Service::Nginx.into(),
                key: "lbctl_udp_health_dir",
                loc: dir,
                path: &w.source_path,
            });
            files.push(Managed {
                owner: Service::UdpHealth.into(),
                key: "lbctl_udp_health_dir",
                loc: dir,
                path: &w.script_path,
            });
            files.push(Managed {
                owner: Service::UdpHealth.into(),
                key: "lbctl_udp_health_dir",
                loc: dir,
                path: &w.applied_path,
            });
            if let Some(unit) = &w.unit_path {
                files.push(Managed {
                    owner: Service::UdpHealthUnit.into(),
                    key: "lbctl_udp_health_reload_method",
                    loc: at("lbctl_udp_health_reload_method"),
                    path: unit,
                });
            }
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

/// The settings that hold secrets: plans hide their values, and no error shows them.
pub const SECRET_SETTINGS: &[&str] = &["haproxy_stats_password", "keepalived_auth_pass"];

/// Whether lbctl reads the variable `name` (so it is evaluated before validation).
pub fn reads(name: &str) -> bool {
    OWNED_PREFIXES.iter().any(|p| name.starts_with(p)) || connection::KEYS.contains(&name)
}

/// A host's spec from the variables lbctl reads (evaluated: [`reads`]) and its scope;
/// `declared` is where the inventory names the host.
pub fn parse(
    name: &str,
    declared: Option<Loc>,
    vars: &VarMap,
    scope: &Arc<HostScope>,
    cache: &mut ListCache,
    diags: &mut Diagnostics,
) -> Option<HostSpec> {
    let before = diags.len();
    check_variable_names(vars, diags);
    managed_path::check_confine_key(vars, diags);
    let connection = connection::parse(name, declared, vars, diags);
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
    let udp_health = match (&udp_engine, &haproxy) {
        (
            Some(UdpEngine::Nginx {
                config_path,
                reload,
                pid_file,
                ..
            }),
            Some(h),
        ) if !udp_backends.is_empty() => {
            let nginx = (reload, pid_file.as_str());
            udp_health::parse(vars, config_path, nginx, &h.runtime_socket, diags).map(|mut w| {
                w.external_check = udp_backends
                    .iter()
                    .any(|b| matches!(b.udp_health_check, Some(UdpHealthCheck::Udp { .. })));
                w.udp_deadline_ms = h.timeout_connect.ms;
                w
            })
        }
        _ => None,
    };
    if let Some(engine) = &udp_engine {
        udp_engine::check(vars, engine, &udp_backends, keepalived.as_ref(), diags);
    }
    check_backend_names(&tcp_backends, &udp_backends, &http_backends, diags);
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
        udp_health,
        keepalived,
        peers: None,
        daemons: daemons?,
        admin_record: admin_record?,
        scope: Arc::clone(scope),
        keyring: Arc::default(),
        declared,
    };
    listeners::check(&spec, diags);
    peers::check_table_names(&spec, diags);
    managed_path::check_distinct(&spec.managed_files(), diags);
    (diags.len() == before).then_some(spec)
}

/// Every backend needs its own name, across TCP, UDP and HTTP: each becomes a `backend` (or an
/// nginx `upstream`) of that name.
fn check_backend_names(
    tcp_backends: &[Backend],
    udp_backends: &[Backend],
    http_backends: &[HttpBackend],
    diags: &mut Diagnostics,
) {
    let tcp_names: HashMap<&str, &Backend> =
        tcp_backends.iter().map(|b| (b.name.as_str(), b)).collect();
    let mut http_names: HashMap<&str, &HttpBackend> = HashMap::new();
    for b in http_backends {
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
    for b in udp_backends {
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
}

fn check_variable_names(vars: &VarMap, diags: &mut Diagnostics) {
    let known: Vec<&str> = haproxy::KEYS
        .iter()
        .chain(keepalived::KEYS)
        .chain(udp_engine::KEYS)
        .chain(daemon_control::KEYS)
        .chain(admin_record::KEYS)
        .chain(udp_health::KEYS)
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
