//! The phases of a load-balancer drill, in the order `run` calls them: pre-flight, breaking
//! the host until the VIP moved, repairing it, and waiting for the tier to be whole.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use super::{
    Action, LbTest, Plan, SETTLE, SWITCH_MARGIN, Setup,
    daemon::{self, daemon_script, start_if_stopped},
    host_report::HostReport,
    isolation,
    observe::{Seen, moved_at, query},
};
use crate::{
    deploy::{holders_by_vip, vip_problems},
    drill::DrillError,
    drill::clock::{self, Clock, millis},
    drill::dead_mans_switch::{Armed, DeadMansSwitch},
    drill::interrupt::interrupted,
    drill::narrator::Narrator,
    drill::run_id::TAG_PREFIX,
    drill::watch::Watch,
    remote::{ReportError, parse_lb_state},
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
    /// The load balancer the drill breaks.
    pub target: Arc<Session>,
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
    let mut answers = Vec::new();
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
                answers.push((spec.name.as_str(), state.vips));
            }
        }
    }
    // split brain, or nobody holding a VIP, is no tier to drill
    let by_vip = holders_by_vip(answers.iter().map(|(h, v)| (*h, v)));
    // an --lb drill is refused where --limit leaves out a host with a VIP (failover_test)
    problems.extend(vip_problems(&by_vip, &[]));
    if holders.len() != 1 && problems.is_empty() {
        problems.push(format!(
            "the VIPs are held by different load balancers: {}",
            holders.join(", ")
        ));
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

/// What the drill breaks on the host, and the switch that repairs it if lbctl does not.
pub(super) struct Fault {
    pub action: Action,
    /// `lbctl-failover-<run id>`: the switch's name, and the isolation rules' tag.
    pub tag: String,
    pub switch: DeadMansSwitch,
}

impl Fault {
    /// The switch fires `SWITCH_MARGIN` after the longest the host may stay broken.
    pub fn new(cx: Context<'_>, run_id: &str) -> Fault {
        let Context { plan, test, .. } = cx;
        let tag = format!("{TAG_PREFIX}{run_id}");
        let repair = match &plan.action {
            Action::Daemon { start, pidfile, .. } => start_if_stopped(pidfile, start),
            Action::Isolate => isolation::remove_commands(&tag),
        };
        let switch = DeadMansSwitch {
            tag: tag.clone(),
            fires_after: plan.longest_stop(test.hold) + SWITCH_MARGIN,
            action: repair,
        };
        Fault {
            action: plan.action.clone(),
            tag,
            switch,
        }
    }

    /// Arms the switch, then breaks the host.
    fn break_script(&self) -> String {
        match &self.action {
            Action::Daemon {
                kill,
                stop,
                pidfile,
                ..
            } => daemon_script(
                if *kill { "kill" } else { "stop" },
                &self.switch,
                None,
                stop,
                pidfile,
            ),
            Action::Isolate => isolation::isolate_script(&self.tag, &self.switch),
        }
    }

    /// Repairs the host (unless it is whole already) and disarms the switch.
    fn repair_script(&self, armed: Option<&Armed>) -> String {
        match &self.action {
            Action::Daemon { start, pidfile, .. } => {
                daemon_script("start", &self.switch, armed, start, pidfile)
            }
            Action::Isolate => isolation::restore_script(&self.tag, &self.switch, armed),
        }
    }

    fn parse(&self, stdout: &[u8]) -> Result<HostReport, ReportError> {
        match self.action {
            Action::Daemon { .. } => daemon::parse(stdout),
            Action::Isolate => isolation::parse(stdout),
        }
    }

    /// What was done, for the narration.
    fn broken(&self, plan: &Plan) -> String {
        match &self.action {
            Action::Daemon {
                kill: true,
                pidfile,
                ..
            } => format!(
                "{} killed (SIGKILL to the process in {pidfile} and every descendant)",
                plan.what
            ),
            Action::Daemon { stop, .. } => format!("{} stopped (`{stop}`)", plan.what),
            Action::Isolate => format!(
                "cut off the network (every packet and ARP dropped but lbctl's SSH, rules tagged {})",
                self.tag
            ),
        }
    }

    fn repaired(&self, plan: &Plan) -> String {
        match &self.action {
            Action::Daemon { start, .. } => format!("{} started (`{start}`)", plan.what),
            Action::Isolate => "back on the network (rules removed)".to_string(),
        }
    }
}

/// How the stop went: `outcome` (when the VIP moved, and to whom) is an error when the daemon
/// could not be stopped or the stop was cut short; the rest is known either way.
pub(super) struct Stopped {
    pub outcome: Result<(Option<Instant>, Option<String>), DrillError>,
    pub armed: Option<Armed>,
    /// When the stop command began, by the host's clock (else the send).
    pub stopped_at: Option<Instant>,
    /// The broken host's clock, to time the repair by too.
    pub clock: Option<Clock>,
}

/// Phases 2 and 3: one round trip arms the dead man's switch and stops the daemon; then it
/// stays stopped until the VIP moved and `--hold` passed (at most twice the move's budget),
/// or until Ctrl-C or SIGTERM. When the broken host does not hold the VIP (`moves` false),
/// it stays stopped for `--hold`, the rest watched.
pub(super) async fn stop(
    cx: Context<'_>,
    target: &Session,
    fault: &Fault,
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
            let out = target.run(&fault.break_script()).await?;
            let answered = Instant::now();
            let report = match fault.parse(&out.stdout) {
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
                "{}: {}; dead man's switch repairs it in {} s if lbctl does not",
                plan.lb,
                fault.broken(plan),
                fault.switch.fires_after.as_secs()
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
            when: format!("while {} was broken", plan.lb),
        }),
    };
    Stopped {
        outcome,
        armed,
        stopped_at,
        clock,
    }
}

/// The break and the repair, as they happened.
pub(super) struct Restarted {
    pub moved_at: Option<Instant>,
    pub new_holder: Option<String>,
    pub stopped_at: Instant,
    pub started_at: Instant,
    /// Every lbctl failover rule the broken host still had after the repair.
    pub rules_left: Vec<String>,
}

/// Phase 4: repairs the host (starts the daemon unless it runs, removes the rules) and
/// disarms the switch, whatever happened while it was broken; then fails if the break did.
pub(super) async fn restart(
    cx: Context<'_>,
    target: &Session,
    fault: &Fault,
    stopped: Stopped,
) -> Result<Restarted, DrillError> {
    let Context { plan, setup, .. } = cx;
    let Stopped {
        outcome,
        armed,
        stopped_at,
        clock,
    } = stopped;
    let repaired = repair(target, fault, armed.as_ref(), plan, clock).await;
    let started_at = repaired.as_ref().map_or_else(|_| Instant::now(), |r| r.0);
    match &repaired {
        Err(e) => setup.narrator.say(&format!("{}: {e}", plan.lb)),
        Ok(_) => setup
            .narrator
            .say(&format!("{}: {}", plan.lb, fault.repaired(plan))),
    }
    let ((moved, new_holder), rules_left) = match (outcome, repaired) {
        (Ok(moved), Ok((_, rules_left))) => (moved, rules_left),
        (Err(stop), Ok(_)) => return Err(stop),
        (stop, Err(e)) => {
            return Err(DrillError::NotRestarted {
                stop: stop.err().map(Box::new),
                error: Box::new(e),
                switch_s: fault.switch.fires_after.as_secs(),
            });
        }
    };
    Ok(Restarted {
        moved_at: moved,
        new_holder,
        stopped_at: stopped_at.expect("the host was broken"),
        started_at,
        rules_left,
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
                when: format!(" while {} was broken", plan.lb),
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
            // the original holder has priority: give it time to take the VIP back (its check
            // must rise, then a few adverts)
            if daemons && (back || (holders.len() == 1 && t1.elapsed() >= plan.takeback)) {
                return Some(Instant::now());
            }
        }
        if t1.elapsed() >= SETTLE {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Repairs the host and disarms the switch; returns when the repair began (the start
/// command) or ended (the rules removed), by the host's clock when there is one, and the
/// lbctl rules left on it.
async fn repair(
    target: &Session,
    fault: &Fault,
    armed: Option<&Armed>,
    plan: &Plan,
    clock: Option<Clock>,
) -> Result<(Instant, Vec<String>), DrillError> {
    let not_repaired = |cause: DrillError| DrillError::NotRepaired {
        what: match fault.action {
            Action::Daemon { .. } => format!("cannot start {} again", plan.what),
            Action::Isolate => format!("cannot put {} back on the network", plan.lb),
        },
        cause: Box::new(cause),
    };
    let sent = Instant::now();
    let out = target
        .run(&fault.repair_script(armed))
        .await
        .map_err(|e| not_repaired(e.into()))?;
    let report = match fault.parse(&out.stdout) {
        Ok(report) => report,
        Err(e) => return Err(not_repaired(e.with_output(out).into())),
    };
    match report.error {
        Some(message) => Err(not_repaired(DrillError::Remote { message })),
        None => Ok((
            match (clock, report.clock_ms) {
                (Some(clock), Some(ms)) => clock.local(ms, sent, Instant::now()),
                _ => sent,
            },
            report.rules_left,
        )),
    }
}
