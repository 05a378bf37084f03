//! lbctl's UDP health watcher, for the nginx engine. Open-source nginx cannot mark an upstream
//! server down at run time, and never counts a missing UDP reply as a failure, so the health
//! of UDP servers lives in HAProxy (a backend per UDP service, checked, with no frontend) and
//! a small watcher on each load balancer copies it into nginx: it keeps nginx's stream file
//! equal to the one lbctl rendered, with `down` on every server HAProxy does not see UP, and
//! reloads nginx (hitless) when that changes.
//!
//! Files on the host: the watcher script (also HAProxy's external check for `udp` checks),
//! the stream configuration as lbctl rendered it (`source_path`), and nginx's own
//! `nginx_stream_config_path`, which the watcher writes. The watcher is supervised as the
//! other daemons are: a systemd unit lbctl installs, or the user's own command.

use serde::Serialize;

use crate::{
    source::Diagnostics,
    source::VarMap,
    source::field::{self, one_of},
    spec::managed_path,
    spec::reload::{self, Reload},
    spec::service::Service,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UdpHealth {
    /// The watcher script; HAProxy runs it as the external check of `udp` health checks.
    pub script_path: String,
    /// nginx's stream configuration as lbctl rendered it; the watcher derives the live one.
    pub source_path: String,
    /// The live stream file nginx includes (`nginx_stream_config_path`).
    pub live_path: String,
    /// The servers out of nginx's running configuration, one `backend/server` a line: the
    /// watcher writes it once a reload of the live file has taken effect (nginx's old workers
    /// stopped taking new flows), and `status` and `failover-test` read it.
    pub applied_path: String,
    /// How nginx reloads (`nginx_reload_method`), run by the watcher after each change.
    pub nginx_reload: String,
    /// nginx's pid file (`nginx_pid_file`): its master, whose workers the watcher watches
    /// take over after a reload, and whose life keepalived and `status` follow.
    pub nginx_pid_file: String,
    /// How the watcher itself is (re)started after its script changes.
    pub reload: Reload,
    /// The systemd unit file lbctl installs, with `lbctl_udp_health_reload_method: systemd`.
    pub unit_path: Option<String>,
    pub unit: String,
    pub pid_file: String,
    pub log_file: String,
    /// How often the watcher asks HAProxy for its servers' states.
    pub poll_ms: u64,
    /// HAProxy's admin socket.
    pub runtime_socket: String,
    /// Some backend has a `udp` check: HAProxy runs this script as an external check, which
    /// its global section must allow.
    pub external_check: bool,
    /// How long a `udp` check waits for its reply: HAProxy's `timeout connect`, as a TCP
    /// check's connect, so a silent server fails within the detection budget.
    pub udp_deadline_ms: u64,
}

pub const KEYS: &[&str] = &[
    "lbctl_udp_health_dir",
    "lbctl_udp_health_reload_method",
    "lbctl_udp_health_reload_command",
];

/// The systemd unit lbctl installs and restarts.
pub const UNIT: &str = "lbctl-udp-health.service";
/// Between two questions to HAProxy: a fifth of the lab's 1 s check interval, so the
/// watcher adds at most that to a detection (budget `inter × fall + inter`).
pub const POLL_MS: u64 = 200;

/// Reads the watcher's settings for a host whose UDP services go through nginx.
pub fn parse(
    vars: &VarMap,
    live_path: &str,
    (nginx_reload, nginx_pid_file): (&Reload, &str),
    runtime_socket: &str,
    diags: &mut Diagnostics,
) -> Option<UdpHealth> {
    let key = "lbctl_udp_health_dir";
    let dir = match vars.get(key) {
        Some(n) => {
            let dir = field::string(n, key, diags)?;
            let dir = dir.trim_end_matches('/').to_string();
            // the files lbctl writes there follow the rules of every managed file
            for file in ["udp-health", "nginx-stream.conf"] {
                let path = format!("{dir}/{file}");
                if !managed_path::check_derived(n, key, &path, Service::UdpHealth, vars, diags) {
                    return None;
                }
            }
            dir
        }
        None => "/etc/lbctl".to_string(),
    };
    let script_path = format!("{dir}/udp-health");
    let method = match vars.get("lbctl_udp_health_reload_method") {
        Some(n) => one_of(
            n,
            "lbctl_udp_health_reload_method",
            &["systemd", "command"],
            "reload method",
            diags,
        )?,
        None => "systemd".to_string(),
    };
    let (reload, unit_path) = if method == "systemd" {
        (
            Reload::Command {
                command: format!(
                    "systemctl daemon-reload && systemctl enable --quiet {UNIT} && systemctl restart {UNIT}"
                ),
            },
            Some(format!("/etc/systemd/system/{UNIT}")),
        )
    } else {
        let command = match vars.get("lbctl_udp_health_reload_command") {
            Some(n) => reload::command(n, "lbctl_udp_health_reload_command", diags)?,
            None => format!("{script_path} restart"),
        };
        (Reload::Command { command }, None)
    };
    Some(UdpHealth {
        source_path: format!("{dir}/nginx-stream.conf"),
        script_path,
        live_path: live_path.to_string(),
        applied_path: format!("{dir}/nginx-down"),
        nginx_reload: nginx_reload.shell(),
        nginx_pid_file: nginx_pid_file.to_string(),
        reload,
        unit_path,
        unit: UNIT.to_string(),
        pid_file: "/run/lbctl-udp-health.pid".to_string(),
        log_file: "/var/log/lbctl-udp-health.log".to_string(),
        poll_ms: POLL_MS,
        runtime_socket: runtime_socket.to_string(),
        external_check: false,
        udp_deadline_ms: 500,
    })
}
