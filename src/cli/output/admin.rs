//! `lbctl drain|maint|ready|weight`: a line per load balancer, then one summary line; the
//! sessions left while `drain --wait` waits (live on a terminal, a line per change
//! otherwise).

use std::{io::IsTerminal, sync::Mutex, time::Duration};

use indicatif::{ProgressBar, ProgressStyle};

use super::json;
use crate::{
    cli::{
        ExitStatus,
        commands::{
            Global,
            admin::{Outcome, WaitReporter},
        },
    },
    deploy::{AdminReport, Left},
    remote::{AdminState, Engine, Entry, NginxOutcome, Setting},
    source::escape_control,
};

/// lbctl's record on one host in words, one line per worker and setting:
/// `k8s-worker-2 drained since 14:02 by root@ops1 (run 1a2b3c4d): mysql, redis, wireguard (udp)`.
pub fn record_lines(entries: &[Entry]) -> Vec<String> {
    let mut groups: Vec<(&Entry, Vec<String>)> = Vec::new();
    for e in entries {
        let server = format!(
            "{}{}",
            e.backend,
            if e.engine == Engine::Nginx {
                " (udp)"
            } else {
                ""
            }
        );
        match groups
            .iter_mut()
            .find(|(first, _)| first.worker == e.worker && first.setting == e.setting)
        {
            Some((first, servers)) => {
                if e.since < first.since {
                    *first = e;
                }
                servers.push(server);
            }
            None => groups.push((e, vec![server])),
        }
    }
    groups
        .into_iter()
        .map(|(e, servers)| {
            let mut line = format!(
                "{} {} since {} by {} (run {}): {}",
                e.worker,
                done_words(e.setting),
                super::local_time(e.since),
                if e.who.is_empty() {
                    "?".into()
                } else {
                    escape_control(&e.who)
                },
                e.run,
                servers.join(", ")
            );
            if !e.reason.is_empty() {
                line.push_str(&format!(" - {}", escape_control(&e.reason)));
            }
            line
        })
        .collect()
}

/// The setting as a past participle: `drained`, `in maintenance`, `ready`, `at weight 5`.
pub fn done_words(setting: Setting) -> String {
    match setting {
        Setting::State(AdminState::Drain) => "drained".into(),
        Setting::State(AdminState::Maint) => "in maintenance".into(),
        Setting::State(AdminState::Ready) => "ready".into(),
        Setting::Weight(Some(w)) => format!("at weight {w}"),
        Setting::Weight(None) => "at its configured weight".into(),
    }
}

/// Prints what happened; exit 1 when a load balancer was not changed as asked, else 3 when
/// `--wait` ran out of time, else 0. With `--wait`, the change was printed before the wait.
pub fn print(global: &Global, outcome: &Outcome) -> ExitStatus {
    let report = &outcome.report;
    if global.json {
        json(outcome);
    } else {
        if outcome.wait.is_none() {
            print_change(report);
        }
        if let Some(w) = &outcome.wait {
            if w.drained {
                outln!(
                    "{}: no session left on {} after {:.1} s",
                    report.worker,
                    w.left
                        .iter()
                        .map(|l| l.host.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    w.seconds
                );
            } else {
                errln!(
                    "error: {} still has sessions after {}: {}",
                    report.worker,
                    seconds_words(w.timeout_seconds),
                    counts(&w.left)
                );
            }
        }
    }
    if !report.complete() {
        ExitStatus::Failed
    } else if outcome.wait.as_ref().is_some_and(|w| !w.drained) {
        ExitStatus::MissedBudget
    } else {
        ExitStatus::Success
    }
}

/// The change: a line per load balancer, then one summary line.
fn print_change(report: &AdminReport) {
    for h in &report.hosts {
        let mut parts: Vec<String> = h
            .servers
            .iter()
            .map(|s| {
                let udp = if s.engine == Engine::Nginx {
                    " (udp)"
                } else {
                    ""
                };
                format!(
                    "{}/{}{udp} {} -> {}",
                    s.backend, s.server, s.before, s.after
                )
            })
            .collect();
        match &h.nginx {
            Some(NginxOutcome::Reloaded) => parts.push("nginx reloaded".into()),
            Some(NginxOutcome::Failed(_)) => parts.push("nginx failed".into()),
            Some(NginxOutcome::Unchanged) | None => {}
        }
        if !h.converged.is_empty() {
            parts.push(format!("brought in line: {}", h.converged.join(", ")));
        }
        match &h.error {
            Some(e) if h.unreachable => outln!(
                "{}: not changed: unreachable ({e}); the next apply or drain|maint|ready|weight brings it in line",
                h.host
            ),
            Some(e) => {
                if !parts.is_empty() {
                    outln!("{}: {}", h.host, parts.join("; "));
                }
                errln!("error: {}: {e}", h.host);
            }
            None => outln!("{}: {} ({:.2} s)", h.host, parts.join("; "), h.seconds),
        }
    }
    let done: Vec<&str> = report
        .hosts
        .iter()
        .filter(|h| h.error.is_none())
        .map(|h| h.host.as_str())
        .collect();
    let missed: Vec<&str> = report
        .hosts
        .iter()
        .filter(|h| h.error.is_some())
        .map(|h| h.host.as_str())
        .collect();
    let mut line = format!(
        "{} {} on {} (run {})",
        report.worker,
        done_words(report.setting),
        if done.is_empty() {
            "no load balancer".to_string()
        } else {
            done.join(", ")
        },
        report.stamp.run
    );
    if !missed.is_empty() {
        line.push_str(&format!("; not on {}", missed.join(", ")));
    }
    outln!("{line}");
}

fn seconds_words(seconds: f64) -> String {
    if seconds >= 60.0 && seconds % 60.0 == 0.0 {
        format!("{} min", seconds / 60.0)
    } else {
        format!("{seconds} s")
    }
}

/// `lb1 3, lb2 0, lb3 ?`.
fn counts(left: &[Left]) -> String {
    left.iter()
        .map(|l| match &l.sessions {
            Ok(n) => format!("{} {n}", l.host),
            Err(e) => format!("{} ? ({e})", l.host),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `--wait`'s display: a live line on a terminal, a line per change otherwise, nothing with
/// `--json`.
pub enum Waiting {
    Live(ProgressBar),
    Lines(Mutex<String>),
    Quiet,
}

impl Waiting {
    pub fn new(global: &Global, worker: &str) -> Waiting {
        if global.json {
            Waiting::Quiet
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:.bold} {msg} {elapsed}")
                    .expect("static template"),
            );
            bar.set_prefix(format!("{worker}: sessions left"));
            // hidden until the change is done and printed
            Waiting::Live(bar)
        } else {
            Waiting::Lines(Mutex::new(String::new()))
        }
    }

    pub fn finish(&self) {
        if let Waiting::Live(bar) = self {
            bar.finish_and_clear();
        }
    }
}

impl WaitReporter for Waiting {
    fn changed(&self, report: &AdminReport) {
        match self {
            Waiting::Live(bar) => {
                bar.suspend(|| print_change(report));
                bar.set_message("counting");
                bar.enable_steady_tick(Duration::from_millis(100));
            }
            Waiting::Lines(_) => print_change(report),
            Waiting::Quiet => {}
        }
    }

    fn sessions_left(&self, left: &[Left], elapsed: Duration) {
        let text = counts(left);
        match self {
            Waiting::Live(bar) => bar.set_message(text),
            Waiting::Lines(last) => {
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                if *last != text {
                    errln!("sessions left after {:.0} s: {text}", elapsed.as_secs_f64());
                    *last = text;
                }
            }
            Waiting::Quiet => {}
        }
    }
}
