//! What carries UDP. Community HAProxy has no UDP proxying, so UDP backends go to nginx's
//! `stream` module (default) or to keepalived's LVS `virtual_server` blocks.

use serde::Serialize;

use std::net::IpAddr;

use crate::{
    source::VarMap,
    source::field,
    source::{Diagnostic, Diagnostics, Node},
    spec::managed_path,
    spec::reload::{self, Reload},
    spec::service::Service,
};

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "engine", rename_all = "lowercase")]
pub enum UdpEngine {
    Nginx {
        config_path: String,
        reload: Reload,
        /// `nginx_resolver`: the DNS servers nginx asks for the UDP servers given by name,
        /// each as nginx writes it (`10.0.0.53`, `[fd00::53]`).
        resolver: Vec<String>,
    },
    Lvs,
}

pub const KEYS: &[&str] = &[
    "lbctl_udp_engine",
    managed_path::CONFINE_KEY,
    "nginx_stream_config_path",
    "nginx_reload_method",
    "nginx_reload_command",
    "nginx_resolver",
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
    let config_path = managed_path::parse(
        vars,
        "nginx_stream_config_path",
        "/etc/nginx/lbctl-stream.conf",
        Service::Nginx,
        diags,
    )?;
    let reload = reload::parse(vars, "nginx", None, diags)?;
    let resolver = match vars.get("nginx_resolver") {
        Some(n) => resolver(n, diags)?,
        None => Vec::new(),
    };
    Some(UdpEngine::Nginx {
        config_path,
        reload,
        resolver,
    })
}

/// `nginx_resolver`: one IP address or a list of them.
fn resolver(node: &Node, diags: &mut Diagnostics) -> Option<Vec<String>> {
    let before = diags.len();
    let mut out = Vec::new();
    for (path, item) in field::one_or_many(node, "nginx_resolver", diags) {
        let text = item.as_text().unwrap_or_default();
        match text.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => out.push(ip.to_string()),
            Ok(IpAddr::V6(ip)) => out.push(format!("[{ip}]")),
            Err(_) => diags.push(
                Diagnostic::new(
                    &item.loc,
                    path,
                    format!("{} is not an IP address", field::quote(&text)),
                )
                .hint("give the DNS servers the load balancers use by address, e.g. `nginx_resolver: [10.0.0.53]`"),
            ),
        }
    }
    (diags.len() == before).then_some(out)
}
