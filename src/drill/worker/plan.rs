//! What a worker drill breaks and what it may cost: plain data in (the fleet, the worker's
//! connection, the user's options), plain data out.
//!
//! A UDP server (nginx carries it, HAProxy checks it for lbctl's UDP health watcher) breaks
//! with its health check's port when that is another one, so the check sees what clients
//! see; it counts as detected once nginx has it marked down, and as recovered once it no
//! longer has.

use std::{collections::BTreeSet, time::Duration};

use serde::Serialize;

use super::{WorkerTest, fault::Family};
use crate::{
    drill::DrillError,
    drill::probe,
    spec::{Backend, Connection, Fleet, HostSpec, Protocol, UdpHealthCheck, Worker},
};

/// What a UDP probe sends when the service's health check does not say: any service that
/// answers every datagram (an echo, the lab's fake WireGuard) answers it.
const UDP_PROBE_PAYLOAD: &[u8] = b"lbctl failover-test probe\n";

/// One server the test breaks, on one load balancer, with its budgets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub lb: String,
    pub backend: String,
    /// `udp`: nginx carries the server; HAProxy checks it and the watcher marks it in nginx.
    pub protocol: Protocol,
    pub server: String,
    pub address: String,
    pub port: u16,
    /// The health check's own port, broken too (a TCP port: kube-proxy's, say).
    pub check_port: Option<u16>,
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
    /// The worker's TCP ports that break: the targeted TCP servers' ports, and the UDP
    /// servers' health-check ports.
    pub ports: Vec<u16>,
    /// The worker's UDP ports that break: the targeted UDP servers' ports.
    pub udp_ports: Vec<u16>,
    pub probe_targets: Vec<probe::Target>,
    /// Longer than HAProxy's connect timeout times its tries, so that a redispatched
    /// connection counts as the success it is for the client.
    pub probe_timeout: Duration,
}

impl Plan {
    /// The address families the load balancers reach the worker's targeted servers in.
    pub(super) fn families(&self) -> Vec<Family> {
        self.targets
            .iter()
            .map(|t| Family::of(&t.address))
            .collect()
    }

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
    let names: BTreeSet<&str> = fleet
        .hosts
        .iter()
        .flat_map(|h| h.tcp_backends.iter().chain(h.udp_backends.iter()))
        .map(|b| b.name.as_str())
        .collect();
    let backends: Vec<String> = if test.backends.is_empty() {
        // Every TCP backend with a server on the worker, and every UDP one that is watched
        // (an unchecked UDP server is never marked down: breaking it would only cost flows).
        let mut names = BTreeSet::new();
        for h in &fleet.hosts {
            for b in h.tcp_backends.iter().chain(h.udp_backends.iter()) {
                if b.servers.iter().any(|s| on_worker(&s.address))
                    && (b.protocol == Protocol::Tcp || udp_unwatched(h, b).is_none())
                {
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
            if !names.contains(name.as_str()) {
                return Err(DrillError::NoSuchBackend {
                    name: name.clone(),
                    known: names.iter().map(ToString::to_string).collect(),
                });
            }
            for h in &fleet.hosts {
                if let Some(b) = h.udp_backends.iter().find(|b| &b.name == name)
                    && let Some(why) = udp_unwatched(h, b)
                {
                    return Err(DrillError::UdpUnwatched {
                        name: name.clone(),
                        lb: h.name.clone(),
                        why,
                    });
                }
            }
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
            let Some(b) = h
                .tcp_backends
                .iter()
                .chain(h.udp_backends.iter())
                .find(|b| &b.name == name)
            else {
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
                let check_port = b
                    .udp_health_check
                    .as_ref()
                    .and_then(UdpHealthCheck::port)
                    .filter(|&p| p != s.port);
                targets.push(Target {
                    lb: h.name.clone(),
                    backend: name.clone(),
                    protocol: b.protocol,
                    server: s.name.clone(),
                    address: s.address.clone(),
                    port: s.port,
                    check_port,
                    inter_ms: inter,
                    rise: s.rise,
                    fall: s.fall,
                    detect_budget_ms: detect_budget(inter, s.fall),
                    recover_budget_ms: recover_budget(inter, s.rise),
                });
            }
        }
    }
    let mut ports = BTreeSet::new();
    let mut udp_ports = BTreeSet::new();
    for t in &targets {
        match (t.protocol, t.check_port) {
            (Protocol::Tcp, _) => ports.insert(t.port),
            (Protocol::Udp, check_port) => {
                let datagram = matches!(
                    fleet
                        .host(&t.lb)
                        .and_then(|h| h.udp_backends.iter().find(|b| b.name == t.backend))
                        .and_then(|b| b.udp_health_check.as_ref()),
                    Some(UdpHealthCheck::Udp { .. })
                );
                match (check_port, datagram) {
                    (Some(p), true) => udp_ports.insert(p),
                    (Some(p), false) => ports.insert(p),
                    (None, _) => false,
                };
                udp_ports.insert(t.port)
            }
        };
    }
    Ok(Plan {
        worker: worker.name.clone(),
        lbs: fleet.hosts.iter().map(|h| h.name.clone()).collect(),
        probe_targets: probe_targets(fleet, &backends)?,
        backends,
        targets,
        ports: ports.into_iter().collect(),
        udp_ports: udp_ports.into_iter().collect(),
        probe_timeout,
    })
}

/// Why a UDP backend's servers would never be marked down, if they would not: the drill
/// needs the nginx engine's watcher and HAProxy's checks.
fn udp_unwatched(host: &HostSpec, backend: &Backend) -> Option<&'static str> {
    if host.udp_health.is_none() {
        Some("is carried by LVS, whose checks keepalived keeps to itself")
    } else if backend.udp_health_check.is_none() {
        Some("has no `health_check`: nothing marks its servers down")
    } else {
        None
    }
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
        let Some(b) = fleet.hosts.iter().find_map(|h| {
            h.tcp_backends
                .iter()
                .chain(h.udp_backends.iter())
                .find(|b| &b.name == name)
        }) else {
            continue;
        };
        // A UDP service gets what its health check sends, and must answer as it does.
        let datagram = (b.protocol == Protocol::Udp).then(|| match &b.udp_health_check {
            Some(UdpHealthCheck::Udp { send, expect, .. }) => probe::Datagram {
                payload: send.as_bytes().to_vec(),
                expect: expect.as_deref().unwrap_or("").as_bytes().to_vec(),
            },
            _ => probe::Datagram {
                payload: UDP_PROBE_PAYLOAD.to_vec(),
                expect: Vec::new(),
            },
        });
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
            let target = probe::Target {
                host,
                port: b.port,
                datagram: datagram.clone(),
            };
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
