//! What a load-balancer drill reports: how long the VIP took to move against its budget,
//! whether the tier was whole again, and what the client probe saw in each phase.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Break, LbTest, Plan, SETTLE, observe::Seen, phases::Restarted};
use crate::{
    drill::clock::millis,
    drill::probe::{Recorded, Tally},
    drill::timeline::{Lane, Mark, Span, SpanKind, Timeline, Window},
    drill::watch::Sample,
};

#[derive(Debug, Clone, Serialize)]
pub struct LbReport {
    pub run_id: String,
    pub lb: String,
    pub method: Break,
    /// The VIP holder before the test; when it is not `lb` (`--force`), the VIP is not
    /// expected to move and `vip_moved_ms` stays empty.
    pub holder_before: String,
    /// From the break (the stop command, the kill, the first rule) until another load
    /// balancer held the VIP (and this one no longer did, unless it may keep it: see
    /// `Plan::holder_may_keep_vip`), polled every [`POLL_EVERY`](super::POLL_EVERY); `None`:
    /// not within twice the budget.
    pub vip_moved_ms: Option<u64>,
    pub new_holder: Option<String>,
    pub move_budget_ms: u64,
    /// How long the host was broken.
    pub stopped_ms: u64,
    /// From the repair until the tier was whole again (daemons running, one holder).
    pub settled_ms: Option<u64>,
    pub holder_after: Vec<String>,
    /// lbctl failover rules left on the broken host after the repair (none, normally).
    pub rules_left: Vec<String>,
    pub probe: ProbeReport,
    pub switch_fires_after_ms: u64,
    pub passed: bool,
    pub failures: Vec<String>,
    /// The drill on one time axis, for `--report` (not in `--json`).
    #[serde(skip)]
    pub timeline: Timeline,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub from: String,
    pub targets: Vec<String>,
    pub rate: u32,
    pub timeout_ms: u64,
    pub before: Tally,
    /// From the break until another load balancer held the VIP.
    pub during_move: Tally,
    /// While the host stayed broken after the VIP moved.
    pub while_stopped: Tally,
    /// From the repair until the tier was whole again (the VIP may move back).
    pub restore: Tally,
    pub after: Tally,
    pub total: Tally,
}

/// What a run measured, for its report.
pub(super) struct Measured {
    pub run_id: String,
    /// Every load balancer's samples, in the fleet's order.
    pub samples: Vec<Vec<Sample<Seen>>>,
    pub recorded: Recorded,
    /// Where the probe ran.
    pub probe_from: String,
    pub holder_before: String,
    /// Whether the broken host held the VIP, so that it had to move.
    pub moves: bool,
    pub restarted: Restarted,
    /// When the tier was whole again.
    pub settled: Option<Instant>,
    pub switch_fires_after: Duration,
}

/// Phase 6: the report, with every budget missed as a failure.
pub(super) fn build(plan: &Plan, test: &LbTest, measured: Measured) -> LbReport {
    let Measured {
        run_id,
        samples,
        recorded,
        probe_from,
        holder_before,
        moves,
        restarted:
            Restarted {
                moved_at,
                new_holder,
                stopped_at,
                started_at,
                rules_left,
            },
        settled,
        switch_fires_after,
    } = measured;
    let holder_after: Vec<String> = plan
        .lbs
        .iter()
        .zip(&samples)
        .filter(|(_, s)| s.last().is_some_and(|s| s.value.holds_vip))
        .map(|(n, _)| n.clone())
        .collect();

    let longest = plan.longest_stop(test.hold);
    let probe_report = ProbeReport {
        from: probe_from,
        targets: plan.probe_targets.iter().map(ToString::to_string).collect(),
        rate: test.probe_rate,
        timeout_ms: plan.probe_timeout.as_millis() as u64,
        before: recorded.tally(recorded.started, Some(stopped_at)),
        during_move: recorded.tally(stopped_at, Some(moved_at.unwrap_or(started_at))),
        while_stopped: match moved_at {
            Some(m) => recorded.tally(m, Some(started_at)),
            None => Tally::default(),
        },
        restore: recorded.tally(started_at, settled),
        after: match settled {
            Some(s) => recorded.tally(s, None),
            None => Tally::default(),
        },
        total: recorded.tally(recorded.started, None),
    };
    let vip_moved_ms = moved_at.map(|m| millis(stopped_at, m));
    let mut failures = Vec::new();
    match vip_moved_ms {
        _ if !moves => {}
        Some(ms) if ms > plan.move_budget.as_millis() as u64 => failures.push(format!(
            "the VIP moved after {ms} ms, budget {} ms",
            plan.move_budget.as_millis()
        )),
        Some(_) => {}
        None => failures.push(format!(
            "the VIP did not move within {} ms (budget {} ms)",
            longest.as_millis(),
            plan.move_budget.as_millis()
        )),
    }
    if settled.is_none() {
        failures.push(format!(
            "the tier was not whole again within {} s of the repair (holders now: {})",
            SETTLE.as_secs(),
            if holder_after.is_empty() {
                "none".to_string()
            } else {
                holder_after.join(", ")
            }
        ));
    }
    // checked before the drill too (pre-flight): exactly one holder
    match holder_after.as_slice() {
        [_] => {}
        [] => failures.push("after the drill no load balancer holds the VIP".to_string()),
        many => failures.push(format!(
            "split brain after the drill: {} hold the VIP at once",
            many.join(" and ")
        )),
    }
    if !rules_left.is_empty() {
        failures.push(format!(
            "lbctl rules left on {}: {}",
            plan.lb,
            rules_left.join("; ")
        ));
    }
    let stopped = format!("{} on {}", test.method.name(), plan.lb);
    let mut lanes: Vec<Lane> = plan
        .lbs
        .iter()
        .zip(&samples)
        .map(|(name, samples)| Lane {
            name: format!("{name} VIP"),
            spans: holding(samples, &recorded),
            marks: Vec::new(),
        })
        .collect();
    if moves
        && let Some(lane) = new_holder
            .as_ref()
            .and_then(|h| lanes.iter_mut().find(|l| l.name == format!("{h} VIP")))
    {
        lane.marks.push(Mark {
            label: "VIP moved".into(),
            from_ms: recorded.ms(stopped_at),
            at_ms: moved_at.map(|m| recorded.ms(m)),
            budget_ms: Some(plan.move_budget.as_millis() as u64),
        });
    } else if moves && let Some(lane) = lanes.first_mut() {
        lane.marks.push(Mark {
            label: "VIP moved".into(),
            from_ms: recorded.ms(stopped_at),
            at_ms: None,
            budget_ms: Some(plan.move_budget.as_millis() as u64),
        });
    }
    let mut verdict = vec![format!(
        "{}: {} of {} client connections failed",
        if failures.is_empty() {
            "PASSED"
        } else {
            "FAILED"
        },
        probe_report.total.failed,
        probe_report.total.attempts
    )];
    verdict.extend(failures.iter().cloned());
    let mut timeline = Timeline {
        title: format!("failover-test --lb {}: {stopped}", plan.lb),
        subtitle: format!(
            "VIP holder before: {holder_before}; move budget {:.1} s; probe {}/s to {}",
            plan.move_budget.as_secs_f64(),
            test.probe_rate,
            probe_report.targets.join(", ")
        ),
        end_ms: 0,
        passed: failures.is_empty(),
        verdict,
        probe_targets: probe_report.targets.clone(),
        probes: recorded.points(),
        windows: vec![Window {
            label: stopped,
            from_ms: recorded.ms(stopped_at),
            to_ms: recorded.ms(started_at),
        }],
        lanes,
    };
    timeline.fit_end();
    LbReport {
        timeline,
        run_id,
        lb: plan.lb.clone(),
        method: test.method,
        holder_before,
        vip_moved_ms,
        new_holder,
        move_budget_ms: plan.move_budget.as_millis() as u64,
        stopped_ms: millis(stopped_at, started_at),
        settled_ms: settled.map(|s| millis(started_at, s)),
        holder_after,
        rules_left,
        probe: probe_report,
        switch_fires_after_ms: switch_fires_after.as_millis() as u64,
        passed: failures.is_empty(),
        failures,
    }
}

/// The periods a load balancer was seen holding the VIP, on the probe's axis.
fn holding(samples: &[Sample<Seen>], recorded: &Recorded) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut from = None;
    for s in samples {
        match (s.value.holds_vip, from) {
            (true, None) => from = Some(recorded.ms(s.at)),
            (false, Some(start)) => {
                spans.push(Span {
                    kind: SpanKind::HoldsVip,
                    from_ms: start,
                    to_ms: recorded.ms(s.at),
                });
                from = None;
            }
            _ => {}
        }
    }
    if let (Some(start), Some(last)) = (from, samples.last()) {
        spans.push(Span {
            kind: SpanKind::HoldsVip,
            from_ms: start,
            to_ms: recorded.ms(last.at),
        });
    }
    spans
}
