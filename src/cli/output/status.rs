//! `lbctl status`: a block per load balancer, then one summary line.

use std::fmt::Write as _;

use super::{json, plural};
use crate::{
    cli::ExitStatus,
    cli::commands::Global,
    deploy::{HostStatus, TierStatus},
    spec::Protocol,
};

/// Prints the tier's status; exit status 1 when a host could not be asked, or when a VIP has
/// no holder or more than one (split brain).
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
                .filter(|set| match *set {
                    "drain" => s.status.starts_with("UP"),
                    "maint" => !s.status.starts_with("MAINT"),
                    set => set
                        .strip_prefix("weight ")
                        .and_then(|w| w.parse::<u64>().ok())
                        .is_some_and(|w| s.weight != Some(w)),
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
