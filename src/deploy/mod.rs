//! Plan and apply: survey what every host holds, diff it against the rendered files, check
//! certificates, roll the changes out host by host, and report.
//!
//! Takes rendered hosts and SSH sessions; returns a per-host report (`plan`, `apply`, `status`).

pub mod certificates;
pub mod deployment;
pub mod diff;
pub mod report;
pub mod rollout;
pub mod status;
pub mod survey;
