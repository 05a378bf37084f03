//! The load-balancer group as a whole: every host's spec, plus what only makes sense across
//! hosts: HAProxy's peers here, VRRP's priorities and unicast peers in `vrrp.rs`.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::Serialize;

use crate::{
    input::{HostScope, Keyring, Templar},
    input::{Inventory, Sources, hide_secrets},
    source::{Diagnostic, Diagnostics},
    source::{Loc, field},
    source::{Node, Value, VarMap},
    spec::backend::ListCache,
    spec::connection::{self, Connection},
    spec::error::SpecError,
    spec::host::{self, HostSpec},
    spec::peers::{self, Peer, Peers},
    spec::vrrp,
};

#[derive(Debug, Clone, Serialize)]
pub struct Fleet {
    pub lb_group: String,
    pub hosts: Vec<HostSpec>,
    /// The load balancers of the group that `--limit` left out and that have a VIP
    /// (keepalived), by name: one of them may hold it, out of sight. Empty without `--limit`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vip_hosts_left_out: Vec<String>,
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
        .filter_map(|p| crate::source::read_text(&p).ok())
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
                return Err(redacted(problems, &input.keyring, Vec::new()));
            }
        };
        // A group left empty by lines in error says nothing more than those errors do.
        if !problems.is_empty() && inv.hosts_of(input.lb_group).is_empty() {
            return Err(redacted(problems, &input.keyring, Vec::new()));
        }
        let keys = template_keys(input.templates, &inv.dir);
        let templar = Templar::new(Arc::new(inv), Arc::new(sources));
        match field::with_template_keys(keys, || Fleet::build(&templar, input.lb_group)) {
            Ok(fleet) if problems.is_empty() => Ok((templar, fleet)),
            Ok(_) => Err(redacted(
                problems,
                &input.keyring,
                written_secrets(&templar, input.lb_group),
            )),
            Err(errors) => {
                problems.extend(errors);
                Err(redacted(
                    problems,
                    &input.keyring,
                    written_secrets(&templar, input.lb_group),
                ))
            }
        }
    }

    pub fn build(templar: &Arc<Templar>, lb_group: &str) -> Result<Fleet, Vec<Diagnostic>> {
        let inv = templar.inventory();
        let names = inv.hosts_of(lb_group);
        if names.is_empty() {
            let sources: Vec<String> = inv
                .sources
                .iter()
                .map(|s| s.display().to_string())
                .collect();
            let file = match sources.join(", ") {
                none if none.is_empty() => "inventory".to_string(),
                some => some,
            };
            let loc = Loc::new(&Arc::from(file), 0);
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
            let declared = inv.hosts.get(name).and_then(|h| h.loc);
            let parsed = host::parse(name, declared, &vars, &scope, &mut cache, &mut diags);
            if let Some(mut spec) = parsed {
                spec.keyring = Arc::clone(templar.keyring());
                hosts.push(spec);
            }
        }
        if diags.is_empty() {
            vrrp::check_vrrp_agreement(&hosts, &mut diags);
            vrrp::assign_vrrp(&mut hosts, &mut diags);
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
                vip_hosts_left_out: Vec::new(),
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

/// Problems with every secret hidden, however a message printed it (as written, or quoted
/// and escaped): the values decrypted from a vault, and `written`.
fn redacted(diags: Vec<Diagnostic>, keyring: &Keyring, written: Vec<String>) -> Vec<Diagnostic> {
    let mut secrets = keyring.revealed();
    secrets.extend(written);
    if secrets.is_empty() {
        return diags;
    }
    let hide = |text: &str| hide_secrets(text, &secrets);
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

/// The secret settings ([`host::SECRET_SETTINGS`]) of the group's hosts that are written in
/// the clear: as written (a template that makes one is hidden too) and as evaluated. Their own
/// errors never show them; these hide them in any other. As with vault values, only those of
/// at least 4 characters: shorter ones would hide ordinary words of the messages.
fn written_secrets(templar: &Arc<Templar>, lb_group: &str) -> Vec<String> {
    let mut out = Vec::new();
    for name in templar.inventory().hosts_of(lb_group) {
        let Ok(scope) = templar.scope(&name) else {
            continue;
        };
        for key in host::SECRET_SETTINGS {
            out.extend(scope.vars().get(*key).and_then(|n| secret_text(n)));
            if let Some(Ok(node)) = scope.node(key) {
                out.extend(secret_text(&node));
            }
        }
    }
    out.retain(|s| s.chars().count() >= 4);
    out.sort();
    out.dedup();
    out
}

/// A setting's text, when it can be a password (not `true` or `false`).
fn secret_text(node: &Node) -> Option<String> {
    node.as_text()
        .filter(|_| !matches!(node.value, Value::Bool(_)))
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
    let declared = inventory.hosts[name].loc;
    match connection::parse(name, declared, &vars, &mut diags) {
        Some(conn) => Ok(conn),
        None => Err(SpecError::Invalid(diags.into_vec())),
    }
}
