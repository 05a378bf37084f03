//! The tier as it is right now, as `lbctl status` shows it: per load balancer, whether it
//! holds the VIP, whether its daemons run, and every backend's servers as HAProxy's runtime
//! API sees them. One SSH round trip per host, all hosts at once.

use std::{collections::BTreeMap, sync::Arc};

use serde::Serialize;

use crate::{
    deploy::DeployError,
    remote::{Daemon, LbState, Query, parse_lb_state},
    remote::{RowKind, StatRow},
    spec::Fleet,
    spec::HostSpec,
    ssh,
    ssh::{ConnectOptions, Session, TransportError},
};

#[derive(Debug, Clone, Serialize)]
pub struct TierStatus {
    pub hosts: Vec<HostStatus>,
    /// The load balancers holding a VIP right now; exactly one in a healthy tier.
    pub vip_holders: Vec<String>,
}

impl TierStatus {
    /// Every host answered.
    pub fn complete(&self) -> bool {
        self.hosts.iter().all(|h| h.error.is_none())
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
    /// TCP backends lbctl's inventory defines that the running HAProxy does not have (the
    /// configuration there is not lbctl's, or not the current one).
    pub missing_backends: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackendStatus {
    pub name: String,
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
    TierStatus { hosts, vip_holders }
}

/// What the user sees of one host's answer.
fn view(spec: &HostSpec, state: Result<LbState, DeployError>) -> HostStatus {
    let mut status = HostStatus {
        host: spec.name.clone(),
        error: None,
        vips: BTreeMap::new(),
        holds_vip: false,
        daemons: BTreeMap::new(),
        runtime_api_error: None,
        backends: Vec::new(),
        missing_backends: Vec::new(),
    };
    let state = match state {
        Ok(state) => state,
        Err(e) => {
            status.error = Some(e.to_string());
            return status;
        }
    };
    status.holds_vip = state.holds_vip();
    status.vips = state.vips;
    status.daemons = state.daemons;
    let rows = match state.stat {
        Some(Ok(rows)) => rows,
        Some(Err(e)) => {
            status.runtime_api_error = Some(e.to_string());
            return status;
        }
        None => return status,
    };
    for row in &rows {
        if row.kind == RowKind::Backend {
            status.backends.push(BackendStatus {
                name: row.proxy.clone(),
                status: row.status.text.clone(),
                servers: rows
                    .iter()
                    .filter(|r| r.kind == RowKind::Server && r.proxy == row.proxy)
                    .map(server)
                    .collect(),
            });
        }
    }
    status.missing_backends = spec
        .tcp_backends
        .iter()
        .filter(|b| !status.backends.iter().any(|r| r.name == b.name))
        .map(|b| b.name.clone())
        .collect();
    status
}

fn server(row: &StatRow) -> ServerStatus {
    ServerStatus {
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
