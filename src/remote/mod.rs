//! What lbctl runs on a load balancer, and what it reads back.
//!
//! Plain data in, POSIX `sh` script text out; the script's stdout in, plain data out. The
//! scripts are fed to `sh -s` by the transport and do their work in one round trip each
//! (two can share one shell, the first run by [`first_part`], or a fetch and the apply
//! script that follows it without waiting for lbctl, by [`fetch_then`]):
//! [`fetch_script`] reads what a host holds (for `plan`), [`apply_script`] changes it
//! atomically (for `apply`). Nothing here knows about templates, inventories or SSH.
//!
//! Each script sits beside the Rust that writes its header and reads its report: `fetch.sh`
//! by `fetch.rs`, `apply.sh` by `apply.rs`, `lb_state.sh` by `lb_state.rs` (which reads
//! HAProxy's `show stat` and `show servers state` through `show_stat.rs`), `admin.sh` (drain,
//! maint, ready, weight on one host) by `admin.rs`; the shell functions they share beside
//! theirs: `server_state.sh` (HAProxy's state saved before a reload),
//! `templates/nginx-marks.sh` (UDP servers marked `down` in nginx's stream file; the UDP health
//! watcher includes it too) and `admin_record.sh` (lbctl's record written on the host).
//! `admin_record.rs` is lbctl's record of the admin state it set on a host. `script.rs`
//! assembles them with `common.sh`; `frame.rs`
//! reads the `@@lbctl` frames they print.

mod admin;
mod admin_record;
mod apply;
mod error;
mod fetch;
mod frame;
mod lb_state;
mod nginx_marks;
mod script;
mod server_state;
mod show_stat;

pub use crate::spec::Service;
pub use admin::{
    AdminHost, AdminNginx, AdminScriptReport, Changed, Looked, NginxOutcome, ScriptOutcome,
    admin_answer, admin_script, parse_admin,
};
pub use admin_record::{
    AdminState, Attribute, Engine, Entry, MAX_WEIGHT, Record, RecordError, Setting,
};
pub use apply::{
    APPLIED, APPLY_LOCK, ApplyReport, Deployment, Failure, FirstStart, GO, Keep, ManagedFile,
    READY, ServiceControl, Step, StepResult, Verify, apply_script, apply_script_with_lock,
    held_apply_script, parse_apply, speculative_apply_script,
};
pub use error::ReportError;
pub use fetch::{
    FetchOptions, Fetched, FetchedDigests, LockState, MAX_FETCH_BYTES, fetch_script, parse_fetch,
    parse_fetch_digests, parse_fetch_knowing, sha256_hex,
};
pub(crate) use frame::frames;
pub use lb_state::{Daemon, LbState, Query, UdpLive, parse_lb_state};
pub use nginx_marks::{
    mark as mark_nginx_servers, marks_in as nginx_marks_in, marks_of as nginx_marks_of,
    strip as strip_nginx_marks,
};
pub use script::{PART_END, SPECULATION_DECLINED, SPECULATION_STAGING, fetch_then, first_part};
pub(crate) use script::{address_of, finish_script, finish_script_with, quote};
pub use show_stat::{
    ADMIN_ANY_DRAIN, ADMIN_ANY_MAINT, ADMIN_FORCED_DRAIN, ADMIN_FORCED_MAINT, OpState, RowKind,
    RowState, RowStatus, ServerState, StatRow, Transition, parse_servers_state, parse_show_stat,
};
