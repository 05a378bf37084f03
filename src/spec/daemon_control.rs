//! How `failover-test --lb` stops and starts a load balancer's daemons, and where it sees
//! that they run. Sites run them under systemd, under another supervisor, or by hand (the
//! lab), so the commands are variables with systemd's as defaults.

use serde::Serialize;

use crate::{source::Diagnostics, source::VarMap, source::field, spec::reload};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaemonControl {
    pub haproxy_stop: String,
    pub haproxy_start: String,
    pub keepalived_stop: String,
    pub keepalived_start: String,
    /// keepalived's pidfile: its first line is the running keepalived's pid.
    pub keepalived_pid_file: String,
}

pub const KEYS: &[&str] = &[
    "haproxy_stop_command",
    "haproxy_start_command",
    "keepalived_stop_command",
    "keepalived_start_command",
    "keepalived_pid_file",
];

pub fn parse(vars: &VarMap, diags: &mut Diagnostics) -> Option<DaemonControl> {
    let before = diags.len();
    let command = |key: &str, default: &str, diags: &mut Diagnostics| match vars.get(key) {
        Some(n) => reload::command(n, key, diags),
        None => Some(default.to_string()),
    };
    let haproxy_stop = command("haproxy_stop_command", "systemctl stop haproxy", diags);
    let haproxy_start = command("haproxy_start_command", "systemctl start haproxy", diags);
    let keepalived_stop = command(
        "keepalived_stop_command",
        "systemctl stop keepalived",
        diags,
    );
    let keepalived_start = command(
        "keepalived_start_command",
        "systemctl start keepalived",
        diags,
    );
    let keepalived_pid_file = match vars.get("keepalived_pid_file") {
        Some(n) => field::abs_path(n, "keepalived_pid_file", diags),
        None => Some("/run/keepalived.pid".to_string()),
    };
    let control = DaemonControl {
        haproxy_stop: haproxy_stop?,
        haproxy_start: haproxy_start?,
        keepalived_stop: keepalived_stop?,
        keepalived_start: keepalived_start?,
        keepalived_pid_file: keepalived_pid_file?,
    };
    (diags.len() == before).then_some(control)
}
