//! `lbctl drain|maint|ready|weight`: one setting for a worker's servers on every load
//! balancer at once, one SSH round trip each (the held script of `remote::admin`) and no
//! reload for HAProxy; and what keeps the tier's admin state in line afterwards.
//!
//! Takes the fleet, a [`Request`] and SSH options; returns an [`AdminReport`] per load
//! balancer. `change.rs` runs the two phases (every load balancer looks, then all go ahead
//! or none does), `guard.rs` refuses to take out the last server taking traffic,
//! `converge.rs` says what a load balancer needs to be in line with the tier's record, and
//! `sessions.rs` counts what `drain --wait` waits for.
//!
//! The tier's record is the newest entry, per server and setting, of every load balancer's
//! record ([`Record::merge`](crate::remote::Record::merge)). Each load balancer is brought in
//! line with it ([`converge`]): the entries its own record lacks (it was unreachable when
//! they were set) and the ones its HAProxy lost (restarted without its state file) are set
//! again, and nginx is re-marked if its marks differ. A drain does that on the way, and so
//! does `apply`.

mod change;
mod converge;
mod error;
mod guard;
mod sessions;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    deploy::deployment::NGINX_CHECK,
    remote::{
        ADMIN_ANY_DRAIN, ADMIN_ANY_MAINT, APPLY_LOCK, AdminHost, AdminNginx, Engine, Entry,
        NginxOutcome, OpState, ServerState, Setting,
    },
    spec::{HostSpec, Kind, Placement, UdpEngine},
};

pub use change::change;
pub use converge::{Convergence, Drift, Why, converge, converge_all, for_host, runtime_has};
pub use error::{AdminError, HostProblem, NotReady, Problems};
pub use sessions::{Left, close, count_sessions};

/// Who set a setting, when, and why: what every entry of the record carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stamp {
    /// Seconds since the epoch.
    pub since: u64,
    pub run: String,
    pub who: String,
    pub reason: String,
}

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct Request {
    pub worker: String,
    /// The worker's servers, on every load balancer.
    pub placements: Vec<Placement>,
    pub setting: Setting,
    /// Take the last server of a backend that takes traffic out all the same.
    pub force: bool,
    pub stamp: Stamp,
}

impl Request {
    /// The worker's servers on the load balancer `lb`.
    fn on<'a>(&'a self, lb: &'a str) -> impl Iterator<Item = &'a Placement> + 'a {
        self.placements.iter().filter(move |p| p.lb == lb)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AdminReport {
    pub worker: String,
    pub setting: Setting,
    #[serde(flatten)]
    pub stamp: Stamp,
    pub hosts: Vec<HostReport>,
}

impl AdminReport {
    /// Every load balancer was reached and did what was asked.
    pub fn complete(&self) -> bool {
        self.hosts.iter().all(|h| h.error.is_none())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub host: String,
    /// Why this load balancer was not changed, or not as asked (it is then converged by the
    /// next `apply` or `drain|maint|ready|weight`), in the user's words.
    pub error: Option<String>,
    pub unreachable: bool,
    /// The worker's servers here, before and after.
    pub servers: Vec<ServerChange>,
    /// Other settings of the tier's record this load balancer was brought in line with.
    pub converged: Vec<String>,
    /// nginx, when the worker has UDP servers here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nginx: Option<NginxOutcome>,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerChange {
    pub engine: Engine,
    pub backend: String,
    pub server: String,
    /// HAProxy's words (`UP`, `DOWN`, `DRAIN`, `MAINT`, with `weight N` when it is not the
    /// configured one); for nginx, `up`, `down` or `weight=N`.
    pub before: String,
    pub after: String,
}

/// The engine that carries a placement's backend.
pub fn engine(kind: Kind) -> Engine {
    match kind {
        Kind::Tcp | Kind::Http => Engine::Haproxy,
        Kind::Udp => Engine::Nginx,
    }
}

/// What the admin script needs to know about `spec`.
pub fn admin_host(spec: &HostSpec) -> AdminHost {
    AdminHost {
        lock: APPLY_LOCK.to_string(),
        socket: Some(spec.haproxy.runtime_socket.clone()),
        config: spec.haproxy.config_path.clone(),
        state_file: Some(spec.haproxy.server_state_file.clone()),
        record: spec.admin_record.clone(),
        nginx: match (&spec.udp_engine, &spec.udp_health) {
            // With UDP health checks the marks go on lbctl's copy, and the watcher writes
            // nginx's own from it (with its own marks) and reloads nginx.
            (UdpEngine::Nginx { .. }, Some(w)) => Some(AdminNginx {
                config: w.source_path.clone(),
                check: NGINX_CHECK.to_string(),
                reload: format!("{} sync", w.script_path),
            }),
            (
                UdpEngine::Nginx {
                    config_path,
                    reload,
                    ..
                },
                None,
            ) if !spec.udp_backends.is_empty() => Some(AdminNginx {
                config: config_path.clone(),
                check: NGINX_CHECK.to_string(),
                reload: reload.shell(),
            }),
            _ => None,
        },
    }
}

/// How a server looks to an operator: HAProxy's words, and its weight when it is its own.
pub fn describe(server: &ServerState) -> String {
    let state = if server.admin_flags & ADMIN_ANY_MAINT != 0 {
        "MAINT"
    } else if server.admin_flags & ADMIN_ANY_DRAIN != 0 {
        "DRAIN"
    } else {
        match server.op {
            OpState::Running => "UP",
            OpState::Stopping => "UP (failing)",
            OpState::Starting => "DOWN (recovering)",
            OpState::Stopped => "DOWN",
        }
    };
    if server.weight == server.configured_weight {
        state.to_string()
    } else {
        format!("{state}, weight {}", server.weight)
    }
}

/// How nginx's marks show a UDP server: `up` when unmarked.
fn describe_mark(marks: Option<&BTreeMap<String, String>>, key: &str) -> String {
    marks
        .and_then(|m| m.get(key))
        .cloned()
        .unwrap_or_else(|| "up".to_string())
}

/// A setting in words: `mysql/k8s-worker-2 drain`, `wireguard/k8s-worker-2 weight 5`.
pub fn setting_words(entry: &Entry) -> String {
    let what = match entry.setting {
        Setting::State(state) => state.name().to_string(),
        Setting::Weight(Some(w)) => format!("weight {w}"),
        Setting::Weight(None) => "configured weight".to_string(),
    };
    format!("{}/{} {what}", entry.backend, entry.server)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::input::Keyring;
    use crate::source::VarMap;
    use crate::spec::{Fleet, Input, Worker};

    /// The lab's inventory: three load balancers, three workers, TCP and UDP backends.
    pub(crate) fn lab() -> Fleet {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let inventory = [root.join("inventory/lab")];
        let input = Input {
            inventory: &inventory,
            project_dir: root,
            extra_vars: &[],
            lb_group: "haproxy_servers",
            keyring: std::sync::Arc::new(Keyring::new(Vec::new())),
            config: VarMap::default(),
            templates: None,
        };
        Fleet::load(&input).expect("inventory/lab loads").1
    }

    pub(crate) fn server(backend: &str, name: &str, admin_flags: u32, weight: u32) -> ServerState {
        ServerState {
            backend: backend.into(),
            server: name.into(),
            address: "10.77.77.22".into(),
            port: 30306,
            op: OpState::Running,
            admin_flags,
            weight,
            configured_weight: 1,
        }
    }

    #[test]
    fn a_worker_is_in_every_backend_tcp_and_udp_on_every_lb() {
        let fleet = lab();
        let worker = Worker {
            name: "k8s-worker-2",
            address: "10.77.77.22",
        };
        let all = worker.placements(&fleet, &[]).unwrap();
        assert_eq!(all.len(), 12, "4 backends on 3 load balancers");
        assert_eq!(all.iter().filter(|p| p.kind == Kind::Udp).count(), 3);
        let redis = worker.placements(&fleet, &["redis".to_string()]).unwrap();
        assert!(
            redis
                .iter()
                .all(|p| p.backend == "redis" && p.lb.starts_with("lb"))
        );
        assert!(worker.placements(&fleet, &["nope".to_string()]).is_err());
        let lb = Worker {
            name: "lb1",
            address: "10.77.77.11",
        };
        assert!(lb.placements(&fleet, &[]).is_err());
    }

    #[test]
    fn a_server_reads_in_haproxys_words() {
        assert_eq!(describe(&server("mysql", "w", 0, 1)), "UP");
        assert_eq!(describe(&server("mysql", "w", 0x08, 1)), "DRAIN");
        assert_eq!(describe(&server("mysql", "w", 0x01, 5)), "MAINT, weight 5");
    }
}
