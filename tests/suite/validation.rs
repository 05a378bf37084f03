//! Table-driven validation: every broken input gets an error naming its file, line and key.

use crate::support::{Lbctl, scratch, write};

/// A valid vars file; cases break one line of it (line numbers below are 1-based).
const BASE: &str = "\
haproxy_tcp_backends:
  - name: mysql
    port: 3306
    balance: roundrobin
    servers:
      - name: w1
        address: 10.0.1.1
        port: 30306
        check: true
        check_interval: 2s
        rise: 2
        fall: 3
haproxy_udp_backends:
  - name: wireguard
    port: 51820
    mode: udp
    servers:
      - name: w1
        address: 10.0.1.1
        port: 31820
";

/// An HTTP frontend and backend, appended to BASE by `Edit::Http` (lines 21-30).
const HTTP: &str = "\
haproxy_http_frontends:
  - name: web
    port: 80
haproxy_http_backends:
  - name: shop
    hosts: shop.example.com
    servers:
      - name: w1
        address: 10.0.1.1
        port: 30080
";

const HOSTS: &str = "[haproxy_servers]\nlb1 ansible_host=10.0.0.1\nlb2 ansible_host=10.0.0.2\n";
const LB_VARS: &str = "keepalived_vip: 10.0.0.100/24\nkeepalived_interface: eth0\n";

enum Edit {
    /// Replace line N of BASE.
    Line(usize, &'static str),
    /// Add lines at the end of BASE.
    Append(&'static str),
    /// Replace BASE whole.
    Text(&'static str),
    /// Leave BASE alone; the case's extra files break something.
    None,
    /// Append HTTP to BASE, then replace line N of the whole.
    Http(usize, &'static str),
}

struct Case {
    name: &'static str,
    edit: Edit,
    extra: &'static [(&'static str, &'static str)],
    file: &'static str,
    line: usize,
    key: &'static str,
    message: &'static str,
}

const fn case(
    name: &'static str,
    edit: Edit,
    file: &'static str,
    line: usize,
    key: &'static str,
    message: &'static str,
) -> Case {
    Case {
        name,
        edit,
        extra: &[],
        file,
        line,
        key,
        message,
    }
}

const ALL: &str = "group_vars/all.yml";
const LBV: &str = "group_vars/haproxy_servers.yml";

fn cases() -> Vec<Case> {
    use Edit::*;
    vec![
        case(
            "unknown server key",
            Line(9, "        chek: true"),
            ALL,
            9,
            "haproxy_tcp_backends[0].servers[0].chek",
            "unknown key `chek`",
        ),
        case(
            "a number with a fraction where a whole one goes",
            Append("haproxy_maxconn: 4096.5"),
            ALL,
            21,
            "haproxy_maxconn",
            "expected a whole number, found the number 4096.5",
        ),
        case(
            "nginx pid file that could carry a command",
            Append("nginx_pid_file: /run/nginx.pid; reboot"),
            ALL,
            21,
            "nginx_pid_file",
            "is not a plain absolute path",
        ),
        case(
            "unknown backend key",
            Line(4, "    balanse: roundrobin"),
            ALL,
            4,
            "haproxy_tcp_backends[0].balanse",
            "unknown key `balanse`",
        ),
        case(
            "name with a space",
            Line(2, "  - name: my sql"),
            ALL,
            2,
            "haproxy_tcp_backends[0].name",
            "is not a safe name",
        ),
        case(
            "name injecting a directive",
            Line(2, "  - name: \"mysql\\n    server evil 6.6.6.6:1\""),
            ALL,
            2,
            "haproxy_tcp_backends[0].name",
            "is not a safe name",
        ),
        case(
            "name with a hash",
            Line(6, "      - name: \"w1#x\""),
            ALL,
            6,
            "haproxy_tcp_backends[0].servers[0].name",
            "is not a safe name",
        ),
        case(
            "server name with a quote",
            Line(6, "      - name: w'1"),
            ALL,
            6,
            "haproxy_tcp_backends[0].servers[0].name",
            "is not a safe name",
        ),
        case(
            "port too large",
            Line(3, "    port: 70000"),
            ALL,
            3,
            "haproxy_tcp_backends[0].port",
            "70000 is out of range",
        ),
        case(
            "port past any 64-bit number",
            Line(3, "    port: 99999999999999999999999"),
            ALL,
            3,
            "haproxy_tcp_backends[0].port",
            "99999999999999999999999 is out of range",
        ),
        case(
            "port past any 64-bit number, from a template's int filter",
            Line(3, "    port: \"{{ '99999999999999999999' | int }}\""),
            ALL,
            3,
            "haproxy_tcp_backends[0].port",
            "99999999999999999999 is out of range",
        ),
        case(
            "port zero",
            Line(8, "        port: 0"),
            ALL,
            8,
            "haproxy_tcp_backends[0].servers[0].port",
            "0 is out of range",
        ),
        case(
            "port not a number",
            Line(8, "        port: mysql"),
            ALL,
            8,
            "haproxy_tcp_backends[0].servers[0].port",
            "expected a whole number",
        ),
        case(
            "two frontends on one port",
            Append(
                "  - name: openvpn\n    port: 51820\n    servers:\n      - name: w1\n        address: 10.0.1.1\n        port: 31194\n",
            ),
            ALL,
            22,
            "haproxy_udp_backends[1].port",
            "already taken by backend `wireguard`",
        ),
        case(
            "frontend on the stats port",
            Line(3, "    port: 8404"),
            ALL,
            3,
            "haproxy_tcp_backends[0].port",
            "already taken by the stats page",
        ),
        case(
            "duplicate backend names",
            Append(
                "  - name: wireguard\n    port: 51821\n    servers:\n      - name: w1\n        address: 10.0.1.1\n        port: 31821\n",
            ),
            ALL,
            21,
            "haproxy_udp_backends[1].name",
            "duplicate backend name `wireguard`",
        ),
        case(
            "duplicate server names",
            Append("      - name: w1\n        address: 10.0.1.2\n        port: 31820\n"),
            ALL,
            21,
            "haproxy_udp_backends[0].servers[1].name",
            "duplicate server name `w1`",
        ),
        case(
            "misspelt balance",
            Line(4, "    balance: roundrobbin"),
            ALL,
            4,
            "haproxy_tcp_backends[0].balance",
            "unknown balance algorithm \"roundrobbin\"",
        ),
        case(
            "HTTP-only balance on TCP",
            Line(4, "    balance: uri"),
            ALL,
            4,
            "haproxy_tcp_backends[0].balance",
            "unknown balance algorithm \"uri\"",
        ),
        case(
            "duration with a space",
            Line(10, "        check_interval: 2 seconds"),
            ALL,
            10,
            "haproxy_tcp_backends[0].servers[0].check_interval",
            "is not an HAProxy time value",
        ),
        case(
            "duration with a bad unit",
            Line(10, "        check_interval: 2sec"),
            ALL,
            10,
            "haproxy_tcp_backends[0].servers[0].check_interval",
            "is not an HAProxy time value",
        ),
        case(
            "rise zero",
            Line(11, "        rise: 0"),
            ALL,
            11,
            "haproxy_tcp_backends[0].servers[0].rise",
            "0 is out of range",
        ),
        case(
            "fall negative",
            Line(12, "        fall: -1"),
            ALL,
            12,
            "haproxy_tcp_backends[0].servers[0].fall",
            "-1 is out of range",
        ),
        case(
            "check on UDP without a health check",
            Append("        check: true\n"),
            ALL,
            21,
            "haproxy_udp_backends[0].servers[0].check",
            "needs a `health_check` on the UDP backend",
        ),
        case(
            "check_interval on UDP without a health check",
            Append("        check_interval: 2s\n"),
            ALL,
            21,
            "haproxy_udp_backends[0].servers[0].check_interval",
            "needs a `health_check` on the UDP backend",
        ),
        case(
            "backup on UDP",
            Append("        backup: true\n"),
            ALL,
            21,
            "haproxy_udp_backends[0].servers[0].backup",
            "does not apply to UDP servers",
        ),
        case(
            "UDP health check with neither port nor udp",
            Line(16, "    health_check: {path: /healthz}"),
            ALL,
            16,
            "haproxy_udp_backends[0].health_check",
            "needs `port` or `udp`",
        ),
        case(
            "UDP health check misspelt key",
            Line(16, "    health_check: {prot: 10256}"),
            ALL,
            16,
            "haproxy_udp_backends[0].health_check.prot",
            "unknown key `prot`",
        ),
        case(
            "UDP health check port out of range",
            Line(16, "    health_check: {port: 70000}"),
            ALL,
            16,
            "haproxy_udp_backends[0].health_check.port",
            "70000 is out of range",
        ),
        case(
            "UDP health check status without a path",
            Line(16, "    health_check: {port: 10256, expect_status: 204}"),
            ALL,
            16,
            "haproxy_udp_backends[0].health_check.expect_status",
            "`expect_status` needs `path`",
        ),
        case(
            "UDP health check both HTTP and datagram",
            Line(16, "    health_check: {path: /healthz, udp: {send: ping}}"),
            ALL,
            16,
            "haproxy_udp_backends[0].health_check.path",
            "`path` does not go with `udp`",
        ),
        case(
            "UDP datagram check without send",
            Line(16, "    health_check: {udp: {expect: pong}}"),
            ALL,
            16,
            "haproxy_udp_backends[0].health_check.udp.send",
            "missing required key `send`",
        ),
        case(
            "UDP datagram check with an empty datagram",
            Line(16, "    health_check: {udp: {send: ''}}"),
            ALL,
            16,
            "haproxy_udp_backends[0].health_check.udp.send",
            "expected 1 to 512 bytes, found 0",
        ),
        case(
            "UDP datagram check expecting a NUL byte",
            Line(
                16,
                "    health_check: {udp: {send: ping, expect: \"a\\0b\"}}",
            ),
            ALL,
            16,
            "haproxy_udp_backends[0].health_check.udp.expect",
            "cannot hold a NUL byte",
        ),
        case(
            "UDP health check on a TCP-only path",
            Line(16, "    health_check: {port: 10256, path: 'not a path'}"),
            ALL,
            16,
            "haproxy_udp_backends[0].health_check.path",
            "is not a URL path",
        ),
        case(
            "invalid IPv4 address",
            Line(7, "        address: 10.0.1.300"),
            ALL,
            7,
            "haproxy_tcp_backends[0].servers[0].address",
            "is not an IP address or host name",
        ),
        case(
            "IPv4 address in hexadecimal, which resolvers read as 127.0.0.1",
            Line(7, "        address: 0x7f.1"),
            ALL,
            7,
            "haproxy_tcp_backends[0].servers[0].address",
            "\"0x7f.1\" is an IPv4 address in the old numeric form that resolvers read as 127.0.0.1",
        ),
        case(
            "invalid host name",
            Line(7, "        address: bad_host!"),
            ALL,
            7,
            "haproxy_tcp_backends[0].servers[0].address",
            "is not an IP address or host name",
        ),
        case(
            "mode udp among TCP backends",
            Line(4, "    mode: udp"),
            ALL,
            4,
            "haproxy_tcp_backends[0].mode",
            "move this backend to haproxy_udp_backends",
        ),
        case(
            "mode tcp among UDP backends",
            Line(16, "    mode: tcp"),
            ALL,
            16,
            "haproxy_udp_backends[0].mode",
            "`mode: tcp` in haproxy_udp_backends",
        ),
        case(
            "no servers",
            Text("haproxy_tcp_backends:\n  - name: mysql\n    port: 3306\n    servers: []\n"),
            ALL,
            4,
            "haproxy_tcp_backends[0].servers",
            "at least one server",
        ),
        case(
            "missing port",
            Line(3, "    mode: tcp"),
            ALL,
            2,
            "haproxy_tcp_backends[0].port",
            "missing required key `port`",
        ),
        case(
            "misspelt top-level variable",
            Append("haproxy_tcp_backend: []\n"),
            ALL,
            21,
            "haproxy_tcp_backend",
            "did you mean `haproxy_tcp_backends`",
        ),
        case(
            "invalid YAML",
            Line(4, "    balance: [roundrobin"),
            ALL,
            5,
            "",
            "invalid YAML",
        ),
        case(
            "weight out of range",
            Append("        weight: 300\n"),
            ALL,
            21,
            "haproxy_udp_backends[0].servers[0].weight",
            "300 is out of range",
        ),
        Case {
            extra: &[(LBV, "lbctl_udp_health_dir: /etc/lbctl/../../tmp\n")],
            ..case(
                "UDP health watcher directory escaping /etc",
                Edit::None,
                LBV,
                1,
                "lbctl_udp_health_dir",
                "`.` and `..` could lead anywhere on the host",
            )
        },
        Case {
            extra: &[(LBV, "lbctl_udp_health_dir: /opt/lbctl\n")],
            ..case(
                "UDP health watcher directory outside /etc/lbctl",
                Edit::None,
                LBV,
                1,
                "lbctl_udp_health_dir",
                "is outside udp-health's usual directories (/etc/lbctl/)",
            )
        },
        Case {
            extra: &[(LBV, "lbctl_udp_health_reload_method: supervisord\n")],
            ..case(
                "UDP health watcher reload method unknown",
                Edit::None,
                LBV,
                1,
                "lbctl_udp_health_reload_method",
                "unknown reload method",
            )
        },
        Case {
            extra: &[(
                "loops.ini",
                "[k8s:children]\nworkers\n\n[workers:children]\nk8s\n",
            )],
            ..case(
                "INI group that is its own child",
                Edit::None,
                "loops.ini",
                5,
                "workers.children",
                "makes a loop of children: k8s → workers → k8s",
            )
        },
        Case {
            extra: &[(
                "loops.yml",
                "all:\n  children:\n    edge:\n      children:\n        dmz:\n          children:\n            edge:\n",
            )],
            ..case(
                "YAML group that is its own grandchild",
                Edit::None,
                "loops.yml",
                7,
                "dmz.children",
                "makes a loop of children: dmz → edge → dmz",
            )
        },
        Case {
            extra: &[(
                LBV,
                "keepalived_vip: 10.0.0.100/24\nkeepalived_interface: eth0\nkeepalived_virtual_router_id: 300\n",
            )],
            ..case(
                "VRRP router id too large",
                Edit::None,
                LBV,
                3,
                "keepalived_virtual_router_id",
                "300 is out of range",
            )
        },
        Case {
            extra: &[(
                LBV,
                "keepalived_vip: 10.0.0.100/24\nkeepalived_interface: eth0\nkeepalived_auth_pass: much-too-long\n",
            )],
            ..case(
                "VRRP password too long",
                Edit::None,
                LBV,
                3,
                "keepalived_auth_pass",
                "keepalived uses at most 8",
            )
        },
        Case {
            extra: &[(
                LBV,
                "keepalived_vip: 10.0.0.300/24\nkeepalived_interface: eth0\n",
            )],
            ..case(
                "invalid VIP",
                Edit::None,
                LBV,
                1,
                "keepalived_vip",
                "is not an IP address",
            )
        },
        Case {
            extra: &[(
                LBV,
                "keepalived_vip: 10.0.0.100/24\nkeepalived_interface: eth0\nkeepalived_priority: 100\n",
            )],
            ..case(
                "duplicate priorities",
                Edit::None,
                LBV,
                3,
                "keepalived_priority",
                "both have keepalived_priority 100",
            )
        },
        Case {
            extra: &[(
                LBV,
                "keepalived_vip: 10.0.0.100/24\nkeepalived_interface: eth0\nhaproxy_stats_user: admin\nhaproxy_stats_password: two words\n",
            )],
            ..case(
                "stats password with a space",
                Edit::None,
                LBV,
                4,
                "haproxy_stats_password",
                "cannot be written safely",
            )
        },
        Case {
            extra: &[(
                LBV,
                "keepalived_vip: 10.0.0.100/24\nkeepalived_interface: eth0\nhaproxy_reload_method: command\n",
            )],
            ..case(
                "reload command missing",
                Edit::None,
                LBV,
                3,
                "haproxy_reload_command",
                "needs `haproxy_reload_command`",
            )
        },
        Case {
            extra: &[(
                "hosts",
                "[haproxy_servers]\nlb1 ansible_host=10.0.0.1\nlb2 ansible_host=10.0.0.2 ansible_port=99999\n",
            )],
            ..case(
                "SSH port out of range",
                Edit::None,
                "hosts",
                3,
                "ansible_port",
                "99999 is out of range",
            )
        },
        case(
            "rate limit that is not N/period",
            Http(23, "    port: 80\n    rate_limit: 100 per 10s"),
            ALL,
            24,
            "haproxy_http_frontends[0].rate_limit",
            "\"100 per 10s\" is not a rate limit",
        ),
        case(
            "rate limit period below a second",
            Http(23, "    port: 80\n    rate_limit: 100/10"),
            ALL,
            24,
            "haproxy_http_frontends[0].rate_limit",
            "a period from 1s to 1d",
        ),
        case(
            "certificate path that is not absolute",
            Http(23, "    tls_port: 443\n    tls_cert: certs/site.pem"),
            ALL,
            24,
            "haproxy_http_frontends[0].tls_cert",
            "is not a plain absolute path",
        ),
        case(
            "HTTPS port without a certificate",
            Http(23, "    tls_port: 443"),
            ALL,
            23,
            "haproxy_http_frontends[0].tls_port",
            "`tls_port` without `tls_cert`",
        ),
        case(
            "redirect to HTTPS without an HTTPS port",
            Http(23, "    port: 80\n    redirect_https: true"),
            ALL,
            24,
            "haproxy_http_frontends[0].redirect_https",
            "needs both `port` and `tls_port`",
        ),
        case(
            "HTTP frontend on a TCP backend's port",
            Http(23, "    port: 3306"),
            ALL,
            23,
            "haproxy_http_frontends[0].port",
            "already taken by backend `mysql`",
        ),
        case(
            "frontend with no backends",
            Http(23, "    port: 80\n  - name: admin\n    port: 8080"),
            ALL,
            24,
            "haproxy_http_frontends[1]",
            "frontend `admin` has no backends",
        ),
        case(
            "HTTP backends without a frontend",
            Append(
                "haproxy_http_backends:\n  - name: shop\n    hosts: shop.example.com\n    servers:\n      - name: w1\n        address: 10.0.1.1\n        port: 30080\n",
            ),
            ALL,
            22,
            "haproxy_http_backends",
            "need a frontend",
        ),
        case(
            "path prefix without a leading slash",
            Http(26, "    path_prefix: api"),
            ALL,
            26,
            "haproxy_http_backends[0].path_prefix",
            "\"api\" is not a URL path",
        ),
        case(
            "host name with a space",
            Http(26, "    hosts: [shop example.com]"),
            ALL,
            26,
            "haproxy_http_backends[0].hosts[0]",
            "is not a host name",
        ),
        case(
            "host routed to two services",
            Http(
                30,
                "        port: 30080\n  - name: shop2\n    hosts: [www.example.com, shop.example.com]\n    servers:\n      - name: w1\n        address: 10.0.1.2\n        port: 30080",
            ),
            ALL,
            32,
            "haproxy_http_backends[1].hosts[1]",
            "host `shop.example.com` on frontend `web` is routed to both `shop`",
        ),
        case(
            "misspelt frontend",
            Http(26, "    frontend: wbe\n    hosts: shop.example.com"),
            ALL,
            26,
            "haproxy_http_backends[0].frontend",
            "did you mean `web`?",
        ),
        case(
            "HTTP backend no request can reach",
            Http(26, "    balance: roundrobin"),
            ALL,
            25,
            "haproxy_http_backends[0]",
            "no request can reach backend `shop`",
        ),
        case(
            "HTTP backend named like a TCP backend",
            Http(25, "  - name: mysql"),
            ALL,
            25,
            "haproxy_http_backends[0].name",
            "already used by a TCP backend",
        ),
        case(
            "HTTP health check status out of range",
            Http(
                26,
                "    hosts: shop.example.com\n    health_check: {path: /healthz, expect_status: 999}",
            ),
            ALL,
            27,
            "haproxy_http_backends[0].health_check.expect_status",
            "999 is out of range",
        ),
        case(
            "HTTP health check path that is not a path",
            Http(
                26,
                "    hosts: shop.example.com\n    health_check:\n      path: healthz",
            ),
            ALL,
            28,
            "haproxy_http_backends[0].health_check.path",
            "is not a URL path",
        ),
        case(
            "sticky cookie on a TCP backend",
            Line(4, "    sticky: cookie"),
            ALL,
            4,
            "haproxy_tcp_backends[0].sticky",
            "`sticky: cookie` needs an HTTP backend",
        ),
        case(
            "unknown PROXY protocol version",
            Line(4, "    send_proxy: v3"),
            ALL,
            4,
            "haproxy_tcp_backends[0].send_proxy",
            "is not a PROXY protocol version",
        ),
        case(
            "PROXY protocol on a UDP backend",
            Line(16, "    send_proxy: v2"),
            ALL,
            16,
            "haproxy_udp_backends[0].send_proxy",
            "does not apply to UDP backends",
        ),
        case(
            "HTTP mode in the TCP list",
            Line(4, "    mode: http"),
            ALL,
            4,
            "haproxy_tcp_backends[0].mode",
            "move this backend to haproxy_http_backends",
        ),
        Case {
            extra: &[(
                LBV,
                "keepalived_vip: 10.0.0.100/24\nkeepalived_interface: eth0\nhaproxy_tcp_backends:\n  - name: vault\n    port: 443\n    sni: vault_example.com\n    sni_default: true\n    servers:\n      - {name: v1, address: 10.0.2.1, port: 8200}\n",
            )],
            ..case(
                "SNI name with an underscore",
                Edit::None,
                LBV,
                6,
                "haproxy_tcp_backends[0].sni",
                "\"vault_example.com\" is not a host name",
            )
        },
        Case {
            extra: &[(
                LBV,
                "keepalived_vip: 10.0.0.100/24\nkeepalived_interface: eth0\nhaproxy_tcp_backends:\n  - name: vault\n    port: 443\n    sni: vault.example.com\n    sni_default: true\n    servers:\n      - {name: v1, address: 10.0.2.1, port: 8200}\n  - name: consul\n    port: 443\n    sni: [consul.example.com, vault.example.com]\n    servers:\n      - {name: c1, address: 10.0.2.2, port: 8501}\n",
            )],
            ..case(
                "SNI name claimed by two backends",
                Edit::None,
                LBV,
                12,
                "haproxy_tcp_backends[1].sni[1]",
                "server name `vault.example.com` on port 443 is claimed by backends `vault`",
            )
        },
        Case {
            extra: &[(
                LBV,
                "keepalived_vip: 10.0.0.100/24\nkeepalived_interface: eth0\nhaproxy_tcp_backends:\n  - name: vault\n    port: 443\n    sni: vault.example.com\n    servers:\n      - {name: v1, address: 10.0.2.1, port: 8200}\n  - name: consul\n    port: 443\n    sni: consul.example.com\n    servers:\n      - {name: c1, address: 10.0.2.2, port: 8501}\n",
            )],
            ..case(
                "SNI-routed port without a default",
                Edit::None,
                LBV,
                6,
                "haproxy_tcp_backends[0].sni",
                "add `sni_default: true` to the backend that should take them",
            )
        },
        Case {
            extra: &[(
                LBV,
                "keepalived_vip: 10.0.0.100/24\nkeepalived_interface: eth0\nhaproxy_tcp_backends:\n  - name: vault\n    port: 443\n    sni: vault.example.com\n    sni_default: true\n    servers:\n      - {name: v1, address: 10.0.2.1, port: 8200}\n  - name: consul\n    port: 443\n    sni: consul.example.com\n    sni_default: yes\n    servers:\n      - {name: c1, address: 10.0.2.2, port: 8501}\n",
            )],
            ..case(
                "two SNI defaults on one port",
                Edit::None,
                LBV,
                13,
                "haproxy_tcp_backends[1].sni_default",
                "are both the default on port 443",
            )
        },
        Case {
            extra: &[(
                LBV,
                "keepalived_vip: 10.0.0.100/24\nkeepalived_interface: eth0\nhaproxy_tcp_backends:\n  - name: vault\n    port: 443\n    sni: vault.example.com\n    sni_default: true\n    servers:\n      - {name: v1, address: 10.0.2.1, port: 8200}\n  - name: consul\n    port: 443\n    servers:\n      - {name: c1, address: 10.0.2.2, port: 8501}\n",
            )],
            ..case(
                "plain backend on an SNI-routed port",
                Edit::None,
                LBV,
                11,
                "port",
                "backends share a port only when all of them are routed by TLS server name",
            )
        },
        Case {
            extra: &[(
                LBV,
                "keepalived_vip: 10.0.0.100/24\nkeepalived_interface: eth0\nkeepalived_advert_int: 0.2\n",
            )],
            ..case(
                "sub-second adverts with VRRPv2",
                Edit::None,
                LBV,
                3,
                "keepalived_advert_int",
                "set keepalived_vrrp_version: 3 for sub-second adverts",
            )
        },
        Case {
            extra: &[(
                LBV,
                "keepalived_vip: 10.0.0.100/24\nkeepalived_interface: eth0\nkeepalived_vrrp_version: 3\nkeepalived_advert_int: 0.205\n",
            )],
            ..case(
                "VRRPv3 advert finer than a centisecond",
                Edit::None,
                LBV,
                4,
                "keepalived_advert_int",
                "0.205 s is finer than keepalived's resolution of 0.01 s",
            )
        },
        Case {
            extra: &[(
                LBV,
                "keepalived_vip: 10.0.0.100/24\nkeepalived_interface: eth0\nkeepalived_vrrp_version: 3\nkeepalived_auth_pass: secret\n",
            )],
            ..case(
                "PASS authentication with VRRPv3",
                Edit::None,
                LBV,
                4,
                "keepalived_auth_pass",
                "exists in VRRPv2 only",
            )
        },
        Case {
            extra: &[("host_vars/lb2.yml", "keepalived_advert_int: 2\n")],
            ..case(
                "load balancers disagree on the advert interval",
                Edit::None,
                "host_vars/lb2.yml",
                1,
                "keepalived_advert_int",
                "`lb1` and `lb2` differ in keepalived_advert_int (1 s and 2 s)",
            )
        },
        Case {
            extra: &[(
                LBV,
                "keepalived_vip: 10.0.0.100/24\nkeepalived_interface: eth0\nkeepalived_check_script: /usr/bin/pgrep -x haproxy\nkeepalived_haproxy_check: process\n",
            )],
            ..case(
                "check script with the process check",
                Edit::None,
                LBV,
                3,
                "keepalived_check_script",
                "set keepalived_haproxy_check: script to run it",
            )
        },
        Case {
            extra: &[(
                LBV,
                "keepalived_vip: 10.0.0.100/24\nkeepalived_interface: eth0\nkeepalived_haproxy_process: haproxy-enterprise\n",
            )],
            ..case(
                "tracked process name longer than the kernel keeps",
                Edit::None,
                LBV,
                3,
                "keepalived_haproxy_process",
                "longer than the 15 characters",
            )
        },
        Case {
            extra: &[(
                LBV,
                "keepalived_vip: 10.0.0.100/24\nkeepalived_interface: eth0\nhaproxy_tcp_backends:\n  - name: rdp\n    port: 10000\n    sticky: source\n    servers:\n      - {name: w1, address: 10.0.1.1, port: 33389}\n",
            )],
            ..case(
                "frontend on the stick tables' peers port",
                Edit::None,
                LBV,
                5,
                "haproxy_tcp_backends[0].port",
                "already taken by the default peers port (haproxy_peers_port)",
            )
        },
        Case {
            extra: &[(
                LBV,
                "keepalived_vip: 10.0.0.100/24\nkeepalived_interface: eth0\nhaproxy_stats_port: 10000\n",
            )],
            ..case(
                "stats page on the default peers port",
                Line(4, "    sticky: source"),
                LBV,
                3,
                "haproxy_stats_port",
                "already taken by the default peers port (haproxy_peers_port)",
            )
        },
        Case {
            extra: &[(
                LBV,
                "keepalived_vip: 10.0.0.100/24\nkeepalived_interface: eth0\nlbctl_udp_engine: lvs\n",
            )],
            ..case(
                "LVS health check path keepalived would cut and expand",
                Line(
                    16,
                    "    health_check: {port: 10256, path: \"/healthz!x$_PWD\"}",
                ),
                ALL,
                16,
                "haproxy_udp_backends[0].health_check.path",
                "the LVS engine writes this check into keepalived.conf",
            )
        },
        case(
            "one IPv6 address written two ways on one port",
            Text(
                "haproxy_tcp_backends:\n  - name: db\n    port: 3306\n    bind: \"fd00::1\"\n    servers:\n      - {name: w1, address: 10.0.1.1, port: 30306}\n  - name: db2\n    port: 3306\n    bind: \"FD00:0::1\"\n    servers:\n      - {name: w1, address: 10.0.1.2, port: 30306}\n",
            ),
            ALL,
            8,
            "haproxy_tcp_backends[1].port",
            "`FD00:0::1` and `fd00::1` are one address",
        ),
        case(
            "0.0.0.0 and a specific address on one port",
            Text(
                "haproxy_tcp_backends:\n  - name: db\n    port: 3306\n    bind: 0.0.0.0\n    servers:\n      - {name: w1, address: 10.0.1.1, port: 30306}\n  - name: db2\n    port: 3306\n    bind: 10.0.0.100\n    servers:\n      - {name: w1, address: 10.0.1.2, port: 30306}\n",
            ),
            ALL,
            8,
            "haproxy_tcp_backends[1].port",
            "`0.0.0.0` takes every address, 10.0.0.100 too",
        ),
        case(
            ":: and 0.0.0.0 on one port",
            Text(
                "haproxy_tcp_backends:\n  - name: db\n    port: 3306\n    bind: \"::\"\n    servers:\n      - {name: w1, address: 10.0.1.1, port: 30306}\n  - name: db2\n    port: 3306\n    bind: 0.0.0.0\n    servers:\n      - {name: w1, address: 10.0.1.2, port: 30306}\n",
            ),
            ALL,
            8,
            "haproxy_tcp_backends[1].port",
            "Linux's `::` takes IPv4 too unless bound IPv6-only",
        ),
        case(
            "UDP backend names that differ only in case",
            Append(
                "  - name: WIREGUARD\n    port: 51821\n    servers:\n      - name: w1\n        address: 10.0.1.1\n        port: 31821\n",
            ),
            ALL,
            21,
            "haproxy_udp_backends[1].name",
            "nginx compares upstream names ignoring case",
        ),
        case(
            "backend named after a rate-limited frontend's proxy",
            Text(
                "haproxy_http_frontends:\n  - name: web\n    port: 80\n    rate_limit: 100/10s\nhaproxy_http_backends:\n  - name: shop\n    default: true\n    servers:\n      - {name: w1, address: 10.0.1.1, port: 30080}\nhaproxy_tcp_backends:\n  - name: http_web\n    port: 3306\n    sticky: source\n    servers:\n      - {name: w1, address: 10.0.1.1, port: 30306}\n",
            ),
            ALL,
            11,
            "haproxy_tcp_backends[0].name",
            "HAProxy refuses two stick tables of one name",
        ),
        case(
            "UDP backend bound where nginx relays a server given by name",
            Text(
                "nginx_resolver: 10.0.0.53\nhaproxy_udp_backends:\n  - name: dns\n    port: 53\n    servers:\n      - {name: w1, address: w1.example.com, port: 31820}\n  - name: other\n    port: 31820\n    bind: 127.77.0.1\n    servers:\n      - {name: w1, address: 10.0.1.1, port: 31821}\n",
            ),
            ALL,
            8,
            "haproxy_udp_backends[1].port",
            "the relay nginx runs for UDP server `w1.example.com` of backend `dns`",
        ),
        Case {
            extra: &[(
                LBV,
                "keepalived_vip: 10.0.0.100/24\nkeepalived_interface: eth0\nnginx_reload_method: command\nnginx_reload_command: \"nginx -s reload &&\"\n",
            )],
            ..case(
                "reload command the shell would read past its end",
                Edit::None,
                LBV,
                4,
                "nginx_reload_command",
                "is not a complete shell command",
            )
        },
        Case {
            extra: &[(
                LBV,
                "keepalived_vips: [10.0.0.100/24, 10.0.0.100/32]\nkeepalived_interface: eth0\n",
            )],
            ..case(
                "one VIP address twice",
                Edit::None,
                LBV,
                1,
                "keepalived_vips[1]",
                "the address of 10.0.0.100/32 is already a VIP (10.0.0.100/24)",
            )
        },
        Case {
            extra: &[(
                LBV,
                "keepalived_vip: 127.0.0.1/8\nkeepalived_interface: eth0\n",
            )],
            ..case(
                "loopback VIP",
                Edit::None,
                LBV,
                1,
                "keepalived_vip",
                "127.0.0.1/8 is a loopback address",
            )
        },
    ]
}

fn vars_for(edit: &Edit) -> String {
    let mut lines: Vec<String> = BASE.lines().map(str::to_string).collect();
    match edit {
        Edit::Http(n, text) => {
            lines.extend(HTTP.lines().map(str::to_string));
            lines[n - 1] = (*text).to_string();
        }
        Edit::Line(n, text) => lines[n - 1] = (*text).to_string(),
        Edit::Append(text) => lines.extend(text.lines().map(str::to_string)),
        Edit::Text(text) => return (*text).to_string(),
        Edit::None => {}
    }
    lines.join("\n") + "\n"
}

#[test]
fn every_broken_input_is_located() {
    let cases = cases();
    assert!(
        cases.len() >= 62,
        "the table must cover at least 62 broken inputs"
    );
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let dir = scratch(&format!("validation-{i}"));
        write(&dir, "hosts", HOSTS);
        write(&dir, LBV, LB_VARS);
        write(&dir, ALL, &vars_for(&c.edit));
        for (file, text) in c.extra {
            write(&dir, file, text);
        }
        let run = Lbctl::new()
            .args([
                "-i",
                dir.to_str().unwrap(),
                "--project-dir",
                dir.to_str().unwrap(),
                "--json",
                "validate",
            ])
            .output();
        let report: serde_json::Value = match serde_json::from_str(&run.stdout) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!(
                    "{}: no JSON ({e}): {}{}",
                    c.name, run.stdout, run.stderr
                ));
                continue;
            }
        };
        let diags = report["diagnostics"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let hit = diags.iter().any(|d| {
            d["file"].as_str().is_some_and(|f| f.ends_with(c.file))
                && d["line"].as_u64() == Some(c.line as u64)
                && d["key"].as_str().is_some_and(|k| k.contains(c.key))
                && (d["message"].as_str().is_some_and(|m| m.contains(c.message))
                    || d["hint"].as_str().is_some_and(|h| h.contains(c.message)))
        });
        if run.code != 1 || !hit {
            failures.push(format!(
                "{}: expected exit 1 and {}:{} `{}` ~ {:?}; got exit {} with {}",
                c.name,
                c.file,
                c.line,
                c.key,
                c.message,
                run.code,
                serde_json::to_string_pretty(&diags).unwrap()
            ));
        }
        assert!(
            !run.stdout.contains("panicked"),
            "{}: lbctl panicked",
            c.name
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn all_problems_are_reported_at_once_with_hints() {
    let dir = scratch("validation-many");
    write(&dir, "hosts", HOSTS);
    write(&dir, LBV, LB_VARS);
    let mut vars = vars_for(&Edit::Line(3, "    port: 70000"));
    vars = vars
        .replace("        chek", "")
        .replace("        rise: 2", "        rise: 0");
    vars = vars.replace("    balance: roundrobin", "    balance: roundrobbin");
    write(&dir, ALL, &vars);
    let out = dir.join("out");
    let file = dir.join(ALL).display().to_string();
    Lbctl::new()
        .args([
            "-i",
            dir.to_str().unwrap(),
            "--project-dir",
            dir.to_str().unwrap(),
            "render",
            "-o",
            out.to_str().unwrap(),
        ])
        .stderr_has(format!(
            "error: {file}:3: haproxy_tcp_backends[0].port: 70000 is out of range"
        ))
        .stderr_has(format!("error: {file}:4: haproxy_tcp_backends[0].balance"))
        .stderr_has("hint: did you mean `roundrobin`?")
        .stderr_has(format!("error: {file}:11:"))
        .stderr_has("3 problems found in the input; nothing was changed")
        .exit(1)
        .run();
    assert!(
        !out.exists(),
        "render wrote files although the input was invalid"
    );
}

/// Neighbours of the clashes refused above that do not clash: still valid.
#[test]
fn services_that_do_not_clash_still_validate() {
    let server = "    servers:\n      - {name: w1, address: 10.0.1.1, port: 30306}\n";
    let cases = [
        (
            "two addresses on one port",
            LB_VARS.to_string(),
            format!(
                "haproxy_tcp_backends:\n  - name: db\n    port: 3306\n    bind: 10.0.0.100\n{server}  - name: db6\n    port: 3306\n    bind: \"fd00::1\"\n{server}"
            ),
        ),
        (
            "a relay on a port every address takes: nginx serves both from one socket",
            LB_VARS.to_string(),
            "nginx_resolver: 10.0.0.53\nhaproxy_udp_backends:\n  - name: dns\n    port: 53\n    servers:\n      - {name: w1, address: w1.example.com, port: 53}\n".to_string(),
        ),
        (
            "a backend named like a rate-limited frontend's proxy, without a stick table",
            LB_VARS.to_string(),
            format!(
                "haproxy_http_frontends:\n  - name: web\n    port: 80\n    rate_limit: 100/10s\nhaproxy_http_backends:\n  - name: shop\n    default: true\n    servers:\n      - {{name: w1, address: 10.0.1.1, port: 30080}}\nhaproxy_tcp_backends:\n  - name: http_web\n    port: 3306\n{server}"
            ),
        ),
        (
            "UDP backend names that differ in case, through LVS (no nginx upstreams)",
            format!("{LB_VARS}lbctl_udp_engine: lvs\n"),
            "haproxy_udp_backends:\n  - name: WG\n    port: 51820\n    servers:\n      - {name: w1, address: 10.0.1.1, port: 31820}\n  - name: wg\n    port: 51821\n    servers:\n      - {name: w1, address: 10.0.1.1, port: 31821}\n".to_string(),
        ),
    ];
    for (i, (name, lb_vars, vars)) in cases.iter().enumerate() {
        let dir = scratch(&format!("validation-apart-{i}"));
        write(&dir, "hosts", HOSTS);
        write(&dir, LBV, lb_vars);
        write(&dir, ALL, vars);
        let run = Lbctl::new()
            .args(["-i", dir.to_str().unwrap(), "validate"])
            .output();
        assert_eq!(run.code, 0, "{name}: {}{}", run.stdout, run.stderr);
    }
}

#[test]
fn missing_inventory_says_how_to_fix_it() {
    Lbctl::new()
        .args(["-i", "/nonexistent/inventory", "validate"])
        .stderr_has("inventory not found")
        .stderr_has("hint: pass an inventory")
        .exit(1)
        .run();
}

#[test]
fn empty_load_balancer_group_names_the_flag() {
    let dir = scratch("validation-nogroup");
    write(&dir, "hosts", "[lbs]\nlb1 ansible_host=10.0.0.1\n");
    Lbctl::new()
        .args(["-i", dir.to_str().unwrap(), "validate"])
        .stderr_has("no hosts in group `haproxy_servers`")
        .stderr_has("--lb-group")
        .exit(1)
        .run();
    // A file in the working directory: the problem names it (it said `: ` with no name).
    Lbctl::new()
        .current_dir(&dir)
        .args(["-i", "hosts", "validate"])
        .stderr_has(
            "error: hosts: haproxy_servers: the inventory has no hosts in group `haproxy_servers`",
        )
        .stderr_has("--lb-group")
        .exit(1)
        .run();
    Lbctl::new()
        .args(["-i", dir.to_str().unwrap(), "--lb-group", "lbs", "validate"])
        .run();
}

#[test]
fn an_entry_with_its_own_error_causes_no_routing_errors() {
    let dir = scratch("validation-no-cascade");
    write(&dir, "hosts", HOSTS);
    write(&dir, LBV, LB_VARS);
    // The frontend and the default SNI backend each have one error; checking routes without
    // them would also report an unknown frontend and a missing default.
    write(
        &dir,
        ALL,
        "haproxy_http_frontends:\n  - name: web\n    port: 80\n    rate_limit: lots\nhaproxy_http_backends:\n  - name: shop\n    frontend: web\n    default: true\n    servers:\n      - {name: w1, address: 10.0.1.1, port: 30080}\nhaproxy_tcp_backends:\n  - name: vault\n    port: 443\n    sni: vault.example.com\n    servers:\n      - {name: w1, address: 10.0.1.1, port: 8200}\n  - name: traefik\n    port: 443\n    sni_default: true\n",
    );
    let run = Lbctl::new()
        .args(["-i", dir.to_str().unwrap(), "--project-dir"])
        .args([dir.to_str().unwrap(), "--json", "validate"])
        .exit(1)
        .run();
    let report = run.json();
    let keys: Vec<&str> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "haproxy_tcp_backends[1].servers",
            "haproxy_http_frontends[0].rate_limit"
        ],
        "{}",
        run.stdout
    );
}

#[test]
fn a_template_error_on_one_host_writes_no_host() {
    let dir = scratch("validation-template-one-host");
    write(&dir, "hosts", HOSTS);
    write(&dir, LBV, LB_VARS);
    write(&dir, ALL, BASE);
    write(
        &dir,
        "templates/keepalived.conf.j2",
        "{% if inventory_hostname == 'lb2' %}{{ no_such_var }}{% endif %}vrrp\n",
    );
    let out = dir.join("out");
    Lbctl::new()
        .args([
            "-i",
            dir.to_str().unwrap(),
            "--project-dir",
            dir.to_str().unwrap(),
            "render",
            "-o",
            out.to_str().unwrap(),
        ])
        .stderr_has("keepalived.conf.j2")
        .exit(1)
        .run();
    assert!(
        !out.exists(),
        "render wrote lb1's files although lb2's template failed"
    );
}

/// An INI section naming a group the inventory never declares (`[k8s:children]` listing
/// `masters`, `[dmz:vars]`): Ansible refuses the file. Given alone, lbctl refuses it naming the
/// line; in an inventory directory, it is skipped with that warning, as Ansible skips it.
#[test]
fn ini_groups_named_but_never_declared_are_refused_as_ansible_does() {
    let dir = scratch("validation-undeclared-groups");
    write(&dir, "hosts", HOSTS);
    write(&dir, LBV, LB_VARS);
    write(&dir, ALL, BASE);
    let file = dir.join("groups.ini");
    for (text, line, message) in [
        (
            "[k8s:children]\nworkers\nmasters\n\n[workers]\nw1\n",
            3,
            "masters: [k8s:children] names group `masters`, which this inventory never declares",
        ),
        (
            "[dmz:vars]\nzone=edge\n",
            1,
            "dmz: [dmz:vars] is for group `dmz`, which this inventory never declares",
        ),
    ] {
        write(&dir, "groups.ini", text);
        let at = format!("{}:{line}: {message}", file.display());
        Lbctl::new()
            .args(["-i", file.to_str().unwrap(), "validate"])
            .exit(1)
            .stderr_has(format!("error: {at}"))
            .run();
        Lbctl::new()
            .args(["-i", dir.to_str().unwrap(), "validate"])
            .stderr_has(format!("warning: {at}"))
            .run();
    }
    // Declared after it is named, or by an earlier source: accepted, as Ansible does.
    write(
        &dir,
        "groups.ini",
        "[k8s:children]\nmasters\n[masters]\nm1\n",
    );
    Lbctl::new()
        .args(["-i", file.to_str().unwrap(), "validate"])
        .exit(1)
        .stderr_has("no hosts in group `haproxy_servers`")
        .run();
    let hosts = dir.join("hosts");
    write(&dir, "groups.ini", "[haproxy_servers:vars]\nx=1\n");
    Lbctl::new()
        .args([
            "-i",
            hosts.to_str().unwrap(),
            "-i",
            file.to_str().unwrap(),
            "validate",
        ])
        .run();
}
