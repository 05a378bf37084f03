//! A worker as the load balancers know it: its servers are those whose `address` is its
//! `ansible_host` or its inventory name, in every backend of every load balancer. Both the
//! failover drill (which breaks them) and `drain|maint|ready|weight` (which take them out and
//! put them back) find a worker's servers here.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::spec::{Connection, Fleet, SpecError, UdpEngine};

/// An inventory host outside the load-balancer group, by name and address.
#[derive(Debug, Clone, Copy)]
pub struct Worker<'a> {
    pub name: &'a str,
    pub address: &'a str,
}

/// Which list a backend is in, and so what carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Tcp,
    Http,
    /// UDP through nginx's stream module.
    Udp,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Tcp => "TCP",
            Kind::Http => "HTTP",
            Kind::Udp => "UDP",
        }
    }
}

/// One of the worker's servers, in one backend, on one load balancer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placement {
    pub lb: String,
    pub kind: Kind,
    pub backend: String,
    pub server: String,
    pub address: String,
    pub port: u16,
    /// The weight in the configuration (`None`: the engine's default, 1).
    pub weight: Option<u32>,
}

impl<'a> Worker<'a> {
    pub fn of(connection: &'a Connection) -> Worker<'a> {
        Worker {
            name: &connection.name,
            address: &connection.address,
        }
    }

    /// Whether a server with this `address` is on the worker.
    pub fn serves(&self, address: &str) -> bool {
        address == self.address || address == self.name
    }

    /// The worker's servers on every load balancer, in `backends` (every backend it is in
    /// when empty), in the fleet's order, then TCP, HTTP and UDP backends in their lists'
    /// order. A backend named that no load balancer has, or that has no server on the
    /// worker, is an error.
    pub fn placements(
        &self,
        fleet: &Fleet,
        backends: &[String],
    ) -> Result<Vec<Placement>, SpecError> {
        if fleet.host(self.name).is_some() {
            return Err(SpecError::WorkerIsLoadBalancer {
                name: self.name.to_string(),
            });
        }
        let mut known = BTreeSet::new();
        let mut placements = Vec::new();
        for h in &fleet.hosts {
            let lists = [
                (
                    Kind::Tcp,
                    h.tcp_backends
                        .iter()
                        .map(|b| (&b.name, &b.servers))
                        .collect::<Vec<_>>(),
                ),
                (
                    Kind::Http,
                    h.http_backends
                        .iter()
                        .map(|b| (&b.name, &b.servers))
                        .collect(),
                ),
                (
                    Kind::Udp,
                    h.udp_backends
                        .iter()
                        .map(|b| (&b.name, &b.servers))
                        .collect(),
                ),
            ];
            for (kind, list) in lists {
                for (backend, servers) in list {
                    known.insert(backend.clone());
                    if !backends.is_empty() && !backends.contains(backend) {
                        continue;
                    }
                    for s in servers.iter().filter(|s| self.serves(&s.address)) {
                        if kind == Kind::Udp && matches!(h.udp_engine, UdpEngine::Lvs) {
                            return Err(SpecError::WorkerInLvs {
                                backend: backend.clone(),
                                lb: h.name.clone(),
                            });
                        }
                        placements.push(Placement {
                            lb: h.name.clone(),
                            kind,
                            backend: backend.clone(),
                            server: s.name.clone(),
                            address: s.address.clone(),
                            port: s.port,
                            weight: s.weight,
                        });
                    }
                }
            }
        }
        for name in backends {
            if !known.contains(name) {
                return Err(SpecError::UnknownBackend {
                    name: name.clone(),
                    known: known.iter().cloned().collect(),
                });
            }
            if !placements.iter().any(|p| &p.backend == name) {
                return Err(SpecError::NotInBackend {
                    backend: name.clone(),
                    worker: self.name.to_string(),
                    address: self.address.to_string(),
                });
            }
        }
        if placements.is_empty() {
            return Err(SpecError::NoServersOnWorker {
                worker: self.name.to_string(),
                address: self.address.to_string(),
            });
        }
        Ok(placements)
    }
}
