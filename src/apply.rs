//! The rollout: hosts one at a time by default, the VIP holder last, each applied atomically by
//! the remote script; the first failure stops the rollout so later hosts keep their config.

use std::time::Instant;

use crate::{
    deployment,
    host_spec::HostSpec,
    plan::HostPlan,
    progress::{Progress, Task},
    remote,
    report::{HostReport, Outcome},
    transport::Session,
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

/// Applies `targets` (already in rollout order) `serial` at a time. Returns one report per
/// target, and the sessions to close.
pub async fn rollout(
    targets: Vec<Target>,
    serial: usize,
    progress: &Progress,
) -> (Vec<HostReport>, Vec<Session>) {
    let mut reports = Vec::with_capacity(targets.len());
    let mut sessions = Vec::with_capacity(targets.len());
    let mut failed = false;
    let mut pending = targets.into_iter().peekable();
    while pending.peek().is_some() {
        let batch: Vec<Target> = pending.by_ref().take(serial.max(1)).collect();
        if failed {
            for t in batch {
                let mut r = HostReport::planned(t.plan);
                r.outcome = Outcome::Skipped;
                reports.push(r);
                sessions.push(t.session);
            }
            continue;
        }
        let mut set = tokio::task::JoinSet::new();
        for (i, t) in batch.into_iter().enumerate() {
            let files = t.plan.changed_files().count();
            let task = progress.start(
                &t.spec.name,
                &format!("applying {files} file{}", if files == 1 { "" } else { "s" }),
            );
            set.spawn(async move { (i, apply_host(t, task).await) });
        }
        let mut done: Vec<(usize, (HostReport, Session))> = set.join_all().await;
        done.sort_by_key(|(i, _)| *i);
        for (_, (report, session)) in done {
            failed |= report.outcome == Outcome::Failed;
            reports.push(report);
            sessions.push(session);
        }
    }
    (reports, sessions)
}

async fn apply_host(target: Target, task: Task) -> (HostReport, Session) {
    let started = Instant::now();
    let deployment = deployment::build(&target.spec, &target.plan);
    let script = remote::apply_script(&deployment);
    let mut report = HostReport::planned(target.plan);
    let result = target.session.run(&script).await;
    report.seconds = Some(started.elapsed().as_secs_f64());
    let parsed = match result {
        Ok(out) => remote::parse_apply(&out.stdout).map_err(|e| format!("{e}; {out}")),
        Err(e) => Err(format!(
            "{e}; the host rolls back by itself when the connection drops mid-apply"
        )),
    };
    match parsed {
        Ok(applied) => {
            report.outcome = if applied.succeeded() {
                Outcome::Applied
            } else {
                Outcome::Failed
            };
            report.steps = applied.steps;
            report.failure = applied.failure;
            report.rolled_back = applied.rolled_back;
        }
        Err(message) => {
            report.outcome = Outcome::Failed;
            report.error = Some(crate::survey::HostError {
                host: report.host.clone(),
                step: "apply".into(),
                message,
            });
        }
    }
    task.finish(&match report.outcome {
        Outcome::Applied => format!("applied in {:.2} s", report.seconds.unwrap_or_default()),
        _ => "failed".to_string(),
    });
    (report, target.session)
}
