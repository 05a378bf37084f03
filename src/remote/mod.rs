//! What lbctl runs on a load balancer, and what it reads back.
//!
//! Plain data in, POSIX `sh` script text out; the script's stdout in, plain data out. The
//! scripts are fed to `sh -s` by the transport and do their work in one round trip each:
//! [`fetch_script`] reads what a host holds (for `plan`), [`apply_script`] changes it
//! atomically (for `apply`). Nothing here knows about templates, inventories or SSH.
//!
//! Each script sits beside the Rust that writes its header and reads its report: `fetch.sh`
//! by `fetch.rs`, `apply.sh` by `apply.rs`, `lb_state.sh` by `lb_state.rs` (which reads
//! HAProxy's `show stat` through `show_stat.rs`). `script.rs` assembles them with
//! `common.sh`; `frame.rs` reads the `@@lbctl` frames they print.

mod apply;
mod error;
mod fetch;
mod frame;
mod lb_state;
mod script;
mod show_stat;

pub use crate::spec::Service;
pub use apply::{
    APPLY_LOCK, ApplyReport, Deployment, Failure, GO, ManagedFile, READY, ServiceControl, Step,
    StepResult, Verify, apply_script, apply_script_with_lock, held_apply_script, parse_apply,
};
pub use error::ReportError;
pub use fetch::{
    FetchOptions, Fetched, FetchedDigests, LockState, MAX_FETCH_BYTES, fetch_script, parse_fetch,
    parse_fetch_digests, parse_fetch_knowing, sha256_hex,
};
pub(crate) use frame::frames;
pub use lb_state::{Daemon, LbState, Query, parse_lb_state};
pub(crate) use script::{address_of, finish_script, quote};
pub use show_stat::{RowKind, RowState, RowStatus, StatRow, Transition, parse_show_stat};
