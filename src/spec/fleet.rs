//! The load-balancer group as a whole: every host's spec, plus what only makes sense across
//! hosts (VRRP priorities and peers).

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::Serialize;

use crate::{
    input::{HostScope, Keyring, Templar},
    input::{Inventory, Sources},
    source::VarMap,
    source::{Diagnostic, Diagnostics},
    source::{Loc, field},
    spec::backend::ListCache,
    spec::connection::{self, Connection},
    spec::error::SpecError,
    spec::host::{self, HostSpec},
    spec::peers::{self, Peer, Peers},
};

#[derive(Debug, Clone, Serialize)]
pub struct Fleet {
    pub lb_group: String,
    pub hosts: Vec<HostSpec>,
}

/// Where the input comes from: `-i`, the project directory, `-e`, `--lb-group`, and the vault
/// passwords.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    pub inventory: &'a [PathBuf],
    pub project_dir: &'a Path,
    pub extra_vars: &'a [String],
    pub lb_group: &'a str,
    pub keyring: Arc<Keyring>,
    /// `ansible.cfg`'s connection settings, as variables of the lowest precedence.
    pub config: VarMap,
    /// `--templates`: the user's own templates, whose keys validation allows.
    pub templates: Option<&'a Path>,
}

/// The files a user may replace, in a `--templates` directory or `templates/` next to the
/// inventory.
const TEMPLATE_FILES: &[&str] = &[
    "haproxy.cfg.j2",
    "keepalived.conf.j2",
    "nginx-stream.conf.j2",
];

/// Every name the user's own templates mention (none when lbctl's built-in ones are used).
fn template_keys(flag: Option<&Path>, inventory_dir: &Path) -> BTreeSet<String> {
    let dirs: Vec<PathBuf> = flag
        .map(Path::to_path_buf)
        .into_iter()
        .chain(std::iter::once(inventory_dir.join("templates")))
        .collect();
    TEMPLATE_FILES
        .iter()
        .filter_map(|name| dirs.iter().map(|d| d.join(name)).find(|p| p.is_file()))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|text| field::template_names(&text))
        .collect()
}

impl Fleet {
    /// Loads and validates everything; on failure returns every problem, each once, with
    /// every value decrypted from a vault hidden. The templar gives the hosts' variables to
    /// templates.
    pub fn load(input: &Input) -> Result<(Arc<Templar>, Fleet), Vec<Diagnostic>> {
        // The inventory's problems and the variables' are reported together: the hosts that
        // were read are checked even when another line of the inventory is in error.
        let (inv, mut problems) = Inventory::load_partial(input.inventory);
        let sources = Sources::load(input.project_dir, input.extra_vars, input.keyring.clone())
            .map(|mut s| {
                s.config = input.config.clone();
                s
            });
        let sources = match sources {
            Ok(sources) => sources,
            Err(errors) => {
                problems.extend(errors);
                return Err(redacted(problems, &input.keyring));
            }
        };
        // A group left empty by lines in error says nothing more than those errors do.
        if !problems.is_empty() && inv.hosts_of(input.lb_group).is_empty() {
            return Err(redacted(problems, &input.keyring));
        }
        let keys = template_keys(input.templates, &inv.dir);
        let templar = Templar::new(Arc::new(inv), Arc::new(sources));
        match field::with_template_keys(keys, || Fleet::build(&templar, input.lb_group)) {
            Ok(fleet) if problems.is_empty() => Ok((templar, fleet)),
            Ok(_) => Err(redacted(problems, &input.keyring)),
            Err(errors) => {
                problems.extend(errors);
                Err(redacted(problems, &input.keyring))
            }
        }
    }

    pub fn build(templar: &Arc<Templar>, lb_group: &str) -> Result<Fleet, Vec<Diagnostic>> {
        let inv = templar.inventory();
        let names = inv.hosts_of(lb_group);
        if names.is_empty() {
            let loc = Loc::new(&Arc::from(inv.dir.display().to_string()), 0);
            let d = Diagnostic::new(
                &loc,
                lb_group,
                format!("the inventory has no hosts in group `{lb_group}`"),
            );
            let groups: Vec<&str> = inv
                .groups
                .keys()
                .map(String::as_str)
                .filter(|g| *g != "all" && *g != "ungrouped")
                .collect();
            return Err(vec![d.hint(format!(
                "add the load balancers under [{lb_group}], or pick their group with --lb-group (groups here: {})",
                groups.join(", ")
            ))]);
        }
        let mut diags = Diagnostics::default();
        let mut hosts = Vec::new();
        let mut cache = ListCache::default();
        for name in &names {
            let scope = match templar.scope(name) {
                Ok(scope) => scope,
                Err(errors) => {
                    errors.into_iter().for_each(|d| diags.push(d));
                    continue;
                }
            };
            let vars = read_vars(&scope, &mut diags);
            if let Some(mut spec) = host::parse(name, &vars, &scope, &mut cache, &mut diags) {
                spec.keyring = Arc::clone(templar.keyring());
                spec.declared = inv.hosts.get(name).and_then(|h| h.loc);
                hosts.push(spec);
            }
        }
        if diags.is_empty() {
            check_vrrp_agreement(&hosts, &mut diags);
            assign_vrrp(&mut hosts, &mut diags);
            assign_peers(&mut hosts, &mut diags);
        }
        // One error per written value: a setting in group_vars is checked once per host that
        // inherits it, and a problem with it is one problem however many hosts share it.
        let mut seen = BTreeSet::new();
        let unique: Vec<Diagnostic> = diags
            .into_vec()
            .into_iter()
            .filter(|d| {
                let place = if d.line > 0 {
                    (d.file.clone(), d.line, d.key.clone(), String::new())
                } else {
                    (d.file.clone(), 0, d.key.clone(), d.to_string())
                };
                seen.insert(place)
            })
            .collect();
        if unique.is_empty() {
            Ok(Fleet {
                lb_group: lb_group.to_string(),
                hosts,
            })
        } else {
            Err(unique)
        }
    }

    pub fn host(&self, name: &str) -> Option<&HostSpec> {
        self.hosts.iter().find(|h| h.name == name)
    }
}

/// The variables lbctl reads (its own, under `haproxy_`, `keepalived_`, `nginx_` and `lbctl_`,
/// and the connection's `ansible_*` ones), evaluated in the host's scope: templates
/// evaluated, vaults decrypted. The others are left to the templates that read them, as
/// Ansible leaves a variable nobody reads unevaluated.
fn read_vars(scope: &Arc<HostScope>, diags: &mut Diagnostics) -> VarMap {
    let mut vars = VarMap::new();
    for name in scope.vars().keys() {
        if !host::reads(name) {
            continue;
        }
        match scope.node(name) {
            Some(Ok(node)) => {
                vars.insert(name.clone(), node);
            }
            Some(Err(e)) => diags.push(e.diagnostic()),
            None => {}
        }
    }
    vars
}

/// Problems with every decrypted secret replaced, so an error never shows one.
fn redacted(diags: Vec<Diagnostic>, keyring: &Keyring) -> Vec<Diagnostic> {
    let secrets = keyring.revealed();
    if secrets.is_empty() {
        return diags;
    }
    let hide = |text: &str| {
        secrets
            .iter()
            .fold(text.to_string(), |t, s| t.replace(s.as_str(), "<redacted>"))
    };
    diags
        .into_iter()
        .map(|mut d| {
            d.message = hide(&d.message);
            d.key = hide(&d.key);
            d.hint = d.hint.as_deref().map(hide);
            d
        })
        .collect()
}

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
fn check_vrrp_agreement(hosts: &[HostSpec], diags: &mut Diagnostics) {
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

/// Every host with a stick table shares it with the whole group: one `peers` section listing
/// every load balancer at its `ansible_host` and its own `haproxy_peers_port`.
/// HAProxy does not resolve a peer's name: every member needs an IP address.
fn assign_peers(hosts: &mut [HostSpec], diags: &mut Diagnostics) {
    if let Some(sharing) = hosts.iter().find(|h| h.has_stick_tables()) {
        for h in hosts.iter() {
            if h.connection.address.parse::<std::net::IpAddr>().is_ok() {
                continue;
            }
            let Some((key, loc)) = ["ansible_host", "ansible_ssh_host"]
                .into_iter()
                .find_map(|k| h.scope.vars().get(k).map(|n| (k, n.loc)))
                .or_else(|| h.declared.map(|loc| (h.name.as_str(), loc)))
            else {
                continue;
            };
            diags.push(
                Diagnostic::new(
                    &loc,
                    key,
                    format!(
                        "host `{}` is reached by name (`{}`), but the stick tables `{}` shares go to every load balancer by IP address: HAProxy does not resolve a peer's name",
                        h.name, h.connection.address, sharing.name
                    ),
                )
                .hint(format!(
                    "give `ansible_host` as an IP address (host_vars/{}.yml or the inventory line), or drop `sticky: source` and `rate_limit`",
                    h.name
                )),
            );
        }
    }
    let members: Vec<Peer> = hosts
        .iter()
        .map(|h| Peer {
            name: h.name.clone(),
            address: h.connection.address.clone(),
            port: h.haproxy.peers_port,
        })
        .collect();
    for h in hosts.iter_mut() {
        if h.has_stick_tables() {
            h.peers = Some(Peers {
                section: peers::SECTION,
                local: h.name.clone(),
                members: members.clone(),
            });
        }
    }
}

/// Distinct priorities (explicit ones kept, the rest counted down from [`TOP_PRIORITY`]), the
/// MASTER state for the highest, and unicast peers from the other hosts' addresses.
fn assign_vrrp(hosts: &mut [HostSpec], diags: &mut Diagnostics) {
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

/// The SSH connection of an inventory host that is not a load balancer (a worker, a probe
/// host), from its own `ansible_*` variables exactly as for the load balancers.
pub fn host_connection(
    templar: &Arc<Templar>,
    name: &str,
    what: &'static str,
) -> Result<Connection, SpecError> {
    let inventory = templar.inventory();
    if !inventory.hosts.contains_key(name) {
        return Err(SpecError::UnknownHost {
            name: name.to_string(),
            what,
            known: inventory.hosts.keys().cloned().collect(),
        });
    }
    let mut diags = Diagnostics::default();
    let scope = templar.scope(name).map_err(SpecError::Invalid)?;
    let vars = read_vars(&scope, &mut diags);
    if !diags.is_empty() {
        return Err(SpecError::Invalid(diags.into_vec()));
    }
    match connection::parse(name, &vars, &mut diags) {
        Some(conn) => Ok(conn),
        None => Err(SpecError::Invalid(diags.into_vec())),
    }
}
