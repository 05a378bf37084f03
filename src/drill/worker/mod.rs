//! `lbctl failover-test --worker`: break one worker's NodePorts on purpose, measure how fast
//! every load balancer notices and recovers and what clients saw meanwhile, and put the
//! worker back, even if lbctl itself dies halfway.
//!
//! [`plan`] is plain data in, plain data out (which servers break, their budgets, what to
//! probe; `plan.rs`); [`run`] does it over SSH, phase by phase (`phases.rs`, watching what
//! `observe.rs` says; the fault itself and its script are `fault.rs` and `fault.sh`):
//!
//! 1. pre-flight: every load balancer answers, the worker's servers are steadily UP on all
//!    of them, none is the last UP server of its backend (unless forced), and the worker
//!    carries no lbctl rule already;
//! 2. a client probe starts (a second of baseline first);
//! 3. on the worker, one round trip arms a dead man's switch and then inserts the rules;
//! 4. every load balancer's runtime API is polled until each marks the server DOWN, and the
//!    fault stays at least `--hold`;
//! 5. the rules are removed and the switch disarmed; polling goes on until each load
//!    balancer marks the server UP again;
//! 6. the report (`report.rs`): detection and recovery against their budgets, probe failures
//!    per phase.
//!
//! Ctrl-C, SIGTERM and every error after step 3 remove the rules at once.

mod fault;
mod observe;
mod phases;
mod plan;
mod report;

use std::{sync::Arc, time::Duration};

use fault::Fault;
pub use fault::Method;
pub use plan::{Plan, Target, detect_budget, plan, recover_budget};
pub use report::{ProbeReport, TargetResult, WorkerReport};

use crate::{
    drill::DrillError,
    drill::narrator::Narrator,
    drill::observers::Observers,
    drill::split_brain,
    drill::{probe, run_id::run_id},
    spec::Connection,
    spec::HostSpec,
};
use phases::Context;

/// How often every load balancer's runtime API is asked, while the fault is on and after.
pub const POLL_EVERY: Duration = Duration::from_millis(200);
/// How long past the longest possible fault the dead man's switch fires.
pub const SWITCH_MARGIN: Duration = Duration::from_secs(15);

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct WorkerTest {
    pub worker: String,
    /// Backends to break the worker in; empty: every TCP backend that has it, and every
    /// health-checked UDP backend.
    pub backends: Vec<String>,
    pub method: Method,
    pub hold: Duration,
    pub force: bool,
    /// New probe connections per second.
    pub probe_rate: u32,
    /// Failed probe connections the tier may cost before it fails the test.
    pub max_failed: u64,
}

/// Where the probe runs and the connections the drill needs.
pub struct Setup {
    pub lbs: Vec<HostSpec>,
    /// The load balancers with a VIP that `--limit` left out: not watched, and one of them may
    /// hold the VIP.
    pub vip_hosts_left_out: Vec<String>,
    pub worker: Connection,
    /// `--probe-from`: the probe runs there over SSH instead of where lbctl runs.
    pub probe_from: Option<Connection>,
    pub connect_timeout: Duration,
    pub forks: usize,
    pub narrator: Arc<dyn Narrator>,
}

/// Runs the drill. Errors before the fault leave everything untouched; errors after it
/// restore the worker first.
pub async fn run(
    plan: &Plan,
    test: &WorkerTest,
    setup: &Setup,
) -> Result<WorkerReport, DrillError> {
    let cx = Context { plan, test, setup };
    let run_id = run_id();
    let hosts = phases::connect(setup).await?;

    // 1. Pre-flight.
    let worker_clock = phases::preflight(cx, &hosts).await?;

    // 2. The client probe, past its baseline, and the watch on every load balancer.
    let longest_fault = plan.longest_fault(test.hold);
    let recover_deadline = plan.max_recover_budget() * 2;
    let probing = probe::start_probe(
        plan.probe_targets.clone(),
        test.probe_rate,
        plan.probe_timeout,
        longest_fault + recover_deadline,
        setup.probe_from.as_ref().zip(hosts.probe.as_ref()),
        &run_id,
        &*setup.narrator,
    )
    .await?;
    let observers = Observers {
        watch: observe::watch_targets(plan, setup, &hosts.lbs, probing.limit),
        probe: probing.probe,
    };

    // 3–4. The fault: from here on, every way out restores the worker first.
    let fault = Fault::new(
        &run_id,
        test.method,
        plan.ports.clone(),
        plan.udp_ports.clone(),
        &plan.families(),
    );
    let switch = fault.switch(longest_fault + SWITCH_MARGIN);
    let broken = phases::break_worker(
        cx,
        &hosts.worker,
        &fault,
        &switch,
        worker_clock,
        &observers.watch,
    )
    .await;

    // 5. Restore the worker, then watch it recover.
    let restored = phases::restore(cx, &hosts.worker, &fault, &switch, broken, worker_clock).await;
    let restored = match restored {
        Ok(restored) => restored,
        Err(e) => return Err(observers.abandon(e).await),
    };
    let recovered =
        phases::recover(cx, &observers.watch, restored.fault_off, recover_deadline).await;
    let recovered = match recovered {
        Ok(recovered) => recovered,
        Err(e) => return Err(observers.abandon(e).await),
    };
    let (samples, recorded) = observers.finish().await?;
    // the VIP untouched by a worker's fault: still exactly one holder
    let vip_after = split_brain::problems(&setup.lbs, &setup.vip_hosts_left_out, &hosts.lbs).await;

    // 6. The report.
    let measured = report::Measured {
        run_id,
        samples,
        recorded,
        probe_from: probing.from,
        fault_on: restored.fault_on,
        fault_off: restored.fault_off,
        recovered,
        rules_left: restored.rules_left,
        vip_after,
        tag: fault.tag,
        switch_fires_after: switch.fires_after,
    };
    Ok(report::build(plan, test, measured))
}
