//! The rollout, in two phases, so that a configuration one host rejects changes no host:
//!
//! 1. every changed host stages its files and checks them with the services' own checks,
//!    all at once, and waits (a held apply script, see [`remote::held_apply_script`]);
//! 2. only when every host is ready do they go ahead, in waves: by default every host that
//!    holds no VIP at once (they carry no traffic), then the VIP holders one at a time, last;
//!    `--serial N` makes waves of N instead, in the same order.
//!
//! Each host swaps, reloads, verifies and rolls back by itself. The first wave with a failure
//! stops the rollout: the hosts still waiting are told to stop and keep their configuration.

use std::time::Instant;

use crate::{
    deployment,
    host_spec::HostSpec,
    plan::HostPlan,
    progress::{Progress, Task},
    remote::{self, APPLY_LOCK, ApplyReport, GO, READY},
    report::{HostReport, Outcome},
    survey::HostError,
    transport::{Running, Session},
};

/// A host ready to be changed: its spec, plan and open session.
pub struct Target {
    pub spec: HostSpec,
    pub plan: HostPlan,
    pub session: Session,
}

/// The order hosts are changed in: inventory order, VIP holders last, so the tier never loses
/// the VIP holder before the others carry the new config.
pub fn rollout_order(plans: &[&HostPlan]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..plans.len()).collect();
    order.sort_by_key(|&i| plans[i].holds_vip);
    order
}

/// The waves of a rollout over `holds_vip` (one flag per host, in rollout order), as
/// positions in it: `serial` hosts at a time when given; otherwise every host without a VIP
/// together, then each VIP holder alone.
pub fn waves(holds_vip: &[bool], serial: Option<usize>) -> Vec<Vec<usize>> {
    let positions: Vec<usize> = (0..holds_vip.len()).collect();
    match serial {
        Some(n) => positions.chunks(n.max(1)).map(<[usize]>::to_vec).collect(),
        None => {
            let (holders, others): (Vec<usize>, Vec<usize>) =
                positions.into_iter().partition(|&i| holds_vip[i]);
            let mut waves = Vec::new();
            if !others.is_empty() {
                waves.push(others);
            }
            waves.extend(holders.into_iter().map(|i| vec![i]));
            waves
        }
    }
}

/// One host during the rollout.
struct Host<'s> {
    report: HostReport,
    task: Task,
    started: Instant,
    /// The held script, while it waits for the go-ahead.
    running: Option<Running<'s>>,
}

/// Applies `targets` (already in rollout order). Returns one report per target, in that
/// order, and the sessions to close.
pub async fn rollout(
    targets: Vec<Target>,
    serial: Option<usize>,
    progress: &Progress,
) -> (Vec<HostReport>, Vec<Session>) {
    let scripts: Vec<String> = targets
        .iter()
        .map(|t| remote::held_apply_script(&deployment::build(&t.spec, &t.plan), APPLY_LOCK))
        .collect();
    let holds_vip: Vec<bool> = targets.iter().map(|t| t.plan.holds_vip).collect();
    let mut hosts = Vec::with_capacity(targets.len());
    let mut sessions = Vec::with_capacity(targets.len());
    for t in targets {
        hosts.push((t.plan, t.spec.name));
        sessions.push(t.session);
    }
    let reports = run_phases(&sessions, hosts, &scripts, &holds_vip, serial, progress).await;
    (reports, sessions)
}

async fn run_phases(
    sessions: &[Session],
    hosts: Vec<(HostPlan, String)>,
    scripts: &[String],
    holds_vip: &[bool],
    serial: Option<usize>,
    progress: &Progress,
) -> Vec<HostReport> {
    // Phase 1: every host stages and checks, all at once; each script runs on its host
    // while the next one starts.
    let mut started = Vec::with_capacity(hosts.len());
    for ((plan, name), (session, script)) in hosts.into_iter().zip(sessions.iter().zip(scripts)) {
        let files = plan.changed_files().count();
        let task = progress.start(
            &name,
            &format!("checking {files} file{}", if files == 1 { "" } else { "s" }),
        );
        let begun = Instant::now();
        let running = session.start(script).await;
        started.push((HostReport::planned(plan), task, begun, running));
    }
    let mut hosts: Vec<Host<'_>> = Vec::with_capacity(started.len());
    let mut all_ready = true;
    for (mut report, task, begun, running) in started {
        let running = match running {
            Ok(mut running) => match running.read_until(READY).await {
                Ok(true) => Some(running),
                Ok(false) => {
                    // The script ended before it was ready: it says why.
                    let finished = running.finish().await;
                    settle(&mut report, finished.map_err(|e| e.to_string()), begun);
                    None
                }
                Err(e) => {
                    settle(&mut report, Err(e.to_string()), begun);
                    None
                }
            },
            Err(e) => {
                settle(&mut report, Err(e.to_string()), begun);
                None
            }
        };
        all_ready &= running.is_some();
        hosts.push(Host {
            report,
            task,
            started: begun,
            running,
        });
    }

    // Phase 2: in waves, go ahead; after a failure, every host still waiting stops.
    let mut failed = !all_ready;
    for wave in waves(holds_vip, serial) {
        if failed {
            break;
        }
        for &i in &wave {
            let host = &mut hosts[i];
            host.task.update("applying");
            if let Some(running) = host.running.as_mut()
                && let Err(e) = running.answer(GO).await
            {
                settle(&mut host.report, Err(e.to_string()), host.started);
                host.running = None;
            }
        }
        for &i in &wave {
            let host = &mut hosts[i];
            if let Some(running) = host.running.take() {
                let finished = running.finish().await.map_err(|e| {
                    format!(
                        "{e}; the host rolls back by itself when the connection drops mid-apply"
                    )
                });
                settle(&mut host.report, finished, host.started);
            }
            failed |= host.report.outcome == Outcome::Failed;
        }
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
        host.task.finish(&match host.report.outcome {
            Outcome::Applied => format!(
                "applied in {:.2} s",
                host.report.seconds.unwrap_or_default()
            ),
            Outcome::Skipped => "not changed: another host failed".to_string(),
            _ => "failed".to_string(),
        });
        reports.push(host.report);
    }
    reports
}

/// Records how a host's script ended: its steps, failure and rollback, or the error that
/// kept lbctl from knowing.
fn settle(
    report: &mut HostReport,
    finished: Result<crate::transport::RemoteOutput, String>,
    started: Instant,
) {
    report.seconds = Some(started.elapsed().as_secs_f64());
    let parsed = finished
        .and_then(|out| remote::parse_apply(&out.stdout).map_err(|e| format!("{e}; {out}")));
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
        Err(message) => {
            report.outcome = Outcome::Failed;
            report.error = Some(HostError {
                host: report.host.clone(),
                step: "apply".into(),
                message,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_default_hosts_without_a_vip_go_together_and_vip_holders_alone_and_last() {
        assert_eq!(
            waves(&[false, false, true], None),
            vec![vec![0, 1], vec![2]]
        );
        assert_eq!(waves(&[true, true], None), vec![vec![0], vec![1]]);
        assert_eq!(waves(&[false], None), vec![vec![0]]);
        assert_eq!(waves(&[], None), Vec::<Vec<usize>>::new());
    }

    #[test]
    fn serial_makes_waves_of_that_many_in_rollout_order() {
        assert_eq!(
            waves(&[false, false, true], Some(1)),
            vec![vec![0], vec![1], vec![2]]
        );
        assert_eq!(
            waves(&[false, false, false, true], Some(2)),
            vec![vec![0, 1], vec![2, 3]]
        );
    }
}
