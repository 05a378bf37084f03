//! Plan and apply: survey what every host holds, diff it against the rendered files, check
//! certificates, roll the changes out host by host, and report; and the tier's status.
//!
//! Takes rendered hosts and SSH options; returns a per-host `Report` (`plan`, `apply`) or a
//! `TierStatus` (`status`). `survey.rs` fetches what hosts hold, `plan.rs` diffs it,
//! `deployment.rs` says what an apply hands a host, `rollout.rs` changes the hosts in waves,
//! `apply.rs` runs an apply's phases in order.

mod admin;
mod apply;
mod certificates;
mod declared;
mod deployment;
mod error;
mod plan;
mod report;
mod reporter;
mod rollout;
mod runtime_state;
mod saved_plan;
mod standby;
mod status;
mod survey;

pub use admin::{
    AdminError, AdminReport, Convergence, Drift, HostReport as AdminHostReport, Left, Request,
    ServerChange, Stamp, Why, change as change_admin, close as close_admin, converge_all,
    count_sessions, setting_words,
};
pub use apply::{ApplyError, apply, apply_saved};
pub use certificates::check_certificates;
pub use deployment::build as deployment;
pub use error::DeployError;
pub use plan::{Action, FilePlan, HostPlan, REDACTED, redact};
pub use report::{HostError, HostReport, Outcome, Report, Summary, Timing};
pub use reporter::Reporter;
pub use rollout::{Shell, Target, rollout, rollout_order};
pub use runtime_state::{Converged, HostDrift, RuntimeState, Standing, for_apply, from_survey};
pub use saved_plan::{Moved, PlannedFile, PlannedHost, SavedPlan, SavedPlanError};
pub use standby::{Standby, ready_to_take_the_vip};
pub use status::{
    BackendStatus, HostStatus, ServerStatus, TierStatus, gather_status, holders_by_vip,
    read_lb_state, vip_problems,
};
pub use survey::{SshOptions, Surveyed, survey};
