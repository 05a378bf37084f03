//! What can go wrong building a spec: invalid input (every located problem at once), a host
//! that the command line names and the inventory does not have, or a worker whose servers
//! cannot be found as the command line asks.

use crate::source::Diagnostic;

/// The spec layer's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("{} problem{} found in the input; nothing was changed", .0.len(), if .0.len() == 1 { "" } else { "s" })]
    Invalid(Vec<Diagnostic>),
    #[error("the inventory has no host `{name}` (the {what})")]
    UnknownHost {
        name: String,
        what: &'static str,
        known: Vec<String>,
    },
    // A worker's servers (`spec::Worker`).
    #[error("`{name}` is a load balancer, not a worker")]
    WorkerIsLoadBalancer { name: String },
    #[error("no backend has a server on `{worker}` ({address})")]
    NoServersOnWorker { worker: String, address: String },
    #[error("there is no backend `{name}`")]
    UnknownBackend { name: String, known: Vec<String> },
    #[error("backend `{backend}` has no server on `{worker}` ({address})")]
    NotInBackend {
        backend: String,
        worker: String,
        address: String,
    },
    #[error(
        "backend `{backend}` is UDP through keepalived's LVS on {lb}: lbctl cannot take a server out of it without a reload"
    )]
    WorkerInLvs { backend: String, lb: String },
}

impl SpecError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            SpecError::UnknownHost { known, .. } => {
                Some(format!("hosts in the inventory: {}", known.join(", ")))
            }
            SpecError::WorkerIsLoadBalancer { .. } => {
                Some("name a worker: an inventory host outside the load-balancer group".into())
            }
            SpecError::NoServersOnWorker { .. } | SpecError::NotInBackend { .. } => Some(
                "a server is on the worker when its `address` is the worker's ansible_host or inventory name".into(),
            ),
            SpecError::UnknownBackend { known, .. } => {
                Some(format!("backends: {}", known.join(", ")))
            }
            SpecError::WorkerInLvs { .. } => Some(
                "leave it out by naming the other backends with --backend, or use lbctl_udp_engine: nginx".into(),
            ),
            SpecError::Invalid(_) => None,
        }
    }
}
