//! A short id for one drill run: it names what the run leaves on hosts (the worker's rules,
//! the dead man's switch, the probe's files), so that cleaning up touches nothing else.

use std::time::SystemTime;

/// What every drill leaves on a host is named `lbctl-failover-<run id>`: the dead man's switch,
/// the rules' comment, an ARP chain.
pub const TAG_PREFIX: &str = "lbctl-failover-";

/// Eight hex digits from the clock and lbctl's pid.
pub fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 40);
    format!("{:08x}", mixed & 0xffff_ffff)
}
