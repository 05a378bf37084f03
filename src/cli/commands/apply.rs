use std::io::IsTerminal;

use super::Global;
use crate::{
    cli::progress::Progress,
    deploy::{self, HostReport, Report, Target},
    error::Error,
    ssh,
};

pub struct ApplyOptions {
    pub yes: bool,
    /// Hosts without a VIP changed at once (VIP holders always go alone, last).
    pub serial: usize,
}

/// Makes every load balancer serve the rendered configuration: survey, show the plan, confirm,
/// then roll out host by host. Nothing is touched unless every host was surveyed, and
/// `confirm` agreed to the plan.
pub fn run(
    global: &Global,
    opts: &ApplyOptions,
    confirm: impl FnOnce(&Report) -> bool,
) -> Result<Report, Error> {
    if !opts.yes && !std::io::stdin().is_terminal() {
        return Err(Error::Usage {
            message: "refusing to apply without confirmation: there is no terminal to ask on".into(),
            hint: "pass --yes to apply non-interactively (as in CI), or run `lbctl plan` to see the changes".into(),
        });
    }
    let started = std::time::Instant::now();
    let loaded = global.load()?;
    let rendered = loaded.render_all(global)?;
    let prepare_seconds = started.elapsed().as_secs_f64();
    let hosts: Vec<_> = loaded.fleet.hosts.iter().cloned().zip(rendered).collect();
    super::runtime()?.block_on(async {
        let surveyed = deploy::survey(&hosts, &global.ssh).await;
        let surveyed = deploy::check_certificates(surveyed, &hosts).await?;
        let mut targets = Vec::new();
        let mut reports = Vec::new();
        let mut sessions = Vec::new();
        let mut unreachable = false;
        for (s, (spec, _)) in surveyed.into_iter().zip(&hosts) {
            let timing = s.timing;
            match (s.result, s.session) {
                (Ok(plan), Some(session)) if plan.changed() => targets.push(Target {
                    spec: spec.clone(),
                    plan,
                    session,
                    timing,
                }),
                (Ok(plan), session) => {
                    let mut report = HostReport::planned(plan);
                    report.timing = timing;
                    reports.push(report);
                    sessions.extend(session);
                }
                (Err(e), session) => {
                    unreachable = true;
                    let mut report = HostReport::unreachable(e);
                    report.timing = timing;
                    reports.push(report);
                    sessions.extend(session);
                }
            }
        }
        let proceed = !unreachable && !targets.is_empty() && {
            let plan = Report::new(
                "plan",
                targets
                    .iter()
                    .map(|t| HostReport::planned(t.plan.clone()))
                    .chain(reports.iter().cloned())
                    .collect(),
            );
            confirm(&plan)
        };
        if proceed {
            let order = deploy::rollout_order(&targets.iter().map(|t| &t.plan).collect::<Vec<_>>());
            let mut slots: Vec<Option<Target>> = targets.into_iter().map(Some).collect();
            let ordered = order.into_iter().filter_map(|i| slots[i].take()).collect();
            let (applied, used) =
                deploy::rollout(ordered, opts.serial, &Progress::new(global.json)).await;
            reports.splice(0..0, applied);
            sessions.extend(used);
        } else {
            for t in targets {
                let mut report = HostReport::planned(t.plan);
                report.timing = t.timing;
                reports.push(report);
                sessions.push(t.session);
            }
        }
        ssh::close_all(sessions).await;
        let mut report = Report::new("apply", reports);
        report.prepare_seconds = prepare_seconds;
        if unreachable {
            return Err(Error::Failed(format!(
                "{} of {} hosts could not be surveyed; nothing was changed\n{}",
                report.summary.unreachable,
                report.hosts.len(),
                report
                    .hosts
                    .iter()
                    .filter_map(|h| h.error.as_ref())
                    .map(|e| format!("  {e}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            )));
        }
        Ok(report)
    })
}
