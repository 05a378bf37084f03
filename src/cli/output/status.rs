//! `lbctl status`: a block per load balancer, then one summary line.

use std::fmt::Write as _;

use super::{json, plural};
use crate::{
    cli::ExitStatus,
    cli::commands::Global,
    deploy::{HostStatus, TierStatus},
    spec::Protocol,
};

/// Prints the tier's status; exit status 1 when a host could not be asked, when a VIP has
/// no holder or more than one (split brain), or when a daemon (HAProxy, keepalived, the UDP
/// health watcher) does not run on a host that answered.
pub fn print(global: &Global, status: &TierStatus) -> ExitStatus {
    if global.json {
        json(status);
    } else {
        out!("{}", text(status));
        for problem in &status.vip_problems {
            errln!("error: {problem}");
        }
        if !status.vip_problems.is_empty() {
            errln!(
                "  hint: the load balancers do not agree on who holds the VIP: check that they \
                 hear each other's VRRP adverts (protocol 112, unicast peers, firewalls) and that \
                 keepalived runs on each"
            );
        }
        for problem in &status.daemon_problems {
            errln!("error: {problem}");
        }
        if !status.daemon_problems.is_empty() {
            errln!("  hint: start it again on that host (e.g. `systemctl start haproxy`)");
        }
    }
    ExitStatus::failed_if(!status.healthy())
}

fn text(status: &TierStatus) -> String {
    let mut out = String::new();
    for host in &status.hosts {
        if let Some(e) = &host.error {
            let _ = writeln!(out, "{}: error: {e}\n", host.host);
            continue;
        }
        let mut facts = Vec::new();
        for (vip, held) in &host.vips {
            facts.push(if *held {
                format!("holds VIP {vip}")
            } else {
                format!("VIP {vip} not here")
            });
        }
        for (name, d) in &host.daemons {
            facts.push(match (d.running, d.pid) {
                (true, Some(pid)) => format!("{name} running (pid {pid})"),
                (true, None) => format!("{name} running"),
                (false, _) => format!("{name} NOT RUNNING"),
            });
        }
        let _ = writeln!(out, "{}: {}", host.host, facts.join(", "));
        if let Some(e) = &host.runtime_api_error {
            let _ = writeln!(out, "  runtime API: error: {e}");
        }
        if let Some(e) = &host.udp_error {
            let _ = writeln!(out, "  nginx's UDP servers: error: {e}");
        }
        let mut rows = vec![[
            "BACKEND".to_string(),
            "SERVER".to_string(),
            "STATUS".to_string(),
            "CHECK".to_string(),
            "SESSIONS".to_string(),
        ]];
        for b in &host.backends {
            for s in &b.servers {
                let mut name = s.name.clone();
                if s.backup {
                    name.push_str(" (backup)");
                }
                let mut status = s.status.clone();
                if let Some(w) = s.weight.filter(|w| *w != s.configured_weight) {
                    status.push_str(&format!(", weight {w}"));
                }
                rows.push([
                    match b.protocol {
                        Protocol::Udp => format!("{} (udp)", b.name),
                        Protocol::Tcp => b.name.clone(),
                    },
                    name,
                    match s.nginx_down {
                        // what nginx does with it, when that is not what HAProxy's word says
                        Some(true) if s.up => format!("{status}, down in nginx"),
                        Some(false) if !s.up && !s.status.starts_with("UP") => {
                            format!("{status}, still in nginx")
                        }
                        Some(true) => format!("{status}, out of nginx"),
                        _ => status,
                    },
                    match (&s.check, &s.check_desc) {
                        (Some(c), Some(d)) if !s.up && !c.ends_with("OK") => format!("{c} ({d})"),
                        (Some(c), _) => c.clone(),
                        (None, _) => "-".to_string(),
                    },
                    s.sessions.to_string(),
                ]);
            }
        }
        if rows.len() > 1 {
            table(&mut out, &rows);
        }
        if let Some(e) = &host.admin_error {
            let _ = writeln!(out, "  lbctl's record: error: {e}");
        }
        for line in super::admin::record_lines(&host.admin) {
            let _ = writeln!(out, "  {line}");
        }
        let lost = lost(host);
        if !lost.is_empty() {
            let _ = writeln!(
                out,
                "  not in force here although lbctl set it: {} (HAProxy restarted without its state, or changed by hand; apply or the next drain|maint|ready|weight puts it back)",
                lost.join("; ")
            );
        }
        for b in &host.missing_backends {
            let _ = writeln!(
                out,
                "  {b}: not in the running HAProxy (is lbctl's configuration applied?)"
            );
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{}", summary(status));
    out
}

/// What lbctl's record sets on this host that HAProxy does not show: `mysql/k8s-worker-2
/// drain`. A drained server that is DOWN shows DOWN, so a drain counts as lost only on a
/// server that is UP.
fn lost(host: &HostStatus) -> Vec<String> {
    let mut out = Vec::new();
    for b in &host.backends {
        for s in &b.servers {
            let missing: Vec<&str> = s
                .set_by_lbctl
                .iter()
                .map(String::as_str)
                .filter(|set| {
                    let weight = set
                        .strip_prefix("weight ")
                        .and_then(|w| w.parse::<u64>().ok());
                    match (b.protocol, *set, weight) {
                        // nginx has no drain: a drained, maintained or weight-0 server is
                        // down there (unknown when its file could not be read)
                        (Protocol::Udp, "drain" | "maint", _) | (Protocol::Udp, _, Some(0)) => {
                            s.nginx_down == Some(false)
                        }
                        (Protocol::Tcp, "drain", _) => s.status.starts_with("UP"),
                        (Protocol::Tcp, "maint", _) => !s.status.starts_with("MAINT"),
                        // a server down in nginx carries no weight there
                        (Protocol::Udp, _, Some(w)) => {
                            s.nginx_down == Some(false) && s.weight.is_some_and(|now| now != w)
                        }
                        (Protocol::Tcp, _, Some(w)) => s.weight != Some(w),
                        (_, _, None) => false,
                    }
                })
                .collect();
            if !missing.is_empty() {
                out.push(format!("{}/{} {}", b.name, s.name, missing.join(", ")));
            }
        }
    }
    out
}

fn table(out: &mut String, rows: &[[String; 5]]) {
    let mut widths = [0; 5];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::from(" ");
        for (w, cell) in widths.iter().zip(row) {
            let _ = write!(line, " {cell:<w$} ");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

fn summary(status: &TierStatus) -> String {
    let unreachable: Vec<&str> = status
        .hosts
        .iter()
        .filter(|h| h.error.is_some())
        .map(|h| h.host.as_str())
        .collect();
    let (mut up, mut total) = (0, 0);
    for s in status
        .hosts
        .iter()
        .flat_map(|h| &h.backends)
        .flat_map(|b| &b.servers)
    {
        total += 1;
        up += usize::from(s.up);
    }
    let any_vip = status.hosts.iter().any(|h| !h.vips.is_empty());
    let mut parts = Vec::new();
    if any_vip {
        parts.push(match status.vip_holders.as_slice() {
            [] if !status.vip_hosts_left_out.is_empty() => format!(
                "the VIP is not held here (--limit leaves out {}, not asked)",
                status.vip_hosts_left_out.join(", ")
            ),
            [] => "no load balancer holds the VIP".to_string(),
            [one] => format!("VIP held by {one}"),
            many => format!("SPLIT BRAIN: VIP held by {} at once", many.join(", ")),
        });
    }
    parts.push(format!("{up} of {total} server{} UP", plural(total)));
    if !unreachable.is_empty() {
        parts.push(format!("could not ask {}", unreachable.join(", ")));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::{BackendStatus, ServerStatus};

    fn server(name: &str, set: &str, status: &str, weight: u64, nginx_down: bool) -> ServerStatus {
        ServerStatus {
            name: name.into(),
            address: None,
            status: status.into(),
            up: status == "UP",
            check: None,
            check_desc: None,
            sessions: 0,
            backup: false,
            weight: Some(weight),
            configured_weight: 1,
            set_by_lbctl: vec![set.into()],
            nginx_down: Some(nginx_down),
        }
    }

    fn host(protocol: Protocol, servers: Vec<ServerStatus>) -> HostStatus {
        HostStatus {
            backends: vec![BackendStatus {
                name: "b".into(),
                protocol,
                status: "UP".into(),
                servers,
            }],
            ..HostStatus::new("lb1")
        }
    }

    #[test]
    fn a_udp_server_s_setting_is_in_force_when_nginx_has_it() {
        // HAProxy only checks UDP servers: a drain is nginx's `down`, a weight nginx's
        let udp = host(
            Protocol::Udp,
            vec![
                server("drained", "drain", "UP", 1, true),
                server("weighted", "weight 5", "UP", 5, false),
                server("zero", "weight 0", "UP", 1, true),
                server("lost-drain", "drain", "UP", 1, false),
                server("lost-weight", "weight 5", "UP", 1, false),
                server("drained-weighted", "weight 5", "UP", 1, true),
            ],
        );
        assert_eq!(lost(&udp), ["b/lost-drain drain", "b/lost-weight weight 5"]);
        let tcp = host(
            Protocol::Tcp,
            vec![
                server("drained", "drain", "DRAIN", 1, false),
                server("weighted", "weight 5", "UP", 5, false),
                server("lost-drain", "drain", "UP", 1, false),
            ],
        );
        assert_eq!(lost(&tcp), ["b/lost-drain drain"]);
        assert!(
            text(&TierStatus {
                hosts: vec![udp],
                vip_holders: Vec::new(),
                vips: Default::default(),
                vip_problems: Vec::new(),
                vip_hosts_left_out: Vec::new(),
                daemon_problems: Vec::new(),
            })
            .contains("UP, weight 5")
        );
    }
}
