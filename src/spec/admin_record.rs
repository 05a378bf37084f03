//! Where lbctl keeps, on each load balancer, its record of the admin state it set there
//! (`drain`, `maint`, `ready`, `weight`): a file of its own, outside every daemon's
//! configuration, so no apply overwrites it.

use crate::{
    source::Diagnostics,
    source::VarMap,
    spec::managed_path::{self, Owner},
};

pub const KEYS: &[&str] = &["lbctl_admin_state_file"];

/// The record's default place.
pub const DEFAULT_PATH: &str = "/var/lib/lbctl/admin-state";

/// Reads `lbctl_admin_state_file`.
pub fn parse(vars: &VarMap, diags: &mut Diagnostics) -> Option<String> {
    managed_path::parse(
        vars,
        "lbctl_admin_state_file",
        DEFAULT_PATH,
        Owner::Lbctl,
        diags,
    )
}
