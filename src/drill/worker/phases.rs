//! The phases of a worker drill, in the order `run` calls them: pre-flight, breaking the
//! worker until every load balancer noticed, restoring it, and watching the recovery.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use super::{
    Plan, Setup, WorkerTest,
    fault::{self, Fault, Method},
    observe::{Observed, first_at, is_down, is_up, positions},
};
use crate::{
    drill::DrillError,
    drill::clock::{self, Clock, millis},
    drill::dead_mans_switch::{Armed, DeadMansSwitch},
    drill::interrupt::interrupted,
    drill::narrator::Narrator,
    drill::split_brain,
    drill::watch::Watch,
    remote::{Query, parse_lb_state},
    spec::Protocol,
    ssh,
    ssh::{ConnectOptions, Session},
};

/// What every phase reads: the plan, the user's options and the drill's setup.
#[derive(Clone, Copy)]
pub(super) struct Context<'a> {
    pub plan: &'a Plan,
    pub test: &'a WorkerTest,
    pub setup: &'a Setup,
}

/// The sessions a worker drill holds.
pub(super) struct Hosts {
    /// Every load balancer, in the fleet's order.
    pub lbs: Vec<Arc<Session>>,
    pub worker: Arc<Session>,
    /// `--probe-from`'s host.
    pub probe: Option<Arc<Session>>,
}

/// Opens every load balancer's, the worker's and the probe host's session.
pub(super) async fn connect(setup: &Setup) -> Result<Hosts, DrillError> {
    let mut connections: Vec<_> = setup.lbs.iter().map(|h| h.connection.clone()).collect();
    connections.push(setup.worker.clone());
    connections.extend(setup.probe_from.clone());
    let mut all = ssh::connect_every(&connections, setup.connect_timeout, setup.forks).await?;
    let probe = setup
        .probe_from
        .as_ref()
        .map(|_| all.pop().expect("probe session"));
    let worker = all.pop().expect("worker session");
    Ok(Hosts {
        lbs: all,
        worker,
        probe,
    })
}

/// Phase 1: every load balancer answers, the worker's servers are steadily UP everywhere,
/// none is the last UP server of its backend (unless forced), and the worker has no lbctl
/// rule yet. Then the worker's clock is read, to time the fault by.
pub(super) async fn preflight(cx: Context<'_>, hosts: &Hosts) -> Result<Option<Clock>, DrillError> {
    let Context { plan, test, setup } = cx;
    let (lbs, worker) = (&hosts.lbs, &hosts.worker);
    let scripts = setup
        .lbs
        .iter()
        .map(|h| Query::servers_only(h).script())
        .collect();
    let inspect = Fault::inspect_script(&plan.families());
    let (outputs, inspected, mut problems) = tokio::join!(
        ssh::run_all(lbs, scripts),
        worker.run(&inspect),
        split_brain::problems(&setup.lbs, &setup.vip_hosts_left_out, lbs)
    );
    let mut last_up = Vec::new();
    for (spec, out) in setup.lbs.iter().zip(outputs) {
        let state = out.map_err(DrillError::from).and_then(|out| {
            parse_lb_state(&out.stdout).map_err(|e| DrillError::Report(e.with_output(out)))
        });
        let state = match state {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("{}: {e}", spec.name));
                continue;
            }
        };
        if let Some(Err(e)) = &state.stat {
            problems.push(format!("{}: runtime API: {e}", spec.name));
            continue;
        }
        for t in plan.targets.iter().filter(|t| t.lb == spec.name) {
            if t.protocol == Protocol::Udp {
                match &state.udp_down {
                    Some(Err(e)) => problems.push(format!("{}: nginx's UDP servers: {e}", t.lb)),
                    _ if state.udp_marked_down(&t.backend, &t.server) == Some(true) => problems
                        .push(format!(
                            "{}: nginx has {}/{} marked down already",
                            t.lb, t.backend, t.server
                        )),
                    _ => {}
                }
            }
            match state.server(&t.backend, &t.server) {
                None => problems.push(format!(
                    "{}: the running HAProxy has no server {}/{} (is lbctl's configuration applied?)",
                    t.lb, t.backend, t.server
                )),
                Some(row) if !row.status.steadily_up() => problems.push(format!(
                    "{}: {}/{} is {} already, not UP{}",
                    t.lb,
                    t.backend,
                    t.server,
                    row.status.text,
                    row.check_desc
                        .as_deref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                )),
                Some(_) => {
                    let others = state
                        .servers(&t.backend)
                        .filter(|r| r.name != t.server && r.status.steadily_up())
                        .count();
                    if others == 0 {
                        last_up.push(format!("{}/{} on {}", t.backend, t.server, t.lb));
                    }
                }
            }
        }
    }
    match inspected {
        Err(e) => problems.push(e.to_string()),
        Ok(out) => match fault::parse(&out.stdout) {
            Err(e) => problems.push(format!("{}: {}", plan.worker, e.with_output(out))),
            Ok(r) if !r.rules_left.is_empty() => problems.push(format!(
                "{} already carries lbctl failover rules (another test is running, or a killed one's dead man's switch has not fired yet): {}",
                plan.worker,
                r.rules_left.join("; ")
            )),
            Ok(_) => {}
        },
    }
    if !problems.is_empty() {
        return Err(DrillError::Preflight { problems });
    }
    if !last_up.is_empty() && !test.force {
        return Err(DrillError::LastUpServer {
            worker: plan.worker.clone(),
            servers: last_up,
        });
    }
    let clock = clock::sync_clock(worker).await;
    setup.narrator.say(&format!(
        "pre-flight ok: {} UP on {} load balancer{} in {}",
        plan.worker,
        lbs.len(),
        if lbs.len() == 1 { "" } else { "s" },
        plan.backends.join(", ")
    ));
    Ok(clock)
}

/// How the fault went: `outcome` is an error when it could not be put on or was cut short;
/// `armed` and `fault_on` are what is known either way, for the restore and the report.
pub(super) struct Broken {
    pub outcome: Result<(), DrillError>,
    pub armed: Option<Armed>,
    /// When the first rule went in, by the worker's clock (else the send).
    pub fault_on: Option<Instant>,
}

/// Phases 3 and 4: one round trip arms the dead man's switch and inserts the rules; then the
/// fault stays until every load balancer marked every target DOWN and `--hold` passed (at
/// most `longest`), or until Ctrl-C or SIGTERM.
pub(super) async fn break_worker(
    cx: Context<'_>,
    worker: &Session,
    fault: &Fault,
    switch: &DeadMansSwitch,
    worker_clock: Option<Clock>,
    watch: &Watch<Observed>,
) -> Broken {
    let Context { plan, test, setup } = cx;
    let say = &*setup.narrator;
    let longest_fault = plan.longest_fault(test.hold);
    let ports = plan
        .ports
        .iter()
        .map(|p| format!("{p}/tcp"))
        .chain(plan.udp_ports.iter().map(|p| format!("{p}/udp")))
        .collect::<Vec<_>>()
        .join(", ");
    let mut armed = None;
    let mut fault_on: Option<Instant> = None;
    let outcome: Result<(), DrillError> = tokio::select! {
        r = async {
            let sent = Instant::now();
            let out = worker.run(&fault.inject_script(switch)).await?;
            let answered = Instant::now();
            let report = match fault::parse(&out.stdout) {
                Ok(report) => report,
                Err(e) => return Err(e.with_output(out).into()),
            };
            armed = report.armed.clone();
            if let Some(message) = report.switch_error {
                return Err(DrillError::SwitchNotArmed { host: plan.worker.clone(), message });
            }
            if !report.inserted {
                return Err(DrillError::RulesNotInserted {
                    host: plan.worker.clone(),
                    message: report.insert_error.unwrap_or_else(|| out.to_string()),
                });
            }
            // The worker's clock says when the first rule went in: a datagram sent while the
            // others followed is the fault's, not one sent before it (counted as before, it
            // failed drills on the lab, 1 in 10). Without the clock, the send (which never makes
            // a detection look faster than it was either).
            let t0 = match (worker_clock, report.clock_ms) {
                (Some(clock), Some(ms)) => clock.local(ms, sent, answered),
                _ => sent,
            };
            fault_on = Some(t0);
            say.say(&format!(
                "{}: {} {ports} (rules tagged {}; dead man's switch removes them in {} s if lbctl does not)",
                plan.worker,
                match test.method { Method::Drop => "dropping", Method::Reject => "rejecting" },
                fault.tag,
                switch.fires_after.as_secs(),
            ));
            wait_for_detection(plan, test.hold, longest_fault, watch, t0, say).await
        } => r,
        why = interrupted() => Err(DrillError::Interrupted { why, when: "during the fault".into() }),
    };
    Broken {
        outcome,
        armed,
        fault_on,
    }
}

/// Keeps the fault on for `hold`, and until every load balancer marked every target DOWN
/// or `longest` passed. Reports each detection as it is seen.
async fn wait_for_detection(
    plan: &Plan,
    hold: Duration,
    longest: Duration,
    watch: &Watch<Observed>,
    t0: Instant,
    say: &dyn Narrator,
) -> Result<(), DrillError> {
    let positions = positions(plan);
    let mut told = vec![false; plan.targets.len()];
    loop {
        if let Some((host, error)) = watch.lost() {
            return Err(DrillError::Lost {
                error: Box::new(error),
                host,
                when: " during the fault".into(),
            });
        }
        let samples = watch.samples();
        let mut all = true;
        for (i, (lb, nth)) in positions.iter().enumerate() {
            match first_at(&samples[*lb], *nth, t0, is_down) {
                Some(at) if !told[i] => {
                    told[i] = true;
                    let t = &plan.targets[i];
                    say.say(&format!(
                        "{}: {}/{} DOWN after {} ms (budget {} ms)",
                        t.lb,
                        t.backend,
                        t.server,
                        millis(t0, at),
                        t.detect_budget_ms
                    ));
                }
                Some(_) => {}
                None => all = false,
            }
        }
        let elapsed = t0.elapsed();
        if elapsed >= longest || (elapsed >= hold && all) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What restoring the worker left: its lbctl rules (none when all went well), and when the
/// fault began and ended.
pub(super) struct Restored {
    pub rules_left: Vec<String>,
    pub fault_on: Instant,
    pub fault_off: Instant,
}

/// Phase 5, first half: removes the rules and disarms the switch, whatever happened while the
/// fault was on; then fails if the fault did.
pub(super) async fn restore(
    cx: Context<'_>,
    worker: &Session,
    fault: &Fault,
    switch: &DeadMansSwitch,
    broken: Broken,
    clock: Option<Clock>,
) -> Result<Restored, DrillError> {
    let Context { plan, setup, .. } = cx;
    let Broken {
        outcome,
        armed,
        fault_on,
    } = broken;
    let restored = remove_rules(worker, fault, switch, armed.as_ref(), setup, clock).await;
    let (rules_left, fault_off) = match restored {
        Ok(restored) => restored,
        Err(e) => {
            return Err(DrillError::NotRestored {
                fault: outcome.err().map(Box::new),
                error: Box::new(e),
                switch_s: switch.fires_after.as_secs(),
            });
        }
    };
    setup
        .narrator
        .say(&format!("{}: rules removed, switch disarmed", plan.worker));
    if let Err(e) = outcome {
        return Err(DrillError::FaultFailed {
            fault: Box::new(e),
            worker: plan.worker.clone(),
            rules_left,
        });
    }
    Ok(Restored {
        rules_left,
        fault_on: fault_on.expect("the fault was on"),
        fault_off,
    })
}

/// Phase 5, second half: waits (bounded, and cut short without error by Ctrl-C) until every
/// load balancer shows every target steadily UP; returns when that was, or `None`.
pub(super) async fn recover(
    cx: Context<'_>,
    watch: &Watch<Observed>,
    fault_off: Instant,
    deadline: Duration,
) -> Result<Option<Instant>, DrillError> {
    let recovered_all = tokio::select! {
        r = wait_for_recovery(cx.plan, watch, fault_off, deadline, &*cx.setup.narrator) => r,
        _ = interrupted() => None,
    };
    if let Some((host, error)) = watch.lost() {
        return Err(DrillError::Lost {
            error: Box::new(error),
            host,
            when: " while waiting for recovery".into(),
        });
    }
    Ok(recovered_all)
}

/// Waits (at most `deadline`) until every load balancer shows every target steadily UP;
/// returns when that was, or `None`.
async fn wait_for_recovery(
    plan: &Plan,
    watch: &Watch<Observed>,
    t1: Instant,
    deadline: Duration,
    say: &dyn Narrator,
) -> Option<Instant> {
    let positions = positions(plan);
    let mut told = vec![false; plan.targets.len()];
    loop {
        if watch.lost().is_some() {
            return None;
        }
        let samples = watch.samples();
        let mut last = Some(t1);
        for (i, (lb, nth)) in positions.iter().enumerate() {
            match first_at(&samples[*lb], *nth, t1, is_up) {
                Some(at) => {
                    if !told[i] {
                        told[i] = true;
                        let t = &plan.targets[i];
                        say.say(&format!(
                            "{}: {}/{} UP after {} ms (budget {} ms)",
                            t.lb,
                            t.backend,
                            t.server,
                            millis(t1, at),
                            t.recover_budget_ms
                        ));
                    }
                    last = last.map(|l| l.max(at));
                }
                None => last = None,
            }
        }
        if last.is_some() {
            return last;
        }
        if t1.elapsed() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Removes this run's rules and disarms the switch; on a lost connection, tries once more
/// over a new one. Returns the lbctl rules left on the worker, and when the rules came out
/// (by the worker's clock; else the send, which never makes a recovery look faster).
async fn remove_rules(
    worker: &Session,
    fault: &Fault,
    switch: &DeadMansSwitch,
    armed: Option<&Armed>,
    setup: &Setup,
    clock: Option<Clock>,
) -> Result<(Vec<String>, Instant), DrillError> {
    let script = fault.restore_script(switch, armed);
    let sent = Instant::now();
    let first = match worker.run(&script).await {
        Ok(out) => fault::parse(&out.stdout).map_err(|e| DrillError::Report(e.with_output(out))),
        Err(e) => Err(e.into()),
    };
    let report = match first {
        Ok(r) => r,
        Err(first) => {
            let options = ConnectOptions {
                connect_timeout: setup.connect_timeout,
                persist: None,
            };
            let again = async {
                let session = Session::connect(&setup.worker, &options).await?;
                let out = session.run(&script).await?;
                fault::parse(&out.stdout).map_err(|e| DrillError::Report(e.with_output(out)))
            };
            again.await.map_err(|again| DrillError::RulesNotRemoved {
                worker: setup.worker.name.clone(),
                first: Box::new(first),
                again: Box::new(again),
            })?
        }
    };
    let at = match (clock, report.clock_ms) {
        (Some(clock), Some(ms)) => clock.local(ms, sent, Instant::now()),
        _ => sent,
    };
    Ok((report.rules_left, at))
}
