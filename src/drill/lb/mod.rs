//! `lbctl failover-test --lb`: break the load balancer holding the VIP, measure how long until
//! another one holds it and what clients saw meanwhile, then put it back and confirm the tier
//! is whole.
//!
//! Methods: `stop-keepalived` / `stop-haproxy` run the host's `keepalived_stop_command` /
//! `haproxy_stop_command` (a clean stop); `kill-keepalived` / `kill-haproxy` SIGKILL every
//! process of the daemon at once (a crash); `isolate` cuts the host off the network with
//! tagged iptables and arptables rules (a partition, a power loss as the others see it). The
//! repair is the start command, or removing the rules. Before breaking anything, a dead man's
//! switch is armed on the host that repairs it if lbctl does not come back; Ctrl-C, SIGTERM
//! and every error repair it at once.
//!
//! [`plan`] is plain data in, plain data out (`plan.rs`); [`run`] does it over SSH, phase by
//! phase (`phases.rs`, watching what `observe.rs` says; the scripts are `daemon.rs` and
//! `daemon.sh`, `isolation.rs` and `isolation.sh`, reporting as `host_report.rs` reads):
//!
//! 1. pre-flight: exactly one load balancer holds the VIP (split brain or none is refused),
//!    every daemon runs everywhere, and the broken one is the holder (unless forced); then a
//!    client probe starts;
//! 2. on the broken host, one round trip arms the dead man's switch and breaks it;
//! 3. every load balancer is polled until another one holds the VIP, and the host stays
//!    broken at least `--hold`;
//! 4. the repair, and the switch disarmed;
//! 5. polling goes on until the tier is whole (every daemon running, exactly one holder);
//! 6. the report (`report.rs`): the VIP's move against its budget and its new holder, probe
//!    failures per phase, who holds the VIP after, and any lbctl rule left.

mod daemon;
mod host_report;
mod isolation;
mod observe;
mod phases;
mod plan;
mod report;

use std::{sync::Arc, time::Duration};

use serde::Serialize;

pub use plan::{Action, Plan, move_budget, plan};
pub use report::{LbReport, ProbeReport};

use crate::{
    drill::DrillError,
    drill::narrator::Narrator,
    drill::observers::Observers,
    drill::watch::Watch,
    drill::{probe, run_id::run_id},
    spec::Connection,
    spec::HostSpec,
};
use phases::{Context, Fault};

/// How often every load balancer is asked whether it holds the VIP.
pub const POLL_EVERY: Duration = Duration::from_millis(100);
/// How long the tier may take to be whole again after the start command.
const SETTLE: Duration = Duration::from_secs(30);
/// How far past the longest possible outage the dead man's switch fires.
pub const SWITCH_MARGIN: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Break {
    /// keepalived stops: it gives the VIP away at once (priority 0).
    StopKeepalived,
    /// HAProxy stops: keepalived's tracked check fails and it gives the VIP away.
    StopHaproxy,
    /// keepalived dies (SIGKILL): it says nothing, the others wait out 3 adverts.
    KillKeepalived,
    /// HAProxy dies (SIGKILL of the master and every worker): keepalived notices at once.
    KillHaproxy,
    /// The host is cut off the network: the others wait out 3 adverts.
    Isolate,
}

impl Break {
    /// As `--method` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Break::StopKeepalived => "stop-keepalived",
            Break::StopHaproxy => "stop-haproxy",
            Break::KillKeepalived => "kill-keepalived",
            Break::KillHaproxy => "kill-haproxy",
            Break::Isolate => "isolate",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LbTest {
    pub lb: String,
    pub method: Break,
    /// How long the host stays broken (at least until the VIP moved or its deadline).
    pub hold: Duration,
    /// Breaking a load balancer that does not hold the VIP tests nothing about the VIP.
    pub force: bool,
    pub probe_rate: u32,
    /// Only HAProxy's frontends of these backends are probed; empty: all TCP backends.
    pub backends: Vec<String>,
}

pub struct Setup {
    pub lbs: Vec<HostSpec>,
    pub probe_from: Option<Connection>,
    pub connect_timeout: Duration,
    pub forks: usize,
    pub narrator: Arc<dyn Narrator>,
}

/// Runs the drill. Errors before the break leave everything untouched; errors after it
/// repair the host first.
pub async fn run(plan: &Plan, test: &LbTest, setup: &Setup) -> Result<LbReport, DrillError> {
    let cx = Context { plan, test, setup };
    let run_id = run_id();
    let hosts = phases::connect(plan, setup).await?;

    // 1. Pre-flight, then the client probe (past its baseline) and the watch.
    let holder_before = phases::preflight(cx, &hosts).await?;
    // Only breaking the holder moves the VIP (`--force` breaks another one).
    let moves = holder_before == plan.lb;
    let probing = probe::start_probe(
        plan.probe_targets.clone(),
        test.probe_rate,
        plan.probe_timeout,
        plan.longest_stop(test.hold) + SETTLE,
        setup.probe_from.as_ref().zip(hosts.probe.as_ref()),
        &run_id,
        &*setup.narrator,
    )
    .await?;
    let watched = setup
        .lbs
        .iter()
        .zip(&hosts.lbs)
        .map(|(h, s)| (h.name.clone(), Arc::clone(s), observe::query(h)))
        .collect();
    let observers = Observers {
        watch: Watch::start(watched, POLL_EVERY, probing.limit, |_, state| {
            observe::seen(state)
        }),
        probe: probing.probe,
    };

    // 2–3. The break: from here on, every way out repairs the host first.
    let fault = Fault::new(cx, &run_id);
    let stopped = phases::stop(cx, &hosts.target, &fault, &observers.watch, moves).await;

    // 4–5. The repair, then the tier whole again.
    let restarted = match phases::restart(cx, &hosts.target, &fault, stopped).await {
        Ok(restarted) => restarted,
        Err(e) => return Err(observers.abandon(e).await),
    };
    let settled =
        phases::settle(plan, &observers.watch, restarted.started_at, &holder_before).await;
    let (samples, recorded) = observers.finish().await?;

    // 6. The report.
    let measured = report::Measured {
        run_id,
        samples,
        recorded,
        probe_from: probing.from,
        holder_before,
        moves,
        restarted,
        settled,
        switch_fires_after: fault.switch.fires_after,
    };
    Ok(report::build(plan, test, measured))
}
