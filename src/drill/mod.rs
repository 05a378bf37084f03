//! Failover drills: break a worker or a load balancer on purpose, watch the tier with a
//! client probe and every load balancer's runtime API, and put everything back, even if lbctl
//! dies (the dead man's switch).
//!
//! Takes the fleet and the drill's options; returns a measured report against budgets. The
//! two drills are `worker` and `lb`, each a `plan` (plain data) and a `run` (over SSH); what
//! they share is named for what it is: `probe` (the client's view), `watch` (polling every
//! load balancer), `clock` (a host's clock on ours), `dead_mans_switch`, `observers`,
//! `interrupt`, `run_id` and `split_brain` (one VIP holder before and after).

mod clock;
mod dead_mans_switch;
mod error;
mod interrupt;
pub mod lb;
mod narrator;
mod observers;
mod probe;
mod run_id;
mod split_brain;
mod timeline;
mod watch;
pub mod worker;

pub use error::DrillError;
pub use narrator::Narrator;
pub use probe::Tally;
pub use run_id::run_id;
pub use timeline::{Lane, Mark, ProbePoint, Span, SpanKind, Timeline, Window};
