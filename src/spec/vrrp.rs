//! What only makes sense across the members of a VRRP instance: they agree on the version,
//! the advert interval, the password and the VIPs; each gets a distinct priority (the
//! highest is MASTER) and the others' addresses as unicast peers, of the VIPs' family; with
//! two members or more, each gets the servers check, weighted by the priorities' spread.

use crate::{
    source::{Diagnostic, Diagnostics, Loc},
    spec::host::HostSpec,
    spec::keepalived::{HaproxyCheck, ServersCheck, pid_alive_script},
};

/// The priority lbctl gives the first host; the next get 10 less each ([`PRIORITY_STEP`]).
///
/// Near 255 on purpose: when a holder's HAProxy dies it sends a priority-0 advert, and a
/// backup takes over after its skew time, (256 − priority) / 256 × advert_int: 47 ms for 244
/// with 1 s adverts, where 140 waited 453 ms. 255 is reserved for the address's owner (a host
/// whose own address is the VIP).
pub const TOP_PRIORITY: u8 = 254;
/// Backups 10 apart have skew times 39 ms apart (1 s adverts): the first to take over is heard
/// by the next before its own timer ends, even on a busy host. One apart (4 ms) was not enough
/// on the lab: two backups took the VIP at once for an advert's time.
pub const PRIORITY_STEP: u8 = 10;

/// Every member of a VRRP instance must speak the same version at the same advert interval
/// with the same password for the same VIPs: keepalived drops adverts that differ (VRRPv2
/// rejects another interval), and each side then thinks itself alone: two VIP holders.
pub(super) fn check_vrrp_agreement(hosts: &[HostSpec], diags: &mut Diagnostics) {
    let mut members = hosts
        .iter()
        .filter_map(|h| Some((h, h.keepalived.as_ref()?)));
    let Some((first, f)) = members.next() else {
        return;
    };
    for (h, k) in members {
        let mut differ = |key: &str, loc: Option<Loc>, what: String| {
            diags.push(
                Diagnostic::new(
                    &loc.unwrap_or(k.vip_loc),
                    key,
                    format!(
                        "load balancers `{}` and `{}` differ in {key} ({what}); the members of a VRRP instance must agree",
                        first.name, h.name
                    ),
                )
                .hint("set it once for the whole group (group_vars), not per host: keepalived ignores adverts that disagree, and each host would hold the VIP"),
            );
        };
        if k.vrrp_version != f.vrrp_version {
            differ(
                "keepalived_vrrp_version",
                k.locs.vrrp_version.or(f.locs.vrrp_version),
                format!("{} and {}", f.vrrp_version, k.vrrp_version),
            );
        }
        if k.advert_int_cs != f.advert_int_cs {
            differ(
                "keepalived_advert_int",
                k.locs.advert_int.or(f.locs.advert_int),
                format!("{} s and {} s", f.advert_int, k.advert_int),
            );
        }
        if k.virtual_router_id != f.virtual_router_id {
            differ(
                "keepalived_virtual_router_id",
                k.locs.virtual_router_id.or(f.locs.virtual_router_id),
                format!("{} and {}", f.virtual_router_id, k.virtual_router_id),
            );
        }
        if k.auth_pass != f.auth_pass {
            // never the passwords themselves: they are secrets
            differ(
                "keepalived_auth_pass",
                k.locs.auth_pass.or(f.locs.auth_pass),
                "the passwords differ".to_string(),
            );
        }
        if k.vips != f.vips {
            differ(
                "keepalived_vips",
                Some(k.vip_loc),
                format!("{} and {}", f.vips.join(" "), k.vips.join(" ")),
            );
        }
        if k.unicast != f.unicast {
            differ(
                "keepalived_unicast",
                None,
                format!("{} and {}", f.unicast, k.unicast),
            );
        }
    }
}

/// Distinct priorities (explicit ones kept, the rest counted down from [`TOP_PRIORITY`]), the
/// MASTER state for the highest, and unicast peers from the other hosts' addresses.
pub(super) fn assign_vrrp(hosts: &mut [HostSpec], diags: &mut Diagnostics) {
    let mut taken: Vec<(u8, String, Option<Loc>)> = Vec::new();
    for h in hosts.iter() {
        let Some(k) = &h.keepalived else { continue };
        if k.priority == 0 {
            continue;
        }
        if let Some((_, other, _)) = taken.iter().find(|(p, _, _)| *p == k.priority) {
            let loc = k.priority_loc.unwrap_or(k.vip_loc);
            diags.push(
                Diagnostic::new(
                    &loc,
                    "keepalived_priority",
                    format!(
                        "hosts `{other}` and `{}` both have keepalived_priority {}",
                        h.name, k.priority
                    ),
                )
                .hint(format!(
                    "give each load balancer its own priority, e.g. in host_vars/{}.yml",
                    h.name
                )),
            );
        }
        taken.push((k.priority, h.name.clone(), k.priority_loc));
    }
    // a large group steps closer, so that every host fits in 1..=254
    let members = hosts.iter().filter(|h| h.keepalived.is_some()).count();
    if members > MAX_VRRP_MEMBERS {
        if let Some(k) = hosts.iter().find_map(|h| h.keepalived.as_ref()) {
            diags.push(
                Diagnostic::new(
                    &k.vip_loc,
                    "keepalived_vip",
                    format!("{members} load balancers share this VIP, but VRRP priorities run from 1 to 254: each needs its own"),
                )
                .hint("give the VIP to at most 254 load balancers (set keepalived_vip on a group of them), or split the fleet into several groups with their own VIPs"),
            );
        }
        return;
    }
    let mut used = [false; 256];
    for (p, _, _) in &taken {
        used[usize::from(*p)] = true;
    }
    let step = (253 / members.saturating_sub(1).max(1)).clamp(1, usize::from(PRIORITY_STEP)) as u8;
    let mut next: u8 = TOP_PRIORITY;
    for h in hosts.iter_mut() {
        let Some(k) = &mut h.keepalived else { continue };
        if k.priority == 0 {
            // The next free priority downwards, else any free one: with at most 254 members
            // there always is one.
            let free = (1..=next)
                .rev()
                .chain((next..=254).rev())
                .find(|p| !used[usize::from(*p)])
                .unwrap_or(1);
            k.priority = free;
            used[usize::from(free)] = true;
            next = free.saturating_sub(step).max(1);
        }
    }
    let top = hosts
        .iter()
        .filter_map(|h| h.keepalived.as_ref().map(|k| k.priority))
        .max();
    let mut sources: Vec<Option<String>> = Vec::new();
    for h in hosts.iter_mut() {
        let address = h.connection.address.clone();
        let Some(k) = &mut h.keepalived else {
            sources.push(None);
            continue;
        };
        k.state = if Some(k.priority) == top {
            "MASTER"
        } else {
            "BACKUP"
        }
        .to_string();
        if !k.unicast {
            sources.push(None);
            continue;
        }
        if k.unicast_src_ip.is_none() {
            if address.parse::<std::net::IpAddr>().is_ok() {
                k.unicast_src_ip = Some(address);
            } else {
                diags.push(
                    Diagnostic::new(&k.vip_loc, "keepalived_unicast_src_ip", format!(
                        "host `{}` connects by name (`{address}`), but VRRP unicast needs its IP address", h.name
                    ))
                    .hint(format!("set keepalived_unicast_src_ip in host_vars/{}.yml, or keepalived_unicast: false for multicast", h.name)),
                );
            }
        }
        sources.push(k.unicast_src_ip.clone());
    }
    check_unicast_families(hosts, &sources, diags);
    let priorities = hosts
        .iter()
        .filter_map(|h| h.keepalived.as_ref().map(|k| k.priority));
    let (lowest, highest, members) = priorities.fold((u8::MAX, 0, 0), |(lo, hi, n), p| {
        (lo.min(p), hi.max(p), n + 1)
    });
    if members > 1 {
        for h in hosts.iter_mut() {
            let socket = h.haproxy.runtime_socket.clone();
            let nginx = h.udp_health.as_ref().map(|w| w.nginx_pid_file.clone());
            if let Some(k) = &mut h.keepalived {
                k.servers_check = Some(ServersCheck::new(&socket, lowest, highest));
                if matches!(k.haproxy_check, HaproxyCheck::Script { .. }) {
                    k.nginx_check = nginx.map(|pid_file| pid_alive_script(&pid_file));
                }
            }
        }
    }
    for (i, h) in hosts.iter_mut().enumerate() {
        if let Some(k) = &mut h.keepalived
            && k.unicast
        {
            k.unicast_peers = sources
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .filter_map(|(_, s)| s.clone())
                .collect();
        }
    }
}

/// Most hosts one VRRP instance can rank: priorities run from 1 to 254.
const MAX_VRRP_MEMBERS: usize = 254;

/// Every unicast address of a VRRP instance (each host's source, hence every peer) is of its
/// VIPs' address family: keepalived drops peers of the other family, and a source of the other
/// family makes the instance that family, dropping the VIPs.
fn check_unicast_families(hosts: &[HostSpec], sources: &[Option<String>], diags: &mut Diagnostics) {
    for (h, source) in hosts.iter().zip(sources) {
        let (Some(k), Some(source)) = (&h.keepalived, source) else {
            continue;
        };
        let Some(vip) = k.vips.first() else { continue };
        let source_v6 = source
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_ipv6());
        if source_v6 == crate::spec::keepalived::is_ipv6(vip) {
            continue;
        }
        let family = |v6: bool| if v6 { "IPv6" } else { "IPv4" };
        let (key, loc) = ["keepalived_unicast_src_ip", "ansible_host"]
            .into_iter()
            .find_map(|key| h.scope.vars().get(key).map(|n| (key, n.loc)))
            .unwrap_or(("keepalived_vip", k.vip_loc));
        diags.push(
            Diagnostic::new(
                &loc,
                key,
                format!(
                    "host `{}` sends VRRP from {source} ({}), but the VIP {vip} is {}: keepalived keeps one address family per instance",
                    h.name,
                    family(source_v6),
                    family(!source_v6)
                ),
            )
            .hint(format!(
                "set keepalived_unicast_src_ip to the host's {} address in host_vars/{}.yml, or keepalived_unicast: false",
                family(!source_v6),
                h.name
            )),
        );
    }
}
