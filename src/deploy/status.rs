//! The tier as it is right now, as `lbctl status` shows it: per load balancer, whether it
//! holds the VIP, whether its daemons run, and every backend's servers as HAProxy's runtime
//! API sees them; UDP servers (which HAProxy checks for nginx) also as nginx has them. One SSH
//! round trip per host, all hosts at once.

use std::{collections::BTreeMap, sync::Arc};

use serde::Serialize;

use crate::{
    deploy::DeployError,
    remote::{Daemon, Engine, Entry, LbState, Query, Record, Setting, parse_lb_state},
    remote::{RowKind, StatRow},
    spec::Fleet,
    spec::HostSpec,
    spec::Protocol,
    ssh,
    ssh::{ConnectOptions, Session, TransportError},
};

#[derive(Debug, Clone, Serialize)]
pub struct TierStatus {
    pub hosts: Vec<HostStatus>,
    /// The load balancers holding a VIP right now; exactly one in a healthy tier.
    pub vip_holders: Vec<String>,
    /// Each configured VIP and the hosts that answered holding it.
    pub vips: BTreeMap<String, Vec<String>>,
    /// What is wrong with who holds the VIPs: split brain (two holders) or none.
    pub vip_problems: Vec<String>,
    /// Each daemon a host that answered does not run, in a sentence naming the host.
    pub daemon_problems: Vec<String>,
    /// The load balancers with a VIP that `--limit` left out: not asked, so a VIP none of
    /// the others holds may be held by one of them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vip_hosts_left_out: Vec<String>,
}

impl TierStatus {
    /// Every host answered.
    pub fn complete(&self) -> bool {
        self.hosts.iter().all(|h| h.error.is_none())
    }

    /// Every host answered, every VIP has exactly one holder, and every daemon runs.
    pub fn healthy(&self) -> bool {
        self.complete() && self.vip_problems.is_empty() && self.daemon_problems.is_empty()
    }
}

/// Who holds each VIP, from each host's answer (host name, VIP → held).
pub fn holders_by_vip<'a>(
    answers: impl IntoIterator<Item = (&'a str, &'a BTreeMap<String, bool>)>,
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (host, vips) in answers {
        for (vip, held) in vips {
            let holders = out.entry(vip.clone()).or_default();
            if *held {
                holders.push(host.to_string());
            }
        }
    }
    out
}

/// A healthy tier has exactly one holder per VIP: more is split brain (the hosts no longer
/// hear each other's adverts, and clients reach whichever answered ARP last), none is an outage.
/// `left_out`: the load balancers with a VIP that `--limit` left out, which were not asked: one
/// of them may hold a VIP none of those asked holds, which is then no problem (two holders
/// still are).
pub fn vip_problems(holders: &BTreeMap<String, Vec<String>>, left_out: &[String]) -> Vec<String> {
    holders
        .iter()
        .filter_map(|(vip, hosts)| match hosts.as_slice() {
            [_] => None,
            [] if !left_out.is_empty() => None,
            [] => Some(format!("no load balancer holds VIP {vip}")),
            many => Some(format!(
                "split brain: VIP {vip} is held by {} at once",
                and_list(many)
            )),
        })
        .collect()
}

/// The daemons `host` answered are not running, one sentence each, in the order of
/// `pid_files` (each daemon's name and pid file, as it was asked):
/// `lb2: haproxy is not running (pid 4242 in /run/haproxy.pid is gone)`.
fn daemon_problems(host: &HostStatus, pid_files: &[(String, String)]) -> Vec<String> {
    pid_files
        .iter()
        .filter_map(|(name, pid_file)| {
            let daemon = host.daemons.get(name).filter(|d| !d.running)?;
            let why = match daemon.pid {
                Some(pid) => format!("pid {pid} in {pid_file} is gone"),
                None => format!("no pid in {pid_file}"),
            };
            Some(format!("{}: {name} is not running ({why})", host.host))
        })
        .collect()
}

fn and_list(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HostStatus {
    pub host: String,
    /// Why the host could not be asked (SSH or the remote script); the rest is then empty.
    pub error: Option<String>,
    /// Every configured VIP and whether this host holds it.
    pub vips: BTreeMap<String, bool>,
    pub holds_vip: bool,
    pub daemons: BTreeMap<String, Daemon>,
    /// Why HAProxy's runtime API did not answer, when it did not.
    pub runtime_api_error: Option<String>,
    pub backends: Vec<BackendStatus>,
    /// Backends lbctl's inventory defines that the running HAProxy does not have (the
    /// configuration there is not lbctl's, or not the current one).
    pub missing_backends: Vec<String>,
    /// What lbctl's record on this host says it set (drains, maintenance, weights): who,
    /// when, for which worker; UDP servers (nginx) included.
    pub admin: Vec<Entry>,
    /// Why lbctl's record could not be read, when it could not.
    pub admin_error: Option<String>,
    /// Why nginx's stream file could not be read for the UDP servers marked down in it.
    pub udp_error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackendStatus {
    pub name: String,
    /// `tcp`, or `udp` for a UDP service that nginx carries and HAProxy only checks.
    pub protocol: Protocol,
    /// HAProxy's status of the backend as a whole (`UP` while any server is).
    pub status: String,
    pub servers: Vec<ServerStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerStatus {
    pub name: String,
    pub address: Option<String>,
    /// HAProxy's words: `UP`, `DOWN`, `MAINT`, `DRAIN`, `no check`, `UP 1/2`, ...
    pub status: String,
    /// Steadily UP: no failed check pending.
    pub up: bool,
    /// The last health check's result (`L4OK`, `L4TOUT`, ...), when checked.
    pub check: Option<String>,
    pub check_desc: Option<String>,
    pub sessions: u64,
    pub backup: bool,
    /// The weight in use.
    pub weight: Option<u64>,
    /// The weight in the configuration.
    pub configured_weight: u64,
    /// What lbctl set for this server, as its record says (`drain`, `maint`, `weight 5`).
    pub set_by_lbctl: Vec<String>,
    /// A UDP server: whether nginx has it marked down (lbctl's UDP health watcher marks the
    /// servers HAProxy does not see UP); `None` for TCP, or when nginx's file was unreadable.
    pub nginx_down: Option<bool>,
}

/// Asks one host and reads its answer.
pub async fn read_lb_state(session: &Session, query: &Query) -> Result<LbState, DeployError> {
    let out = session.run(&query.script()).await?;
    Ok(parse_lb_state(&out.stdout).map_err(|e| e.with_output(out))?)
}

/// Connects to every load balancer and asks each, all at once.
pub async fn gather_status(fleet: &Fleet, options: ConnectOptions, forks: usize) -> TierStatus {
    let connections: Vec<_> = fleet.hosts.iter().map(|h| h.connection.clone()).collect();
    let connected = ssh::connect_all(&connections, options, forks).await;
    let tasks: Vec<_> = connected
        .into_iter()
        .zip(&fleet.hosts)
        .map(|(c, spec)| {
            let query = Query::full(spec);
            tokio::spawn(async move {
                let session: Arc<Session> = c.session?;
                read_lb_state(&session, &query).await
            })
        })
        .collect();
    let mut hosts = Vec::with_capacity(tasks.len());
    for (task, spec) in tasks.into_iter().zip(&fleet.hosts) {
        let state = task.await.unwrap_or_else(|e| {
            Err(DeployError::Transport(TransportError::Task {
                what: "status",
                message: e.to_string(),
            }))
        });
        hosts.push(view(spec, state));
    }
    let vip_holders = hosts
        .iter()
        .filter(|h| h.holds_vip)
        .map(|h| h.host.clone())
        .collect();
    let vips = holders_by_vip(hosts.iter().map(|h| (h.host.as_str(), &h.vips)));
    let vip_problems = vip_problems(&vips, &fleet.vip_hosts_left_out);
    let daemon_problems = hosts
        .iter()
        .zip(&fleet.hosts)
        .flat_map(|(host, spec)| daemon_problems(host, &Query::full(spec).daemons))
        .collect();
    TierStatus {
        hosts,
        vip_holders,
        vips,
        vip_problems,
        daemon_problems,
        vip_hosts_left_out: fleet.vip_hosts_left_out.clone(),
    }
}

/// What the user sees of one host's answer.
impl HostStatus {
    /// A host's status before anything is known about it.
    pub fn new(host: &str) -> HostStatus {
        HostStatus {
            host: host.to_string(),
            error: None,
            vips: BTreeMap::new(),
            holds_vip: false,
            daemons: BTreeMap::new(),
            runtime_api_error: None,
            backends: Vec::new(),
            missing_backends: Vec::new(),
            admin: Vec::new(),
            admin_error: None,
            udp_error: None,
        }
    }
}

fn view(spec: &HostSpec, state: Result<LbState, DeployError>) -> HostStatus {
    let mut status = HostStatus::new(&spec.name);
    let mut state = match state {
        Ok(state) => state,
        Err(e) => {
            status.error = Some(e.to_string());
            return status;
        }
    };
    let record = match &state.admin_record {
        Some(Ok(record)) => record.clone(),
        Some(Err(e)) => {
            status.admin_error = Some(format!("{}: {e}", spec.admin_record));
            Record::default()
        }
        None => Record::default(),
    };
    status.admin = record.active().cloned().collect();
    status.holds_vip = state.holds_vip();
    status.vips = std::mem::take(&mut state.vips);
    status.daemons = std::mem::take(&mut state.daemons);
    if let Some(Err(e)) = &state.udp_down {
        status.udp_error = Some(e.to_string());
    }
    let rows = match &state.stat {
        Some(Ok(rows)) => rows,
        Some(Err(e)) => {
            status.runtime_api_error = Some(e.to_string());
            return status;
        }
        None => return status,
    };
    let udp = |name: &str| spec.udp_backends.iter().any(|b| b.name == name);
    for row in rows {
        if row.kind == RowKind::Backend {
            let protocol = if udp(&row.proxy) {
                Protocol::Udp
            } else {
                Protocol::Tcp
            };
            status.backends.push(BackendStatus {
                name: row.proxy.clone(),
                protocol,
                status: row.status.text.clone(),
                servers: rows
                    .iter()
                    .filter(|r| r.kind == RowKind::Server && r.proxy == row.proxy)
                    .map(|r| match protocol {
                        Protocol::Udp => udp_server(spec, &record, &state, r),
                        Protocol::Tcp => server(spec, &record, r),
                    })
                    .collect(),
            });
        }
    }
    let checked_udp = spec.udp_health.is_some().then_some(&*spec.udp_backends);
    status.missing_backends = spec
        .tcp_backends
        .iter()
        .chain(checked_udp.into_iter().flatten())
        .filter(|b| !status.backends.iter().any(|r| r.name == b.name))
        .map(|b| b.name.clone())
        .collect();
    status
}

/// A UDP server: HAProxy checks it for nginx, which carries its traffic, so its weight and
/// what lbctl set for it are nginx's.
fn udp_server(spec: &HostSpec, record: &Record, state: &LbState, row: &StatRow) -> ServerStatus {
    let configured = spec
        .udp_backends
        .iter()
        .filter(|b| b.name == row.proxy)
        .flat_map(|b| b.servers.iter())
        .find(|s| s.name == row.name)
        .and_then(|s| s.weight)
        .unwrap_or(1);
    ServerStatus {
        weight: state.udp_weight(&row.proxy, &row.name),
        configured_weight: u64::from(configured),
        set_by_lbctl: set_by_lbctl(record, Engine::Nginx, row),
        nginx_down: state.udp_marked_down(&row.proxy, &row.name),
        ..server(spec, record, row)
    }
}

/// What lbctl's record says it set for the server (`drain`, `maint`, `weight 5`).
fn set_by_lbctl(record: &Record, engine: Engine, row: &StatRow) -> Vec<String> {
    [
        record.state_of(engine, &row.proxy, &row.name),
        record.weight_of(engine, &row.proxy, &row.name),
    ]
    .into_iter()
    .flatten()
    .filter(|e| e.setting.active())
    .map(|e| match e.setting {
        Setting::State(state) => state.name().to_string(),
        Setting::Weight(Some(w)) => format!("weight {w}"),
        Setting::Weight(None) => String::new(),
    })
    .collect()
}

fn server(spec: &HostSpec, record: &Record, row: &StatRow) -> ServerStatus {
    let configured = spec
        .tcp_backends
        .iter()
        .map(|b| (&b.name, &b.servers))
        .chain(spec.http_backends.iter().map(|b| (&b.name, &b.servers)))
        .filter(|(name, _)| **name == row.proxy)
        .flat_map(|(_, servers)| servers.iter())
        .find(|s| s.name == row.name)
        .and_then(|s| s.weight)
        .unwrap_or(1);
    ServerStatus {
        weight: row.weight,
        configured_weight: u64::from(configured),
        set_by_lbctl: set_by_lbctl(record, Engine::Haproxy, row),
        nginx_down: None,
        name: row.name.clone(),
        address: row.address.clone(),
        status: row.status.text.clone(),
        up: row.status.steadily_up(),
        check: row.check_status.clone(),
        check_desc: row.check_desc.clone(),
        sessions: row.sessions,
        backup: row.backup,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_holders_of_a_vip_are_split_brain_and_none_an_outage() {
        let held = |h: bool| BTreeMap::from([("10.0.0.100/24".to_string(), h)]);
        let (a, b, c) = (held(true), held(true), held(false));
        let holders = holders_by_vip([("lb1", &a), ("lb2", &b), ("lb3", &c)]);
        assert_eq!(
            vip_problems(&holders, &[]),
            ["split brain: VIP 10.0.0.100/24 is held by lb1 and lb2 at once"]
        );
        let holders = holders_by_vip([("lb1", &c), ("lb3", &c)]);
        assert_eq!(
            vip_problems(&holders, &[]),
            ["no load balancer holds VIP 10.0.0.100/24"]
        );
        let holders = holders_by_vip([("lb1", &a), ("lb3", &c)]);
        assert!(vip_problems(&holders, &[]).is_empty());
    }

    #[test]
    fn with_hosts_left_out_a_vip_none_of_the_others_holds_is_no_problem_but_two_holders_are() {
        let held = |h: bool| BTreeMap::from([("10.0.0.100/24".to_string(), h)]);
        let (yes, no) = (held(true), held(false));
        let left_out = ["lb1".to_string()];
        let holders = holders_by_vip([("lb2", &no), ("lb3", &no)]);
        assert!(vip_problems(&holders, &left_out).is_empty());
        let holders = holders_by_vip([("lb2", &yes), ("lb3", &yes)]);
        assert_eq!(
            vip_problems(&holders, &left_out),
            ["split brain: VIP 10.0.0.100/24 is held by lb2 and lb3 at once"]
        );
    }

    #[test]
    fn a_daemon_that_does_not_run_is_a_problem_naming_its_host_and_pid_file() {
        let pid_files = [
            ("haproxy".to_string(), "/run/haproxy.pid".to_string()),
            ("keepalived".to_string(), "/run/keepalived.pid".to_string()),
            (
                "udp-health".to_string(),
                "/run/lbctl-udp-health.pid".to_string(),
            ),
        ];
        let host = |daemons: [(bool, Option<u32>); 3]| HostStatus {
            daemons: pid_files
                .iter()
                .zip(daemons)
                .map(|((name, _), (running, pid))| (name.clone(), Daemon { running, pid }))
                .collect(),
            ..HostStatus::new("lb2")
        };
        let running = (true, Some(7));
        assert!(daemon_problems(&host([running; 3]), &pid_files).is_empty());
        assert_eq!(
            daemon_problems(
                &host([(false, Some(4242)), running, (false, None)]),
                &pid_files
            ),
            [
                "lb2: haproxy is not running (pid 4242 in /run/haproxy.pid is gone)",
                "lb2: udp-health is not running (no pid in /run/lbctl-udp-health.pid)",
            ]
        );
    }
}
