//! lbctl's integration tests, one binary with a module per area. Every test runs the real
//! `lbctl` through [`support::Lbctl`] or the library against real programs (sshd, HAProxy,
//! keepalived, nginx); the lab tests hold [`support::lab::Lab`], which lets one of them at a
//! time use the lab while the other tests run in parallel. Inputs are in `tests/inputs/`,
//! golden files in `tests/golden/`.
//!
//!     cargo test --test suite                      (as root: all of them)
//!     cargo test --test suite -- golden::          (one module)

mod support;

mod admin;
mod ansible;
mod apply;
mod ci_examples;
mod crash;
mod drill_report;
mod failover;
mod golden;
mod hostile;
mod l7;
mod lab;
mod layout;
mod limit;
mod manual;
mod property;
mod saved_plan;
mod status;
mod transport;
mod udp_failover;
mod udp_health;
mod validation;
mod vault;
