//! keepalived's VRRP instance for one host: who may hold the VIP, and how eagerly.

use serde::Serialize;

use crate::{
    source::VarMap,
    source::field,
    source::{Diagnostic, Diagnostics},
    source::{Loc, Node, Value},
    spec::reload::{self, Reload},
};

/// keepalived truncates `auth_pass` beyond this many characters (PASS authentication).
pub const AUTH_PASS_MAX: usize = 8;

#[derive(Debug, Clone, Serialize)]
pub struct Keepalived {
    pub vips: Vec<String>,
    pub interface: String,
    pub virtual_router_id: u8,
    /// Filled in by the fleet when not set per host, so that every host has a distinct one.
    pub priority: u8,
    /// `MASTER` for the highest priority in the group, `BACKUP` otherwise.
    pub state: String,
    /// A secret: redacted in plans and logs.
    pub auth_pass: Option<String>,
    pub advert_int: u32,
    pub unicast: bool,
    pub unicast_src_ip: Option<String>,
    pub unicast_peers: Vec<String>,
    pub check_script: String,
    pub config_path: String,
    pub reload: Reload,
    #[serde(skip)]
    pub priority_loc: Option<Loc>,
    #[serde(skip)]
    pub vip_loc: Loc,
}

pub const KEYS: &[&str] = &[
    "keepalived_vip",
    "keepalived_vips",
    "keepalived_interface",
    "keepalived_virtual_router_id",
    "keepalived_priority",
    "keepalived_auth_pass",
    "keepalived_advert_int",
    "keepalived_unicast",
    "keepalived_unicast_src_ip",
    "keepalived_check_script",
    "keepalived_config_path",
    "keepalived_reload_method",
    "keepalived_reload_command",
];

/// Reads the keepalived settings; `None` without error when no VIP is configured.
pub fn parse(vars: &VarMap, haproxy_pid_file: &str, diags: &mut Diagnostics) -> Option<Keepalived> {
    let before = diags.len();
    let (vip_node, vips) = match (vars.get("keepalived_vip"), vars.get("keepalived_vips")) {
        (None, None) => return None,
        (Some(_), Some(n)) => {
            diags.push(
                Diagnostic::new(&n.loc, "keepalived_vips", "both `keepalived_vip` and `keepalived_vips` are set")
                    .hint("use `keepalived_vip` for one address or `keepalived_vips` for a list, not both"),
            );
            return None;
        }
        (Some(n), None) => (
            n,
            field::cidr(n, "keepalived_vip", diags)
                .into_iter()
                .collect(),
        ),
        (None, Some(n)) => (n, vip_list(n, diags)),
    };
    let interface = match vars.get("keepalived_interface") {
        Some(n) => field::identifier(n, "keepalived_interface", diags),
        None => {
            diags.push(
                Diagnostic::new(&vip_node.loc, "keepalived_interface", "a VIP needs `keepalived_interface`")
                    .hint("name the network interface that carries the VIP, e.g. `keepalived_interface: eth0`"),
            );
            None
        }
    };
    let vrid = match vars.get("keepalived_virtual_router_id") {
        Some(n) => field::int(n, "keepalived_virtual_router_id", 1, 255, diags).map(|v| v as u8),
        None => Some(51),
    };
    let priority = vars
        .get("keepalived_priority")
        .and_then(|n| field::int(n, "keepalived_priority", 1, 254, diags))
        .map(|p| p as u8);
    let auth_pass = vars.get("keepalived_auth_pass").and_then(|n| {
        let pass = field::word(n, "keepalived_auth_pass", diags)?;
        if pass.chars().count() > AUTH_PASS_MAX {
            diags.push(
                Diagnostic::new(&n.loc, "keepalived_auth_pass", format!("the VRRP password is {} characters; keepalived uses at most {AUTH_PASS_MAX}", pass.chars().count()))
                    .hint(format!("shorten it to {AUTH_PASS_MAX} characters or fewer: keepalived silently truncates longer ones")),
            );
            return None;
        }
        Some(pass)
    });
    let advert_int = match vars.get("keepalived_advert_int") {
        Some(n) => field::int(n, "keepalived_advert_int", 1, 255, diags).map(|v| v as u32),
        None => Some(1),
    };
    let unicast = match vars.get("keepalived_unicast") {
        Some(n) => field::boolean(n, "keepalived_unicast", diags),
        None => Some(true),
    };
    let unicast_src_ip = vars.get("keepalived_unicast_src_ip").and_then(|n| {
        let ip = field::address(n, "keepalived_unicast_src_ip", diags)?;
        if ip.parse::<std::net::IpAddr>().is_err() {
            diags.push(
                Diagnostic::new(
                    &n.loc,
                    "keepalived_unicast_src_ip",
                    "must be an IP address, not a name",
                )
                .hint("keepalived's unicast_src_ip takes an address"),
            );
            return None;
        }
        Some(ip)
    });
    let check_script = match vars.get("keepalived_check_script") {
        Some(n) => {
            crate::spec::reload::command(n, "keepalived_check_script", diags).and_then(|s| {
                if s.contains('"') {
                    diags.push(
                    Diagnostic::new(
                        &n.loc,
                        "keepalived_check_script",
                        "the check script cannot contain `\"`",
                    )
                    .hint(
                        "keepalived quotes the script with double quotes; use single quotes inside",
                    ),
                );
                    return None;
                }
                Some(s)
            })
        }
        None => Some(format!("/bin/sh -c 'kill -0 $(cat {haproxy_pid_file})'")),
    };
    let config_path = match vars.get("keepalived_config_path") {
        Some(n) => field::abs_path(n, "keepalived_config_path", diags),
        None => Some("/etc/keepalived/keepalived.conf".to_string()),
    };
    let reload = reload::parse(vars, "keepalived", None, diags);
    if diags.len() > before {
        return None;
    }
    Some(Keepalived {
        vips,
        interface: interface?,
        virtual_router_id: vrid?,
        priority: priority.unwrap_or(0),
        state: "BACKUP".to_string(),
        auth_pass,
        advert_int: advert_int?,
        unicast: unicast?,
        unicast_src_ip,
        unicast_peers: Vec::new(),
        check_script: check_script?,
        config_path: config_path?,
        reload: reload?,
        priority_loc: priority.and(vars.get("keepalived_priority").map(|n| n.loc)),
        vip_loc: vip_node.loc,
    })
}

fn vip_list(node: &Node, diags: &mut Diagnostics) -> Vec<String> {
    match &node.value {
        Value::Seq(items) if !items.is_empty() => items
            .iter()
            .enumerate()
            .filter_map(|(i, n)| field::cidr(n, &format!("keepalived_vips[{i}]"), diags))
            .collect(),
        _ => {
            diags.push(
                Diagnostic::new(
                    &node.loc,
                    "keepalived_vips",
                    "expected a non-empty list of addresses",
                )
                .hint("write e.g. `keepalived_vips: [192.168.1.100/24]`"),
            );
            Vec::new()
        }
    }
}
