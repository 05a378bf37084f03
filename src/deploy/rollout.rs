//! The rollout, in two phases, so that a configuration one host rejects changes no host:
//!
//! 1. every changed host stages its files and checks them with the services' own checks,
//!    all at once, and waits (a held apply script, see [`remote::held_apply_script`], sent
//!    into the shell the survey's fetch left open, so no host needs a second session);
//! 2. only when every host is ready do they go ahead, rolling: one host at a time by default
//!    (`--serial N`: N hosts without a VIP at a time), and the VIP holders last, one by one.
//!
//! Each host swaps, reloads, verifies and rolls back by itself. The first wave with a failure
//! stops the rollout: the hosts still waiting are told to stop and keep their configuration.

use std::time::Instant;

use crate::{
    deploy::DeployError,
    deploy::plan::HostPlan,
    deploy::report::{HostError, HostReport, Outcome, Timing},
    deploy::reporter::Reporter,
    remote::{self, APPLIED, APPLY_LOCK, ApplyReport, Deployment, GO, READY},
    ssh::{RemoteOutput, Running, Session},
};
use futures_util::future::join_all;

/// A host ready to be changed: what it is handed, its plan and open session.
pub struct Target {
    /// What the host is handed: its changed files, checks, reloads and what to verify.
    pub deployment: Deployment,
    pub plan: HostPlan,
    pub session: Session,
    /// The survey's part of its timing (connect, fetch).
    pub timing: Timing,
    /// Where phase 1 runs on the host.
    pub shell: Shell,
}

/// Where a target's phase 1 (its held apply script) runs.
pub enum Shell {
    /// A session channel of its own.
    None,
    /// The shell the survey's fetch ran in, waiting for the script.
    Idle(Running),
    /// That shell, already sent this very script (at the instant given), when the apply
    /// was confirmed in advance and the host's own survey said what it would be.
    Sent(Running, Instant),
}

/// The order hosts are changed in: inventory order, VIP holders last, so the tier never loses
/// the VIP holder before the others carry the new config.
pub fn rollout_order(plans: &[&HostPlan]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..plans.len()).collect();
    order.sort_by_key(|&i| plans[i].holds_vip);
    order
}

/// The waves of a rollout over `holds_vip` (one flag per host, in rollout order), as
/// positions in it: the hosts without a VIP `serial` at a time, then each VIP holder alone,
/// so that the VIP never moves to a host that is being changed.
pub fn waves(holds_vip: &[bool], serial: usize) -> Vec<Vec<usize>> {
    let (holders, others): (Vec<usize>, Vec<usize>) =
        (0..holds_vip.len()).partition(|&i| holds_vip[i]);
    let mut waves: Vec<Vec<usize>> = others
        .chunks(serial.max(1))
        .map(<[usize]>::to_vec)
        .collect();
    waves.extend(holders.into_iter().map(|i| vec![i]));
    waves
}

/// One host during the rollout.
pub(super) struct Host<T> {
    report: HostReport,
    task: T,
    started: Instant,
    /// The held script, while it waits for the go-ahead.
    running: Option<Running>,
}

impl<T> Host<T> {
    /// A host about to stage and check its files (phase 1), shown as such.
    pub(super) fn checking<R: Reporter<Task = T>>(
        plan: HostPlan,
        timing: Timing,
        started: Instant,
        reporter: &R,
    ) -> Self {
        let files = plan.changed_files().count();
        let task = reporter.start(
            &plan.host,
            &format!("checking {files} file{}", if files == 1 { "" } else { "s" }),
        );
        let mut report = HostReport::planned(plan);
        report.timing = timing;
        Host {
            report,
            task,
            started,
            running: None,
        }
    }

    /// Phase 1 on a held apply script already started: waits until it is ready for the
    /// go-ahead, or records how it ended before.
    pub(super) async fn hold(&mut self, started: Result<Running, DeployError>) {
        match hold(started).await {
            Ok(Held::Ready(running)) => {
                self.report.timing.check = Some(self.started.elapsed().as_secs_f64());
                self.running = Some(*running);
            }
            Ok(Held::Ended(finished)) => settle(&mut self.report, Ok(finished), self.started),
            Err(e) => settle(&mut self.report, Err(e), self.started),
        }
    }
}

/// Applies `targets` (already in rollout order). Returns one report per target, in that
/// order, and the sessions to close.
pub async fn rollout<R: Reporter>(
    targets: Vec<Target>,
    serial: usize,
    reporter: &R,
) -> (Vec<HostReport>, Vec<Session>) {
    let scripts: Vec<String> = targets
        .iter()
        .map(|t| remote::held_apply_script(&t.deployment, APPLY_LOCK))
        .collect();
    let mut plans = Vec::with_capacity(targets.len());
    let mut sessions = Vec::with_capacity(targets.len());
    for t in targets {
        plans.push((t.plan, t.timing, t.shell));
        sessions.push(t.session);
    }
    // Phase 1: every host stages and checks, all at once.
    let checks = plans.into_iter().zip(sessions.iter().zip(&scripts)).map(
        |((plan, timing, shell), (session, script))| async move {
            let since = match &shell {
                Shell::Sent(_, since) => *since,
                _ => Instant::now(),
            };
            let mut host = Host::checking(plan, timing, since, reporter);
            let started = match shell {
                Shell::Sent(running, _) => Ok(running),
                Shell::Idle(mut running) => running.send(script).await.map(|()| running),
                Shell::None => session.start(script).await,
            };
            host.hold(started.map_err(DeployError::from)).await;
            host
        },
    );
    let hosts = join_all(checks).await;
    let reports = go_in_waves(hosts, serial, reporter).await;
    (reports, sessions)
}

/// Phase 2: when every host is ready, in waves (see [`waves`]), go ahead; after a failure,
/// every host still waiting stops and keeps its files. One report per host, in order.
pub(super) async fn go_in_waves<R: Reporter>(
    mut hosts: Vec<Host<R::Task>>,
    serial: usize,
    reporter: &R,
) -> Vec<HostReport> {
    let holds_vip: Vec<bool> = hosts.iter().map(|h| h.report.holds_vip).collect();
    let mut failed = hosts.iter().any(|h| h.running.is_none());
    let mut ended = Vec::new();
    for wave in waves(&holds_vip, serial) {
        if failed {
            break;
        }
        let going = wave.iter().filter_map(|&i| {
            let host = &mut hosts[i];
            reporter.update(&host.task, "applying");
            let running = host.running.take()?;
            Some(async move {
                let began = Instant::now();
                (i, go(running).await, began.elapsed().as_secs_f64())
            })
        });
        for (i, gone, seconds) in join_all(going.collect::<Vec<_>>()).await {
            let host = &mut hosts[i];
            host.report.timing.apply = Some(seconds);
            match gone {
                Gone::Applied(running) => ended.push((i, running)),
                Gone::Finished(finished) => {
                    settle(&mut host.report, finished, host.started);
                    failed |= host.report.outcome == Outcome::Failed;
                }
            }
        }
    }
    // The hosts that said they applied, their shells' exits collected now: each wave went
    // on as soon as the one before said so.
    let exits = ended.into_iter().map(|(i, running)| async move {
        let said = running.output().to_vec();
        let finished = match (*running).finish().await {
            Ok(out) => out,
            // Its report was complete before the connection went: the host is as it said.
            Err(_) => RemoteOutput {
                status: None,
                stdout: said,
                stderr: Vec::new(),
            },
        };
        (i, finished)
    });
    for (i, finished) in join_all(exits).await {
        let host = &mut hosts[i];
        settle(&mut host.report, Ok(finished), host.started);
    }
    let mut reports = Vec::with_capacity(hosts.len());
    for mut host in hosts {
        if let Some(running) = host.running.take() {
            // Told to stop: stdin closes without the go-ahead, and the host keeps its files.
            let stopped = running.finish().await;
            host.report.outcome = Outcome::Skipped;
            if let Ok(out) = stopped
                && let Ok(applied) = remote::parse_apply(&out.stdout)
            {
                host.report.steps = applied.steps;
            }
        }
        reporter.finish(
            host.task,
            &match host.report.outcome {
                Outcome::Applied => format!(
                    "applied in {:.2} s",
                    host.report.seconds.unwrap_or_default()
                ),
                Outcome::Skipped => "not changed: another host failed".to_string(),
                _ => "failed".to_string(),
            },
        );
        reports.push(host.report);
    }
    reports
}

/// How a held script's first phase ended.
enum Held {
    /// Staged, checked, and waiting for the go-ahead.
    Ready(Box<Running>),
    /// It ended before that (a failed check, a held lock): its output says why.
    Ended(RemoteOutput),
}

async fn hold(started: Result<Running, DeployError>) -> Result<Held, DeployError> {
    let mut running = started?;
    if running.read_until(READY).await? {
        Ok(Held::Ready(Box::new(running)))
    } else {
        Ok(running.finish().await.map(Held::Ended)?)
    }
}

/// How a host's script went on after the go-ahead.
enum Gone {
    /// It said it applied (its report's last frame), and its shell is still to exit.
    Applied(Box<Running>),
    /// It ended otherwise, or lbctl lost it: its output, or why there is none.
    Finished(Result<RemoteOutput, DeployError>),
}

/// The go-ahead, and the host's answer: the wave ends when the host says it applied, not
/// once its shell has exited and the SSH channel closed (a few milliseconds more a wave).
async fn go(mut running: Running) -> Gone {
    let said = match running.answer(GO).await {
        Ok(()) => running.read_until(APPLIED).await,
        Err(e) => return Gone::Finished(Err(e.into())),
    };
    match said {
        Ok(true) => Gone::Applied(Box::new(running)),
        Ok(false) => Gone::Finished(
            running
                .finish()
                .await
                .map_err(DeployError::ApplyInterrupted),
        ),
        Err(e) => Gone::Finished(Err(DeployError::ApplyInterrupted(e))),
    }
}

/// Records how a host's script ended: its steps, failure and rollback, or the error that
/// kept lbctl from knowing.
fn settle(report: &mut HostReport, finished: Result<RemoteOutput, DeployError>, started: Instant) {
    // The host's own time: its check and its apply, not its wait for earlier waves.
    report.seconds = Some(match (report.timing.check, report.timing.apply) {
        (Some(check), Some(apply)) => check + apply,
        _ => started.elapsed().as_secs_f64(),
    });
    let parsed = finished.and_then(|out| {
        remote::parse_apply(&out.stdout)
            .map_err(|error| DeployError::Unreadable { error, output: out })
    });
    match parsed {
        Ok(ApplyReport {
            steps,
            failure,
            rolled_back,
            ..
        }) => {
            report.outcome = if failure.is_none() {
                Outcome::Applied
            } else {
                Outcome::Failed
            };
            report.steps = steps;
            report.failure = failure;
            report.rolled_back = rolled_back;
        }
        Err(e) => {
            report.outcome = Outcome::Failed;
            report.error = Some(HostError {
                host: report.host.clone(),
                step: "apply".into(),
                message: e.to_string(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_default_one_host_at_a_time_and_vip_holders_last() {
        assert_eq!(
            waves(&[false, false, true], 1),
            vec![vec![0], vec![1], vec![2]]
        );
        assert_eq!(waves(&[true, true], 1), vec![vec![0], vec![1]]);
        assert_eq!(waves(&[], 1), Vec::<Vec<usize>>::new());
    }

    #[test]
    fn serial_widens_the_waves_of_hosts_without_a_vip_only() {
        assert_eq!(waves(&[false, false, true], 5), vec![vec![0, 1], vec![2]]);
        assert_eq!(
            waves(&[false, false, false, true], 2),
            vec![vec![0, 1], vec![2], vec![3]]
        );
        assert_eq!(
            waves(&[false, true, true], 3),
            vec![vec![0], vec![1], vec![2]]
        );
    }
}
