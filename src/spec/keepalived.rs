//! keepalived's VRRP instance for one host: who may hold the VIP, and how eagerly.

use std::net::IpAddr;

use serde::Serialize;

use crate::{
    source::VarMap,
    source::field,
    source::{Diagnostic, Diagnostics},
    source::{Loc, Node, Value},
    spec::keepalived_text::{self, Place, Shown},
    spec::managed_path,
    spec::reload::{self, Reload},
    spec::service::Service,
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
    /// 2 or 3: VRRPv3 counts its advert interval in centiseconds and has no authentication.
    pub vrrp_version: u8,
    /// Seconds between adverts, in centiseconds (VRRPv3's unit; VRRPv2's are whole seconds).
    pub advert_int_cs: u32,
    /// `advert_int` as keepalived reads it: `1`, `0.2`, `0.25`.
    pub advert_int: String,
    pub unicast: bool,
    pub unicast_src_ip: Option<String>,
    pub unicast_peers: Vec<String>,
    /// How keepalived learns that HAProxy died.
    pub haproxy_check: HaproxyCheck,
    /// Lowers this host below every other while its HAProxy has no server up: filled in by
    /// the fleet, which knows every member's priority; `None` for a lone load balancer.
    pub servers_check: Option<ServersCheck>,
    /// With a script check, the script that fails while nginx, which carries this host's UDP
    /// services, is dead ([`pid_alive_script`] on its pid file): weighted as the servers check.
    /// Filled in by the fleet with it; `None` without UDP services through nginx.
    pub nginx_check: Option<String>,
    pub config_path: String,
    pub reload: Reload,
    #[serde(skip)]
    pub priority_loc: Option<Loc>,
    #[serde(skip)]
    pub vip_loc: Loc,
    /// Where each setting the load balancers must agree on came from (lbctl's default: none).
    #[serde(skip)]
    pub locs: SharedLocs,
}

/// How keepalived tracks HAProxy; either way a host whose HAProxy is dead enters FAULT, gives
/// the VIP up at once and tells the others with a priority-0 advert.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum HaproxyCheck {
    /// `vrrp_track_process`: the kernel's process events (netlink), no polling.
    Process {
        /// The process name (`/proc/PID/comm`) of HAProxy's master and workers.
        name: String,
        /// `delay`, in seconds as written: how long a count of zero may last before it counts.
        delay: Option<String>,
    },
    /// `vrrp_script`, run every second.
    Script {
        script: String,
        /// The site's own `keepalived_check_script`, not lbctl's (which answers within ~20 ms
        /// of HAProxy's death): it may take until its next run.
        custom: bool,
    },
}

/// A `vrrp_script` with a negative weight that fails while HAProxy answers that a backend has
/// servers and none of them up (every one `DOWN` or in maintenance), so that a host whose health checks
/// were cut off with it (a partition, a pulled cable) comes back below the host that took
/// the VIP over, and takes the VIP back only once its checks have marked servers `UP` again.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServersCheck {
    pub script: String,
    /// Negative: the spread of the members' priorities plus one, so a host that fails drops
    /// below every member that does not, and when all fail (every server down everywhere)
    /// all drop alike and keep their order.
    pub weight: i16,
}

impl ServersCheck {
    /// The check for a HAProxy with its runtime socket at `socket`, in a VRRP instance whose
    /// members' priorities run from `lowest` to `highest`.
    pub fn new(socket: &str, lowest: u8, highest: u8) -> Self {
        let spread = i16::from(highest.saturating_sub(lowest));
        ServersCheck {
            script: servers_script(socket),
            weight: -(spread + 1).min(253),
        }
    }
}

/// Asks HAProxy once for its servers' rows only (`show stat -1 4 -1`: every proxy, type 4),
/// reading each row's backend and `status` (columns 1 and 18, fixed ones): the backends with a
/// server `UP` (also `UP 1/2`, still up), `no check`, `DRAIN` or `NOLB`, and those with one
/// `DOWN` or in `MAINT`; fails when a backend of the second kind is not of the first (it has
/// servers, and none up). No answer (HAProxy reloading, or dead, which the HAProxy check
/// handles) or no server at all passes. keepalived runs it every second on every host: one
/// `socat` and the shell's own `read` and `case`, not two queries and a filter of `cut`, `grep`
/// and `paste` each (three processes a run instead of eleven). Written for keepalived's script
/// line: no `"`, no `\`, no `$_` or `${` ([`keepalived_text`]); `set -f`: no file name is
/// expanded. The lists are comma-separated: a backend name has no comma, and the last comma
/// of a list ends its last name without adding an empty one.
fn servers_script(socket: &str) -> String {
    format!(
        "/bin/sh -c 'set -f; echo show stat -1 4 -1 | socat -t 1 -T 1 - UNIX-CONNECT:{socket} 2>/dev/null | \
         (up=,; down=; while IFS=, read -r b _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ s _; do \
         case $s in UP*|no?check*|DRAIN*|NOLB*) up=$up$b,;; DOWN*|MAINT*) down=$down$b,;; esac; done; \
         IFS=,; for b in $down; do case $up in *,$b,*) ;; *) exit 1;; esac; done)'"
    )
}

/// The locations of the settings every member of a VRRP instance must share.
#[derive(Debug, Clone, Default)]
pub struct SharedLocs {
    pub vrrp_version: Option<Loc>,
    pub advert_int: Option<Loc>,
    pub auth_pass: Option<Loc>,
    pub virtual_router_id: Option<Loc>,
}

/// VRRPv3's advert interval field: 12 bits of centiseconds.
pub const V3_ADVERT_MAX_CS: u32 = 4095;
/// The longest process name the kernel keeps (`comm`, 15 bytes).
pub const PROCESS_NAME_MAX: usize = 15;

pub const KEYS: &[&str] = &[
    "keepalived_vip",
    "keepalived_vips",
    "keepalived_interface",
    "keepalived_virtual_router_id",
    "keepalived_priority",
    "keepalived_auth_pass",
    "keepalived_vrrp_version",
    "keepalived_advert_int",
    "keepalived_unicast",
    "keepalived_unicast_src_ip",
    "keepalived_haproxy_check",
    "keepalived_haproxy_process",
    "keepalived_haproxy_process_delay",
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
            vip(n, "keepalived_vip", &[], diags).into_iter().collect(),
        ),
        (None, Some(n)) => (n, vip_list(n, diags)),
    };
    let interface = match vars.get("keepalived_interface") {
        Some(n) => interface(n, diags),
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
    // empty text or null: no authentication, as a template's `{% if keepalived_auth_pass %}`
    // reads it; anything else is read (and a list or mapping refused), never taken for none
    let auth_node = vars
        .get("keepalived_auth_pass")
        .filter(|n| !matches!(&n.value, Value::Null) && n.as_text().is_none_or(|t| !t.is_empty()));
    let auth_pass = auth_node.and_then(|n| {
        let pass = keepalived_text::read(n, "keepalived_auth_pass", Place::Word, Shown::Secret, diags)?;
        if pass.chars().count() > AUTH_PASS_MAX {
            diags.push(
                Diagnostic::new(&n.loc, "keepalived_auth_pass", format!("the VRRP password is {} characters; keepalived uses at most {AUTH_PASS_MAX}", pass.chars().count()))
                    .hint(format!("shorten it to {AUTH_PASS_MAX} characters or fewer: keepalived silently truncates longer ones")),
            );
            return None;
        }
        Some(pass)
    });
    let vrrp_version = match vars.get("keepalived_vrrp_version") {
        Some(n) => field::int(n, "keepalived_vrrp_version", 2, 3, diags).map(|v| v as u8),
        None => Some(2),
    };
    let advert_int_cs = match (vars.get("keepalived_advert_int"), vrrp_version) {
        (Some(n), Some(version)) => advert_int(n, version, diags),
        (Some(_), None) => None,
        (None, _) => Some(100),
    };
    let ipv6 = vips.first().is_some_and(|v| is_ipv6(v));
    if let (Some(n), true) = (auth_node, ipv6) {
        diags.push(
            Diagnostic::new(
                &n.loc,
                "keepalived_auth_pass",
                "an IPv6 VIP is carried by VRRPv3, which has no authentication: keepalived refuses auth_pass there",
            )
            .hint("remove keepalived_auth_pass (unicast peers already limit who is heard)"),
        );
    } else if let (Some(n), Some(3)) = (auth_node, vrrp_version) {
        diags.push(
            Diagnostic::new(
                &n.loc,
                "keepalived_auth_pass",
                "PASS authentication exists in VRRPv2 only; VRRPv3 (keepalived_vrrp_version: 3) has none",
            )
            .hint("remove keepalived_auth_pass (unicast peers already limit who is heard), or use keepalived_vrrp_version: 2"),
        );
    }
    let unicast = match vars.get("keepalived_unicast") {
        Some(n) => field::boolean(n, "keepalived_unicast", diags),
        None => Some(true),
    };
    let unicast_src_ip = vars.get("keepalived_unicast_src_ip").and_then(|n| {
        let ip = field::address(n, "keepalived_unicast_src_ip", diags)?;
        if ip.parse::<IpAddr>().is_err() {
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
    let haproxy_check = haproxy_check(vars, haproxy_pid_file, diags);
    let config_path = managed_path::parse(
        vars,
        "keepalived_config_path",
        "/etc/keepalived/keepalived.conf",
        Service::Keepalived,
        diags,
    );
    let reload = reload::parse(vars, "keepalived", None, diags);
    if diags.len() > before {
        return None;
    }
    let advert_int_cs = advert_int_cs?;
    Some(Keepalived {
        vips,
        interface: interface?,
        virtual_router_id: vrid?,
        priority: priority.unwrap_or(0),
        state: "BACKUP".to_string(),
        auth_pass,
        vrrp_version: vrrp_version?,
        advert_int_cs,
        advert_int: seconds_text(advert_int_cs),
        unicast: unicast?,
        unicast_src_ip,
        unicast_peers: Vec::new(),
        haproxy_check: haproxy_check?,
        servers_check: None,
        nginx_check: None,
        config_path: config_path?,
        reload: reload?,
        priority_loc: priority.and(vars.get("keepalived_priority").map(|n| n.loc)),
        vip_loc: vip_node.loc,
        locs: SharedLocs {
            vrrp_version: vars.get("keepalived_vrrp_version").map(|n| n.loc),
            advert_int: vars.get("keepalived_advert_int").map(|n| n.loc),
            auth_pass: vars.get("keepalived_auth_pass").map(|n| n.loc),
            virtual_router_id: vars.get("keepalived_virtual_router_id").map(|n| n.loc),
        },
    })
}

/// `keepalived_advert_int`: whole seconds (1–255) for VRRPv2; for VRRPv3 seconds in steps of
/// 0.01 from 0.01 to 40.95, its 12-bit field of centiseconds. Returns centiseconds.
fn advert_int(node: &Node, version: u8, diags: &mut Diagnostics) -> Option<u32> {
    const KEY: &str = "keepalived_advert_int";
    let text = node.as_text().unwrap_or_default();
    let Some(cs) = centiseconds(&text) else {
        // a number, but finer than keepalived reads it: say so rather than "not a number"
        let t = text.trim();
        let decimal = t.chars().all(|c| c.is_ascii_digit() || c == '.') && t.parse::<f64>().is_ok();
        let message = if decimal {
            format!(
                "{text} s is finer than keepalived's resolution of 0.01 s (VRRPv3 counts centiseconds)"
            )
        } else {
            format!("{} is not a number of seconds", field::quote(&text))
        };
        diags.push(
            Diagnostic::new(&node.loc, KEY, message).hint(if version == 3 {
                "write seconds with at most two decimals, e.g. 1 or 0.2"
            } else {
                "write whole seconds, e.g. 1"
            }),
        );
        return None;
    };
    let problem = match version {
        2 if cs % 100 != 0 => Some((
            format!("VRRPv2 adverts come in whole seconds; {text} is not one"),
            "set keepalived_vrrp_version: 3 for sub-second adverts (every load balancer's keepalived must run version 3), or use whole seconds",
        )),
        2 if !(100..=25_500).contains(&cs) => Some((
            format!("{text} s is out of VRRPv2's range"),
            "use 1 to 255 seconds",
        )),
        3 if !(1..=V3_ADVERT_MAX_CS).contains(&cs) => Some((
            format!("{text} s is out of VRRPv3's range"),
            "use 0.01 to 40.95 seconds (VRRPv3 counts centiseconds in 12 bits)",
        )),
        _ => None,
    };
    match problem {
        Some((message, hint)) => {
            diags.push(Diagnostic::new(&node.loc, KEY, message).hint(hint));
            None
        }
        None => Some(cs),
    }
}

/// `12`, `0.2`, `1.25` → centiseconds; more than two decimals (VRRPv3's resolution) → None.
fn centiseconds(text: &str) -> Option<u32> {
    let (whole, frac) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if !all_digits(whole) || !all_digits(frac) || whole.len() > 6 {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 2 {
        return None;
    }
    let whole: u32 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: u32 = format!("{frac:0<2}").parse().ok()?;
    Some(whole * 100 + frac)
}

/// Centiseconds as keepalived reads seconds: `100` → `1`, `20` → `0.2`, `125` → `1.25`.
pub fn seconds_text(cs: u32) -> String {
    let (s, rest) = (cs / 100, cs % 100);
    match rest {
        0 => s.to_string(),
        r if r % 10 == 0 => format!("{s}.{}", r / 10),
        r => format!("{s}.{r:02}"),
    }
}

/// `keepalived_haproxy_check` (`process`, the default, or `script`) and what it needs.
fn haproxy_check(
    vars: &VarMap,
    haproxy_pid_file: &str,
    diags: &mut Diagnostics,
) -> Option<HaproxyCheck> {
    let script_node = vars.get("keepalived_check_script");
    let kind = match vars.get("keepalived_haproxy_check") {
        Some(n) => field::one_of(
            n,
            "keepalived_haproxy_check",
            &["process", "script"],
            "HAProxy check",
            diags,
        )?,
        // a site that wrote its own script meant it to be used
        None if script_node.is_some() => "script".to_string(),
        None => "process".to_string(),
    };
    if kind == "script" {
        for key in [
            "keepalived_haproxy_process",
            "keepalived_haproxy_process_delay",
        ] {
            if let Some(n) = vars.get(key) {
                diags.push(
                    Diagnostic::new(
                        &n.loc,
                        key,
                        format!("`{key}` only applies to keepalived_haproxy_check: process"),
                    )
                    .hint("remove it, or track HAProxy's process instead of running a script"),
                );
            }
        }
        let custom = script_node.is_some();
        let script = match script_node {
            Some(n) => keepalived_text::read(
                n,
                "keepalived_check_script",
                Place::Script,
                Shown::Quoted,
                diags,
            ),
            None => Some(default_script(haproxy_pid_file)),
        }?;
        return Some(HaproxyCheck::Script { script, custom });
    }
    if let Some(n) = script_node {
        diags.push(
            Diagnostic::new(
                &n.loc,
                "keepalived_check_script",
                "a check script is set, but keepalived_haproxy_check is `process`",
            )
            .hint("set keepalived_haproxy_check: script to run it, or remove it"),
        );
        return None;
    }
    let name = match vars.get("keepalived_haproxy_process") {
        Some(n) => {
            let name = field::identifier(n, "keepalived_haproxy_process", diags)?;
            if name.len() > PROCESS_NAME_MAX {
                diags.push(
                    Diagnostic::new(&n.loc, "keepalived_haproxy_process", format!("`{name}` is longer than the {PROCESS_NAME_MAX} characters the kernel keeps of a process name"))
                        .hint(format!("use the name `ps -o comm` shows for HAProxy (its first {PROCESS_NAME_MAX} characters)")),
                );
                return None;
            }
            name
        }
        None => "haproxy".to_string(),
    };
    let delay = match vars.get("keepalived_haproxy_process_delay") {
        Some(n) => {
            let text = n.as_text().unwrap_or_default();
            match centiseconds(&text) {
                Some(0) => None,
                Some(cs) if cs <= 1000 => Some(seconds_text(cs)),
                _ => {
                    diags.push(
                        Diagnostic::new(&n.loc, "keepalived_haproxy_process_delay", format!("{} is not a delay keepalived_haproxy_process_delay takes", field::quote(&text)))
                            .hint("seconds from 0 to 10 with at most two decimals, e.g. 0.1; 0 (the default) gives the VIP up the moment HAProxy's last process exits"),
                    );
                    return None;
                }
            }
        }
        None => None,
    };
    Some(HaproxyCheck::Process { name, delay })
}

/// The default script check: [`pid_alive_script`] on HAProxy's pid file.
fn default_script(haproxy_pid_file: &str) -> String {
    pid_alive_script(haproxy_pid_file)
}

/// A check script that waits up to 0.9 s on the pid in `pid_file` (a daemon's master),
/// answering the moment it dies (`tail --pid` looks every 20 ms) rather than at keepalived's
/// next one-second run. `timeout` ending the wait (exit 124) means the daemon lived through it.
///
/// HAProxy's master removes and rewrites its pid file at every reload (a new file, empty until
/// it has started the new worker), and nginx renames its own during a binary upgrade: a check
/// that read it then would fail, and with `fall 1` the holder would give the VIP away in the
/// middle of a hitless apply. So a pid file that is missing or empty is read again, up to 10
/// times 50 ms apart, before the check fails; a dead daemon whose pid file is still there
/// fails it as fast as before.
pub fn pid_alive_script(pid_file: &str) -> String {
    format!(
        "/bin/sh -c 'exec 2>/dev/null; for t in 1 2 3 4 5 6 7 8 9 10; do read -r p <{pid_file} && break; sleep 0.05; done; timeout 0.9 tail -s 0.02 --pid=$p -f /dev/null; [ $? -eq 124 ]'"
    )
}

/// The longest interface name Linux accepts (`IFNAMSIZ` less the final NUL).
pub const INTERFACE_NAME_MAX: usize = 15;

/// `keepalived_interface`: a name Linux could give an interface (keepalived refuses one that
/// does not exist, so longer names can never work), and one keepalived reads as written.
fn interface(node: &Node, diags: &mut Diagnostics) -> Option<String> {
    const KEY: &str = "keepalived_interface";
    let name = field::identifier(node, KEY, diags)?;
    if name.len() > INTERFACE_NAME_MAX {
        diags.push(
            Diagnostic::new(
                &node.loc,
                KEY,
                format!("`{name}` is longer than the {INTERFACE_NAME_MAX} characters Linux allows an interface name"),
            )
            .hint("use the name `ip link` shows, e.g. eth0 or bond0.100"),
        );
        return None;
    }
    keepalived_text::read(node, KEY, Place::Word, Shown::Quoted, diags)
}

/// Whether a VIP (`address/prefix`) is an IPv6 address.
pub fn is_ipv6(vip: &str) -> bool {
    vip.split('/')
        .next()
        .is_some_and(|a| a.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6()))
}

/// One VIP: an address with an optional prefix, not on the loopback (no other host could reach
/// it) and not already among `earlier` under any prefix (keepalived -t accepts both, and the
/// VRRP instance would carry one address twice).
fn vip(node: &Node, path: &str, earlier: &[String], diags: &mut Diagnostics) -> Option<String> {
    let vip = field::cidr(node, path, diags)?;
    let address = |v: &str| {
        v.split('/')
            .next()
            .and_then(|a| a.parse::<IpAddr>().ok())
            .map(|ip| ip.to_canonical())
    };
    let ip = address(&vip)?;
    let problem = if ip.is_loopback() {
        Some((
            format!("{vip} is a loopback address: only this host itself could reach the VIP"),
            "give an address of the network keepalived_interface is on, e.g. 192.168.1.100/24"
                .to_string(),
        ))
    } else {
        earlier.iter().find(|e| address(e) == Some(ip)).map(|e| {
            (
                format!("the address of {vip} is already a VIP ({e})"),
                format!("list {ip} once, with the prefix of its network"),
            )
        })
    };
    match problem {
        None => Some(vip),
        Some((message, hint)) => {
            diags.push(Diagnostic::new(&node.loc, path, message).hint(hint));
            None
        }
    }
}

fn vip_list(node: &Node, diags: &mut Diagnostics) -> Vec<String> {
    match &node.value {
        Value::Seq(items) if !items.is_empty() => {
            let mut vips: Vec<String> = Vec::new();
            for (i, n) in items.iter().enumerate() {
                let path = format!("keepalived_vips[{i}]");
                let Some(vip) = vip(n, &path, &vips, diags) else {
                    continue;
                };
                if let Some(first) = vips.first().filter(|f| is_ipv6(f) != is_ipv6(&vip)) {
                    diags.push(
                        Diagnostic::new(
                            &n.loc,
                            path,
                            format!("{vip} and {first} are of different address families: one VRRP instance carries IPv4 or IPv6 addresses, not both"),
                        )
                        .hint("list VIPs of one family; an IPv6 VIP next to an IPv4 one needs a second VRRP instance, which lbctl does not render"),
                    );
                    continue;
                }
                vips.push(vip);
            }
            vips
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_check_drops_a_host_below_every_other_and_reads_as_written() {
        // 254/244/234: a host that fails (254 - 21 = 233) is below the lowest that does not
        let check = ServersCheck::new("/run/haproxy/admin.sock", 234, 254);
        assert_eq!(check.weight, -21);
        assert_eq!(
            ServersCheck::new("/s", 1, 254).weight,
            -253,
            "keepalived's floor"
        );
        assert_eq!(ServersCheck::new("/s", 100, 101).weight, -2);
        assert_eq!(
            keepalived_text::problem(&check.script, Place::Script, Shown::Quoted),
            None
        );
        assert!(
            check
                .script
                .contains("UNIX-CONNECT:/run/haproxy/admin.sock ")
        );
    }

    /// `show stat -1 4 -1` as HAProxy writes it: a header, one row per server (backend,
    /// server, ..., status in column 18, ...), an empty line.
    fn show_stat(rows: &[(&str, &str)]) -> String {
        let mut out = String::from(
            "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck\n",
        );
        for (i, (backend, status)) in rows.iter().enumerate() {
            out += &format!("{backend},s{i},0,0,0,0,,0,0,0,,0,,0,0,0,0,{status},1,1,0\n");
        }
        out + "\n"
    }

    /// The servers check, run as keepalived runs it (its script line through the shell),
    /// against a runtime socket that answers `answer` once (None: no socket at all).
    fn servers_check_exit(answer: Option<&str>) -> i32 {
        use std::io::{BufRead, Write};
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("lbctl-chk-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("admin.sock");
        let server = answer.map(|text| {
            let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
            let text = text.to_string();
            std::thread::spawn(move || {
                let (stream, _) = listener.accept().unwrap();
                let mut line = String::new();
                std::io::BufReader::new(&stream)
                    .read_line(&mut line)
                    .unwrap();
                assert_eq!(line, "show stat -1 4 -1\n");
                (&stream).write_all(text.as_bytes()).unwrap();
            })
        });
        let check = ServersCheck::new(socket.to_str().unwrap(), 234, 254);
        let status = std::process::Command::new("sh")
            .args(["-c", &check.script])
            .status()
            .expect("sh and socat (Debian's socat package) run the check");
        if let Some(server) = server {
            server.join().unwrap();
        }
        let _ = std::fs::remove_dir_all(&dir);
        status.code().unwrap_or(-1)
    }

    #[test]
    fn the_servers_check_fails_only_for_a_backend_with_servers_and_none_up() {
        /// What the case is, HAProxy's rows (backend, status), the check's exit status.
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], i32);
        let cases: &[Case] = &[
            ("every server down", &[("db", "DOWN"), ("db", "DOWN")], 1),
            ("one up", &[("db", "UP"), ("db", "DOWN")], 0),
            (
                "going down is still up",
                &[("db", "UP 1/2"), ("db", "DOWN")],
                0,
            ),
            ("going up is still down", &[("db", "DOWN 1/2")], 1),
            (
                "maintenance",
                &[("db", "MAINT"), ("db", "MAINT (resolution)")],
                1,
            ),
            ("maintained through another", &[("db", "MAINT(via x/y)")], 1),
            (
                "no check counts as up",
                &[("db", "MAINT"), ("db", "no check")],
                0,
            ),
            (
                "drain and nolb are up",
                &[
                    ("db", "DRAIN"),
                    ("db", "DOWN"),
                    ("web", "NOLB"),
                    ("web", "MAINT"),
                ],
                0,
            ),
            (
                "one backend of two",
                &[("db", "UP"), ("web", "MAINT"), ("web", "DOWN")],
                1,
            ),
            (
                "a name inside another",
                &[("app.x", "UP"), ("app.x-1", "DOWN")],
                1,
            ),
            (
                "a name inside another, up",
                &[("app.x-1", "UP"), ("app.x", "UP")],
                0,
            ),
            ("every server up", &[("db", "UP"), ("web", "UP")], 0),
            ("no server at all", &[], 0),
        ];
        for (what, rows, expected) in cases {
            assert_eq!(
                servers_check_exit(Some(&show_stat(rows))),
                *expected,
                "{what}"
            );
        }
        assert_eq!(servers_check_exit(Some("")), 0, "HAProxy says nothing");
        assert_eq!(servers_check_exit(None), 0, "no HAProxy socket");
    }

    #[test]
    fn advert_intervals_are_read_in_centiseconds_and_written_back_as_seconds() {
        for (text, cs, back) in [
            ("1", 100, "1"),
            ("0.2", 20, "0.2"),
            (".5", 50, "0.5"),
            ("1.25", 125, "1.25"),
            ("0.20", 20, "0.2"),
            ("40.95", 4095, "40.95"),
            ("0.05", 5, "0.05"),
        ] {
            assert_eq!(centiseconds(text), Some(cs), "{text}");
            assert_eq!(seconds_text(cs), back, "{cs}");
        }
        for bad in ["", ".", "0.205", "1e3", "-1", "1,5", "abc", "1234567"] {
            assert_eq!(centiseconds(bad), None, "{bad}");
        }
    }
}
