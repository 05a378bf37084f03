//! What a rendered configuration itself says must answer once it is live: HAProxy's `stats
//! socket` (in `global`) and every `bind` port, nginx's stream `listen` ports. Apply verifies
//! these, so a template of the user's own that binds other ports or another socket is checked
//! for what it declares, not for lbctl's defaults.

use crate::spec::Service;

/// The runtime socket and ports a host's configuration declares.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Declared {
    pub socket: Option<String>,
    pub tcp: Vec<u16>,
    pub udp: Vec<u16>,
}

/// What a host's files declare, given as (service, content): its `haproxy.cfg` and, when it
/// has one, its nginx stream file. A planned host and a saved plan's host hold their files in
/// different types; both are read here the same way.
pub fn declared_by<'a>(files: impl IntoIterator<Item = (Service, &'a str)>) -> Declared {
    let (mut haproxy, mut nginx) = (None, None);
    for (service, content) in files {
        match service {
            Service::Haproxy => haproxy = haproxy.or(Some(content)),
            Service::Nginx => nginx = nginx.or(Some(content)),
            _ => {}
        }
    }
    declared(haproxy.unwrap_or_default(), nginx)
}

/// Reads a rendered `haproxy.cfg` and, when the host has one, its nginx stream file.
pub fn declared(haproxy: &str, nginx: Option<&str>) -> Declared {
    let mut out = Declared::default();
    let mut section = "";
    for line in haproxy.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(first) = words.first() else { continue };
        if !line.starts_with([' ', '\t']) {
            section = first;
            continue;
        }
        match (section, words.as_slice()) {
            ("global", ["stats", "socket", path, ..]) if out.socket.is_none() => {
                let path = path.strip_prefix("unix@").unwrap_or(path);
                if path.starts_with('/') {
                    out.socket = Some(path.to_string());
                }
            }
            (_, ["bind", addresses, ..]) => {
                out.tcp.extend(addresses.split(',').filter_map(port_of));
            }
            _ => {}
        }
    }
    for line in nginx.unwrap_or_default().lines() {
        let words: Vec<&str> = line
            .split('#')
            .next()
            .unwrap_or_default()
            .trim()
            .trim_end_matches(';')
            .split_whitespace()
            .collect();
        if let ["listen", address, flags @ ..] = words.as_slice()
            && let Some(port) = port_of(address)
        {
            if flags.contains(&"udp") {
                out.udp.push(port);
            } else {
                out.tcp.push(port);
            }
        }
    }
    for ports in [&mut out.tcp, &mut out.udp] {
        ports.sort_unstable();
        ports.dedup();
    }
    out
}

/// The port of `*:80`, `10.0.0.1:443`, `[::]:8404`, `ipv4@:53`, or a bare `80` (nginx); none
/// for a UNIX socket or a port range.
fn port_of(address: &str) -> Option<u16> {
    if address.starts_with("unix@") || address.starts_with('/') || address.starts_with("abns@") {
        return None;
    }
    let port = address.rsplit(':').next()?;
    port.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sockets_binds_and_listens() {
        let haproxy = "global\n    stats socket /run/custom.sock mode 660 level admin\n    stats socket ipv4@127.0.0.1:9999 level admin\n\nfrontend stats\n    bind *:9000\nfrontend a # comment\n    bind 10.0.0.1:443,:::80 ssl crt /x.pem\n    bind unix@/run/x.sock\n    bind :8000-8010\nlisten b\n    bind [::1]:3306\n";
        let nginx = "stream {\n    server {\n        listen 10.0.0.1:51820 udp reuseport;\n        listen 53;\n    }\n}\n";
        assert_eq!(
            declared(haproxy, Some(nginx)),
            Declared {
                socket: Some("/run/custom.sock".into()),
                tcp: vec![53, 80, 443, 3306, 9000],
                udp: vec![51820],
            }
        );
        assert_eq!(declared("global\n    maxconn 1\n", None).socket, None);
        assert_eq!(
            declared_by([
                (
                    Service::Keepalived,
                    "global\n    stats socket /run/not-haproxy.sock\n"
                ),
                (Service::Nginx, nginx),
                (Service::Haproxy, haproxy),
            ]),
            declared(haproxy, Some(nginx))
        );
        assert_eq!(declared_by([]), declared("", None));
    }
}
