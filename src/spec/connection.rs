//! How lbctl reaches one host over SSH: plain data taken from the inventory's `ansible_*` keys.

use std::{path::PathBuf, sync::Arc};

use crate::{
    source::VarMap,
    source::field,
    source::{Diagnostic, Diagnostics, Loc, Node},
};

/// Everything the SSH layer needs to open a session to one host.
///
/// Built from `ansible_host`, `ansible_port`, `ansible_user`, `ansible_ssh_private_key_file`,
/// `ansible_become` and the `-F` / `-o UserKnownHostsFile=` / `-o StrictHostKeyChecking=` parts
/// of `ansible_ssh_common_args`, so an inventory that works with Ansible works here unchanged.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// Inventory name of the host, used in every message about it.
    pub name: String,
    /// Address or name to connect to (`ansible_host`, else the inventory name).
    pub address: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub private_key: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub ssh_config: Option<PathBuf>,
    /// Run remote commands through `sudo -n` when the SSH user is not root.
    pub become_root: bool,
    /// `false` only when the user explicitly accepted unknown host keys
    /// (`StrictHostKeyChecking=no` / `accept-new`).
    pub strict_host_keys: HostKeyPolicy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyPolicy {
    /// Unknown or changed host keys are refused (the default).
    Strict,
    /// Unknown keys are added to known_hosts; changed keys are still refused.
    AcceptNew,
}

/// The connection variables lbctl reads ([`parse`]), under every name Ansible's ssh
/// connection reads them from.
pub const KEYS: &[&str] = &[
    "ansible_host",
    "ansible_ssh_host",
    "ansible_port",
    "ansible_ssh_port",
    "ansible_user",
    "ansible_ssh_user",
    "ansible_private_key_file",
    "ansible_ssh_private_key_file",
    "ansible_become",
    "ansible_host_key_checking",
    "ansible_ssh_host_key_checking",
    "ansible_ssh_args",
    "ansible_ssh_common_args",
];

/// A host's SSH connection from its `ansible_*` variables (load balancers and the other
/// hosts `failover-test` reaches alike). `declared` is where the inventory names the host.
pub fn parse(
    name: &str,
    declared: Option<Loc>,
    vars: &VarMap,
    diags: &mut Diagnostics,
) -> Option<Connection> {
    let before = diags.len();
    // Each setting under every name Ansible's ssh connection reads it from; when several are
    // set, the last of the list wins, as in Ansible.
    let get = |keys: &[&'static str]| {
        debug_assert!(keys.iter().all(|k| KEYS.contains(k)));
        keys.iter()
            .rev()
            .find_map(|k| vars.get(*k).map(|n| (*k, n)))
    };
    let address = match get(&["ansible_host", "ansible_ssh_host"]) {
        Some((k, n)) => field::address(n, k, diags),
        None => name_as_address(name, declared, diags),
    };
    let port =
        get(&["ansible_port", "ansible_ssh_port"]).and_then(|(k, n)| field::port(n, k, diags));
    let user =
        get(&["ansible_user", "ansible_ssh_user"]).and_then(|(k, n)| field::word(n, k, diags));
    let private_key = get(&["ansible_private_key_file", "ansible_ssh_private_key_file"])
        .and_then(|(k, n)| field::string(n, k, diags))
        .map(|p| expand_home(&p));
    let become_root = get(&["ansible_become"])
        .and_then(|(k, n)| field::boolean(n, k, diags))
        .unwrap_or(false);
    let host_key_checking = get(&["ansible_host_key_checking", "ansible_ssh_host_key_checking"])
        .and_then(|(k, n)| field::boolean(n, k, diags))
        .unwrap_or(true);
    let mut conn = Connection {
        name: name.to_string(),
        address: address.unwrap_or_default(),
        port,
        user,
        private_key,
        known_hosts: None,
        ssh_config: None,
        become_root,
        strict_host_keys: if host_key_checking {
            HostKeyPolicy::Strict
        } else {
            HostKeyPolicy::AcceptNew
        },
    };
    for key in KEYS[KEYS.len() - 2..].iter().copied() {
        if let Some(n) = vars.get(key) {
            apply_common_args(n, key, &mut conn, diags);
        }
    }
    (diags.len() == before).then_some(conn)
}

/// Without `ansible_host`, ssh is given the inventory name, as Ansible gives it: a name that
/// resolvers read as an IPv4 address in the old numeric form (`010.0.0.1` is 8.0.0.1) is
/// refused, as it is in `ansible_host`.
fn name_as_address(name: &str, declared: Option<Loc>, diags: &mut Diagnostics) -> Option<String> {
    let Some(ip) = legacy_inventory_name(name) else {
        return Some(name.to_string());
    };
    let loc = declared.unwrap_or_else(|| Loc::new(&Arc::from("inventory"), 0));
    diags.push(
        field::legacy_ipv4_refused(&loc, name, name, ip).hint(format!(
            "set the host's `ansible_host` to {ip}, or name the host {ip}"
        )),
    );
    None
}

/// The address resolvers read in an inventory name that is not a plain IP address.
fn legacy_inventory_name(name: &str) -> Option<std::net::Ipv4Addr> {
    if name.parse::<std::net::IpAddr>().is_ok() {
        None
    } else {
        field::legacy_ipv4(name)
    }
}

impl Connection {
    /// What in this connection the inventory would not have let through (see [`parse`]), as
    /// read back from a file lbctl wrote: a saved plan.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = crate::input::check_host_name(&self.name) {
            problems.push(e.to_string());
        }
        // Without `ansible_host`, the address is the inventory name (which may be an alias of
        // ~/.ssh/config, `lb_1`): the host name rules are its own.
        let address_ok = self.address.parse::<std::net::IpAddr>().is_ok()
            || field::is_hostname(&self.address)
            || (self.address == self.name
                && crate::input::check_host_name(&self.name).is_ok()
                && legacy_inventory_name(&self.name).is_none());
        if !address_ok {
            problems.push(format!(
                "{}: the address {} is not an IP address or host name",
                self.name,
                field::quote(&self.address)
            ));
        }
        if let Some(user) = self.user.as_deref().filter(|u| !field::is_word(u)) {
            problems.push(format!(
                "{}: the user {} holds a character lbctl does not pass to ssh",
                self.name,
                field::quote(user)
            ));
        }
        problems
    }
}

/// Takes the parts of `ansible_ssh_args` / `ansible_ssh_common_args` that change how lbctl
/// connects. Compression and connection sharing (`-C`, `-o ControlMaster/ControlPersist/
/// ControlPath`, Ansible's default `ssh_args`) are lbctl's own business and left out.
fn apply_common_args(node: &Node, key: &str, conn: &mut Connection, diags: &mut Diagnostics) {
    let Some(text) = field::string(node, key, diags) else {
        return;
    };
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '\'' || c == '"').to_string())
        .collect();
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        if word == "-C" {
            i += 1;
            continue;
        }
        let (flag, inline) = if word.len() > 2 && (word.starts_with("-o") || word.starts_with("-F"))
        {
            (&word[..2], Some(word[2..].to_string()))
        } else {
            (word.as_str(), None)
        };
        let value = inline.or_else(|| {
            i += 1;
            words.get(i).cloned()
        });
        let Some(value) = value else {
            diags.push(Diagnostic::new(
                &node.loc,
                key,
                format!("`{flag}` needs a value"),
            ));
            return;
        };
        match flag {
            "-F" => conn.ssh_config = Some(expand_home(&value)),
            "-o" => {
                let (opt, v) = value.split_once('=').unwrap_or((&value, ""));
                match opt.to_ascii_lowercase().as_str() {
                    "userknownhostsfile" => conn.known_hosts = Some(expand_home(v)),
                    "controlmaster" | "controlpersist" | "controlpath" => {}
                    "stricthostkeychecking" => {
                        conn.strict_host_keys = match v.to_ascii_lowercase().as_str() {
                            "yes" => HostKeyPolicy::Strict,
                            _ => HostKeyPolicy::AcceptNew,
                        }
                    }
                    _ => diags.push(
                        Diagnostic::new(&node.loc, key, format!("lbctl does not pass `-o {opt}` through"))
                            .hint("put this option in ~/.ssh/config (or a file given with -F), which lbctl's OpenSSH reads"),
                    ),
                }
            }
            other => diags.push(
                Diagnostic::new(&node.loc, key, format!("lbctl does not pass `{other}` through"))
                    .hint("lbctl understands -F and -o UserKnownHostsFile=/-o StrictHostKeyChecking=; put the rest in ~/.ssh/config"),
            ),
        }
        i += 1;
    }
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}
