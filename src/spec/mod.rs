//! What lbctl will put on each load balancer, typed and validated.
//!
//! Takes each host's merged vars; returns a `Fleet` of `HostSpec`s (backends, HTTP and SNI
//! routing, HAProxy, keepalived, the UDP engine, reloads, connections) or every located
//! problem at once.

pub mod backend;
pub mod connection;
pub mod daemon_control;
pub mod fleet;
pub mod haproxy;
pub mod health_check;
pub mod host;
pub mod http_backend;
pub mod http_frontend;
pub mod keepalived;
pub mod reload;
pub mod server;
pub mod service;
pub mod sni;
pub mod udp_engine;
