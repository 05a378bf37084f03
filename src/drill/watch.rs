//! Watching the tier while something is broken: every load balancer polled at a fixed
//! interval, each answer timed by the host's clock, until stopped or a time limit.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::{
    deploy::{DeployError, read_lb_state},
    drill::clock::Clock,
    remote::{LbState, Query},
    ssh::Session,
};

/// Polls that may fail in a row before a load balancer counts as lost.
const MAX_FAILED_POLLS: u32 = 3;

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
    lost: Option<(String, DeployError)>,
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
                        match read_lb_state(&session, &query).await {
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
    pub fn lost(&self) -> Option<(String, DeployError)> {
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
