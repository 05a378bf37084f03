//! `lbctl failover-test --lb`: stop keepalived (or HAProxy) on the load balancer holding the
//! VIP, measure how long until another one holds it and what clients saw meanwhile, then
//! start it again and confirm the tier is whole.
//!
//! The stop and start commands are the host's `keepalived_stop_command` /
//! `keepalived_start_command` (`haproxy_...` for `stop-haproxy`). Before stopping anything, a
//! dead man's switch is armed on the host that starts the daemon again if lbctl does not
//! come back; Ctrl-C, SIGTERM and every error start it at once.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::{
    drill::common::{self as drill, Narrator, Sample, Watch},
    drill::dead_mans_switch::{self, Armed, DeadMansSwitch},
    drill::probe::{self, Tally},
    error::Error,
    remote::lb_state::{self, LbState, Query},
    remote::{self, ReportError},
    spec::connection::Connection,
    spec::fleet::Fleet,
    spec::host::HostSpec,
    ssh::pool as sessions,
    ssh::session::Session,
};

/// How often every load balancer is asked whether it holds the VIP.
pub const POLL_EVERY: Duration = Duration::from_millis(100);
/// How long the tier may take to be whole again after the start command.
const SETTLE: Duration = Duration::from_secs(30);
/// How far past the longest possible outage the dead man's switch fires.
pub const SWITCH_MARGIN: Duration = Duration::from_secs(15);
/// The tracked check in lbctl's keepalived.conf template: `interval 1`, `fall 2`.
const CHECK_INTERVAL_MS: u64 = 1000;
const CHECK_FALL: u64 = 2;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub lb: String,
    pub lbs: Vec<String>,
    pub stop: String,
    pub start: String,
    pub daemon: &'static str,
    /// `3 × advert_int`, plus the tracked check's `interval × fall` when HAProxy stops.
    pub move_budget: Duration,
    pub probe_targets: Vec<probe::Target>,
    pub probe_timeout: Duration,
}

pub fn plan(fleet: &Fleet, test: &LbTest) -> Result<Plan, Error> {
    let Some(host) = fleet.host(&test.lb) else {
        let names: Vec<&str> = fleet.hosts.iter().map(|h| h.name.as_str()).collect();
        return Err(Error::Usage {
            message: format!("`{}` is not a load balancer", test.lb),
            hint: format!("load balancers ({}): {}", fleet.lb_group, names.join(", ")),
        });
    };
    let Some(k) = &host.keepalived else {
        return Err(Error::Usage {
            message: format!("`{}` holds no VIP (no keepalived_vip)", test.lb),
            hint: "a load-balancer failover test moves the VIP; configure keepalived first".into(),
        });
    };
    if fleet.hosts.len() < 2 {
        return Err(Error::Usage {
            message: "there is only one load balancer: nothing can take the VIP over".into(),
            hint: "add a second host to the load-balancer group".into(),
        });
    }
    let advert_ms = u64::from(k.advert_int) * 1000;
    let move_budget = Duration::from_millis(match test.method {
        Break::StopKeepalived => 3 * advert_ms,
        Break::StopHaproxy => CHECK_INTERVAL_MS * CHECK_FALL + 3 * advert_ms,
    });
    let (stop, start) = match test.method {
        Break::StopKeepalived => (
            &host.daemons.keepalived_stop,
            &host.daemons.keepalived_start,
        ),
        Break::StopHaproxy => (&host.daemons.haproxy_stop, &host.daemons.haproxy_start),
    };
    let vips: Vec<String> = k
        .vips
        .iter()
        .map(|v| v.split('/').next().unwrap_or(v).to_string())
        .collect();
    let mut probe_targets = Vec::new();
    for b in host.tcp_backends.iter() {
        if !test.backends.is_empty() && !test.backends.contains(&b.name) {
            continue;
        }
        if !matches!(b.bind.as_str(), "*" | "0.0.0.0" | "::" | "[::]") {
            continue;
        }
        for vip in &vips {
            probe_targets.push(probe::Target {
                host: vip.clone(),
                port: b.port,
            });
        }
    }
    if probe_targets.is_empty() {
        return Err(Error::Usage {
            message: "no TCP frontend listens on the VIP to probe".into(),
            hint: "name TCP backends bound to `*` with --backend, or none for all of them".into(),
        });
    }
    let probe_timeout = Duration::from_millis(
        host.haproxy.timeout_connect.ms * (u64::from(host.haproxy.retries) + 1) + 1000,
    );
    Ok(Plan {
        lb: host.name.clone(),
        lbs: fleet.hosts.iter().map(|h| h.name.clone()).collect(),
        stop: stop.clone(),
        start: start.clone(),
        daemon: test.method.daemon(),
        move_budget,
        probe_targets,
        probe_timeout,
    })
}

pub struct Setup {
    pub lbs: Vec<HostSpec>,
    pub probe_from: Option<Connection>,
    pub connect_timeout: Duration,
    pub forks: usize,
    pub narrator: Narrator,
}

#[derive(Debug, Clone, Serialize)]
pub struct LbReport {
    pub run_id: String,
    pub lb: String,
    pub method: Break,
    /// The VIP holder before the test; when it is not `lb` (`--force`), the VIP is not
    /// expected to move and `vip_moved_ms` stays empty.
    pub holder_before: String,
    /// From sending the stop command until another load balancer held the VIP (and this one
    /// no longer did), polled every [`POLL_EVERY`]; `None`: not within twice the budget.
    pub vip_moved_ms: Option<u64>,
    pub new_holder: Option<String>,
    pub move_budget_ms: u64,
    /// How long the daemon was stopped.
    pub stopped_ms: u64,
    /// From the start command until the tier was whole again (daemons running, one holder).
    pub settled_ms: Option<u64>,
    pub holder_after: Vec<String>,
    pub probe: ProbeReport,
    pub switch_fires_after_ms: u64,
    pub passed: bool,
    pub failures: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub from: String,
    pub targets: Vec<String>,
    pub rate: u32,
    pub timeout_ms: u64,
    pub before: Tally,
    /// From the stop command until another load balancer held the VIP.
    pub during_move: Tally,
    /// While the daemon stayed stopped after the VIP moved.
    pub while_stopped: Tally,
    /// From the start command until the tier was whole again (the VIP may move back).
    pub restore: Tally,
    pub after: Tally,
    pub total: Tally,
}

/// Per load balancer: does it hold the VIP, and does each of its daemons run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    holds_vip: bool,
    daemons_running: bool,
}

fn seen(state: &LbState) -> Seen {
    Seen {
        holds_vip: state.holds_vip(),
        daemons_running: !state.daemons.is_empty() && state.daemons.values().all(|d| d.running),
    }
}

/// The `daemons` query, plus the VIPs.
fn query(spec: &HostSpec) -> Query {
    Query {
        runtime_socket: None,
        ..Query::full(spec)
    }
}

pub async fn run(plan: &Plan, test: &LbTest, setup: &Setup) -> Result<LbReport, Error> {
    let say = setup.narrator;
    let run_id = drill::run_id();
    let mut connections: Vec<Connection> = setup.lbs.iter().map(|h| h.connection.clone()).collect();
    connections.extend(setup.probe_from.clone());
    let mut all = sessions::connect_every(&connections, setup.connect_timeout, setup.forks).await?;
    let probe_session = setup
        .probe_from
        .as_ref()
        .map(|_| all.pop().expect("probe session"));
    let lbs = all;
    let index = plan
        .lbs
        .iter()
        .position(|n| *n == plan.lb)
        .expect("the broken lb is in the fleet");
    let target = Arc::clone(&lbs[index]);

    // Pre-flight: one holder, every daemon running everywhere.
    let scripts = setup.lbs.iter().map(|h| query(h).script()).collect();
    let outputs = sessions::run_all(&lbs, scripts).await;
    let mut problems = Vec::new();
    let mut holders = Vec::new();
    for (spec, out) in setup.lbs.iter().zip(outputs) {
        match out.and_then(|o| lb_state::parse(&o.stdout).map_err(|e| format!("{e} ({o})"))) {
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
        return Err(Error::Failed(format!(
            "pre-flight failed, nothing was changed:\n  {}",
            problems.join("\n  ")
        )));
    }
    let holder_before = holders.remove(0);
    if holder_before != plan.lb && !test.force {
        return Err(Error::Usage {
            message: format!(
                "`{}` does not hold the VIP (`{holder_before}` does): breaking it moves nothing",
                plan.lb
            ),
            hint: format!(
                "run `failover-test --lb {holder_before}`, or pass --force to break `{}` anyway",
                plan.lb
            ),
        });
    }
    say.say(format!(
        "pre-flight ok: {holder_before} holds the VIP, every daemon runs"
    ));

    // Only breaking the holder moves the VIP (`--force` breaks another one).
    let moves = holder_before == plan.lb;
    let longest = test.hold.max(plan.move_budget * 2);
    let drill::Probing {
        probe,
        from: probe_from,
        limit,
    } = drill::start_probe(
        plan.probe_targets.clone(),
        test.probe_rate,
        plan.probe_timeout,
        longest + SETTLE,
        setup.probe_from.as_ref().zip(probe_session.as_ref()),
        &run_id,
        say,
    )
    .await?;

    let hosts = setup
        .lbs
        .iter()
        .zip(&lbs)
        .map(|(h, s)| (h.name.clone(), Arc::clone(s), query(h)))
        .collect();
    let watch = Watch::start(hosts, POLL_EVERY, limit, |_, state| seen(state));
    let pidfile = match test.method {
        Break::StopKeepalived => setup.lbs[index].daemons.keepalived_pid_file.clone(),
        Break::StopHaproxy => setup.lbs[index].haproxy.pid_file.clone(),
    };
    let switch = DeadMansSwitch {
        tag: format!("lbctl-failover-{run_id}"),
        fires_after: longest + SWITCH_MARGIN,
        action: start_if_stopped(&pidfile, &plan.start),
    };

    let clock = drill::sync_clock(&target).await;
    let mut armed = None;
    let mut stopped_at = None;
    let outcome: Result<(Option<Instant>, Option<String>), String> = tokio::select! {
        r = async {
            let sent = Instant::now();
            let out = target
                .run(&daemon_script("stop", &switch, None, &plan.stop, &pidfile))
                .await
                .map_err(|e| e.to_string())?;
            let answered = Instant::now();
            let report = parse(&out.stdout).map_err(|e| format!("{e} ({out})"))?;
            armed = report.armed.clone();
            if let Some(e) = report.error {
                return Err(format!("{}: {e}", plan.lb));
            }
            // The host's clock says when the stop command began; without it, the send (the
            // VIP may start moving before the command returns).
            let t0 = match (clock, report.clock_ms) {
                (Some(clock), Some(ms)) => clock.local(ms, sent, answered),
                _ => sent,
            };
            stopped_at = Some(t0);
            say.say(format!(
                "{}: {} stopped (`{}`); dead man's switch starts it in {} s if lbctl does not",
                plan.lb,
                plan.daemon,
                plan.stop,
                switch.fires_after.as_secs()
            ));
            if !moves {
                wait_for_hold(&watch, t0, test.hold).await?;
                return Ok((None, None));
            }
            let moved = wait_for_move(plan, &watch, t0, test.hold, longest, say).await?;
            Ok(moved)
        } => r,
        why = drill::interrupted() => Err(format!("{why} while {} was stopped", plan.daemon)),
    };

    let restarted = start(&target, &switch, armed.as_ref(), plan, &pidfile, clock).await;
    let started_at = *restarted.as_ref().unwrap_or(&Instant::now());
    if let Err(e) = &restarted {
        say.say(format!("{}: {e}", plan.lb));
    } else {
        say.say(format!(
            "{}: {} started (`{}`)",
            plan.lb, plan.daemon, plan.start
        ));
    }
    let (moved, new_holder) = match (outcome, restarted) {
        (Ok(moved), Ok(_)) => moved,
        (outcome, restarted) => {
            let _ = watch.stop().await;
            let _ = probe.stop().await;
            let mut errors: Vec<String> = Vec::new();
            errors.extend(outcome.err());
            if let Err(e) = restarted {
                errors.push(format!(
                    "{e}; the dead man's switch starts it by itself within {} s of the stop",
                    switch.fires_after.as_secs()
                ));
            }
            return Err(Error::Failed(errors.join("; then ")));
        }
    };
    let stopped_at = stopped_at.expect("the daemon was stopped");

    let settled = tokio::select! {
        r = wait_for_whole(plan, &watch, started_at, &holder_before) => r,
        _ = drill::interrupted() => None,
    };
    tokio::time::sleep(drill::TAIL).await;
    let samples = watch.stop().await;
    let recorded = probe.stop().await.map_err(Error::Failed)?;
    let holder_after: Vec<String> = plan
        .lbs
        .iter()
        .zip(&samples)
        .filter(|(_, s)| s.last().is_some_and(|s| s.value.holds_vip))
        .map(|(n, _)| n.clone())
        .collect();

    let moved_at = moved;
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
    let vip_moved_ms = moved_at.map(|m| drill::millis(stopped_at, m));
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
            "the tier was not whole again within {} s of starting {} (holders now: {})",
            SETTLE.as_secs(),
            plan.daemon,
            if holder_after.is_empty() {
                "none".to_string()
            } else {
                holder_after.join(", ")
            }
        ));
    }
    Ok(LbReport {
        run_id,
        lb: plan.lb.clone(),
        method: test.method,
        holder_before,
        vip_moved_ms,
        new_holder,
        move_budget_ms: plan.move_budget.as_millis() as u64,
        stopped_ms: drill::millis(stopped_at, started_at),
        settled_ms: settled.map(|s| drill::millis(started_at, s)),
        holder_after,
        probe: probe_report,
        switch_fires_after_ms: switch.fires_after.as_millis() as u64,
        passed: failures.is_empty(),
        failures,
    })
}

/// Waits until another load balancer holds the VIP and the broken one does not, then keeps
/// the daemon stopped for the rest of `hold`. Returns when the VIP moved, and to whom.
async fn wait_for_move(
    plan: &Plan,
    watch: &Watch<Seen>,
    t0: Instant,
    hold: Duration,
    longest: Duration,
    say: Narrator,
) -> Result<(Option<Instant>, Option<String>), String> {
    let mut moved: Option<(Instant, String)> = None;
    loop {
        if let Some((host, e)) = watch.lost() {
            return Err(format!(
                "lost {host} while {} was stopped: {e}",
                plan.daemon
            ));
        }
        if moved.is_none() {
            moved = moved_at(plan, &watch.samples(), t0);
            if let Some((at, holder)) = &moved {
                say.say(format!(
                    "{holder} holds the VIP {} ms after the stop (budget {} ms)",
                    drill::millis(t0, *at),
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
async fn wait_for_hold(watch: &Watch<Seen>, t0: Instant, hold: Duration) -> Result<(), String> {
    while t0.elapsed() < hold {
        if let Some((host, e)) = watch.lost() {
            return Err(format!("lost {host}: {e}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// The first moment at or after `t0` when, in the latest poll of every host, the broken
/// host no longer held the VIP and another one did.
fn moved_at(plan: &Plan, samples: &[Vec<Sample<Seen>>], t0: Instant) -> Option<(Instant, String)> {
    let broken = plan.lbs.iter().position(|n| *n == plan.lb)?;
    let latest = |i: usize, at: Instant| {
        samples[i]
            .iter()
            .rev()
            .find(|s| s.at >= t0 && s.at <= at)
            .map(|s| s.value)
    };
    let mut times: Vec<Instant> = samples
        .iter()
        .flatten()
        .map(|s| s.at)
        .filter(|&at| at >= t0)
        .collect();
    times.sort();
    times.into_iter().find_map(|at| {
        let broken_free = latest(broken, at).is_some_and(|s| !s.holds_vip);
        let holder = (0..samples.len())
            .find(|&i| i != broken && latest(i, at).is_some_and(|s| s.holds_vip))?;
        broken_free.then(|| (at, plan.lbs[holder].clone()))
    })
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
async fn start(
    target: &Session,
    switch: &DeadMansSwitch,
    armed: Option<&Armed>,
    plan: &Plan,
    pidfile: &str,
    clock: Option<drill::Clock>,
) -> Result<Instant, String> {
    let sent = Instant::now();
    let out = target
        .run(&daemon_script("start", switch, armed, &plan.start, pidfile))
        .await
        .map_err(|e| format!("cannot start {} again: {e}", plan.daemon))?;
    let report = parse(&out.stdout)
        .map_err(|e| format!("cannot start {} again: {e} ({out})", plan.daemon))?;
    match report.error {
        Some(e) => Err(format!("cannot start {} again: {e}", plan.daemon)),
        None => Ok(match (clock, report.clock_ms) {
            (Some(clock), Some(ms)) => clock.local(ms, sent, Instant::now()),
            _ => sent,
        }),
    }
}

/// The switch's repair: run the start command unless the daemon runs already.
fn start_if_stopped(pidfile: &str, start: &str) -> String {
    format!(
        "pid=$(head -n 1 {} 2>/dev/null); if [ -z \"$pid\" ] || ! kill -0 \"$pid\" 2>/dev/null; then {start}; fi",
        remote::quote(pidfile)
    )
}

/// `stop`: arm the switch, run the stop command, wait (bounded) for the daemon's pid to go.
/// `start`: run the start command (only if the daemon is not running), disarm the switch,
/// wait (bounded) for a live pid.
fn daemon_script(
    action: &str,
    switch: &DeadMansSwitch,
    armed: Option<&Armed>,
    command: &str,
    pidfile: &str,
) -> String {
    let mut sh = String::new();
    sh.push_str(&format!("ACTION={action}\n"));
    sh.push_str(&format!("COMMAND={}\n", remote::quote(command)));
    sh.push_str(&format!("PIDFILE={}\n", remote::quote(pidfile)));
    sh.push_str(&switch.shell(armed));
    remote::finish_script(sh, DAEMON_SCRIPT)
}

const DAEMON_SCRIPT: &str = concat!(
    include_str!("../remote/clock.sh"),
    include_str!("daemon.sh")
);

#[derive(Debug, Default)]
struct DaemonReport {
    armed: Option<Armed>,
    error: Option<String>,
    /// The host's clock right before the stop or start command ran.
    clock_ms: Option<u64>,
}

fn parse(stdout: &[u8]) -> Result<DaemonReport, ReportError> {
    const NAME: &str = "daemon";
    let mut report = DaemonReport::default();
    for frame in remote::frames(NAME, stdout)? {
        let frame = frame?;
        match frame.words.as_slice() {
            ["switch", "armed", kind, id] => {
                report.armed = Some(
                    dead_mans_switch::parse_armed(kind, id)
                        .ok_or_else(|| frame.malformed("unknown switch"))?,
                );
            }
            ["switch-error", message] => {
                report.error = Some(format!(
                    "cannot arm the dead man's switch: {}",
                    frame.text(message)?
                ));
            }
            ["error", message] => report.error = Some(frame.text(message)?),
            ["stopping" | "starting", clock] => report.clock_ms = clock.parse().ok(),
            ["end", "daemon"] => return Ok(report),
            _ => return Err(frame.malformed("unknown frame")),
        }
    }
    Err(ReportError::Truncated {
        script: NAME,
        after: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: Instant, holds_vip: bool) -> Sample<Seen> {
        Sample {
            at,
            value: Seen {
                holds_vip,
                daemons_running: true,
            },
        }
    }

    #[test]
    fn the_vip_has_moved_once_the_old_holder_let_go_and_another_took_it() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let plan = Plan {
            lb: "lb1".into(),
            lbs: vec!["lb1".into(), "lb2".into(), "lb3".into()],
            stop: String::new(),
            start: String::new(),
            daemon: "keepalived",
            move_budget: Duration::from_secs(3),
            probe_targets: Vec::new(),
            probe_timeout: Duration::from_secs(9),
        };
        let samples = vec![
            vec![
                sample(ms(100), true),
                sample(ms(200), false),
                sample(ms(300), false),
            ],
            vec![
                sample(ms(110), false),
                sample(ms(210), false),
                sample(ms(310), true),
            ],
            vec![
                sample(ms(120), false),
                sample(ms(220), false),
                sample(ms(320), false),
            ],
        ];
        assert_eq!(moved_at(&plan, &samples, t0), Some((ms(310), "lb2".into())));
        // an answer from before the stop does not count
        assert_eq!(moved_at(&plan, &samples, ms(400)), None);
        // the old holder still holding it: not moved, whoever else claims it
        let split = vec![
            vec![sample(ms(100), true)],
            vec![sample(ms(110), true)],
            vec![sample(ms(120), false)],
        ];
        assert_eq!(moved_at(&plan, &split, t0), None);
    }
}
