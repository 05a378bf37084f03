//! What can go wrong on one host during `plan`, `apply` or `status`; reports carry it as the
//! host's error, so one host's failure never hides the others'.

use crate::{
    remote::ReportError,
    ssh::{RemoteOutput, TransportError},
};

/// The deploy layer's error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Report(#[from] ReportError),
    /// A fetch or apply report lbctl could not read, with what the script left behind.
    #[error("{error}; {output}")]
    Unreadable {
        error: ReportError,
        output: RemoteOutput,
    },
    /// A script ended before it reported what it saw, without saying why.
    #[error("the {script} script ended early ({output})")]
    ScriptEnded {
        script: &'static str,
        output: RemoteOutput,
    },
    /// The connection dropped after the go-ahead.
    #[error("{0}; the host rolls back by itself when the connection drops mid-apply")]
    ApplyInterrupted(TransportError),
    /// Why a load balancer cannot take the VIP over while its holder changes: its status
    /// could not be read, it has no VIP, or a daemon keepalived needs is down.
    #[error("unreachable: {0}")]
    StandbyUnreachable(String),
    #[error("no VIP is configured for it")]
    StandbyWithoutVip,
    #[error("keepalived is not running")]
    StandbyWithoutKeepalived,
    #[error("HAProxy is not running, so keepalived's tracked check gives the VIP away")]
    StandbyWithoutHaproxy,
}
