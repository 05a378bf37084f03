//! What carries UDP. Community HAProxy has no UDP proxying, so UDP backends go to nginx's
//! `stream` module (default) or to keepalived's LVS `virtual_server` blocks.

use serde::Serialize;

use crate::{
    source::Diagnostics,
    source::VarMap,
    source::field,
    spec::reload::{self, Reload},
};

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "engine", rename_all = "lowercase")]
pub enum UdpEngine {
    Nginx { config_path: String, reload: Reload },
    Lvs,
}

pub const KEYS: &[&str] = &[
    "lbctl_udp_engine",
    "nginx_stream_config_path",
    "nginx_reload_method",
    "nginx_reload_command",
];

pub fn parse(vars: &VarMap, diags: &mut Diagnostics) -> Option<UdpEngine> {
    let engine = match vars.get("lbctl_udp_engine") {
        Some(n) => field::one_of(
            n,
            "lbctl_udp_engine",
            &["nginx", "lvs"],
            "UDP engine",
            diags,
        )?,
        None => "nginx".to_string(),
    };
    if engine == "lvs" {
        return Some(UdpEngine::Lvs);
    }
    let config_path = match vars.get("nginx_stream_config_path") {
        Some(n) => field::abs_path(n, "nginx_stream_config_path", diags)?,
        None => "/etc/nginx/lbctl-stream.conf".to_string(),
    };
    let reload = reload::parse(vars, "nginx", None, diags)?;
    Some(UdpEngine::Nginx {
        config_path,
        reload,
    })
}
