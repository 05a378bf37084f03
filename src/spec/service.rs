//! The programs whose config files lbctl manages on a load balancer.

use std::fmt;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Haproxy,
    Keepalived,
    Nginx,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Haproxy => "haproxy",
            Service::Keepalived => "keepalived",
            Service::Nginx => "nginx",
        }
    }

    /// The file's name in `render -o DIR/<host>/`; its template is this name plus `.j2`.
    pub fn file_name(self) -> &'static str {
        match self {
            Service::Haproxy => "haproxy.cfg",
            Service::Keepalived => "keepalived.conf",
            Service::Nginx => "nginx-stream.conf",
        }
    }

    /// keepalived.conf holds the VRRP password, so only root may read it.
    /// The umask that creates its config file with the right mode: 0600 for keepalived's
    /// (it holds the VRRP password), 0644 for the others.
    pub fn file_umask(self) -> &'static str {
        match self {
            Service::Keepalived => "077",
            Service::Haproxy | Service::Nginx => "022",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
