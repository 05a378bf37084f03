//! What keeps a change from going ahead ([`AdminError`]), and what went wrong on one load
//! balancer while it went ahead ([`HostProblem`], shown in its report).

use crate::{
    deploy::DeployError,
    remote::{RecordError, ReportError, ScriptOutcome},
};

/// Why a change went ahead nowhere.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AdminError {
    /// A load balancer answered but could not look (a tool missing, an apply holding the
    /// lock), its record is unreadable, or its HAProxy lacks one of the worker's servers.
    #[error("nothing was changed:\n  {}", lines(.0))]
    NotReady(Vec<NotReady>),
    /// The change would leave backends with no server taking new traffic.
    #[error(
        "refusing to take {worker} out: it is the last server taking traffic in {}; nothing was changed",
        .backends.join(", ")
    )]
    LastServer {
        worker: String,
        /// `BACKEND on LB`.
        backends: Vec<String>,
    },
}

impl AdminError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            AdminError::NotReady(_) => None,
            AdminError::LastServer { .. } => Some(
                "bring another server of the backend up first, or pass --force to take the service down"
                    .into(),
            ),
        }
    }
}

fn lines(items: &[NotReady]) -> String {
    let items: Vec<String> = items.iter().map(ToString::to_string).collect();
    items.join("\n  ")
}

/// One load balancer that answered, but not so that the change can go ahead.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NotReady {
    #[error("{host}: {problem}")]
    CannotLook { host: String, problem: HostProblem },
    #[error("{host}: {path}: {error} (move it away to start a new record)")]
    Record {
        host: String,
        path: String,
        error: RecordError,
    },
    #[error(
        "{host}: the running HAProxy has no server {backend}/{server} (is lbctl's configuration applied?)"
    )]
    NoServer {
        host: String,
        backend: String,
        server: String,
    },
    #[error("{host}: HAProxy's runtime API: {error}")]
    RuntimeApi { host: String, error: ReportError },
    #[error("{host}: nginx's stream file is not there (is lbctl's configuration applied?)")]
    NoStreamFile { host: String },
}

/// What went wrong on one load balancer while its admin script ran.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HostProblem {
    /// The connection, or a report lbctl could not read.
    #[error(transparent)]
    Deploy(#[from] DeployError),
    /// The host's own error, which ended the script (a tool missing, the lock held).
    #[error("{0}")]
    Host(String),
    /// HAProxy's answer to a runtime API command that did not work.
    #[error("HAProxy refused: {0}")]
    Refused(String),
    #[error(transparent)]
    RecordNotWritten(ReportError),
    /// nginx's check or reload failed (the previous file is back).
    #[error("{0}")]
    Nginx(String),
    #[error("HAProxy's runtime API after the change: {0}")]
    After(ReportError),
    #[error("{backend}/{server} is {state} after the change")]
    NotAsAsked {
        backend: String,
        server: String,
        state: String,
    },
    #[error("{backend}/{server} is not in HAProxy after the change")]
    Vanished { backend: String, server: String },
    /// The script ended `failed` or `stopped` without saying why.
    #[error("the admin script ended {0}")]
    Ended(ScriptOutcome),
    /// Connected, but the change's outcome there is unknown.
    #[error("{0}; what happened there is unknown: the next apply or drain brings it in line")]
    Unknown(Box<HostProblem>),
}

/// Every problem one load balancer had, in the order they were found.
#[derive(Debug, Clone, Default, thiserror::Error)]
#[error("{}", join(.0))]
pub struct Problems(pub Vec<HostProblem>);

fn join(problems: &[HostProblem]) -> String {
    let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
    problems.join("; ")
}
