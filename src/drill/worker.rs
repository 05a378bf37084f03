//! `lbctl failover-test --worker`: break one worker's NodePorts on purpose, measure how fast
//! every load balancer notices and recovers and what clients saw meanwhile, and put the
//! worker back, even if lbctl itself dies halfway.
//!
//! [`plan`] is plain data in, plain data out (which servers break, their budgets, what to
//! probe); [`run`] does it over SSH:
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
//! 6. the report: detection and recovery against their budgets, probe failures per phase.
//!
//! Ctrl-C, SIGTERM and every error after step 3 remove the rules at once.

use std::{
    collections::BTreeSet,
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::{
    drill::common::{self as drill, Narrator, Sample, Watch},
    drill::fault::{self, Fault, Method},
    drill::probe::{self, Tally},
    error::Error,
    remote::lb_state::Query,
    remote::runtime_api::State,
    spec::connection::Connection,
    spec::fleet::Fleet,
    spec::host::HostSpec,
    ssh::pool as sessions,
    ssh::session::{ConnectOptions, Session},
};

/// How often every load balancer's runtime API is asked, while the fault is on and after.
pub const POLL_EVERY: Duration = Duration::from_millis(200);
/// How long past the longest possible fault the dead man's switch fires.
pub const SWITCH_MARGIN: Duration = Duration::from_secs(15);

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct WorkerTest {
    pub worker: String,
    /// Backends to break the worker in; empty: every TCP backend that has it.
    pub backends: Vec<String>,
    pub method: Method,
    pub hold: Duration,
    pub force: bool,
    /// New probe connections per second.
    pub probe_rate: u32,
    /// Failed probe connections the tier may cost before it fails the test.
    pub max_failed: u64,
}

/// One server the test breaks, on one load balancer, with its budgets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub lb: String,
    pub backend: String,
    pub server: String,
    pub address: String,
    pub port: u16,
    pub inter_ms: u64,
    pub rise: u32,
    pub fall: u32,
    pub detect_budget_ms: u64,
    pub recover_budget_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub worker: String,
    /// The load balancers, in the fleet's order.
    pub lbs: Vec<String>,
    pub backends: Vec<String>,
    pub targets: Vec<Target>,
    /// The worker's ports that break: the targeted servers' ports.
    pub ports: Vec<u16>,
    pub probe_targets: Vec<probe::Target>,
    /// Longer than HAProxy's connect timeout times its tries, so that a redispatched
    /// connection counts as the success it is for the client.
    pub probe_timeout: Duration,
}

impl Plan {
    fn max_detect_budget(&self) -> Duration {
        Duration::from_millis(
            self.targets
                .iter()
                .map(|t| t.detect_budget_ms)
                .max()
                .unwrap_or(0),
        )
    }

    fn max_recover_budget(&self) -> Duration {
        Duration::from_millis(
            self.targets
                .iter()
                .map(|t| t.recover_budget_ms)
                .max()
                .unwrap_or(0),
        )
    }

    /// The longest the fault can stay: `--hold`, or until detection, at most twice the
    /// largest detection budget (so a late detection is still measured).
    fn longest_fault(&self, hold: Duration) -> Duration {
        hold.max(self.max_detect_budget() * 2)
    }
}

/// How long HAProxy may take to mark a server DOWN: `fall` checks, each `inter` apart, plus one
/// `inter` for the check under way when the fault began. For a worker that drops packets this
/// holds because lbctl renders checks that fail fast: `fastinter` a quarter of `inter` once a
/// check has failed, and a `timeout connect` (the checks' connect timeout) below `inter`.
pub fn detect_budget(inter_ms: u64, fall: u32) -> u64 {
    inter_ms * u64::from(fall) + inter_ms
}

/// How long HAProxy may take to mark a server UP again: `rise` checks, plus one `inter`.
pub fn recover_budget(inter_ms: u64, rise: u32) -> u64 {
    inter_ms * u64::from(rise) + inter_ms
}

/// Decides what breaks and what it may cost, from the validated fleet and the worker's
/// connection (whose address is what servers are matched against, besides its name).
pub fn plan(fleet: &Fleet, worker: &Connection, test: &WorkerTest) -> Result<Plan, Error> {
    if fleet.host(&worker.name).is_some() {
        return Err(Error::Usage {
            message: format!("`{}` is a load balancer, not a worker", worker.name),
            hint: format!(
                "break a load balancer with `failover-test --lb {}`",
                worker.name
            ),
        });
    }
    let on_worker = |address: &str| address == worker.address || address == worker.name;
    let tcp_names: BTreeSet<&str> = fleet
        .hosts
        .iter()
        .flat_map(|h| h.tcp_backends.iter().map(|b| b.name.as_str()))
        .collect();
    let backends: Vec<String> = if test.backends.is_empty() {
        let mut names = BTreeSet::new();
        for h in &fleet.hosts {
            for b in h.tcp_backends.iter() {
                if b.servers.iter().any(|s| on_worker(&s.address)) {
                    names.insert(b.name.clone());
                }
            }
        }
        if names.is_empty() {
            return Err(Error::Usage {
                message: format!(
                    "no TCP backend has a server on `{}` ({})",
                    worker.name, worker.address
                ),
                hint: "a server is on the worker when its `address` is the worker's ansible_host or inventory name".into(),
            });
        }
        names.into_iter().collect()
    } else {
        for name in &test.backends {
            if tcp_names.contains(name.as_str()) {
                continue;
            }
            let udp = fleet
                .hosts
                .iter()
                .any(|h| h.udp_backends.iter().any(|b| &b.name == name));
            return Err(if udp {
                Error::Usage {
                    message: format!(
                        "`{name}` is a UDP backend: its health is passive, there is no check to time"
                    ),
                    hint:
                        "failover-test measures HAProxy's active health checks; pick TCP backends"
                            .into(),
                }
            } else {
                Error::Usage {
                    message: format!("there is no TCP backend `{name}`"),
                    hint: format!(
                        "TCP backends: {}",
                        tcp_names.iter().copied().collect::<Vec<_>>().join(", ")
                    ),
                }
            });
        }
        let mut names = test.backends.clone();
        names.dedup();
        names
    };

    let mut targets = Vec::new();
    let mut probe_timeout = Duration::ZERO;
    for h in &fleet.hosts {
        let tries = u64::from(h.haproxy.retries) + 1;
        probe_timeout = probe_timeout.max(Duration::from_millis(
            h.haproxy.timeout_connect.ms * tries + 1000,
        ));
        for name in &backends {
            let Some(b) = h.tcp_backends.iter().find(|b| &b.name == name) else {
                return Err(Error::Usage {
                    message: format!("load balancer `{}` has no backend `{name}`", h.name),
                    hint: "the backends to break must exist on every load balancer".into(),
                });
            };
            let servers: Vec<_> = b.servers.iter().filter(|s| on_worker(&s.address)).collect();
            if servers.is_empty() {
                return Err(Error::Usage {
                    message: format!(
                        "backend `{name}` has no server on `{}` ({}) on load balancer `{}`",
                        worker.name, worker.address, h.name
                    ),
                    hint: "a server is on the worker when its `address` is the worker's ansible_host or inventory name".into(),
                });
            }
            for s in servers {
                if !s.check {
                    return Err(Error::Usage {
                        message: format!(
                            "server `{}` of backend `{name}` has no health check: HAProxy would never mark it DOWN",
                            s.name
                        ),
                        hint: "set `check: true` on it (the default)".into(),
                    });
                }
                let inter = s.check_interval.ms;
                targets.push(Target {
                    lb: h.name.clone(),
                    backend: name.clone(),
                    server: s.name.clone(),
                    address: s.address.clone(),
                    port: s.port,
                    inter_ms: inter,
                    rise: s.rise,
                    fall: s.fall,
                    detect_budget_ms: detect_budget(inter, s.fall),
                    recover_budget_ms: recover_budget(inter, s.rise),
                });
            }
        }
    }
    let ports: Vec<u16> = targets
        .iter()
        .map(|t| t.port)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(Plan {
        worker: worker.name.clone(),
        lbs: fleet.hosts.iter().map(|h| h.name.clone()).collect(),
        probe_targets: probe_targets(fleet, &backends)?,
        backends,
        targets,
        ports,
        probe_timeout,
    })
}

/// Where clients connect for `backends`: the VIP (each backend listening on every address),
/// a backend's own bind address, or without a VIP every load balancer in turn.
fn probe_targets(fleet: &Fleet, backends: &[String]) -> Result<Vec<probe::Target>, Error> {
    let vips: Vec<String> = fleet
        .hosts
        .iter()
        .find_map(|h| h.keepalived.as_ref())
        .map(|k| {
            k.vips
                .iter()
                .map(|v| v.split('/').next().unwrap_or(v).to_string())
                .collect()
        })
        .unwrap_or_default();
    let mut targets = Vec::new();
    for name in backends {
        let Some(b) = fleet
            .hosts
            .iter()
            .find_map(|h| h.tcp_backends.iter().find(|b| &b.name == name))
        else {
            continue;
        };
        let hosts: Vec<String> = match b.bind.as_str() {
            "*" | "0.0.0.0" | "::" | "[::]" if !vips.is_empty() => vips.clone(),
            "*" | "0.0.0.0" | "::" | "[::]" => fleet
                .hosts
                .iter()
                .map(|h| h.connection.address.clone())
                .collect(),
            address => vec![address.trim_matches(['[', ']']).to_string()],
        };
        for host in hosts {
            let target = probe::Target { host, port: b.port };
            if !targets.contains(&target) {
                targets.push(target);
            }
        }
    }
    if targets.is_empty() {
        return Err(Error::Failed("nothing to probe".into()));
    }
    Ok(targets)
}

/// Where the probe runs and the connections the drill needs.
pub struct Setup {
    pub lbs: Vec<HostSpec>,
    pub worker: Connection,
    /// `--probe-from`: the probe runs there over SSH instead of where lbctl runs.
    pub probe_from: Option<Connection>,
    pub connect_timeout: Duration,
    pub forks: usize,
    pub narrator: Narrator,
}

#[derive(Debug, Clone, Serialize)]
pub struct WorkerReport {
    pub run_id: String,
    pub worker: String,
    pub method: Method,
    pub backends: Vec<String>,
    pub ports: Vec<u16>,
    /// How long the rules were in place.
    pub fault_ms: u64,
    pub results: Vec<TargetResult>,
    pub probe: ProbeReport,
    /// When the dead man's switch would have removed the rules, counted from arming.
    pub switch_fires_after_ms: u64,
    /// lbctl-failover rules on the worker after the restore (none, when all went well).
    pub rules_left: Vec<String>,
    pub max_failed: u64,
    pub passed: bool,
    /// Why the test failed, one reason per line; empty when it passed.
    pub failures: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetResult {
    #[serde(flatten)]
    pub target: Target,
    /// From sending the rules until this load balancer showed the server DOWN (polled every
    /// [`POLL_EVERY`], so up to that much late); `None`: not while the fault was on.
    pub detected_ms: Option<u64>,
    pub detected_in_budget: bool,
    /// From the moment the rules were gone until it showed the server steadily UP.
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
    /// After the rules were removed, until every load balancer showed the server UP.
    pub recovery: Tally,
    /// The rest.
    pub after: Tally,
    pub total: Tally,
}

/// Per load balancer, per target: the server's state in each poll.
type Observed = Vec<(State, bool)>;

/// Runs the drill. Errors before the fault leave everything untouched; errors after it
/// restore the worker first.
pub async fn run(plan: &Plan, test: &WorkerTest, setup: &Setup) -> Result<WorkerReport, Error> {
    let say = setup.narrator;
    let run_id = drill::run_id();

    // Sessions: every load balancer, the worker, and the probe host.
    let mut connections: Vec<Connection> = setup.lbs.iter().map(|h| h.connection.clone()).collect();
    connections.push(setup.worker.clone());
    connections.extend(setup.probe_from.clone());
    let mut all = sessions::connect_every(&connections, setup.connect_timeout, setup.forks).await?;
    let probe_session = setup
        .probe_from
        .as_ref()
        .map(|_| all.pop().expect("probe session"));
    let worker = all.pop().expect("worker session");
    let lbs = all;

    preflight(plan, test, setup, &lbs, &worker).await?;
    let worker_clock = drill::sync_clock(&worker).await;
    say.say(format!(
        "pre-flight ok: {} UP on {} load balancer{} in {}",
        plan.worker,
        lbs.len(),
        if lbs.len() == 1 { "" } else { "s" },
        plan.backends.join(", ")
    ));

    let longest_fault = plan.longest_fault(test.hold);
    let recover_deadline = plan.max_recover_budget() * 2;
    let drill::Probing {
        probe,
        from: probe_from,
        limit,
    } = drill::start_probe(
        plan.probe_targets.clone(),
        test.probe_rate,
        plan.probe_timeout,
        longest_fault + recover_deadline,
        setup.probe_from.as_ref().zip(probe_session.as_ref()),
        &run_id,
        say,
    )
    .await?;

    let watch = watch_targets(plan, setup, &lbs, limit);
    let fault = Fault::new(&run_id, test.method, plan.ports.clone());
    let switch = fault.switch(longest_fault + SWITCH_MARGIN);
    let ports = plan
        .ports
        .iter()
        .map(|p| format!("{p}/tcp"))
        .collect::<Vec<_>>()
        .join(", ");

    // The fault: from here on, every way out restores the worker first.
    let mut armed = None;
    let mut fault_on: Option<Instant> = None;
    let outcome: Result<(), String> = tokio::select! {
        r = async {
            let sent = Instant::now();
            let out = worker.run(&fault.inject_script(&switch)).await.map_err(|e| e.to_string())?;
            let answered = Instant::now();
            let report = fault::parse(&out.stdout).map_err(|e| format!("{e} ({out})"))?;
            armed = report.armed.clone();
            if let Some(e) = report.switch_error {
                return Err(format!("cannot arm the dead man's switch on {}: {e}", plan.worker));
            }
            if !report.inserted {
                return Err(format!(
                    "cannot insert the iptables rules on {}: {}",
                    plan.worker,
                    report.insert_error.unwrap_or_else(|| out.to_string())
                ));
            }
            // The worker's clock says when the rules were in; without it, the send (which never
            // makes a detection look faster than it was).
            let t0 = match (worker_clock, report.clock_ms) {
                (Some(clock), Some(ms)) => clock.local(ms, sent, answered),
                _ => sent,
            };
            fault_on = Some(t0);
            say.say(format!(
                "{}: {} {ports} (rules tagged {}; dead man's switch removes them in {} s if lbctl does not)",
                plan.worker,
                match test.method { Method::Drop => "dropping", Method::Reject => "rejecting" },
                fault.tag,
                switch.fires_after.as_secs(),
            ));
            wait_for_detection(plan, test.hold, longest_fault, &watch, t0, say).await
        } => r,
        why = drill::interrupted() => Err(format!("{why} during the fault")),
    };

    let restored = restore(
        &worker,
        &fault,
        &switch,
        armed.as_ref(),
        setup,
        worker_clock,
    )
    .await;
    let (rules_left, fault_off) = match restored {
        Ok(restored) => restored,
        Err(e) => {
            let _ = watch.stop().await;
            let _ = probe.stop().await;
            return Err(Error::Failed(format!(
                "{}{e}; its dead man's switch removes them by itself within {} s of arming",
                outcome
                    .err()
                    .map(|o| format!("{o}; then "))
                    .unwrap_or_default(),
                switch.fires_after.as_secs()
            )));
        }
    };
    say.say(format!("{}: rules removed, switch disarmed", plan.worker));
    if let Err(e) = outcome {
        let _ = watch.stop().await;
        let _ = probe.stop().await;
        let state = if rules_left.is_empty() {
            "its rules are removed and the switch disarmed".to_string()
        } else {
            format!("lbctl rules still on it: {}", rules_left.join("; "))
        };
        return Err(Error::Failed(format!(
            "{e}; {} restored: {state}",
            plan.worker
        )));
    }
    let fault_on = fault_on.expect("the fault was on");

    // Recovery: bounded, and cut short (without error) by Ctrl-C.
    let recovered_all = tokio::select! {
        r = wait_for_recovery(plan, &watch, fault_off, recover_deadline, say) => r,
        _ = drill::interrupted() => None,
    };
    if let Some((host, e)) = watch.lost() {
        let _ = watch.stop().await;
        let _ = probe.stop().await;
        return Err(Error::Failed(format!(
            "lost {host} while waiting for recovery: {e}"
        )));
    }
    tokio::time::sleep(drill::TAIL).await;
    let samples = watch.stop().await;
    let recorded = probe.stop().await.map_err(Error::Failed)?;

    let results = results(plan, &samples, fault_on, fault_off);
    let end = recovered_all;
    let probe_report = ProbeReport {
        from: probe_from,
        targets: plan.probe_targets.iter().map(ToString::to_string).collect(),
        rate: test.probe_rate,
        timeout_ms: plan.probe_timeout.as_millis() as u64,
        before: recorded.tally(recorded.started, Some(fault_on)),
        fault: recorded.tally(fault_on, Some(fault_off)),
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
    if probe_report.total.failed > test.max_failed {
        failures.push(format!(
            "{} of {} probe connections failed (at most {} allowed)",
            probe_report.total.failed, probe_report.total.attempts, test.max_failed
        ));
    }
    if rules_left.iter().any(|r| r.contains(&fault.tag)) {
        failures.push(format!("rules of this run are still on {}", plan.worker));
    }
    Ok(WorkerReport {
        run_id,
        worker: plan.worker.clone(),
        method: test.method,
        backends: plan.backends.clone(),
        ports: plan.ports.clone(),
        fault_ms: drill::millis(fault_on, fault_off),
        results,
        probe: probe_report,
        switch_fires_after_ms: switch.fires_after.as_millis() as u64,
        rules_left,
        max_failed: test.max_failed,
        passed: failures.is_empty(),
        failures,
    })
}

/// Every load balancer answers, the worker's servers are steadily UP everywhere, none is
/// the last UP server of its backend (unless forced), and the worker has no lbctl rule yet.
async fn preflight(
    plan: &Plan,
    test: &WorkerTest,
    setup: &Setup,
    lbs: &[Arc<Session>],
    worker: &Session,
) -> Result<(), Error> {
    let scripts = setup
        .lbs
        .iter()
        .map(|h| Query::servers_only(h).script())
        .collect();
    let inspect = Fault::inspect_script();
    let (outputs, inspected) = tokio::join!(sessions::run_all(lbs, scripts), worker.run(&inspect));
    let mut problems = Vec::new();
    let mut last_up = Vec::new();
    for (spec, out) in setup.lbs.iter().zip(outputs) {
        let state = out.and_then(|out| {
            crate::remote::lb_state::parse(&out.stdout).map_err(|e| format!("{e} ({out})"))
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
            Err(e) => problems.push(format!("{}: {e} ({out})", plan.worker)),
            Ok(r) if !r.rules_left.is_empty() => problems.push(format!(
                "{} already carries lbctl failover rules (another test is running, or a killed one's dead man's switch has not fired yet): {}",
                plan.worker,
                r.rules_left.join("; ")
            )),
            Ok(_) => {}
        },
    }
    if !problems.is_empty() {
        return Err(Error::Failed(format!(
            "pre-flight failed, nothing was changed:\n  {}",
            problems.join("\n  ")
        )));
    }
    if !last_up.is_empty() && !test.force {
        return Err(Error::Usage {
            message: format!(
                "refusing to break {}: it is the last UP server of {}",
                plan.worker,
                last_up.join(", ")
            ),
            hint: "bring another server of the backend UP first, or pass --force to take the service down for the test".into(),
        });
    }
    Ok(())
}

fn watch_targets(
    plan: &Plan,
    setup: &Setup,
    lbs: &[Arc<Session>],
    limit: Duration,
) -> Watch<Observed> {
    let per_lb: Vec<Vec<(String, String)>> = setup
        .lbs
        .iter()
        .map(|h| {
            plan.targets
                .iter()
                .filter(|t| t.lb == h.name)
                .map(|t| (t.backend.clone(), t.server.clone()))
                .collect()
        })
        .collect();
    let hosts = setup
        .lbs
        .iter()
        .zip(lbs)
        .map(|(h, s)| (h.name.clone(), Arc::clone(s), Query::servers_only(h)))
        .collect();
    Watch::start(hosts, POLL_EVERY, limit, move |index, state| {
        per_lb[index]
            .iter()
            .map(|(backend, server)| match state.server(backend, server) {
                Some(row) => (row.status.state, row.status.steadily_up()),
                None => (State::Other, false),
            })
            .collect()
    })
}

/// Where each target sits in the watch's samples: its load balancer's index, and its place
/// among that load balancer's targets.
fn positions(plan: &Plan) -> Vec<(usize, usize)> {
    plan.targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let lb = plan
                .lbs
                .iter()
                .position(|n| *n == t.lb)
                .expect("target's lb");
            let nth = plan.targets[..i].iter().filter(|o| o.lb == t.lb).count();
            (lb, nth)
        })
        .collect()
}

/// The first sample at or after `from` where `test` holds for the target.
fn first_at(
    samples: &[Sample<Observed>],
    nth: usize,
    from: Instant,
    test: impl Fn((State, bool)) -> bool,
) -> Option<Instant> {
    samples
        .iter()
        .find(|s| s.at >= from && s.value.get(nth).is_some_and(|&v| test(v)))
        .map(|s| s.at)
}

fn is_down((state, _): (State, bool)) -> bool {
    state == State::Down
}

fn is_up((_, steadily_up): (State, bool)) -> bool {
    steadily_up
}

/// Keeps the fault on for `hold`, and until every load balancer marked every target DOWN
/// or `longest` passed. Reports each detection as it is seen.
async fn wait_for_detection(
    plan: &Plan,
    hold: Duration,
    longest: Duration,
    watch: &Watch<Observed>,
    t0: Instant,
    say: Narrator,
) -> Result<(), String> {
    let positions = positions(plan);
    let mut told = vec![false; plan.targets.len()];
    loop {
        if let Some((host, e)) = watch.lost() {
            return Err(format!("lost {host} during the fault: {e}"));
        }
        let samples = watch.samples();
        let mut all = true;
        for (i, (lb, nth)) in positions.iter().enumerate() {
            match first_at(&samples[*lb], *nth, t0, is_down) {
                Some(at) if !told[i] => {
                    told[i] = true;
                    let t = &plan.targets[i];
                    say.say(format!(
                        "{}: {}/{} DOWN after {} ms (budget {} ms)",
                        t.lb,
                        t.backend,
                        t.server,
                        drill::millis(t0, at),
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

/// Waits (at most `deadline`) until every load balancer shows every target steadily UP;
/// returns when that was, or `None`.
async fn wait_for_recovery(
    plan: &Plan,
    watch: &Watch<Observed>,
    t1: Instant,
    deadline: Duration,
    say: Narrator,
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
                        say.say(format!(
                            "{}: {}/{} UP after {} ms (budget {} ms)",
                            t.lb,
                            t.backend,
                            t.server,
                            drill::millis(t1, at),
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
                .map(|at| drill::millis(t0, at));
            let recovered_ms =
                first_at(&samples[lb], nth, t1, is_up).map(|at| drill::millis(t1, at));
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

/// Removes this run's rules and disarms the switch; on a lost connection, tries once more
/// over a new one. Returns the lbctl rules left on the worker, and when the rules came out
/// (by the worker's clock; else the send, which never makes a recovery look faster).
async fn restore(
    worker: &Session,
    fault: &Fault,
    switch: &crate::drill::dead_mans_switch::DeadMansSwitch,
    armed: Option<&crate::drill::dead_mans_switch::Armed>,
    setup: &Setup,
    clock: Option<drill::Clock>,
) -> Result<(Vec<String>, Instant), String> {
    let script = fault.restore_script(switch, armed);
    let sent = Instant::now();
    let first = match worker.run(&script).await {
        Ok(out) => fault::parse(&out.stdout).map_err(|e| format!("{e} ({out})")),
        Err(e) => Err(e.to_string()),
    };
    let report = match first {
        Ok(r) => r,
        Err(first) => {
            let options = ConnectOptions {
                connect_timeout: setup.connect_timeout,
                persist: None,
            };
            let again = async {
                let session = Session::connect(&setup.worker, &options)
                    .await
                    .map_err(|e| e.to_string())?;
                let out = session.run(&script).await.map_err(|e| e.to_string())?;
                fault::parse(&out.stdout).map_err(|e| format!("{e} ({out})"))
            };
            again.await.map_err(|again| {
                format!(
                    "cannot remove the rules from {}: {first}; then, over a new connection: {again}",
                    setup.worker.name
                )
            })?
        }
    };
    let at = match (clock, report.clock_ms) {
        (Some(clock), Some(ms)) => clock.local(ms, sent, Instant::now()),
        _ => sent,
    };
    Ok((report.rules_left, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_follow_the_servers_own_settings() {
        // inter 1s, fall 2, rise 2, timeout connect 2s: the lab's checks
        assert_eq!(detect_budget(1000, 2), 3000);
        assert_eq!(detect_budget(2000, 3), 8000);
        assert_eq!(recover_budget(1000, 2), 3000);
    }

    #[test]
    fn detection_is_the_first_poll_showing_down_after_the_fault() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let at = |n, state, up| Sample {
            at: ms(n),
            value: vec![(state, up)],
        };
        let samples = vec![
            at(0, State::Up, true),
            at(200, State::Up, false), // UP 1/2: failing, not DOWN yet
            at(3400, State::Down, false),
            at(6000, State::Down, false), // DOWN 1/2
            at(7000, State::Up, true),
        ];
        assert_eq!(first_at(&samples, 0, ms(100), is_down), Some(ms(3400)));
        assert_eq!(first_at(&samples, 0, ms(5000), is_up), Some(ms(7000)));
        assert_eq!(first_at(&samples, 1, t0, is_down), None);
    }
}
