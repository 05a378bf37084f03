use super::Global;
use crate::{
    cli::Error,
    deploy::{self, HostReport, Report},
    ssh,
};

/// What would change on every load balancer, against what is really deployed there.
/// With `out`, the plan is also saved there (when every host could be surveyed).
pub fn run(global: &Global, out: Option<&std::path::Path>) -> Result<Report, Error> {
    let started = std::time::Instant::now();
    let loaded = global.load()?;
    let rendered = loaded.render_all(global)?;
    let prepare_seconds = started.elapsed().as_secs_f64();
    let hosts: Vec<_> = loaded.fleet.hosts.iter().cloned().zip(rendered).collect();
    super::runtime()?.block_on(async {
        let surveyed = deploy::survey(&hosts, &global.ssh).await;
        let surveyed = deploy::check_certificates(surveyed, &hosts).await?;
        let admin = deploy::from_survey(&loaded.fleet.hosts, &surveyed);
        let saved = out.and_then(|path| {
            let plan = deploy::SavedPlan::from_survey(
                &hosts,
                &surveyed,
                global.limit.as_deref(),
                &loaded.outside,
            )?;
            Some(plan.write(path).map(|()| path.display().to_string()))
        });
        let mut reports = Vec::with_capacity(surveyed.len());
        let mut sessions = Vec::with_capacity(surveyed.len());
        for s in surveyed {
            sessions.extend(s.session);
            let mut report = match s.result {
                Ok(plan) => HostReport::planned(plan),
                Err(e) => HostReport::unreachable(e),
            };
            report.timing = s.timing;
            reports.push(report);
        }
        ssh::close_all(sessions).await;
        let mut report = Report::new("plan", reports);
        report.prepare_seconds = prepare_seconds;
        if let Some(saved) = saved {
            report.plan_file = Some(saved?);
        }
        report.runtime = admin.state;
        Ok(report)
    })
}
