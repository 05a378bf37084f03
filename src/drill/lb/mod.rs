//! `lbctl failover-test --lb`: stop keepalived (or HAProxy) on the load balancer holding the
//! VIP, measure how long until another one holds it and what clients saw meanwhile, then
//! start it again and confirm the tier is whole.
//!
//! The stop and start commands are the host's `keepalived_stop_command` /
//! `keepalived_start_command` (`haproxy_...` for `stop-haproxy`). Before stopping anything, a
//! dead man's switch is armed on the host that starts the daemon again if lbctl does not
//! come back; Ctrl-C, SIGTERM and every error start it at once.
//!
//! [`plan`] is plain data in, plain data out (`plan.rs`); [`run`] does it over SSH, phase by
//! phase (`phases.rs`, watching what `observe.rs` says; the stop and start script is
//! `daemon.rs` and `daemon.sh`):
//!
//! 1. pre-flight: exactly one load balancer holds the VIP, every daemon runs everywhere, and
//!    the broken one is the holder (unless forced); then a client probe starts;
//! 2. on the broken host, one round trip arms the dead man's switch and stops the daemon;
//! 3. every load balancer is polled until another one holds the VIP, and the daemon stays
//!    stopped at least `--hold`;
//! 4. the daemon starts again and the switch is disarmed;
//! 5. polling goes on until the tier is whole (every daemon running, one holder);
//! 6. the report (`report.rs`): the VIP's move against its budget, probe failures per phase.

mod daemon;
mod observe;
mod phases;
mod plan;
mod report;

use std::{sync::Arc, time::Duration};

use serde::Serialize;

pub use plan::{Plan, plan};
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
use phases::{Context, Daemon};

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
}

impl Break {
    fn daemon(self) -> &'static str {
        match self {
            Break::StopKeepalived => "keepalived",
            Break::StopHaproxy => "haproxy",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LbTest {
    pub lb: String,
    pub method: Break,
    /// How long the daemon stays stopped (at least until the VIP moved or its deadline).
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

/// Runs the drill. Errors before the stop leave everything untouched; errors after it start
/// the daemon again first.
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

    // 2–3. The stop: from here on, every way out starts the daemon again first.
    let daemon = Daemon::new(cx, hosts.index, &run_id);
    let stopped = phases::stop(cx, &hosts.target, &daemon, &observers.watch, moves).await;

    // 4–5. The start, then the tier whole again.
    let restarted = match phases::restart(cx, &hosts.target, &daemon, stopped).await {
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
        switch_fires_after: daemon.switch.fires_after,
    };
    Ok(report::build(plan, test, measured))
}
