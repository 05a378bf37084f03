//! What can stop a drill: a test that does not fit the tier (each with a hint), a tier that
//! is not ready for it, and what went wrong while something was broken, always saying what
//! state the broken host was left in.

use crate::{deploy::DeployError, remote::ReportError, ssh::TransportError};

/// The drill layer's error.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error("`{name}` is a load balancer, not a worker")]
    NotAWorker { name: String },
    #[error(
        "no TCP backend, nor health-checked UDP backend, has a server on `{worker}` ({address})"
    )]
    NothingOnWorker { worker: String, address: String },
    #[error("UDP backend `{name}` on `{lb}` {why}")]
    UdpUnwatched {
        name: String,
        lb: String,
        why: &'static str,
    },
    #[error("there is no backend `{name}`")]
    NoSuchBackend { name: String, known: Vec<String> },
    #[error("load balancer `{lb}` has no backend `{backend}`")]
    BackendMissing { lb: String, backend: String },
    #[error("backend `{backend}` has no server on `{worker}` ({address}) on load balancer `{lb}`")]
    BackendNotOnWorker {
        backend: String,
        worker: String,
        address: String,
        lb: String,
    },
    #[error(
        "server `{server}` of backend `{backend}` has no health check: HAProxy would never mark it DOWN"
    )]
    NoHealthCheck { server: String, backend: String },
    #[error("nothing to probe")]
    NothingToProbe,
    #[error("`{name}` is not a load balancer")]
    NotALoadBalancer {
        name: String,
        group: String,
        names: Vec<String>,
    },
    #[error("`{name}` holds no VIP (no keepalived_vip)")]
    NoVip { name: String },
    #[error("there is only one load balancer: nothing can take the VIP over")]
    OneLoadBalancer,
    /// An --lb drill watches the VIP move to whichever host takes it: every host with a VIP.
    #[error(
        "--limit leaves out {}, which can hold the VIP: an --lb drill watches every load balancer that can take the VIP over",
        .names.join(", ")
    )]
    VipHostsLeftOut { names: Vec<String> },
    #[error("no TCP frontend listens on the VIP to probe")]
    NoVipFrontend,

    /// What pre-flight found wrong, one line per problem.
    #[error("pre-flight failed, nothing was changed:\n  {}", .problems.join("\n  "))]
    Preflight { problems: Vec<String> },
    #[error("`{lb}` does not hold the VIP (`{holder}` does): breaking it moves nothing")]
    NotTheHolder { lb: String, holder: String },
    #[error("refusing to break {worker}: it is the last UP server of {}", .servers.join(", "))]
    LastUpServer {
        worker: String,
        servers: Vec<String>,
    },

    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Report(#[from] ReportError),
    /// An error a drill's script reported from the host.
    #[error("{message}")]
    Remote { message: String },
    /// Ctrl-C or SIGTERM; `when` says at which point (`before anything was changed`, ...).
    #[error("{why} {when}")]
    Interrupted { why: &'static str, when: String },
    /// A load balancer stopped answering polls; `when` is empty or says during what.
    #[error("lost {host}{when}: {error}")]
    Lost {
        host: String,
        when: String,
        error: Box<DeployError>,
    },

    #[error("cannot arm the dead man's switch on {host}: {message}")]
    SwitchNotArmed { host: String, message: String },
    #[error("cannot insert the iptables rules on {host}: {message}")]
    RulesNotInserted { host: String, message: String },
    #[error("{host}: {message}")]
    NotStopped { host: String, message: String },
    #[error("cannot remove the rules from {worker}: {first}; then, over a new connection: {again}")]
    RulesNotRemoved {
        worker: String,
        first: Box<DrillError>,
        again: Box<DrillError>,
    },
    /// The worker could not be restored; the switch will.
    #[error(
        "{}{error}; its dead man's switch removes them by itself within {switch_s} s of arming",
        then(.fault)
    )]
    NotRestored {
        fault: Option<Box<DrillError>>,
        error: Box<DrillError>,
        switch_s: u64,
    },
    /// The fault failed, and the worker was restored.
    #[error("{fault}; {worker} restored: {}", restored(.rules_left))]
    FaultFailed {
        fault: Box<DrillError>,
        worker: String,
        rules_left: Vec<String>,
    },
    /// The broken load balancer could not be repaired: `what` says how it was to be
    /// (`cannot start haproxy again`, `cannot put lb1 back on the network`).
    #[error("{what}: {cause}")]
    NotRepaired {
        what: String,
        cause: Box<DrillError>,
    },
    /// The load balancer could not be repaired; the switch will.
    #[error(
        "{}{error}; the dead man's switch repairs it by itself within {switch_s} s of the break",
        then(.stop)
    )]
    NotRestarted {
        stop: Option<Box<DrillError>>,
        error: Box<DrillError>,
        switch_s: u64,
    },

    #[error("cannot stop the remote probe: {0}")]
    ProbeNotStopped(TransportError),
    #[error("the probe task failed: {0}")]
    ProbeTask(String),
    #[error("a probe attempt failed: {0}")]
    ProbeAttempt(String),
    #[error("the remote probe: {0}")]
    RemoteProbe(TransportError),
    #[error("the remote probe on {host}: {error}")]
    RemoteProbeReport { host: String, error: ReportError },
}

impl DrillError {
    /// What to do about it, for a test that does not fit the tier.
    pub fn hint(&self) -> Option<String> {
        const ON_WORKER: &str = "a server is on the worker when its `address` is the worker's ansible_host or inventory name";
        Some(match self {
            DrillError::NotAWorker { name } => {
                format!("break a load balancer with `failover-test --lb {name}`")
            }
            DrillError::NothingOnWorker { .. } | DrillError::BackendNotOnWorker { .. } => {
                ON_WORKER.into()
            }
            DrillError::UdpUnwatched { .. } => {
                "give it a `health_check` and the nginx engine (README: UDP health): failover-test times HAProxy's checks and lbctl's UDP health watcher".into()
            }
            DrillError::NoSuchBackend { known, .. } => {
                format!("TCP and UDP backends: {}", known.join(", "))
            }
            DrillError::BackendMissing { .. } => {
                "the backends to break must exist on every load balancer".into()
            }
            DrillError::NoHealthCheck { .. } => "set `check: true` on it (the default)".into(),
            DrillError::NotALoadBalancer { group, names, .. } => {
                format!("load balancers ({group}): {}", names.join(", "))
            }
            DrillError::NoVip { .. } => {
                "a load-balancer failover test moves the VIP; configure keepalived first".into()
            }
            DrillError::OneLoadBalancer => "add a second host to the load-balancer group".into(),
            DrillError::VipHostsLeftOut { .. } => {
                "drop --limit, or select every load balancer with keepalived in it".into()
            }
            DrillError::NoVipFrontend => {
                "name TCP backends bound to `*` with --backend, or none for all of them".into()
            }
            DrillError::NotTheHolder { lb, holder } => format!(
                "run `failover-test --lb {holder}`, or pass --force to break `{lb}` anyway"
            ),
            DrillError::LastUpServer { .. } => "bring another server of the backend UP first, or pass --force to take the service down for the test".into(),
            _ => return None,
        })
    }
}

/// `"<error>; then "`, or nothing.
fn then(error: &Option<Box<DrillError>>) -> String {
    error
        .as_ref()
        .map(|e| format!("{e}; then "))
        .unwrap_or_default()
}

fn restored(rules_left: &[String]) -> String {
    if rules_left.is_empty() {
        "its rules are removed and the switch disarmed".to_string()
    } else {
        format!("lbctl rules still on it: {}", rules_left.join("; "))
    }
}
