//! The programs whose files lbctl manages on a load balancer: the three daemons' configs, and
//! lbctl's own UDP health watcher (its script, and its systemd unit where systemd runs it).

use std::fmt;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Haproxy,
    Keepalived,
    Nginx,
    #[serde(rename = "udp-health")]
    UdpHealth,
    #[serde(rename = "udp-health-unit")]
    UdpHealthUnit,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Haproxy => "haproxy",
            Service::Keepalived => "keepalived",
            Service::Nginx => "nginx",
            Service::UdpHealth => "udp-health",
            Service::UdpHealthUnit => "udp-health-unit",
        }
    }

    /// The file's name in `render -o DIR/<host>/`; its template is this name plus `.j2`.
    pub fn file_name(self) -> &'static str {
        match self {
            Service::Haproxy => "haproxy.cfg",
            Service::Keepalived => "keepalived.conf",
            Service::Nginx => "nginx-stream.conf",
            Service::UdpHealth => "udp-health",
            Service::UdpHealthUnit => "lbctl-udp-health.service",
        }
    }

    /// The umask that creates its config file with the right mode: 0600 for keepalived's
    /// (it holds the VRRP password), 0644 for the others.
    pub fn file_umask(self) -> &'static str {
        match self {
            Service::Keepalived => "077",
            Service::Haproxy | Service::Nginx | Service::UdpHealth | Service::UdpHealthUnit => {
                "022"
            }
        }
    }

    /// The file is a program (mode 0755): the watcher script, which HAProxy also runs as an
    /// external check.
    pub fn executable(self) -> bool {
        self == Service::UdpHealth
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
