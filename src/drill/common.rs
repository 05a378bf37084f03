//! What both failover drills share: a run id, the signals that cut a drill short, the client
//! probe and its baseline, progress lines, another inventory host's connection, and a bounded
//! poller that watches every load balancer while something is broken.

use std::{
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use crate::{
    deploy::status,
    drill::probe,
    error::Error,
    input::inventory::Inventory,
    input::vars::{self, Sources},
    remote::lb_state::{LbState, Query},
    source::diagnostic::Diagnostics,
    spec::connection::Connection,
    spec::host as host_spec,
    ssh::session::Session,
};

/// Polls that may fail in a row before a load balancer counts as lost.
const MAX_FAILED_POLLS: u32 = 3;
/// Probing before anything is broken, so that a tier already failing shows as such.
const BASELINE: Duration = Duration::from_secs(1);
/// Probing after the tier is whole again.
pub const TAIL: Duration = Duration::from_secs(1);
/// How much longer than the drill's window the probe may run, whatever happens to lbctl.
const PROBE_MARGIN: Duration = Duration::from_secs(30);

/// A drill's client probe, past its baseline.
pub struct Probing {
    pub probe: probe::Running,
    /// Where the probe runs: `lbctl`, or the inventory host it runs on.
    pub from: String,
    /// How long the drill may take in all: the probe's own limit, and the watch's.
    pub limit: Duration,
}

/// Starts a drill's client probe (`rate` new connections a second to `targets`, each given
/// `timeout`), from lbctl or from the host `from` over its session, and lets it run for the
/// baseline. `window` is how long the fault and the recovery may take; the probe's own limit
/// follows from it. Interrupted meanwhile, it stops the probe and fails before anything was
/// changed.
pub async fn start_probe(
    targets: Vec<probe::Target>,
    rate: u32,
    timeout: Duration,
    window: Duration,
    from: Option<(&Connection, &Arc<Session>)>,
    run_id: &str,
    say: Narrator,
) -> Result<Probing, Error> {
    let limit = BASELINE + window + TAIL + PROBE_MARGIN;
    let settings = probe::Settings {
        targets,
        rate,
        timeout,
        max_duration: limit,
    };
    let probe = probe::start_from(
        settings,
        from.map(|(c, s)| (c.name.as_str(), s)),
        run_id,
        say,
    );
    if let Some(why) = tokio::select! {
        _ = tokio::time::sleep(BASELINE) => None,
        why = interrupted() => Some(why),
    } {
        let _ = probe.stop().await;
        return Err(Error::Failed(format!("{why} before anything was changed")));
    }
    Ok(Probing {
        probe,
        from: from.map_or("lbctl".to_string(), |(c, _)| c.name.clone()),
        limit,
    })
}

/// A short id for this run: it names the worker's rules, the switch and the probe's files.
pub fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 40);
    format!("{:08x}", mixed & 0xffff_ffff)
}

/// Resolves when the user interrupts lbctl (Ctrl-C) or something asks it to stop (SIGTERM).
pub async fn interrupted() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "interrupted (Ctrl-C)";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "interrupted (Ctrl-C)",
        _ = term.recv() => "terminated (SIGTERM)",
    }
}

/// Progress lines on stderr (`lbctl: ...`), none with `--json`.
#[derive(Debug, Clone, Copy)]
pub struct Narrator {
    pub quiet: bool,
}

impl Narrator {
    pub fn say(&self, message: impl fmt::Display) {
        if !self.quiet {
            eprintln!("lbctl: {message}");
        }
    }
}

/// The SSH connection of an inventory host that is not a load balancer (a worker, a probe
/// host), from its own `ansible_*` variables exactly as for the load balancers.
pub fn host_connection(
    inventory: &Inventory,
    sources: &Sources,
    name: &str,
    what: &str,
) -> Result<Connection, Error> {
    if !inventory.hosts.contains_key(name) {
        let known: Vec<&str> = inventory.hosts.keys().map(String::as_str).collect();
        return Err(Error::Usage {
            message: format!("the inventory has no host `{name}` (the {what})"),
            hint: format!("hosts in the inventory: {}", known.join(", ")),
        });
    }
    let vars = vars::resolve(inventory, name, sources);
    let mut diags = Diagnostics::default();
    match host_spec::parse_connection(name, &vars, &mut diags) {
        Some(conn) => Ok(conn),
        None => Err(Error::Invalid(diags.into_vec())),
    }
}

/// One poll's answer, as the caller's extract function kept it, and when the host looked.
#[derive(Debug, Clone)]
pub struct Sample<T> {
    pub at: Instant,
    pub value: T,
}

/// A poll as it happened: sent and answered (here), and the host's clock when it looked.
#[derive(Debug, Clone)]
struct Poll<T> {
    sent: Instant,
    answered: Instant,
    clock_ms: Option<u64>,
    value: T,
}

struct Shared<T> {
    polls: Vec<Vec<Poll<T>>>,
    /// A host that stopped answering, and why.
    lost: Option<(String, String)>,
}

/// A host's clock mapped onto this machine's, as NTP does: from the round trip that took the
/// least time, whose error is at most half of it. An answer is only known to describe some
/// moment between sending and answering, which on a busy machine or a slow link can be
/// long; the host's own clock says when, and lbctl times changes by it.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: Instant,
    /// The host's milliseconds since the epoch minus ours since `base`.
    offset_ms: f64,
}

fn signed_ms(base: Instant, at: Instant) -> f64 {
    if at >= base {
        (at - base).as_secs_f64() * 1000.0
    } else {
        -((base - at).as_secs_f64() * 1000.0)
    }
}

impl Clock {
    /// From round trips `(sent, answered, host's clock)`; `None` without any clock.
    pub fn from_round_trips(
        trips: impl IntoIterator<Item = (Instant, Instant, u64)>,
    ) -> Option<Clock> {
        let (sent, answered, clock) = trips.into_iter().min_by_key(|(s, a, _)| *a - *s)?;
        let base = sent;
        Some(Clock {
            base,
            offset_ms: clock as f64 - signed_ms(base, answered) / 2.0,
        })
    }

    /// When the host's clock read `clock_ms`, on ours, kept within `[sent, answered]` (the
    /// only moments the host can have meant).
    pub fn local(&self, clock_ms: u64, sent: Instant, answered: Instant) -> Instant {
        let ms = (clock_ms as f64 - self.offset_ms)
            .clamp(signed_ms(self.base, sent), signed_ms(self.base, answered));
        if ms >= 0.0 {
            self.base + Duration::from_secs_f64(ms / 1000.0)
        } else {
            self.base - Duration::from_secs_f64(-ms / 1000.0)
        }
    }
}

/// Asks the host for its clock a few times and maps it onto ours; `None` when the host has
/// no GNU `date` (callers then time by the round trip, later but never early).
pub async fn sync_clock(session: &Session) -> Option<Clock> {
    let mut trips = Vec::new();
    for _ in 0..3 {
        let sent = Instant::now();
        let out = session.run("date +%s%3N\n").await.ok()?;
        let answered = Instant::now();
        let clock = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
        trips.push((sent, answered, clock));
    }
    Clock::from_round_trips(trips)
}

/// When each poll's host looked, on this machine's clock; without the host's clock, when its
/// answer came.
fn timed<T: Clone>(polls: &[Poll<T>]) -> Vec<Sample<T>> {
    let clock = Clock::from_round_trips(
        polls
            .iter()
            .filter_map(|p| p.clock_ms.map(|c| (p.sent, p.answered, c))),
    );
    polls
        .iter()
        .map(|p| Sample {
            at: match (clock, p.clock_ms) {
                (Some(clock), Some(c)) => clock.local(c, p.sent, p.answered),
                _ => p.answered,
            },
            value: p.value.clone(),
        })
        .collect()
}

/// Polls every load balancer at a fixed interval until stopped or until its time limit.
pub struct Watch<T> {
    shared: Arc<Mutex<Shared<T>>>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl<T: Clone + Send + 'static> Watch<T> {
    /// Starts one poller per `(host, session, query)`. `extract` keeps what matters of each
    /// answer (host index, state), so that a long watch over a big configuration stays small.
    pub fn start(
        hosts: Vec<(String, Arc<Session>, Query)>,
        every: Duration,
        limit: Duration,
        extract: impl Fn(usize, &LbState) -> T + Send + Sync + 'static,
    ) -> Watch<T> {
        let shared = Arc::new(Mutex::new(Shared {
            polls: vec![Vec::new(); hosts.len()],
            lost: None,
        }));
        let (stop, rx) = tokio::sync::watch::channel(false);
        let extract = Arc::new(extract);
        let deadline = tokio::time::Instant::now() + limit;
        let tasks = hosts
            .into_iter()
            .enumerate()
            .map(|(index, (host, session, query))| {
                let (shared, extract, mut rx) =
                    (Arc::clone(&shared), Arc::clone(&extract), rx.clone());
                tokio::spawn(async move {
                    let mut failures = 0;
                    loop {
                        let sent = tokio::time::Instant::now();
                        if sent >= deadline || *rx.borrow() {
                            return;
                        }
                        match status::read(&session, &query).await {
                            Ok(state) => {
                                failures = 0;
                                let poll = Poll {
                                    sent: sent.into_std(),
                                    answered: Instant::now(),
                                    clock_ms: state.clock_ms,
                                    value: extract(index, &state),
                                };
                                shared.lock().expect("watch lock").polls[index].push(poll);
                            }
                            Err(e) => {
                                failures += 1;
                                if failures >= MAX_FAILED_POLLS {
                                    let mut s = shared.lock().expect("watch lock");
                                    s.lost.get_or_insert((host, e));
                                    return;
                                }
                            }
                        }
                        tokio::select! {
                            _ = tokio::time::sleep_until(sent + every) => {}
                            _ = rx.changed() => return,
                        }
                    }
                })
            })
            .collect();
        Watch {
            shared,
            stop,
            tasks,
        }
    }

    /// Every sample so far, per host, in the order they were taken.
    pub fn samples(&self) -> Vec<Vec<Sample<T>>> {
        let shared = self.shared.lock().expect("watch lock");
        shared.polls.iter().map(|polls| timed(polls)).collect()
    }

    /// The first host that stopped answering, and its error.
    pub fn lost(&self) -> Option<(String, String)> {
        self.shared.lock().expect("watch lock").lost.clone()
    }

    /// Stops every poller (each finishes the poll it is in) and returns all samples.
    pub async fn stop(mut self) -> Vec<Vec<Sample<T>>> {
        let _ = self.stop.send(true);
        for task in &mut self.tasks {
            let _ = task.await;
        }
        self.samples()
    }
}

/// Milliseconds between two instants, for reports (0 when `to` is earlier).
pub fn millis(from: Instant, to: Instant) -> u64 {
    to.saturating_duration_since(from).as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_clock_places_each_answer_inside_its_round_trip() {
        let base = Instant::now();
        let ms = |n: u64| base + Duration::from_millis(n);
        // the host's clock runs 5 s ahead of ours; the second poll was slow to come back
        let poll = |sent, answered, clock| Poll {
            sent: ms(sent),
            answered: ms(answered),
            clock_ms: Some(clock),
            value: (),
        };
        let polls = [
            poll(1000, 1020, 6010),
            poll(1200, 2400, 6300),
            poll(2600, 2620, 7610),
        ];
        let at: Vec<u64> = timed(&polls)
            .iter()
            .map(|s| (s.at - base).as_millis() as u64)
            .collect();
        assert_eq!(at, [1010, 1300, 2610]);
        // without a clock, the arrival
        let bare = [Poll {
            sent: ms(100),
            answered: ms(900),
            clock_ms: None,
            value: (),
        }];
        assert_eq!(timed(&bare)[0].at, ms(900));
    }
}
