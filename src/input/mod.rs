//! Ansible inputs: inventories (INI, YAML, directories with `group_vars/`/`host_vars/`) and
//! variable precedence up to `-e` extra vars.
//!
//! Takes paths and `-e` arguments; returns an `Inventory` and each host's merged `VarMap`.
//! Knows nothing of what the variables mean.

pub mod inventory;
pub mod vars;
pub mod vault;
