//! What both failover drills share: a run id, the signals that cut a drill short, progress
//! lines, another inventory host's connection, and a bounded poller that watches every load
//! balancer while something is broken.

use std::{
    fmt,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use crate::{
    connection::Connection,
    diagnostic::Diagnostics,
    error::Error,
    host_spec,
    inventory::Inventory,
    lb_state::{LbState, Query},
    status,
    transport::Session,
    vars::{self, Sources},
};

/// Polls that may fail in a row before a load balancer counts as lost.
const MAX_FAILED_POLLS: u32 = 3;

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

/// When each poll's host looked, on this machine's clock. A poll's answer is only known to
/// describe some moment between sending and answering, which on a busy machine or a slow
/// link can be long; the host's own clock says when. Hosts' clocks are mapped onto ours as
/// NTP does: the offset from the poll with the shortest round trip, whose error is at most
/// half of it. Without a clock (no GNU date), the answer's arrival is used.
fn timed<T: Clone>(base: Instant, polls: &[Poll<T>]) -> Vec<Sample<T>> {
    let ms = |at: Instant| at.saturating_duration_since(base).as_secs_f64() * 1000.0;
    let offset = polls
        .iter()
        .filter_map(|p| p.clock_ms.map(|c| (p, c)))
        .min_by_key(|(p, _)| p.answered - p.sent)
        .map(|(p, c)| c as f64 - (ms(p.sent) + ms(p.answered)) / 2.0);
    polls
        .iter()
        .map(|p| {
            let at = match (offset, p.clock_ms) {
                (Some(offset), Some(c)) => {
                    let local = (c as f64 - offset).clamp(ms(p.sent), ms(p.answered));
                    base + Duration::from_secs_f64(local.max(0.0) / 1000.0)
                }
                _ => p.answered,
            };
            Sample {
                at,
                value: p.value.clone(),
            }
        })
        .collect()
}

/// Polls every load balancer at a fixed interval until stopped or until its time limit.
pub struct Watch<T> {
    base: Instant,
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
            base: Instant::now(),
            shared,
            stop,
            tasks,
        }
    }

    /// Every sample so far, per host, in the order they were taken.
    pub fn samples(&self) -> Vec<Vec<Sample<T>>> {
        let shared = self.shared.lock().expect("watch lock");
        shared
            .polls
            .iter()
            .map(|polls| timed(self.base, polls))
            .collect()
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
        let at: Vec<u64> = timed(base, &polls)
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
        assert_eq!(timed(base, &bare)[0].at, ms(900));
    }
}
