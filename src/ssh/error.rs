//! What can go wrong between lbctl and a host's shell; every message names the host.

use std::time::Duration;

/// The SSH layer's error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    #[error("{host} ({target}): host key verification failed: {message}")]
    HostKey {
        host: String,
        target: String,
        message: String,
    },
    #[error("{host} ({target}): cannot connect: {message}")]
    Connect {
        host: String,
        target: String,
        message: String,
    },
    #[error(
        "{host} ({target}): no SSH session after {waited:?}; the host or a jump host is not answering"
    )]
    Timeout {
        host: String,
        target: String,
        waited: Duration,
    },
    #[error("{host} ({target}): the SSH connection was lost: {message}")]
    Disconnected {
        host: String,
        target: String,
        message: String,
    },
    #[error("{host} ({target}): cannot run the remote shell: {message}")]
    Run {
        host: String,
        target: String,
        message: String,
    },
    /// A task that connected or ran a script panicked or was cancelled.
    #[error("the {what} task failed: {message}")]
    Task { what: &'static str, message: String },
    /// Some of the hosts a drill needs cannot be reached.
    #[error("pre-flight: cannot reach {}", join(.hosts))]
    Unreachable { hosts: Vec<TransportError> },
}

fn join(errors: &[TransportError]) -> String {
    let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    errors.join("; ")
}
