//! HAProxy's global settings for one host: stats page, runtime sockets, timeouts, reloads.

use serde::Serialize;

use crate::{
    source::Loc,
    source::VarMap,
    source::field::{self, Duration},
    source::{Diagnostic, Diagnostics},
    spec::managed_path,
    spec::reload::{self, Reload},
    spec::service::Service,
};

#[derive(Debug, Clone, Serialize)]
pub struct Haproxy {
    pub bind_address: String,
    pub stats_bind: String,
    pub stats_port: u16,
    pub stats_user: Option<String>,
    /// A secret: redacted in plans and logs.
    pub stats_password: Option<String>,
    pub maxconn: u32,
    pub retries: u32,
    pub timeout_connect: Duration,
    pub timeout_client: Duration,
    pub timeout_server: Duration,
    pub timeout_check: Duration,
    /// How long an HTTP frontend waits for a complete request (slow clients).
    pub timeout_http_request: Duration,
    pub runtime_socket: String,
    pub master_socket: String,
    pub pid_file: String,
    pub user: String,
    pub group: String,
    pub config_path: String,
    /// HAProxy's `server-state-file`: servers' state saved before every reload, for the
    /// next process to start from.
    pub server_state_file: String,
    pub reload: Reload,
    /// Where this host's HAProxy meets the others' to share stick tables (`peers`).
    pub peers_port: u16,
    #[serde(skip)]
    pub stats_port_loc: Option<Loc>,
    #[serde(skip)]
    pub peers_port_loc: Option<Loc>,
}

pub const KEYS: &[&str] = &[
    "haproxy_tcp_backends",
    "haproxy_udp_backends",
    "haproxy_http_frontends",
    "haproxy_http_backends",
    "haproxy_bind_address",
    "haproxy_stats_bind",
    "haproxy_stats_port",
    "haproxy_peers_port",
    "haproxy_stats_user",
    "haproxy_stats_password",
    "haproxy_maxconn",
    "haproxy_retries",
    "haproxy_timeout_connect",
    "haproxy_timeout_client",
    "haproxy_timeout_server",
    "haproxy_timeout_check",
    "haproxy_timeout_http_request",
    "haproxy_runtime_socket",
    "haproxy_master_socket",
    "haproxy_pid_file",
    "haproxy_user",
    "haproxy_group",
    "haproxy_config_path",
    "haproxy_server_state_file",
    "haproxy_reload_method",
    "haproxy_reload_command",
];

pub fn parse(vars: &VarMap, diags: &mut Diagnostics) -> Option<Haproxy> {
    let before = diags.len();
    let text = |key: &str, default: &str, diags: &mut Diagnostics| match vars.get(key) {
        Some(n) => field::word(n, key, diags),
        None => Some(default.to_string()),
    };
    let path = |key: &str, default: &str, diags: &mut Diagnostics| match vars.get(key) {
        Some(n) => field::abs_path(n, key, diags),
        None => Some(default.to_string()),
    };
    let time = |key: &str, default: &str, diags: &mut Diagnostics| match vars.get(key) {
        Some(n) => field::duration(n, key, diags),
        None => Some(Duration {
            text: default.to_string(),
            ms: field::parse_duration(default).unwrap_or_default(),
        }),
    };
    let number = |key: &str, default: i64, min: i64, max: i64, diags: &mut Diagnostics| match vars
        .get(key)
    {
        Some(n) => field::int(n, key, min, max, diags),
        None => Some(default),
    };
    let bind = |key: &str, diags: &mut Diagnostics| match vars.get(key) {
        Some(n) => field::bind_address(n, key, diags),
        None => Some("*".to_string()),
    };
    let stats_user = vars
        .get("haproxy_stats_user")
        .and_then(|n| field::word(n, "haproxy_stats_user", diags));
    let stats_password = vars
        .get("haproxy_stats_password")
        .and_then(|n| field::word(n, "haproxy_stats_password", diags));
    // Whether each is set, not whether it read cleanly: a password refused for its characters
    // is set, and one whose template failed too (already reported), so saying it is missing
    // would be a second, false error.
    let user_set = vars.contains_key("haproxy_stats_user");
    let (given, missing) = if user_set {
        ("haproxy_stats_user", "haproxy_stats_password")
    } else {
        ("haproxy_stats_password", "haproxy_stats_user")
    };
    if user_set != vars.contains_key("haproxy_stats_password") && !diags.about(missing) {
        diags.push(
            Diagnostic::new(
                &vars[given].loc,
                given,
                format!("`{given}` is set but `{missing}` is not"),
            )
            .hint("set both to protect the stats page, or neither to leave it open"),
        );
    }
    if stats_user.as_deref().is_some_and(|u| u.contains(':')) {
        diags.push(
            Diagnostic::new(
                &vars["haproxy_stats_user"].loc,
                "haproxy_stats_user",
                "the stats user name cannot contain `:`",
            )
            .hint("HAProxy separates user and password with `:`"),
        );
    }
    let master_socket = path("haproxy_master_socket", "/run/haproxy/master.sock", diags);
    let reload = reload::parse(vars, "haproxy", master_socket.as_deref(), diags);
    let settings = Haproxy {
        bind_address: bind("haproxy_bind_address", diags)?,
        stats_bind: bind("haproxy_stats_bind", diags)?,
        stats_port: match vars.get("haproxy_stats_port") {
            Some(n) => field::port(n, "haproxy_stats_port", diags)?,
            None => 8404,
        },
        stats_user,
        stats_password,
        maxconn: number("haproxy_maxconn", 4096, 1, 10_000_000, diags)? as u32,
        retries: number("haproxy_retries", 3, 0, 100, diags)? as u32,
        timeout_connect: time("haproxy_timeout_connect", "500ms", diags)?,
        timeout_client: time("haproxy_timeout_client", "1h", diags)?,
        timeout_server: time("haproxy_timeout_server", "1h", diags)?,
        timeout_check: time("haproxy_timeout_check", "2s", diags)?,
        timeout_http_request: time("haproxy_timeout_http_request", "10s", diags)?,
        runtime_socket: path("haproxy_runtime_socket", "/run/haproxy/admin.sock", diags)?,
        master_socket: master_socket?,
        pid_file: path("haproxy_pid_file", "/run/haproxy.pid", diags)?,
        user: text("haproxy_user", "haproxy", diags)?,
        group: text("haproxy_group", "haproxy", diags)?,
        config_path: managed_path::parse(
            vars,
            "haproxy_config_path",
            "/etc/haproxy/haproxy.cfg",
            Service::Haproxy,
            diags,
        )?,
        server_state_file: managed_path::parse(
            vars,
            "haproxy_server_state_file",
            "/var/lib/haproxy/server-state",
            Service::Haproxy,
            diags,
        )?,
        reload: reload?,
        peers_port: match vars.get("haproxy_peers_port") {
            Some(n) => field::port(n, "haproxy_peers_port", diags)?,
            None => crate::spec::peers::DEFAULT_PORT,
        },
        stats_port_loc: vars.get("haproxy_stats_port").map(|n| n.loc),
        peers_port_loc: vars.get("haproxy_peers_port").map(|n| n.loc),
    };
    (diags.len() == before).then_some(settings)
}
