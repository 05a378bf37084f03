//! Ansible inputs: inventories (INI, YAML, directories with `group_vars/`/`host_vars/`) and
//! variable precedence up to `-e` extra vars.
//!
//! Takes paths and `-e` arguments; returns an `Inventory` and each host's merged `VarMap`.
//! Knows nothing of what the variables mean.

mod inventory;
mod vars;
// Not used by the other layers yet: public so that it builds without dead-code warnings.
pub mod vault;

pub use inventory::{Group, Host, Inventory};
pub use vars::{Sources, resolve_vars};
