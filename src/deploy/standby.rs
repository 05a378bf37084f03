//! Who can take the VIP while its holder is changed. A full apply changes every other load
//! balancer before the holder, so they can; a partial one (`--limit`) may change the holder
//! with no other host changed first, and then some load balancer it leaves alone must be
//! ready to take the VIP over: the VIP configured, keepalived and HAProxy running (keepalived
//! tracks HAProxy, so a host without it gives the VIP away).
//!
//! A saved plan made with `--limit` records the load balancers it leaves alone as
//! [`Standby`]s, so that applying it asks them the same question without the inventory.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{
    deploy::DeployError,
    deploy::status::read_lb_state,
    deploy::survey::SshOptions,
    remote::{Deployment, Query},
    spec::{Connection, HostSpec, Service},
    ssh::{self, TransportError},
};

/// A load balancer an apply leaves alone, as far as taking the VIP over goes: how to reach
/// it, its VIPs, and the pid files of the daemons that must run for it to take one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Standby {
    pub host: String,
    pub connection: Connection,
    /// The VIPs as keepalived takes them (`10.0.0.10/24`); none: it cannot take one.
    pub vips: Vec<String>,
    pub haproxy_pid_file: String,
    /// `None`: the host runs no keepalived.
    pub keepalived_pid_file: Option<String>,
}

impl Standby {
    pub fn of(spec: &HostSpec) -> Standby {
        Standby {
            host: spec.name.clone(),
            connection: spec.connection.clone(),
            vips: spec
                .keepalived
                .as_ref()
                .map(|k| k.vips.clone())
                .unwrap_or_default(),
            haproxy_pid_file: spec.haproxy.pid_file.clone(),
            keepalived_pid_file: spec
                .keepalived
                .as_ref()
                .map(|_| spec.daemons.keepalived_pid_file.clone()),
        }
    }

    fn query(&self) -> Query {
        let mut daemons = vec![("haproxy".to_string(), self.haproxy_pid_file.clone())];
        if let Some(pid_file) = &self.keepalived_pid_file {
            daemons.push(("keepalived".to_string(), pid_file.clone()));
        }
        Query {
            vips: self.vips.clone(),
            daemons,
            ..Query::default()
        }
    }
}

/// The VIP holders among the hosts to change (each its name, whether it holds the VIP, and
/// what it is handed) that need a standby: none when no such host holds the VIP, or when one
/// without it, which runs keepalived, is changed (and verified) first.
pub fn holders_needing_a_standby(changing: &[(&str, bool, &Deployment)]) -> Vec<String> {
    let changed_first = changing.iter().any(|(_, holds_vip, deployment)| {
        !holds_vip && deployment.controls.contains_key(&Service::Keepalived)
    });
    if changed_first {
        return Vec::new();
    }
    changing
        .iter()
        .filter(|(_, holds_vip, _)| *holds_vip)
        .map(|(host, _, _)| host.to_string())
        .collect()
}

/// Whether some of `standbys` can take the VIP over: `Ok` when one can, else why each
/// cannot (host, reason), asking them all at once.
pub async fn some_standby_ready(
    standbys: &[Standby],
    ssh: &SshOptions,
) -> Result<(), Vec<(String, DeployError)>> {
    let answers = ready_to_take_the_vip(standbys, ssh).await;
    if answers.iter().any(|(_, ready)| ready.is_ok()) {
        return Ok(());
    }
    Err(answers
        .into_iter()
        .filter_map(|(host, ready)| Some((host, ready.err()?)))
        .collect())
}

/// For each of `standbys`: ready to take the VIP, or why not.
pub async fn ready_to_take_the_vip(
    standbys: &[Standby],
    ssh: &SshOptions,
) -> Vec<(String, Result<(), DeployError>)> {
    let connections: Vec<_> = standbys.iter().map(|s| s.connection.clone()).collect();
    let connected = ssh::connect_all(&connections, ssh.connect(), ssh.forks).await;
    let tasks: Vec<_> = connected
        .into_iter()
        .zip(standbys)
        .map(|(c, standby)| {
            let query = standby.query();
            tokio::spawn(async move {
                let session: Arc<ssh::Session> = c.session?;
                let state = read_lb_state(&session, &query).await;
                if let Ok(session) = Arc::try_unwrap(session) {
                    let _ = session.close().await;
                }
                state
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for (task, standby) in tasks.into_iter().zip(standbys) {
        let state = task.await.unwrap_or_else(|e| {
            Err(DeployError::Transport(TransportError::Task {
                what: "standby",
                message: e.to_string(),
            }))
        });
        let running = |daemon: &str| {
            state
                .as_ref()
                .is_ok_and(|s| s.daemons.get(daemon).is_some_and(|d| d.running))
        };
        let verdict = match &state {
            Err(e) => Err(DeployError::StandbyUnreachable(e.to_string())),
            Ok(_) if standby.vips.is_empty() => Err(DeployError::StandbyWithoutVip),
            Ok(_) if !running("keepalived") => Err(DeployError::StandbyWithoutKeepalived),
            Ok(_) if !running("haproxy") => Err(DeployError::StandbyWithoutHaproxy),
            Ok(_) => Ok(()),
        };
        out.push((standby.host.clone(), verdict));
    }
    out
}
