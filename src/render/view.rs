//! The spec as templates see it: the same values as its serde form (field names, order, types),
//! but backends and servers are read field by field when a template asks. Converting a whole
//! backend list up front cost more memory than the list itself (20,000 backends: ~70 MiB per
//! host) and a fifth of the render time.
//!
//! A [`Part`] of a built-in template sees less: only the fields it reads, so that what it
//! reads of a host is known, and its text can be rendered once for every host with the same.

use std::{
    hash::{Hash, Hasher},
    sync::{Arc, OnceLock},
};

use minijinja::value::{Enumerator, Object, ObjectRepr, Serde, Value};
use serde::Serialize;

use crate::{
    source::field::Duration,
    spec::{Backend, HostSpec, HttpBackend, HttpFrontend, SniFrontend, UdpEngine},
};

/// `lb`: the host's spec, each field converted when a template first reads it (most
/// templates read a few: converting all of them for every host cost a tenth of validating
/// 20,000 load balancers), the two backend lists read field by field.
#[derive(Debug)]
pub struct HostView {
    spec: HostSpec,
    /// Each of `HOST_FIELDS`, once converted.
    fields: [OnceLock<Value>; HOST_FIELDS.len()],
    udp_health_json: OnceLock<Option<String>>,
}

/// `HostSpec`'s serialized fields, in declaration order.
const HOST_FIELDS: [&str; 14] = [
    "name",
    "connection",
    "haproxy",
    "tcp_backends",
    "udp_backends",
    "sni_frontends",
    "http_frontends",
    "http_backends",
    "udp_engine",
    "udp_health",
    "keepalived",
    "peers",
    "daemons",
    "admin_record",
];

impl HostView {
    pub fn new(spec: &HostSpec) -> HostView {
        HostView {
            spec: spec.clone(),
            fields: Default::default(),
            udp_health_json: OnceLock::new(),
        }
    }

    /// The field `key` of the spec as templates see it.
    fn field(&self, key: &str) -> Option<Value> {
        let index = HOST_FIELDS.iter().position(|f| *f == key)?;
        let s = &self.spec;
        let value = self.fields[index].get_or_init(|| match key {
            "name" => Value::from(s.name.as_str()),
            "connection" => Value::from(Serde(&s.connection)),
            "haproxy" => Value::from(Serde(&s.haproxy)),
            "tcp_backends" => Value::from_object(Backends(Arc::clone(&s.tcp_backends))),
            "udp_backends" => Value::from_object(Backends(Arc::clone(&s.udp_backends))),
            "sni_frontends" => Value::from(Serde(&s.sni_frontends)),
            "http_frontends" => Value::from(Serde(&s.http_frontends)),
            "http_backends" => Value::from(Serde(&s.http_backends)),
            "udp_engine" => Value::from(Serde(&s.udp_engine)),
            "udp_health" => Value::from(Serde(&s.udp_health)),
            "keepalived" => Value::from(Serde(&s.keepalived)),
            "peers" => Value::from(Serde(&s.peers)),
            "daemons" => Value::from(Serde(&s.daemons)),
            _ => Value::from(s.admin_record.as_str()),
        });
        Some(value.clone())
    }

    /// What `part` reads of this host besides the watcher's settings and the backend lists,
    /// in its serde form, and whether it reads the TCP backends (every part reads
    /// `udp_health` and the UDP backends).
    fn part_inputs(&self, part: Part) -> (PartInputs<'_>, bool) {
        let s = &self.spec;
        match part {
            Part::HaproxyProxies => (
                PartInputs::HaproxyProxies {
                    peers: s
                        .peers
                        .as_ref()
                        .map(|p| PeersSection { section: p.section }),
                    haproxy: HttpTimeout {
                        timeout_http_request: &s.haproxy.timeout_http_request,
                    },
                    sni_frontends: &s.sni_frontends,
                    http_frontends: &s.http_frontends,
                    http_backends: &s.http_backends,
                },
                true,
            ),
            Part::UdpHealthBody => (PartInputs::UdpHealthBody {}, false),
            Part::NginxStreamBody => (
                PartInputs::NginxStreamBody {
                    udp_engine: &s.udp_engine,
                },
                false,
            ),
        }
    }

    /// `udp_health` as JSON, made once for the host's three parts.
    fn udp_health_json(&self) -> Option<&str> {
        self.udp_health_json
            .get_or_init(|| serde_json::to_string(&self.spec.udp_health).ok())
            .as_deref()
    }

    /// Equal for two hosts exactly when `part` reads the same values on both: the serde form
    /// of what it reads, and the backend lists it reads by identity (each is shared by every
    /// host that has it, and never changes). None when the inputs do not print as JSON.
    pub fn part_key(&self, part: Part) -> Option<PartKey> {
        let (inputs, tcp) = self.part_inputs(part);
        let shared = |list: &Arc<Vec<Backend>>| SharedList(Arc::clone(list));
        Some(PartKey {
            part,
            udp_health: self.udp_health_json()?.to_string(),
            data: serde_json::to_string(&inputs).ok()?,
            tcp: tcp.then(|| shared(&self.spec.tcp_backends)),
            udp: shared(&self.spec.udp_backends),
        })
    }

    /// `lb` as `part` sees it: only what it reads (anything else is undefined, an error).
    pub fn part_view(&self, part: Part) -> Value {
        let (inputs, tcp) = self.part_inputs(part);
        Value::from_object(PartView {
            rest: Value::from(Serde(&inputs)),
            udp_health: Value::from(Serde(&self.spec.udp_health)),
            tcp_backends: tcp.then(|| self.field("tcp_backends")).flatten(),
            udp_backends: Value::from_object(Backends(Arc::clone(&self.spec.udp_backends))),
        })
    }
}

impl Object for HostView {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.field(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        self.field(key)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&HOST_FIELDS)
    }
}

/// A part of a built-in template whose text depends on a few of the host's values, the same
/// on most hosts: `{{ lbctl_part(name, lb) }}` renders it with only those as its `lb`, once
/// for every distinct set of them in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Part {
    /// haproxy.cfg from its first proxy on: backends, their frontends, the HTTP frontends.
    HaproxyProxies,
    /// The UDP health watcher's script below its first lines.
    UdpHealthBody,
    /// nginx's stream configuration below its first line.
    NginxStreamBody,
}

impl Part {
    pub const ALL: [Part; 3] = [
        Part::HaproxyProxies,
        Part::UdpHealthBody,
        Part::NginxStreamBody,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Part::HaproxyProxies => "haproxy-proxies.cfg",
            Part::UdpHealthBody => "udp-health-body",
            Part::NginxStreamBody => "nginx-stream-body.conf",
        }
    }

    pub fn source(self) -> &'static str {
        match self {
            Part::HaproxyProxies => include_str!("../../templates/haproxy-proxies.cfg.j2"),
            Part::UdpHealthBody => include_str!("../../templates/udp-health-body.j2"),
            Part::NginxStreamBody => include_str!("../../templates/nginx-stream-body.conf.j2"),
        }
    }

    pub fn named(name: &str) -> Option<Part> {
        Part::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// What a part reads besides `udp_health` and the backend lists, by its name in `lb`.
#[derive(Serialize)]
#[serde(untagged)]
enum PartInputs<'a> {
    HaproxyProxies {
        peers: Option<PeersSection>,
        haproxy: HttpTimeout<'a>,
        sni_frontends: &'a [SniFrontend],
        http_frontends: &'a [HttpFrontend],
        http_backends: &'a [HttpBackend],
    },
    UdpHealthBody {},
    NginxStreamBody {
        udp_engine: &'a UdpEngine,
    },
}

/// `lb.peers` without the members and the local name, which differ from host to host.
#[derive(Serialize)]
struct PeersSection {
    section: &'static str,
}

#[derive(Serialize)]
struct HttpTimeout<'a> {
    timeout_http_request: &'a Duration,
}

/// What a part's text depends on: see [`HostView::part_key`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartKey {
    part: Part,
    udp_health: String,
    data: String,
    tcp: Option<SharedList>,
    udp: SharedList,
}

/// A backend list compared by identity (holding it keeps its address from being reused),
/// every empty list equal to every other: a host without such backends has an empty list of
/// its own.
#[derive(Debug, Clone)]
struct SharedList(Arc<Vec<Backend>>);

impl PartialEq for SharedList {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || (self.0.is_empty() && other.0.is_empty())
    }
}

impl Eq for SharedList {}

impl Hash for SharedList {
    fn hash<H: Hasher>(&self, state: &mut H) {
        if self.0.is_empty() {
            0usize.hash(state);
        } else {
            (Arc::as_ptr(&self.0) as usize).hash(state);
        }
    }
}

/// `lb` as a part sees it.
#[derive(Debug)]
struct PartView {
    rest: Value,
    udp_health: Value,
    tcp_backends: Option<Value>,
    udp_backends: Value,
}

impl Object for PartView {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        match key {
            "udp_health" => Some(self.udp_health.clone()),
            "tcp_backends" => self.tcp_backends.clone(),
            "udp_backends" => Some(self.udp_backends.clone()),
            _ => self.rest.get_attr(key).ok().filter(|v| !v.is_undefined()),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut keys: Vec<Value> = match self.rest.try_iter() {
            Ok(keys) => keys.collect(),
            Err(_) => Vec::new(),
        };
        keys.push(Value::from("udp_health"));
        if self.tcp_backends.is_some() {
            keys.push(Value::from("tcp_backends"));
        }
        keys.push(Value::from("udp_backends"));
        Enumerator::Values(keys)
    }
}

/// A backend list, shared by every host that has it. The views below hold this host's
/// `Arc<Backends>`, not the shared list's, so hosts rendering at once do not contend for one
/// reference count.
#[derive(Debug)]
struct Backends(Arc<Vec<Backend>>);

impl Object for Backends {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let index = key.as_usize()?;
        (index < self.0.len()).then(|| {
            Value::from_object(BackendView {
                list: Arc::clone(self),
                index,
            })
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.0.len())
    }
}

#[derive(Debug)]
struct BackendView {
    list: Arc<Backends>,
    index: usize,
}

/// `Backend`'s serialized fields, in declaration order.
const BACKEND_FIELDS: &[&str] = &[
    "name",
    "protocol",
    "bind",
    "port",
    "balance",
    "servers",
    "sni",
    "sni_default",
    "sticky",
    "health_check",
    "udp_health_check",
];

impl Object for BackendView {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        let b = &self.list.0[self.index];
        Some(match key {
            "name" => Value::from(b.name.as_str()),
            "protocol" => Value::from(b.protocol.name()),
            "bind" => Value::from(b.bind.as_str()),
            "port" => Value::from(b.port),
            "balance" => Value::from(b.balance.as_str()),
            "servers" => Value::from_object(Servers {
                list: Arc::clone(&self.list),
                backend: self.index,
            }),
            "sni" => Value::from(Serde(&b.sni)),
            "sni_default" => Value::from(b.sni_default),
            "sticky" => b.sticky.map_or(Value::from(()), |s| Value::from(s.name())),
            "health_check" => match &b.health_check {
                Some(h) => Value::from(Serde(h)),
                None => Value::from(()),
            },
            "udp_health_check" => match &b.udp_health_check {
                Some(h) => Value::from(Serde(h)),
                None => Value::from(()),
            },
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(BACKEND_FIELDS)
    }
}

/// One backend's servers.
#[derive(Debug)]
struct Servers {
    list: Arc<Backends>,
    backend: usize,
}

impl Object for Servers {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let server = key.as_usize()?;
        (server < self.list.0[self.backend].servers.len()).then(|| {
            Value::from_object(ServerView {
                list: Arc::clone(&self.list),
                backend: self.backend,
                server,
            })
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.list.0[self.backend].servers.len())
    }
}

#[derive(Debug)]
struct ServerView {
    list: Arc<Backends>,
    backend: usize,
    server: usize,
}

/// `Server`'s serialized fields, in declaration order.
const SERVER_FIELDS: &[&str] = &[
    "name",
    "address",
    "port",
    "check",
    "check_interval",
    "fastinter",
    "rise",
    "fall",
    "weight",
    "backup",
    "send_proxy",
    "relay",
];

impl Object for ServerView {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        let s = &self.list.0[self.backend].servers[self.server];
        Some(match key {
            "name" => Value::from(s.name.as_str()),
            "address" => Value::from(s.address.as_str()),
            "port" => Value::from(s.port),
            "check" => Value::from(s.check),
            "check_interval" => DurationView::value(&s.check_interval),
            "fastinter" => DurationView::value(&s.fastinter),
            "rise" => Value::from(s.rise),
            "fall" => Value::from(s.fall),
            "weight" => Value::from(s.weight),
            "backup" => Value::from(s.backup),
            "send_proxy" => s
                .send_proxy
                .map_or(Value::from(()), |p| Value::from(p.name())),
            "relay" => Value::from(s.relay.as_deref()),
            _ => return None,
        })
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(SERVER_FIELDS)
    }
}

/// A `Duration` as its serde form (`text`, `ms`), without building a map for every server.
#[derive(Debug)]
struct DurationView {
    text: Value,
    ms: u64,
}

impl DurationView {
    fn value(d: &Duration) -> Value {
        Value::from_object(DurationView {
            text: Value::from(d.text.as_str()),
            ms: d.ms,
        })
    }
}

impl Object for DurationView {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        match key {
            "text" => Some(self.text.clone()),
            "ms" => Some(Value::from(self.ms)),
            _ => None,
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["text", "ms"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        input::Keyring,
        source::{Loc, VarMap},
        spec::HealthCheck,
        spec::{Fleet, Input},
        spec::{Protocol, Sticky},
        spec::{SendProxy, Server},
    };

    /// `lb`, converted field by field as templates read it, is the spec's serde form: the
    /// same fields in the same order, with the same values.
    #[test]
    fn host_view_reads_as_the_specs_serde_form() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        for dir in [
            "inventory/example",
            "tests/inputs/udp-health",
            "tests/inputs/l7-edges",
        ] {
            let inventory = [root.join(dir)];
            let input = Input {
                inventory: &inventory,
                project_dir: root,
                extra_vars: &[],
                lb_group: "haproxy_servers",
                keyring: Arc::new(Keyring::new(Vec::new())),
                config: VarMap::default(),
                templates: None,
            };
            let Ok((_, fleet)) = Fleet::load(&input) else {
                panic!("{dir} loads")
            };
            for host in &fleet.hosts {
                let view = Value::from_object(HostView::new(host));
                assert_eq!(
                    serde_json::to_string(&view).unwrap(),
                    serde_json::to_string(host).unwrap(),
                    "{dir}: {}",
                    host.name
                );
            }
        }
    }

    fn duration(ms: u64) -> Duration {
        Duration {
            text: format!("{ms}ms"),
            ms,
        }
    }

    fn backends() -> Arc<Vec<Backend>> {
        let loc = Loc::new(&Arc::from("v.yml"), 1);
        let server = |name: &str, weight, send_proxy| Server {
            name: name.into(),
            address: "10.0.0.1".into(),
            port: 8080,
            check: true,
            check_interval: duration(2000),
            fastinter: duration(500),
            rise: 2,
            fall: 3,
            weight,
            backup: weight.is_none(),
            send_proxy,
            relay: None,
            address_loc: loc,
        };
        let backend = |name: &str, sticky, health_check, sni: Vec<String>| Backend {
            name: name.into(),
            protocol: Protocol::Tcp,
            bind: "*".into(),
            port: 443,
            balance: "leastconn".into(),
            servers: vec![
                server("w1", Some(10), Some(SendProxy::V2)),
                server("w2", None, None),
            ],
            sni,
            sni_default: false,
            sticky,
            health_check,
            udp_health_check: None,
            index: 0,
            loc,
            port_loc: loc,
            sni_locs: Vec::new(),
            sni_default_loc: None,
        };
        Arc::new(vec![
            backend("a", None, None, Vec::new()),
            backend(
                "b",
                Some(Sticky::Source),
                Some(HealthCheck {
                    path: "/readyz".into(),
                    expect_status: 200,
                    host: Some("api".into()),
                    tls: true,
                }),
                vec!["x.example.com".into()],
            ),
        ])
    }

    /// Everything a template can do with the values (print, iterate, look up, test) gives the
    /// same result as with the serde conversion it replaces.
    #[test]
    fn backends_read_as_their_serde_form() {
        let list = backends();
        let lazy = Value::from_object(Backends(Arc::clone(&list)));
        let eager = Value::from(Serde(&*list));
        let env = minijinja::Environment::new();
        let probe = "{{ v }}|{% for b in v %}{% for k in b %}{{ k }}={{ b[k] }};{% endfor %}\
            {% for s in b.servers %}{{ s | items | list }}{{ s.check_interval.text }}{{ s.weight is none }}{% endfor %}\
            {{ b.sticky == 'source' }}{{ b.health_check.tls }}{{ not b.sni }}{{ b | length }}{% endfor %}{{ v | length }}";
        let render = |v: &Value| {
            env.render_str(probe, minijinja::context! { v => v })
                .unwrap()
        };
        assert_eq!(render(&lazy), render(&eager));
        let json = |v: &Value| serde_json::to_string(v).unwrap();
        assert_eq!(json(&lazy), json(&eager));
        let past_end = Value::from(list.len());
        assert_eq!(
            lazy.get_item(&past_end).ok(),
            eager.get_item(&past_end).ok()
        );
    }
}
