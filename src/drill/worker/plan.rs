//! What a worker drill breaks and what it may cost: plain data in (the fleet, the worker's
//! connection, the user's options), plain data out.

use std::{collections::BTreeSet, time::Duration};

use serde::Serialize;

use super::WorkerTest;
use crate::{drill::DrillError, drill::probe, spec::Connection, spec::Fleet, spec::Worker};

/// One server the test breaks, on one load balancer, with its budgets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub lb: String,
    pub backend: String,
    pub server: String,
    pub address: String,
    pub port: u16,
    pub inter_ms: u64,
    pub rise: u32,
    pub fall: u32,
    pub detect_budget_ms: u64,
    pub recover_budget_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub worker: String,
    /// The load balancers, in the fleet's order.
    pub lbs: Vec<String>,
    pub backends: Vec<String>,
    pub targets: Vec<Target>,
    /// The worker's ports that break: the targeted servers' ports.
    pub ports: Vec<u16>,
    pub probe_targets: Vec<probe::Target>,
    /// Longer than HAProxy's connect timeout times its tries, so that a redispatched
    /// connection counts as the success it is for the client.
    pub probe_timeout: Duration,
}

impl Plan {
    fn max_detect_budget(&self) -> Duration {
        Duration::from_millis(
            self.targets
                .iter()
                .map(|t| t.detect_budget_ms)
                .max()
                .unwrap_or(0),
        )
    }

    pub(super) fn max_recover_budget(&self) -> Duration {
        Duration::from_millis(
            self.targets
                .iter()
                .map(|t| t.recover_budget_ms)
                .max()
                .unwrap_or(0),
        )
    }

    /// The longest the fault can stay: `--hold`, or until detection, at most twice the
    /// largest detection budget (so a late detection is still measured).
    pub(super) fn longest_fault(&self, hold: Duration) -> Duration {
        hold.max(self.max_detect_budget() * 2)
    }
}

/// How long HAProxy may take to mark a server DOWN: `fall` checks, each `inter` apart, plus one
/// `inter` for the check under way when the fault began. For a worker that drops packets this
/// holds because lbctl renders checks that fail fast: `fastinter` a quarter of `inter` once a
/// check has failed, and a `timeout connect` (the checks' connect timeout) below `inter`.
pub fn detect_budget(inter_ms: u64, fall: u32) -> u64 {
    inter_ms * u64::from(fall) + inter_ms
}

/// How long HAProxy may take to mark a server UP again: `rise` checks, plus one `inter`.
pub fn recover_budget(inter_ms: u64, rise: u32) -> u64 {
    inter_ms * u64::from(rise) + inter_ms
}

/// Decides what breaks and what it may cost, from the validated fleet and the worker's
/// connection (whose address is what servers are matched against, besides its name).
pub fn plan(fleet: &Fleet, worker: &Connection, test: &WorkerTest) -> Result<Plan, DrillError> {
    if fleet.host(&worker.name).is_some() {
        return Err(DrillError::NotAWorker {
            name: worker.name.clone(),
        });
    }
    let on_worker = |address: &str| Worker::of(worker).serves(address);
    let tcp_names: BTreeSet<&str> = fleet
        .hosts
        .iter()
        .flat_map(|h| h.tcp_backends.iter().map(|b| b.name.as_str()))
        .collect();
    let backends: Vec<String> = if test.backends.is_empty() {
        let mut names = BTreeSet::new();
        for h in &fleet.hosts {
            for b in h.tcp_backends.iter() {
                if b.servers.iter().any(|s| on_worker(&s.address)) {
                    names.insert(b.name.clone());
                }
            }
        }
        if names.is_empty() {
            return Err(DrillError::NothingOnWorker {
                worker: worker.name.clone(),
                address: worker.address.clone(),
            });
        }
        names.into_iter().collect()
    } else {
        for name in &test.backends {
            if tcp_names.contains(name.as_str()) {
                continue;
            }
            let udp = fleet
                .hosts
                .iter()
                .any(|h| h.udp_backends.iter().any(|b| &b.name == name));
            return Err(if udp {
                DrillError::UdpBackend { name: name.clone() }
            } else {
                DrillError::NoSuchBackend {
                    name: name.clone(),
                    known: tcp_names.iter().map(ToString::to_string).collect(),
                }
            });
        }
        let mut names = test.backends.clone();
        names.dedup();
        names
    };

    let mut targets = Vec::new();
    let mut probe_timeout = Duration::ZERO;
    for h in &fleet.hosts {
        let tries = u64::from(h.haproxy.retries) + 1;
        probe_timeout = probe_timeout.max(Duration::from_millis(
            h.haproxy.timeout_connect.ms * tries + 1000,
        ));
        for name in &backends {
            let Some(b) = h.tcp_backends.iter().find(|b| &b.name == name) else {
                return Err(DrillError::BackendMissing {
                    lb: h.name.clone(),
                    backend: name.clone(),
                });
            };
            let servers: Vec<_> = b.servers.iter().filter(|s| on_worker(&s.address)).collect();
            if servers.is_empty() {
                return Err(DrillError::BackendNotOnWorker {
                    backend: name.clone(),
                    worker: worker.name.clone(),
                    address: worker.address.clone(),
                    lb: h.name.clone(),
                });
            }
            for s in servers {
                if !s.check {
                    return Err(DrillError::NoHealthCheck {
                        server: s.name.clone(),
                        backend: name.clone(),
                    });
                }
                let inter = s.check_interval.ms;
                targets.push(Target {
                    lb: h.name.clone(),
                    backend: name.clone(),
                    server: s.name.clone(),
                    address: s.address.clone(),
                    port: s.port,
                    inter_ms: inter,
                    rise: s.rise,
                    fall: s.fall,
                    detect_budget_ms: detect_budget(inter, s.fall),
                    recover_budget_ms: recover_budget(inter, s.rise),
                });
            }
        }
    }
    let ports: Vec<u16> = targets
        .iter()
        .map(|t| t.port)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(Plan {
        worker: worker.name.clone(),
        lbs: fleet.hosts.iter().map(|h| h.name.clone()).collect(),
        probe_targets: probe_targets(fleet, &backends)?,
        backends,
        targets,
        ports,
        probe_timeout,
    })
}

/// Where clients connect for `backends`: the VIP (each backend listening on every address),
/// a backend's own bind address, or without a VIP every load balancer in turn.
fn probe_targets(fleet: &Fleet, backends: &[String]) -> Result<Vec<probe::Target>, DrillError> {
    let vips: Vec<String> = fleet
        .hosts
        .iter()
        .find_map(|h| h.keepalived.as_ref())
        .map(|k| {
            k.vips
                .iter()
                .map(|v| v.split('/').next().unwrap_or(v).to_string())
                .collect()
        })
        .unwrap_or_default();
    let mut targets = Vec::new();
    for name in backends {
        let Some(b) = fleet
            .hosts
            .iter()
            .find_map(|h| h.tcp_backends.iter().find(|b| &b.name == name))
        else {
            continue;
        };
        let hosts: Vec<String> = match b.bind.as_str() {
            "*" | "0.0.0.0" | "::" | "[::]" if !vips.is_empty() => vips.clone(),
            "*" | "0.0.0.0" | "::" | "[::]" => fleet
                .hosts
                .iter()
                .map(|h| h.connection.address.clone())
                .collect(),
            address => vec![address.trim_matches(['[', ']']).to_string()],
        };
        for host in hosts {
            let target = probe::Target { host, port: b.port };
            if !targets.contains(&target) {
                targets.push(target);
            }
        }
    }
    if targets.is_empty() {
        return Err(DrillError::NothingToProbe);
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_follow_the_servers_own_settings() {
        // inter 1s, fall 2, rise 2, timeout connect 2s: the lab's checks
        assert_eq!(detect_budget(1000, 2), 3000);
        assert_eq!(detect_budget(2000, 3), 8000);
        assert_eq!(recover_budget(1000, 2), 3000);
    }
}
