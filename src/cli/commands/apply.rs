use std::io::IsTerminal;

use super::Global;
use crate::{
    cli::Error,
    cli::progress::Progress,
    deploy::{self, HostReport, Report, Target},
    spec::{HostSpec, Service},
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
        return Err(Error::NoTerminal);
    }
    let started = std::time::Instant::now();
    let loaded = global.load()?;
    let rendered = loaded.render_all(global)?;
    let prepare_seconds = started.elapsed().as_secs_f64();
    let hosts: Vec<_> = loaded.fleet.hosts.iter().cloned().zip(rendered).collect();
    super::runtime()?.block_on(async {
        let surveyed = deploy::survey(&hosts, &global.ssh).await;
        let surveyed = deploy::check_certificates(surveyed, &hosts).await?;
        let admin = deploy::from_survey(&loaded.fleet.hosts, &surveyed);
        let mut targets = Vec::new();
        let mut reports = Vec::new();
        let mut sessions = Vec::new();
        let mut converging = Vec::new();
        let mut unreachable = false;
        for ((s, (spec, _)), convergence) in
            surveyed.into_iter().zip(&hosts).zip(&admin.convergences)
        {
            let timing = s.timing;
            match (s.result, s.session) {
                (Ok(plan), Some(session)) if plan.changed() => targets.push(Target {
                    deployment: deploy::deployment(
                        spec,
                        &plan,
                        deploy::for_apply(spec, &admin.tier, convergence.as_ref()).as_ref(),
                    ),
                    plan,
                    session,
                    timing,
                }),
                (Ok(plan), Some(session)) if convergence.as_ref().is_some_and(|c| c.needed()) => {
                    let mut report = HostReport::planned(plan);
                    report.timing = timing;
                    reports.push(report);
                    converging.push((spec, session, convergence.clone().unwrap_or_default()));
                }
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
        if !unreachable && !loaded.outside.is_empty() {
            let others: Vec<_> = loaded
                .outside
                .iter()
                .chain(
                    loaded
                        .fleet
                        .hosts
                        .iter()
                        .filter(|h| !targets.iter().any(|t| t.plan.host == h.name)),
                )
                .cloned()
                .collect();
            if let Err(e) = partial_apply_keeps_a_standby(&targets, &others, global).await {
                ssh::close_all(targets.into_iter().map(|t| t.session).chain(sessions)).await;
                return Err(e);
            }
        }
        let anything = !targets.is_empty() || !converging.is_empty();
        let proceed = !unreachable && anything && {
            let mut plan = Report::new(
                "plan",
                targets
                    .iter()
                    .map(|t| HostReport::planned(t.plan.clone()))
                    .chain(reports.iter().cloned())
                    .collect(),
            );
            plan.runtime = admin.state.clone();
            confirm(&plan)
        };
        let mut converged = Vec::new();
        if proceed {
            let order = deploy::rollout_order(&targets.iter().map(|t| &t.plan).collect::<Vec<_>>());
            let mut slots: Vec<Option<Target>> = targets.into_iter().map(Some).collect();
            let ordered = order.into_iter().filter_map(|i| slots[i].take()).collect();
            let (applied, used) =
                deploy::rollout(ordered, opts.serial, &Progress::new(global.json)).await;
            reports.splice(0..0, applied);
            sessions.extend(used);
            converged = deploy::converge_all(&converging).await;
        } else {
            for t in targets {
                let mut report = HostReport::planned(t.plan);
                report.timing = t.timing;
                reports.push(report);
                sessions.push(t.session);
            }
        }
        sessions.extend(converging.into_iter().map(|(_, session, _)| session));
        ssh::close_all(sessions).await;
        let mut report = Report::new("apply", reports);
        report.prepare_seconds = prepare_seconds;
        report.runtime = admin.state;
        report.runtime.converged = converged;
        if unreachable {
            return Err(Error::Unsurveyed {
                hosts: report.hosts.len(),
                errors: report.hosts.into_iter().filter_map(|h| h.error).collect(),
            });
        }
        Ok(report)
    })
}

/// A partial apply (`--limit`) that changes a VIP holder needs a host to take the VIP while
/// the holder reloads: one it changes first (which has keepalived, and is verified before the
/// holder goes), or one it leaves alone that is ready now. Without one, nothing is changed.
async fn partial_apply_keeps_a_standby(
    targets: &[Target],
    others: &[HostSpec],
    global: &Global,
) -> Result<(), Error> {
    let holders: Vec<&str> = targets
        .iter()
        .filter(|t| t.plan.holds_vip)
        .map(|t| t.plan.host.as_str())
        .collect();
    let changed_first = targets
        .iter()
        .any(|t| !t.plan.holds_vip && t.deployment.controls.contains_key(&Service::Keepalived));
    if holders.is_empty() || changed_first {
        return Ok(());
    }
    let answers = deploy::ready_to_take_the_vip(others, &global.ssh).await;
    if answers.iter().any(|(_, ready)| ready.is_ok()) {
        return Ok(());
    }
    let why: Vec<String> = answers
        .iter()
        .map(|(host, ready)| {
            let reason = ready.as_ref().err().map(ToString::to_string);
            format!("{host}: {}", reason.unwrap_or_default())
        })
        .collect();
    Err(Error::NoStandby {
        holders: holders.iter().map(ToString::to_string).collect(),
        why,
    })
}

/// `apply FILE`: applies a saved plan exactly, without the inventory and without asking. Every
/// host is first asked for its files; if any no longer holds what the plan was made on (or
/// cannot be asked), nothing changes anywhere and every such host is named.
pub fn run_saved(global: &Global, file: &std::path::Path, serial: usize) -> Result<Report, Error> {
    let plan = deploy::SavedPlan::read(file)?;
    super::runtime()?.block_on(async {
        let checked = deploy::check_saved_plan(&plan, &global.ssh).await;
        let mut problems = Vec::new();
        let mut targets = Vec::new();
        let mut reports = Vec::new();
        let mut sessions = Vec::new();
        for (c, host) in checked.into_iter().zip(&plan.hosts) {
            match (c.result, c.session) {
                (Err(e), session) => {
                    problems.push(format!("{}: cannot be checked: {e}", host.host));
                    sessions.extend(session);
                }
                (Ok(moved), session) if !moved.files.is_empty() => {
                    let files: Vec<String> = moved
                        .files
                        .iter()
                        .map(|(path, was, now)| {
                            format!("{path} (planned on {}, now {})", short(was), short(now))
                        })
                        .collect();
                    problems.push(format!(
                        "{}: changed since the plan: {}",
                        host.host,
                        files.join(", ")
                    ));
                    sessions.extend(session);
                }
                (Ok(moved), Some(session)) => {
                    let host_plan = host.host_plan(moved.holds_vip);
                    if host_plan.changed() {
                        targets.push(Target {
                            deployment: host.deployment(),
                            plan: host_plan,
                            session,
                            timing: c.timing,
                        });
                    } else {
                        let mut report = HostReport::planned(host_plan);
                        report.timing = c.timing;
                        reports.push(report);
                        sessions.push(session);
                    }
                }
                (Ok(_), None) => problems.push(format!("{}: no session", host.host)),
            }
        }
        if !problems.is_empty() {
            ssh::close_all(targets.into_iter().map(|t| t.session).chain(sessions)).await;
            return Err(Error::StalePlan {
                file: file.to_path_buf(),
                hosts: plan.hosts.len(),
                problems,
            });
        }
        let order = deploy::rollout_order(&targets.iter().map(|t| &t.plan).collect::<Vec<_>>());
        let mut slots: Vec<Option<Target>> = targets.into_iter().map(Some).collect();
        let ordered = order.into_iter().filter_map(|i| slots[i].take()).collect();
        let (applied, used) = deploy::rollout(ordered, serial, &Progress::new(global.json)).await;
        reports.splice(0..0, applied);
        sessions.extend(used);
        ssh::close_all(sessions).await;
        let mut report = Report::new("apply", reports);
        report.plan_file = Some(file.display().to_string());
        Ok(report)
    })
}

/// A digest's first 12 characters, or `absent`.
fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}
