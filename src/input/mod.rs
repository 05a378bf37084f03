//! Ansible inputs: `ansible.cfg`, inventories (INI, YAML, directories with `group_vars/` and
//! `host_vars/`), variable precedence up to `-e` extra vars, and Ansible Vault.
//!
//! Takes paths, `-e` arguments and vault password sources; returns an `Inventory` and each
//! host's merged `VarMap`, vaults decrypted when something reads them. Knows nothing of what
//! the variables mean.

mod ansible_cfg;
mod error;
mod expand;
mod inventory;
mod limit;
mod redaction;
pub mod template;
mod vars;
mod vault;

pub use ansible_cfg::AnsibleCfg;
pub use error::InputError;
pub use inventory::{Group, Host, Inventory, VarsFile, check_host_name};
pub use limit::{Limit, Selection};
pub use redaction::hide_secrets;
pub use template::{HostScope, Templar, TemplateError};
pub use vars::{Sources, has_vault, resolve_vars, reveal};
pub use vault::{Keyring, PasswordSource, VaultId};
