//! The SSH layer: sessions over the system's OpenSSH, many hosts at once, master connections
//! kept between runs, and the TCP connections lbctl dials for them (`lbctl ssh-dial`).
//!
//! Takes a `Connection` and script text; returns the script's output (`RemoteOutput`) or a
//! `TransportError` naming the host. Knows nothing of HAProxy or of what the scripts do.

mod dialer;
mod error;
mod launch;
mod masters;
mod output;
mod pool;
mod running;
mod session;

pub use dialer::{Dial, DialError, Family, add_to_log, dial_for_ssh, dial_through};
pub use error::TransportError;
pub use masters::{MastersDirectoryError, check_masters_directory, default_masters_directory};
pub use output::RemoteOutput;
pub use pool::{Connected, connect_all, connect_every, run_all};
pub use running::Running;
pub use session::{ConnectOptions, Persist, Session, close_all};
