use std::io::IsTerminal;

use super::Global;
use crate::{
    cli::Error,
    cli::progress::Progress,
    deploy::{self, Report},
};

pub struct ApplyOptions {
    pub yes: bool,
    /// Hosts without a VIP changed at once (VIP holders always go alone, last).
    pub serial: usize,
}

/// Makes every load balancer serve the rendered configuration: load and render, then
/// `deploy::apply` (survey, show the plan, `confirm`, roll out host by host).
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
    let progress = Progress::new(global.json);
    let applying = deploy::apply(
        &hosts,
        &loaded.outside,
        &global.ssh,
        opts.serial,
        opts.yes,
        confirm,
        &progress,
    );
    let mut report = super::runtime()?.block_on(applying)?;
    report.prepare_seconds = prepare_seconds;
    Ok(report)
}

/// `apply FILE`: reads the saved plan, then `deploy::apply_saved` (check every host against
/// it, roll out exactly what it says), without the inventory and without asking. Its files
/// stay in their services' usual directories unless `confine_paths` is false
/// (`--no-confine-paths`).
pub fn run_saved(
    global: &Global,
    file: &std::path::Path,
    serial: usize,
    confine_paths: bool,
) -> Result<Report, Error> {
    let plan = deploy::SavedPlan::read(file, confine_paths)?;
    let progress = Progress::new(global.json);
    let applying = deploy::apply_saved(&plan, file, &global.ssh, serial, &progress);
    Ok(super::runtime()?.block_on(applying)?)
}
