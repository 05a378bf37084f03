//! What a load-balancer drill breaks, how it puts it back, and what the VIP's move may cost:
//! plain data in (the fleet, the user's options), plain data out.

use std::time::Duration;

use super::{Break, LbTest};
use crate::{drill::DrillError, drill::probe, spec::Fleet, spec::HaproxyCheck, spec::HostSpec};

/// How long the VIP may take to leave a host whose HAProxy died, when keepalived notices at
/// once (process events, or lbctl's script waiting on HAProxy's pid): the budget.
const HAPROXY_DEATH_BUDGET: Duration = Duration::from_millis(500);
/// Added to the protocol's own wait: the polls that see the move (every 100 ms), SSH, load.
const MARGIN: Duration = Duration::from_millis(500);
/// A site's own check script runs every second (`interval 1`, `fall 1`).
const SCRIPT_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub lb: String,
    pub lbs: Vec<String>,
    /// What breaks, for the narration and the report: `keepalived`, `haproxy`, `network`.
    pub what: &'static str,
    pub action: Action,
    /// How long the VIP may take to move, by the method (see [`move_budget`]).
    pub move_budget: Duration,
    /// The broken host may keep the VIP on its interface while another takes it: keepalived
    /// killed cannot remove it, and a cut-off host does not know it lost it. The VIP has
    /// moved once another host holds it; clients no longer reach the broken one.
    pub holder_may_keep_vip: bool,
    pub probe_targets: Vec<probe::Target>,
    pub probe_timeout: Duration,
    /// How long after the repair the original holder may take to hold the VIP again (its
    /// HAProxy check rising, 2 s, then adverts) before another single holder counts as whole.
    pub takeback: Duration,
}

/// What the drill does on the broken host, and how it puts it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Stop (the user's command) or SIGKILL every process of a daemon (its pid file's process
    /// and every descendant), then run the start command.
    Daemon {
        kill: bool,
        /// The stop command (unused when killing) and the start command.
        stop: String,
        start: String,
        pidfile: String,
    },
    /// Drop every packet in and out (ARP included), but lbctl's own SSH connection: tagged
    /// iptables and arptables rules, then remove them.
    Isolate,
}

impl Plan {
    /// The longest the host can stay broken: `--hold`, or until the VIP moved, at most
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
    let d = &host.daemons;
    let daemon = |kill: bool, stop: &str, start: &str, pidfile: &str| Action::Daemon {
        kill,
        stop: stop.to_string(),
        start: start.to_string(),
        pidfile: pidfile.to_string(),
    };
    let haproxy_pid = &host.haproxy.pid_file;
    let keepalived_pid = &d.keepalived_pid_file;
    let (what, action) = match test.method {
        Break::StopKeepalived => (
            "keepalived",
            daemon(
                false,
                &d.keepalived_stop,
                &d.keepalived_start,
                keepalived_pid,
            ),
        ),
        Break::KillKeepalived => (
            "keepalived",
            daemon(true, "", &d.keepalived_start, keepalived_pid),
        ),
        Break::StopHaproxy => (
            "haproxy",
            daemon(false, &d.haproxy_stop, &d.haproxy_start, haproxy_pid),
        ),
        Break::KillHaproxy => ("haproxy", daemon(true, "", &d.haproxy_start, haproxy_pid)),
        Break::Isolate => ("network", Action::Isolate),
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
            probe_targets.push(probe::Target::tcp(vip.clone(), b.port));
        }
    }
    if probe_targets.is_empty() {
        return Err(DrillError::NoVipFrontend);
    }
    let probe_timeout = Duration::from_millis(
        host.haproxy.timeout_connect.ms * (u64::from(host.haproxy.retries) + 1) + 1000,
    );
    let advert = Duration::from_millis(u64::from(k.advert_int_cs) * 10);
    Ok(Plan {
        takeback: Duration::from_secs(5) + advert * 3,
        lb: host.name.clone(),
        lbs: fleet.hosts.iter().map(|h| h.name.clone()).collect(),
        what,
        action,
        move_budget: move_budget(fleet, host, test.method),
        holder_may_keep_vip: matches!(test.method, Break::KillKeepalived | Break::Isolate),
        probe_targets,
        probe_timeout,
    })
}

/// How long the VIP may take to move away from `host`, broken by `method`:
///
/// - HAProxy dead (killed or stopped): 0.5 s when keepalived hears of it at once (process
///   events, or lbctl's script waiting on the pid); a site's own script may take a run more.
/// - keepalived stopped: it sends a priority-0 advert, so the best backup's skew time,
///   (256 − priority) / 256 × advert_int, plus a margin.
/// - keepalived killed, or the host cut off: nobody says anything, so the backups wait for 3
///   adverts to be missed, then their skew time: 3 × advert_int + skew + 0.5 s.
pub fn move_budget(fleet: &Fleet, host: &HostSpec, method: Break) -> Duration {
    let Some(k) = &host.keepalived else {
        return Duration::ZERO;
    };
    let advert = Duration::from_millis(u64::from(k.advert_int_cs) * 10);
    let best_backup = fleet
        .hosts
        .iter()
        .filter(|h| h.name != host.name)
        .filter_map(|h| h.keepalived.as_ref().map(|k| k.priority))
        .max()
        .unwrap_or(1);
    let skew = advert * (256 - u32::from(best_backup)) / 256;
    match method {
        Break::KillHaproxy | Break::StopHaproxy => match k.haproxy_check {
            HaproxyCheck::Script { custom: true, .. } => SCRIPT_INTERVAL + skew + MARGIN,
            _ => HAPROXY_DEATH_BUDGET,
        },
        Break::StopKeepalived => skew + MARGIN,
        Break::KillKeepalived | Break::Isolate => advert * 3 + skew + MARGIN,
    }
}
