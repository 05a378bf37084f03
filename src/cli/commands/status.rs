use super::Global;
use crate::{cli::Error, deploy::TierStatus};

/// Every load balancer's VIP, daemons and servers as its HAProxy sees them right now.
pub fn run(global: &Global) -> Result<TierStatus, Error> {
    let loaded = global.load()?;
    let status = super::runtime()?.block_on(crate::deploy::gather_status(
        &loaded.fleet,
        global.ssh.connect(),
        global.ssh.forks,
    ));
    Ok(status)
}
