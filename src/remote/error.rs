//! What can go wrong reading what a script printed.

use crate::ssh::RemoteOutput;

/// The remote layer's error: a script's report (or HAProxy's `show stat` in it) that lbctl
/// cannot read, or an error the script reported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error(
        "the host printed no lbctl {script} report: the script did not run (is `sh` there, and does `sudo -n` work?)"
    )]
    Missing { script: &'static str },
    #[error(
        "the {script} report ended early{}: the connection or the script died, so what happened on the host is unknown",
        after.as_ref().map(|after| format!(" after {after}")).unwrap_or_default()
    )]
    Truncated {
        script: &'static str,
        after: Option<String>,
    },
    #[error("line {line} of the {script} report is malformed: {reason}")]
    Malformed {
        script: &'static str,
        line: usize,
        reason: String,
    },
    #[error("cannot read {path} on the host: {message}")]
    Unreadable { path: String, message: String },
    #[error("{0}")]
    Host(String),
    #[error("the runtime API printed no `show stat` header line (is this HAProxy's admin socket?)")]
    NoStatHeader,
    #[error("the `show stat` header has no `{0}` column")]
    MissingStatColumn(&'static str),
    #[error("line {line} of `show stat` is malformed: {reason}")]
    MalformedStat { line: usize, reason: String },
    // HAProxy's `show servers state`, which lbctl could not read.
    #[error("the runtime API did not answer `show servers state` with its version line: {0}")]
    NoServersStateVersion(String),
    #[error("`show servers state` version {0}: this lbctl reads version 1")]
    ServersStateVersion(String),
    #[error("line {line} of `show servers state` is malformed: {reason}")]
    MalformedServersState { line: usize, reason: String },
    /// Any of the above, with what the script left behind: its exit status and stderr often
    /// say why its report could not be read.
    #[error("{error} ({output})")]
    WithOutput {
        error: Box<ReportError>,
        output: RemoteOutput,
    },
}

impl ReportError {
    /// This error, with the output of the script whose report it is about.
    pub fn with_output(self, output: RemoteOutput) -> ReportError {
        ReportError::WithOutput {
            error: Box::new(self),
            output,
        }
    }
}
