//! The stable, machine-readable result of `plan` and `apply` (`--json`), also what the text
//! output is printed from.

use serde::Serialize;

use crate::{
    deploy::plan::{FilePlan, HostPlan},
    deploy::runtime_state::RuntimeState,
    remote::{Failure, StepResult},
    spec::Service,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Nothing to change (and so nothing was written or reloaded).
    Unchanged,
    /// `plan` only: the host would change.
    WouldChange,
    Applied,
    /// The apply failed on this host; see `failure` and `rolled_back`.
    Failed,
    /// Not changed because another host failed (during the checks, or in an earlier wave).
    Skipped,
    /// The host could not be surveyed (connect or fetch failed).
    Unreachable,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub host: String,
    pub holds_vip: bool,
    pub changed: bool,
    pub outcome: Outcome,
    pub files: Vec<FilePlan>,
    /// The daemons the apply starts rather than reloads: it installs their configuration and
    /// they do not run (a fresh host's keepalived). The apply decides again on the host.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub starts: Vec<Service>,
    /// The daemons that do not run on the host and that the apply does not start, as the
    /// survey found them (`haproxy`, `keepalived`, `nginx`, `udp-health`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_running: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<HostError>,
    pub rolled_back: bool,
    /// This host's apply, in seconds: its check and, from the go-ahead, its swap, reload and
    /// verify (not the wait for earlier waves).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// Where this host's time went.
    pub timing: Timing,
}

/// Where one host's time went, in seconds (`--json` only): what `bench/run` profiles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Timing {
    /// Opening the SSH connection (next to nothing when an earlier run's was kept).
    pub connect: f64,
    /// The connection was one an earlier run kept open (`--ssh-persist`).
    pub reused_connection: bool,
    /// The fetch script's round trip.
    pub fetch: f64,
    /// Apply, phase 1: staging and checking the files, until the host was ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<f64>,
    /// Apply, phase 2: from the go-ahead to the end (swap, reload, verify).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apply: Option<f64>,
}

impl HostReport {
    pub fn planned(plan: HostPlan) -> HostReport {
        let changed = plan.changed();
        HostReport {
            host: plan.host,
            holds_vip: plan.holds_vip,
            changed,
            outcome: if changed {
                Outcome::WouldChange
            } else {
                Outcome::Unchanged
            },
            files: plan.files,
            starts: plan.starts,
            not_running: plan.not_running,
            steps: Vec::new(),
            failure: None,
            error: None,
            rolled_back: false,
            seconds: None,
            timing: Timing::default(),
        }
    }

    pub fn unreachable(error: HostError) -> HostReport {
        HostReport {
            host: error.host.clone(),
            holds_vip: false,
            changed: false,
            outcome: Outcome::Unreachable,
            files: Vec::new(),
            starts: Vec::new(),
            not_running: Vec::new(),
            steps: Vec::new(),
            failure: None,
            error: Some(error),
            rolled_back: false,
            seconds: None,
            timing: Timing::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub command: &'static str,
    pub hosts: Vec<HostReport>,
    pub summary: Summary,
    /// Seconds lbctl spent before talking to any host: loading the inventory and vars,
    /// and rendering.
    pub prepare_seconds: f64,
    /// The plan file this plan was saved to (`plan --out`), or applied from (`apply FILE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_file: Option<String>,
    /// The admin state lbctl set (drains, maintenance, weights), next to the files.
    pub runtime: RuntimeState,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub changed: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub unreachable: usize,
}

impl Report {
    pub fn new(command: &'static str, hosts: Vec<HostReport>) -> Report {
        let mut summary = Summary::default();
        for h in &hosts {
            match h.outcome {
                Outcome::Unchanged => summary.unchanged += 1,
                Outcome::WouldChange | Outcome::Applied => summary.changed += 1,
                Outcome::Failed => summary.failed += 1,
                Outcome::Unreachable => summary.unreachable += 1,
                Outcome::Skipped => {}
            }
        }
        Report {
            command,
            hosts,
            summary,
            prepare_seconds: 0.0,
            plan_file: None,
            runtime: RuntimeState::default(),
        }
    }

    pub fn has_errors(&self) -> bool {
        self.summary.failed + self.summary.unreachable > 0
    }
}

/// A failure on one host, with the step that failed and the program's own message.
#[derive(Debug, Clone, Serialize)]
pub struct HostError {
    pub host: String,
    pub step: String,
    pub message: String,
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} failed: {}", self.host, self.step, self.message)
    }
}
