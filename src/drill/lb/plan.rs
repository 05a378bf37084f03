//! What a load-balancer drill stops and what the VIP's move may cost: plain data in (the
//! fleet, the user's options), plain data out.

use std::time::Duration;

use super::{Break, LbTest};
use crate::{drill::DrillError, drill::probe, spec::Fleet};

/// The tracked check in lbctl's keepalived.conf template: `interval 1`, `fall 2`.
const CHECK_INTERVAL_MS: u64 = 1000;
const CHECK_FALL: u64 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub lb: String,
    pub lbs: Vec<String>,
    pub stop: String,
    pub start: String,
    pub daemon: &'static str,
    /// `3 × advert_int`, plus the tracked check's `interval × fall` when HAProxy stops.
    pub move_budget: Duration,
    pub probe_targets: Vec<probe::Target>,
    pub probe_timeout: Duration,
}

impl Plan {
    /// The longest the daemon can stay stopped: `--hold`, or until the VIP moved, at most
    /// twice its budget (so a late move is still measured).
    pub(super) fn longest_stop(&self, hold: Duration) -> Duration {
        hold.max(self.move_budget * 2)
    }
}

pub fn plan(fleet: &Fleet, test: &LbTest) -> Result<Plan, DrillError> {
    let Some(host) = fleet.host(&test.lb) else {
        return Err(DrillError::NotALoadBalancer {
            name: test.lb.clone(),
            group: fleet.lb_group.clone(),
            names: fleet.hosts.iter().map(|h| h.name.clone()).collect(),
        });
    };
    let Some(k) = &host.keepalived else {
        return Err(DrillError::NoVip {
            name: test.lb.clone(),
        });
    };
    if fleet.hosts.len() < 2 {
        return Err(DrillError::OneLoadBalancer);
    }
    let advert_ms = u64::from(k.advert_int_cs) * 10;
    let move_budget = Duration::from_millis(match test.method {
        Break::StopKeepalived => 3 * advert_ms,
        Break::StopHaproxy => CHECK_INTERVAL_MS * CHECK_FALL + 3 * advert_ms,
    });
    let (stop, start) = match test.method {
        Break::StopKeepalived => (
            &host.daemons.keepalived_stop,
            &host.daemons.keepalived_start,
        ),
        Break::StopHaproxy => (&host.daemons.haproxy_stop, &host.daemons.haproxy_start),
    };
    let vips: Vec<String> = k
        .vips
        .iter()
        .map(|v| v.split('/').next().unwrap_or(v).to_string())
        .collect();
    let mut probe_targets = Vec::new();
    for b in host.tcp_backends.iter() {
        if !test.backends.is_empty() && !test.backends.contains(&b.name) {
            continue;
        }
        if !matches!(b.bind.as_str(), "*" | "0.0.0.0" | "::" | "[::]") {
            continue;
        }
        for vip in &vips {
            probe_targets.push(probe::Target {
                host: vip.clone(),
                port: b.port,
            });
        }
    }
    if probe_targets.is_empty() {
        return Err(DrillError::NoVipFrontend);
    }
    let probe_timeout = Duration::from_millis(
        host.haproxy.timeout_connect.ms * (u64::from(host.haproxy.retries) + 1) + 1000,
    );
    Ok(Plan {
        lb: host.name.clone(),
        lbs: fleet.hosts.iter().map(|h| h.name.clone()).collect(),
        stop: stop.clone(),
        start: start.clone(),
        daemon: test.method.daemon(),
        move_budget,
        probe_targets,
        probe_timeout,
    })
}
