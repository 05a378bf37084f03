//! The phases of a load-balancer drill, in the order `run` calls them: pre-flight, stopping
//! the daemon until the VIP moved, starting it again, and waiting for the tier to be whole.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use super::{
    Break, LbTest, Plan, SETTLE, SWITCH_MARGIN, Setup,
    daemon::{self, daemon_script, start_if_stopped},
    observe::{Seen, moved_at, query},
};
use crate::{
    drill::DrillError,
    drill::clock::{self, Clock, millis},
    drill::dead_mans_switch::{Armed, DeadMansSwitch},
    drill::interrupt::interrupted,
    drill::narrator::Narrator,
    drill::watch::Watch,
    remote::parse_lb_state,
    ssh,
    ssh::Session,
};

/// What every phase reads: the plan, the user's options and the drill's setup.
#[derive(Clone, Copy)]
pub(super) struct Context<'a> {
    pub plan: &'a Plan,
    pub test: &'a LbTest,
    pub setup: &'a Setup,
}

/// The sessions a load-balancer drill holds.
pub(super) struct Hosts {
    /// Every load balancer, in the fleet's order.
    pub lbs: Vec<Arc<Session>>,
    /// `--probe-from`'s host.
    pub probe: Option<Arc<Session>>,
    /// The load balancer the drill breaks, and its place in the fleet.
    pub target: Arc<Session>,
    pub index: usize,
}

/// Opens every load balancer's and the probe host's session.
pub(super) async fn connect(plan: &Plan, setup: &Setup) -> Result<Hosts, DrillError> {
    let mut connections: Vec<_> = setup.lbs.iter().map(|h| h.connection.clone()).collect();
    connections.extend(setup.probe_from.clone());
    let mut all = ssh::connect_every(&connections, setup.connect_timeout, setup.forks).await?;
    let probe = setup
        .probe_from
        .as_ref()
        .map(|_| all.pop().expect("probe session"));
    let index = plan
        .lbs
        .iter()
        .position(|n| *n == plan.lb)
        .expect("the broken lb is in the fleet");
    Ok(Hosts {
        target: Arc::clone(&all[index]),
        lbs: all,
        probe,
        index,
    })
}

/// Phase 1: exactly one load balancer holds the VIP, every daemon runs everywhere, and the
/// broken one is the holder (unless forced). Returns the holder.
pub(super) async fn preflight(cx: Context<'_>, hosts: &Hosts) -> Result<String, DrillError> {
    let Context { plan, test, setup } = cx;
    let scripts = setup.lbs.iter().map(|h| query(h).script()).collect();
    let outputs = ssh::run_all(&hosts.lbs, scripts).await;
    let mut problems = Vec::new();
    let mut holders = Vec::new();
    for (spec, out) in setup.lbs.iter().zip(outputs) {
        let state = out.map_err(DrillError::from).and_then(|o| {
            parse_lb_state(&o.stdout).map_err(|e| DrillError::Report(e.with_output(o)))
        });
        match state {
            Err(e) => problems.push(format!("{}: {e}", spec.name)),
            Ok(state) => {
                for (name, d) in &state.daemons {
                    if !d.running {
                        problems.push(format!("{}: {name} is not running", spec.name));
                    }
                }
                if state.holds_vip() {
                    holders.push(spec.name.clone());
                }
            }
        }
    }
    if holders.len() != 1 {
        problems.push(match holders.as_slice() {
            [] => "no load balancer holds the VIP".to_string(),
            many => format!("several load balancers hold the VIP: {}", many.join(", ")),
        });
    }
    if !problems.is_empty() {
        return Err(DrillError::Preflight { problems });
    }
    let holder_before = holders.remove(0);
    if holder_before != plan.lb && !test.force {
        return Err(DrillError::NotTheHolder {
            lb: plan.lb.clone(),
            holder: holder_before,
        });
    }
    setup.narrator.say(&format!(
        "pre-flight ok: {holder_before} holds the VIP, every daemon runs"
    ));
    Ok(holder_before)
}

/// The daemon the drill stops, and the switch that starts it again if lbctl does not.
pub(super) struct Daemon {
    pub pidfile: String,
    pub switch: DeadMansSwitch,
}

impl Daemon {
    /// The switch fires `SWITCH_MARGIN` after the longest the daemon may stay stopped.
    pub fn new(cx: Context<'_>, index: usize, run_id: &str) -> Daemon {
        let Context { plan, test, setup } = cx;
        let pidfile = match test.method {
            Break::StopKeepalived => setup.lbs[index].daemons.keepalived_pid_file.clone(),
            Break::StopHaproxy => setup.lbs[index].haproxy.pid_file.clone(),
        };
        let switch = DeadMansSwitch {
            tag: format!("lbctl-failover-{run_id}"),
            fires_after: plan.longest_stop(test.hold) + SWITCH_MARGIN,
            action: start_if_stopped(&pidfile, &plan.start),
        };
        Daemon { pidfile, switch }
    }
}

/// How the stop went: `outcome` (when the VIP moved, and to whom) is an error when the daemon
/// could not be stopped or the stop was cut short; the rest is known either way.
pub(super) struct Stopped {
    pub outcome: Result<(Option<Instant>, Option<String>), DrillError>,
    pub armed: Option<Armed>,
    /// When the stop command began, by the host's clock (else the send).
    pub stopped_at: Option<Instant>,
    /// The broken host's clock, to time the start by too.
    pub clock: Option<Clock>,
}

/// Phases 2 and 3: one round trip arms the dead man's switch and stops the daemon; then it
/// stays stopped until the VIP moved and `--hold` passed (at most twice the move's budget),
/// or until Ctrl-C or SIGTERM. When the broken host does not hold the VIP (`moves` false),
/// it stays stopped for `--hold`, the rest watched.
pub(super) async fn stop(
    cx: Context<'_>,
    target: &Session,
    daemon: &Daemon,
    watch: &Watch<Seen>,
    moves: bool,
) -> Stopped {
    let Context { plan, test, setup } = cx;
    let say = &*setup.narrator;
    let longest = plan.longest_stop(test.hold);
    let clock = clock::sync_clock(target).await;
    let mut armed = None;
    let mut stopped_at = None;
    let outcome: Result<(Option<Instant>, Option<String>), DrillError> = tokio::select! {
        r = async {
            let sent = Instant::now();
            let out = target
                .run(&daemon_script("stop", &daemon.switch, None, &plan.stop, &daemon.pidfile))
                .await?;
            let answered = Instant::now();
            let report = match daemon::parse(&out.stdout) {
                Ok(report) => report,
                Err(e) => return Err(e.with_output(out).into()),
            };
            armed = report.armed.clone();
            if let Some(message) = report.error {
                return Err(DrillError::NotStopped { host: plan.lb.clone(), message });
            }
            // The host's clock says when the stop command began; without it, the send (the
            // VIP may start moving before the command returns).
            let t0 = match (clock, report.clock_ms) {
                (Some(clock), Some(ms)) => clock.local(ms, sent, answered),
                _ => sent,
            };
            stopped_at = Some(t0);
            say.say(&format!(
                "{}: {} stopped (`{}`); dead man's switch starts it in {} s if lbctl does not",
                plan.lb,
                plan.daemon,
                plan.stop,
                daemon.switch.fires_after.as_secs()
            ));
            if !moves {
                wait_for_hold(watch, t0, test.hold).await?;
                return Ok((None, None));
            }
            let moved = wait_for_move(plan, watch, t0, test.hold, longest, say).await?;
            Ok(moved)
        } => r,
        why = interrupted() => Err(DrillError::Interrupted {
            why,
            when: format!("while {} was stopped", plan.daemon),
        }),
    };
    Stopped {
        outcome,
        armed,
        stopped_at,
        clock,
    }
}

/// The stop and the start, as they happened.
pub(super) struct Restarted {
    pub moved_at: Option<Instant>,
    pub new_holder: Option<String>,
    pub stopped_at: Instant,
    pub started_at: Instant,
}

/// Phase 4: starts the daemon again (unless it runs) and disarms the switch, whatever
/// happened while it was stopped; then fails if the stop did.
pub(super) async fn restart(
    cx: Context<'_>,
    target: &Session,
    daemon: &Daemon,
    stopped: Stopped,
) -> Result<Restarted, DrillError> {
    let Context { plan, setup, .. } = cx;
    let Stopped {
        outcome,
        armed,
        stopped_at,
        clock,
    } = stopped;
    let restarted = start_again(target, daemon, armed.as_ref(), plan, clock).await;
    let started_at = *restarted.as_ref().unwrap_or(&Instant::now());
    if let Err(e) = &restarted {
        setup.narrator.say(&format!("{}: {e}", plan.lb));
    } else {
        setup.narrator.say(&format!(
            "{}: {} started (`{}`)",
            plan.lb, plan.daemon, plan.start
        ));
    }
    let (moved, new_holder) = match (outcome, restarted) {
        (Ok(moved), Ok(_)) => moved,
        (Err(stop), Ok(_)) => return Err(stop),
        (stop, Err(e)) => {
            return Err(DrillError::NotRestarted {
                stop: stop.err().map(Box::new),
                error: Box::new(e),
                switch_s: daemon.switch.fires_after.as_secs(),
            });
        }
    };
    Ok(Restarted {
        moved_at: moved,
        new_holder,
        stopped_at: stopped_at.expect("the daemon was stopped"),
        started_at,
    })
}

/// Phase 5: waits (bounded, and cut short without error by Ctrl-C) until the tier is whole
/// again; returns when it was, or `None`.
pub(super) async fn settle(
    plan: &Plan,
    watch: &Watch<Seen>,
    started_at: Instant,
    holder_before: &str,
) -> Option<Instant> {
    tokio::select! {
        r = wait_for_whole(plan, watch, started_at, holder_before) => r,
        _ = interrupted() => None,
    }
}

/// Waits until another load balancer holds the VIP and the broken one does not, then keeps
/// the daemon stopped for the rest of `hold`. Returns when the VIP moved, and to whom.
async fn wait_for_move(
    plan: &Plan,
    watch: &Watch<Seen>,
    t0: Instant,
    hold: Duration,
    longest: Duration,
    say: &dyn Narrator,
) -> Result<(Option<Instant>, Option<String>), DrillError> {
    let mut moved: Option<(Instant, String)> = None;
    loop {
        if let Some((host, error)) = watch.lost() {
            return Err(DrillError::Lost {
                error: Box::new(error),
                host,
                when: format!(" while {} was stopped", plan.daemon),
            });
        }
        if moved.is_none() {
            moved = moved_at(plan, &watch.samples(), t0);
            if let Some((at, holder)) = &moved {
                say.say(&format!(
                    "{holder} holds the VIP {} ms after the stop (budget {} ms)",
                    millis(t0, *at),
                    plan.move_budget.as_millis()
                ));
            }
        }
        let elapsed = t0.elapsed();
        if elapsed >= longest || (elapsed >= hold && moved.is_some()) {
            return Ok(match moved {
                Some((at, holder)) => (Some(at), Some(holder)),
                None => (None, None),
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Keeps a load balancer without the VIP broken for `hold`, watching that the rest answer.
async fn wait_for_hold(watch: &Watch<Seen>, t0: Instant, hold: Duration) -> Result<(), DrillError> {
    while t0.elapsed() < hold {
        if let Some((host, error)) = watch.lost() {
            return Err(DrillError::Lost {
                error: Box::new(error),
                host,
                when: String::new(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Waits (at most [`SETTLE`]) until every daemon runs everywhere and exactly one host holds
/// the VIP, preferring the original holder (keepalived preempts) for a short while.
async fn wait_for_whole(
    plan: &Plan,
    watch: &Watch<Seen>,
    t1: Instant,
    holder_before: &str,
) -> Option<Instant> {
    let original = plan.lbs.iter().position(|n| n == holder_before)?;
    loop {
        if watch.lost().is_some() {
            return None;
        }
        let samples = watch.samples();
        let fresh: Vec<Option<Seen>> = samples
            .iter()
            .map(|s| s.last().filter(|s| s.at >= t1).map(|s| s.value))
            .collect();
        if fresh.iter().all(Option::is_some) {
            let seen: Vec<Seen> = fresh.into_iter().flatten().collect();
            let holders: Vec<usize> = (0..seen.len()).filter(|&i| seen[i].holds_vip).collect();
            let daemons = seen.iter().all(|s| s.daemons_running);
            let back = holders == [original];
            // the original holder has priority: give it a few adverts to take the VIP back
            if daemons && (back || (holders.len() == 1 && t1.elapsed() >= plan.move_budget * 2)) {
                return Some(Instant::now());
            }
        }
        if t1.elapsed() >= SETTLE {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts the daemon again (unless it runs) and disarms the switch; returns when the start
/// command began, by the host's clock when there is one.
async fn start_again(
    target: &Session,
    daemon: &Daemon,
    armed: Option<&Armed>,
    plan: &Plan,
    clock: Option<Clock>,
) -> Result<Instant, DrillError> {
    let not_started = |cause: DrillError| DrillError::NotStarted {
        daemon: plan.daemon,
        cause: Box::new(cause),
    };
    let sent = Instant::now();
    let out = target
        .run(&daemon_script(
            "start",
            &daemon.switch,
            armed,
            &plan.start,
            &daemon.pidfile,
        ))
        .await
        .map_err(|e| not_started(e.into()))?;
    let report = match daemon::parse(&out.stdout) {
        Ok(report) => report,
        Err(e) => return Err(not_started(e.with_output(out).into())),
    };
    match report.error {
        Some(message) => Err(not_started(DrillError::Remote { message })),
        None => Ok(match (clock, report.clock_ms) {
            (Some(clock), Some(ms)) => clock.local(ms, sent, Instant::now()),
            _ => sent,
        }),
    }
}
