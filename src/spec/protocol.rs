//! Which of the two backend lists a service comes from: TCP (HAProxy) or UDP (the UDP
//! engine).

use serde::Serialize;

/// TCP or UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    /// As serialized (and as templates compare it).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    pub fn var_name(self) -> &'static str {
        match self {
            Protocol::Tcp => "haproxy_tcp_backends",
            Protocol::Udp => "haproxy_udp_backends",
        }
    }
}
