//! Failover drills: break a worker or a load balancer on purpose, watch the tier with a
//! client probe and every load balancer's runtime API, and put everything back, even if lbctl
//! dies (the dead man's switch).
//!
//! Takes the fleet and the drill's options; returns a measured report against budgets.

pub mod clock;
pub mod dead_mans_switch;
pub mod lb;
pub mod narrator;
pub mod observers;
pub mod probe;
pub mod run;
pub mod watch;
pub mod worker;
