//! HAProxy's `peers` section: the load balancers share their stick tables (sticky clients, rate
//! counters), so a client keeps its server and its count when the VIP moves to another host,
//! and a reload hands the tables from the old process to the new one (the local peer).

use serde::Serialize;

/// The section's name, referenced by every stick table lbctl renders.
pub const SECTION: &str = "lbctl";
/// `haproxy_peers_port` unless set.
pub const DEFAULT_PORT: u16 = 10000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Peers {
    pub section: &'static str,
    /// This host's peer name (`localpeer`): its inventory name, whatever its hostname.
    pub local: String,
    /// Every load balancer of the group, this one included, in inventory order.
    pub members: Vec<Peer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Peer {
    pub name: String,
    /// The host's `ansible_host` (or inventory name).
    pub address: String,
    pub port: u16,
}
