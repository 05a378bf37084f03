//! What a worker drill reports: per load balancer and server, detection and recovery against
//! their budgets; what the client probe saw in each phase; and why it failed, if it did.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::{
    Plan, Target, WorkerTest,
    fault::Method,
    observe::{Observed, first_at, is_down, is_up, positions},
};
use crate::{
    drill::clock::millis,
    drill::probe::{Recorded, Tally},
    drill::timeline::{Lane, Mark, Span, SpanKind, Timeline, Window},
    drill::watch::Sample,
};

#[derive(Debug, Clone, Serialize)]
pub struct WorkerReport {
    pub run_id: String,
    pub worker: String,
    pub method: Method,
    pub backends: Vec<String>,
    /// The worker's TCP ports that were broken.
    pub ports: Vec<u16>,
    /// The worker's UDP ports that were broken.
    pub udp_ports: Vec<u16>,
    /// How long the rules were in place.
    pub fault_ms: u64,
    pub results: Vec<TargetResult>,
    pub probe: ProbeReport,
    /// When the dead man's switch would have removed the rules, counted from arming.
    pub switch_fires_after_ms: u64,
    /// lbctl-failover rules on the worker after the restore (none, when all went well).
    pub rules_left: Vec<String>,
    /// What was wrong with who held the VIP after the drill: split brain, or no holder.
    pub vip_after: Vec<String>,
    pub max_failed: u64,
    pub passed: bool,
    /// Why the test failed, one reason per line; empty when it passed.
    pub failures: Vec<String>,
    /// The drill on one time axis, for `--report` (not in `--json`).
    #[serde(skip)]
    pub timeline: Timeline,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetResult {
    #[serde(flatten)]
    pub target: Target,
    /// From sending the rules until this load balancer showed the server DOWN (polled every
    /// [`POLL_EVERY`](super::POLL_EVERY), so up to that much late); for a UDP server, until
    /// nginx also had it marked down, so no new flow went to it. `None`: not while the fault
    /// was on.
    pub detected_ms: Option<u64>,
    pub detected_in_budget: bool,
    /// From the moment the rules were gone until it showed the server steadily UP (for a UDP
    /// server, and back in nginx).
    pub recovered_ms: Option<u64>,
    pub recovered_in_budget: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// `lbctl` (where lbctl runs) or the `--probe-from` host.
    pub from: String,
    pub targets: Vec<String>,
    pub rate: u32,
    pub timeout_ms: u64,
    /// Before the rules went in.
    pub before: Tally,
    /// While the rules were in place.
    pub fault: Tally,
    /// Datagrams sent while the rules were in place but before every load balancer had
    /// marked the broken UDP servers down: the flows UDP cannot save (a datagram is not
    /// retried on another server), which the detection budget bounds. Not held against the
    /// test.
    pub unnoticed: Tally,
    /// While the rules were in place, after every load balancer had marked every broken
    /// server down (for UDP: out of nginx): nothing may fail here.
    pub noticed: Tally,
    /// After the rules were removed, until every load balancer showed the server UP.
    pub recovery: Tally,
    /// The rest.
    pub after: Tally,
    pub total: Tally,
}

/// What a run measured, for its report.
pub(super) struct Measured {
    pub run_id: String,
    /// Every load balancer's samples, in the fleet's order.
    pub samples: Vec<Vec<Sample<Observed>>>,
    pub recorded: Recorded,
    /// Where the probe ran.
    pub probe_from: String,
    pub fault_on: Instant,
    pub fault_off: Instant,
    /// When every load balancer showed every target UP again.
    pub recovered: Option<Instant>,
    pub rules_left: Vec<String>,
    /// What was wrong with who held the VIP after the drill (split brain, none).
    pub vip_after: Vec<String>,
    /// The tag on this run's rules.
    pub tag: String,
    pub switch_fires_after: Duration,
}

/// Phase 6: the report, with every budget missed as a failure.
pub(super) fn build(plan: &Plan, test: &WorkerTest, measured: Measured) -> WorkerReport {
    let Measured {
        run_id,
        samples,
        recorded,
        probe_from,
        fault_on,
        fault_off,
        recovered: end,
        rules_left,
        vip_after,
        tag,
        switch_fires_after,
    } = measured;
    let longest_fault = plan.longest_fault(test.hold);
    let recover_deadline = plan.max_recover_budget() * 2;
    let results = results(plan, &samples, fault_on, fault_off);
    // When the last load balancer took the last broken server out; the fault's end if one
    // never did (the test then fails on the detection it missed).
    let noticed_at = results
        .iter()
        .map(|r| r.detected_ms.map(|ms| fault_on + Duration::from_millis(ms)))
        .try_fold(fault_on, |last, at| at.map(|at| last.max(at)))
        .unwrap_or(fault_off)
        .min(fault_off);
    let probe_report = ProbeReport {
        from: probe_from,
        targets: plan.probe_targets.iter().map(ToString::to_string).collect(),
        rate: test.probe_rate,
        timeout_ms: plan.probe_timeout.as_millis() as u64,
        before: recorded.tally(recorded.started, Some(fault_on)),
        fault: recorded.tally(fault_on, Some(fault_off)),
        unnoticed: recorded.tally_udp(fault_on, Some(noticed_at)),
        noticed: recorded.tally(noticed_at, Some(fault_off)),
        recovery: match end {
            Some(end) => recorded.tally(fault_off, Some(end)),
            None => recorded.tally(fault_off, None),
        },
        after: match end {
            Some(end) => recorded.tally(end, None),
            None => Tally::default(),
        },
        total: recorded.tally(recorded.started, None),
    };
    let mut failures = Vec::new();
    for r in &results {
        let t = &r.target;
        let what = format!("{}: {}/{}", t.lb, t.backend, t.server);
        match r.detected_ms {
            Some(ms) if !r.detected_in_budget => failures.push(format!(
                "{what} marked DOWN after {ms} ms, budget {} ms",
                t.detect_budget_ms
            )),
            None => failures.push(format!(
                "{what} not marked DOWN within {} ms (budget {} ms)",
                longest_fault.as_millis(),
                t.detect_budget_ms
            )),
            _ => {}
        }
        match r.recovered_ms {
            Some(ms) if !r.recovered_in_budget => failures.push(format!(
                "{what} marked UP after {ms} ms, budget {} ms",
                t.recover_budget_ms
            )),
            None => failures.push(format!(
                "{what} not marked UP within {} ms (budget {} ms)",
                recover_deadline.as_millis(),
                t.recover_budget_ms
            )),
            _ => {}
        }
    }
    let held_against = probe_report.total.failed - probe_report.unnoticed.failed;
    if held_against > test.max_failed {
        failures.push(format!(
            "{held_against} of {} probe attempts failed (at most {} allowed{})",
            probe_report.total.attempts,
            test.max_failed,
            if probe_report.unnoticed.failed > 0 {
                format!(
                    ", besides {} datagrams lost before the load balancers noticed",
                    probe_report.unnoticed.failed
                )
            } else {
                String::new()
            }
        ));
    }
    if rules_left.iter().any(|r| r.contains(&tag)) {
        failures.push(format!("rules of this run are still on {}", plan.worker));
    }
    failures.extend(vip_after.iter().map(|p| format!("after the drill: {p}")));
    let timeline = timeline(
        plan, test, &recorded, &results, fault_on, fault_off, &failures,
    );
    WorkerReport {
        timeline,
        run_id,
        worker: plan.worker.clone(),
        method: test.method,
        backends: plan.backends.clone(),
        ports: plan.ports.clone(),
        udp_ports: plan.udp_ports.clone(),
        fault_ms: millis(fault_on, fault_off),
        results,
        probe: probe_report,
        switch_fires_after_ms: switch_fires_after.as_millis() as u64,
        rules_left,
        vip_after,
        max_failed: test.max_failed,
        passed: failures.is_empty(),
        failures,
    }
}

fn results(
    plan: &Plan,
    samples: &[Vec<Sample<Observed>>],
    t0: Instant,
    t1: Instant,
) -> Vec<TargetResult> {
    plan.targets
        .iter()
        .zip(positions(plan))
        .map(|(t, (lb, nth))| {
            let detected_ms = first_at(&samples[lb], nth, t0, is_down)
                .filter(|&at| at <= t1)
                .map(|at| millis(t0, at));
            let recovered_ms = first_at(&samples[lb], nth, t1, is_up).map(|at| millis(t1, at));
            TargetResult {
                target: t.clone(),
                detected_ms,
                detected_in_budget: detected_ms.is_some_and(|ms| ms <= t.detect_budget_ms),
                recovered_ms,
                recovered_in_budget: recovered_ms.is_some_and(|ms| ms <= t.recover_budget_ms),
            }
        })
        .collect()
}

/// The drill on the probe's time axis: every probe, the fault, and per load balancer and
/// server the time it spent DOWN with its DOWN and UP marks against their budgets.
fn timeline(
    plan: &Plan,
    test: &WorkerTest,
    recorded: &Recorded,
    results: &[TargetResult],
    fault_on: Instant,
    fault_off: Instant,
    failures: &[String],
) -> Timeline {
    let (on, off) = (recorded.ms(fault_on), recorded.ms(fault_off));
    let method = match test.method {
        Method::Drop => "drop",
        Method::Reject => "reject",
    };
    let ports: Vec<String> = plan.ports.iter().map(|p| format!("{p}/tcp")).collect();
    let lanes = results
        .iter()
        .map(|r| {
            let t = &r.target;
            let down_at = r.detected_ms.map(|ms| on + ms);
            let up_at = r.recovered_ms.map(|ms| off + ms);
            Lane {
                name: format!("{} {}/{}", t.lb, t.backend, t.server),
                spans: down_at
                    .map(|from| Span {
                        kind: SpanKind::Down,
                        from_ms: from,
                        to_ms: up_at.unwrap_or(off),
                    })
                    .into_iter()
                    .collect(),
                marks: vec![
                    Mark {
                        label: "DOWN".into(),
                        from_ms: on,
                        at_ms: down_at,
                        budget_ms: Some(t.detect_budget_ms),
                    },
                    Mark {
                        label: "UP".into(),
                        from_ms: off,
                        at_ms: up_at,
                        budget_ms: Some(t.recover_budget_ms),
                    },
                ],
            }
        })
        .collect();
    let total = recorded.tally(recorded.started, None);
    let mut verdict = vec![format!(
        "{}: {} of {} client connections failed",
        if failures.is_empty() {
            "PASSED"
        } else {
            "FAILED"
        },
        total.failed,
        total.attempts
    )];
    verdict.extend(failures.iter().cloned());
    let mut timeline = Timeline {
        title: format!(
            "failover-test --worker {}: {method} {} ({})",
            plan.worker,
            ports.join(", "),
            plan.backends.join(", ")
        ),
        subtitle: format!(
            "fault held {:.1} s; probe {}/s to {}; budgets from each server's inter, rise and fall",
            (off - on) as f64 / 1000.0,
            test.probe_rate,
            plan.probe_targets
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        end_ms: 0,
        passed: failures.is_empty(),
        verdict,
        probe_targets: recorded.targets.iter().map(ToString::to_string).collect(),
        probes: recorded.points(),
        windows: vec![Window {
            label: format!("{method} on {}", plan.worker),
            from_ms: on,
            to_ms: off,
        }],
        lanes,
    };
    timeline.fit_end();
    timeline
}
