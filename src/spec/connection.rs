//! How lbctl reaches one host over SSH: plain data taken from the inventory's `ansible_*` keys.

use std::path::PathBuf;

/// Everything the SSH layer needs to open a session to one host.
///
/// Built from `ansible_host`, `ansible_port`, `ansible_user`, `ansible_ssh_private_key_file`,
/// `ansible_become` and the `-F` / `-o UserKnownHostsFile=` / `-o StrictHostKeyChecking=` parts
/// of `ansible_ssh_common_args`, so an inventory that works with Ansible works here unchanged.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
