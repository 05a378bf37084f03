//! A drill as it happened, on one time axis: milliseconds from the start of the client probe.
//! Every drill fills the same shape, so one picture (`failover-test --report`) draws them all:
//!
//! - `probes`: every client connection, when it started, how long it took, and whether it
//!   succeeded;
//! - `windows`: what was broken, and when (the fault, a stopped daemon, a cut-off host);
//! - `lanes`: one row per thing watched (a load balancer's server, a load balancer's VIP),
//!   with the periods it spent in a state (`spans`: DOWN, holding the VIP) and the moments that
//!   were measured against a budget (`marks`: DOWN, UP, the VIP's move).

use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Timeline {
    /// What was drilled, in a line.
    pub title: String,
    /// Details: method, hold, probe.
    pub subtitle: String,
    /// The end of the axis (the probe's end, or the last thing on it).
    pub end_ms: u64,
    pub passed: bool,
    /// The verdict, and why it failed if it did.
    pub verdict: Vec<String>,
    /// Where the probe connected, in order: `ProbePoint::target` indexes it.
    pub probe_targets: Vec<String>,
    pub probes: Vec<ProbePoint>,
    pub windows: Vec<Window>,
    pub lanes: Vec<Lane>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbePoint {
    pub at_ms: u64,
    /// Until the first byte, or until it failed.
    pub took_ms: u64,
    pub target: usize,
    /// Why it failed; `None` for a success.
    pub error: Option<String>,
}

/// Something broken on purpose, from `from_ms` to `to_ms`.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    pub label: String,
    pub from_ms: u64,
    pub to_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Lane {
    pub name: String,
    pub spans: Vec<Span>,
    pub marks: Vec<Mark>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpanKind {
    /// The server was marked DOWN (or not yet UP again).
    Down,
    /// The load balancer held the VIP.
    HoldsVip,
    /// A daemon was stopped, or the host cut off.
    Stopped,
}

#[derive(Debug, Clone, Serialize)]
pub struct Span {
    pub kind: SpanKind,
    pub from_ms: u64,
    pub to_ms: u64,
}

/// A measured moment: what was awaited from `from_ms`, within `budget_ms`, and when it came.
#[derive(Debug, Clone, Serialize)]
pub struct Mark {
    pub label: String,
    pub from_ms: u64,
    /// `None`: it never came.
    pub at_ms: Option<u64>,
    pub budget_ms: Option<u64>,
}

impl Mark {
    pub fn within_budget(&self) -> bool {
        match (self.at_ms, self.budget_ms) {
            (Some(at), Some(budget)) => at.saturating_sub(self.from_ms) <= budget,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

impl Timeline {
    /// The axis' end: past everything on it.
    pub fn fit_end(&mut self) {
        let mut end = self.end_ms;
        for p in &self.probes {
            end = end.max(p.at_ms + p.took_ms);
        }
        for w in &self.windows {
            end = end.max(w.to_ms);
        }
        for lane in &self.lanes {
            for s in &lane.spans {
                end = end.max(s.to_ms);
            }
            for m in &lane.marks {
                end = end
                    .max(m.at_ms.unwrap_or(0))
                    .max(m.from_ms + m.budget_ms.unwrap_or(0));
            }
        }
        self.end_ms = end.max(1);
    }
}
