use serde::Serialize;

use super::Global;
use crate::{cli::Error, spec::Connection};

#[derive(Debug, Serialize)]
pub struct Summary {
    pub valid: bool,
    pub hosts: Vec<String>,
    pub tcp_backends: usize,
    pub udp_backends: usize,
    pub http_backends: usize,
    /// How lbctl reaches each load balancer (address, port, user, key, become, host keys),
    /// after `ansible.cfg` and every alias Ansible honours.
    pub connections: Vec<Connection>,
}

/// Validates the inventory and vars, and renders every template in memory so that template
/// errors are caught too.
pub fn run(global: &Global) -> Result<Summary, Error> {
    let loaded = global.load()?;
    loaded.render_each(global, |_, _| Ok(()))?;
    let first = loaded.fleet.hosts.first();
    Ok(Summary {
        valid: true,
        hosts: loaded.fleet.hosts.iter().map(|h| h.name.clone()).collect(),
        tcp_backends: first.map_or(0, |h| h.tcp_backends.len()),
        udp_backends: first.map_or(0, |h| h.udp_backends.len()),
        http_backends: first.map_or(0, |h| h.http_backends.len()),
        connections: loaded
            .fleet
            .hosts
            .iter()
            .map(|h| h.connection.clone())
            .collect(),
    })
}
