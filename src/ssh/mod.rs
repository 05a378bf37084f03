//! The SSH layer: sessions over the system's OpenSSH, many hosts at once, and master
//! connections kept between runs.
//!
//! Takes a `Connection` and script text; returns the script's output. Knows nothing of
//! HAProxy or of what the scripts do.

pub mod masters;
pub mod pool;
pub mod session;
