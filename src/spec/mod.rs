//! What lbctl will put on each load balancer, typed and validated.
//!
//! Takes each host's merged vars; returns a `Fleet` of `HostSpec`s (backends, HTTP and SNI
//! routing, HAProxy, keepalived, the UDP engine, reloads, connections) or every located
//! problem at once.

mod admin_record;
mod backend;
mod connection;
mod daemon_control;
mod error;
mod fleet;
mod haproxy;
mod health_check;
mod host;
mod http_backend;
mod http_frontend;
mod keepalived;
mod keepalived_text;
mod listeners;
pub mod managed_path;
mod peers;
mod protocol;
pub(crate) mod reload;
mod server;
mod service;
mod sni;
mod udp_engine;
pub(crate) mod udp_health;
mod udp_health_check;
mod vrrp;
mod worker;

pub use backend::{Backend, Sticky};
pub use connection::{Connection, HostKeyPolicy};
pub use daemon_control::DaemonControl;
pub use error::SpecError;
pub use fleet::{Fleet, Input, host_connection};
pub use haproxy::Haproxy;
pub use health_check::HealthCheck;
pub use host::HostSpec;
pub use http_backend::HttpBackend;
pub use http_frontend::{HttpFrontend, HttpRoute, RateLimit};
pub use keepalived::{HaproxyCheck, Keepalived};
pub use peers::{Peer, Peers};
pub use protocol::Protocol;
pub use reload::Reload;
pub use server::{SendProxy, Server};
pub use service::Service;
pub use sni::{SniFrontend, SniRoute};
pub use udp_engine::UdpEngine;
pub use udp_health::UdpHealth;
pub use udp_health_check::UdpHealthCheck;
pub use worker::{Kind, Placement, Worker};
