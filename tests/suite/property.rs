//! "Valid" means the daemons accept it, as a tested property. Specs are generated across every
//! key lbctl reads (names, ports, timers at their edges, address families, UDP engines,
//! authentication, check scripts, managed paths, HTTP routing); each one either is refused by
//! validation with located errors (file, line, key, hint) or renders files that the real
//! programs accept: `haproxy -c`, `keepalived -t` (in a scratch network namespace holding the
//! interfaces the specs name) and `nginx -t` (and, for the UDP health watcher, `sh -n` and
//! `systemd-analyze verify`). A part of the specs is drawn only from values
//! that must be valid, and those must also pass validation.
//!
//! A spec is interpreted from a list of random numbers that proptest generates and shrinks
//! (0 always means the plainest choice), so a failure is reported with its smallest example.
//! The real programs run after every spec is generated, in parallel, each distinct file once.
//!
//! `LBCTL_PROPERTY_CASES` sets the number of specs (default 2,000, what `.ci/run` runs);
//! `LBCTL_PROPERTY_SEED` another seed. The counts and the wall time are written to
//! `target/test-scratch/property/summary.txt` (`scripts/test` prints it).

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use lbctl::{
    input::Keyring,
    render::{RunContext, Templates},
    source::Diagnostic,
    spec::{Fleet, Input},
};
use proptest::{
    prelude::*,
    strategy::ValueTree,
    test_runner::{Config, RngAlgorithm, TestRng, TestRunner},
};

use crate::support::{repo_root, require_root_and, scratch, write};

const DEFAULT_CASES: usize = 2000;
/// Out of 100 specs, how many draw only from values that must be valid.
const VALID_PERCENT: usize = 30;
/// In the other specs, how often (in percent) a field takes an edge or invalid value.
const EDGY_PERCENT: u32 = 6;
/// Random numbers a spec is read from; a spec asks for far fewer.
const CHOICES: usize = 400;
/// The interfaces `keepalived -t` finds in the scratch namespace: the only names valid specs use.
const INTERFACES: &[&str] = &["eth0", "ens3", "bond0.100", "lbctl-prop-15ch"];

// ---------------------------------------------------------------- the spec, as YAML

/// A YAML value, written in block style with every string double-quoted (so that it is read
/// back exactly as generated).
#[derive(Debug, Clone)]
enum Y {
    S(String),
    I(i64),
    B(bool),
    L(Vec<Y>),
    M(Vec<(String, Y)>),
}

fn s(text: impl Into<String>) -> Y {
    Y::S(text.into())
}

fn scalar(v: &Y) -> Option<String> {
    match v {
        Y::S(t) => Some(serde_json::to_string(t).unwrap()),
        Y::I(i) => Some(i.to_string()),
        Y::B(b) => Some(b.to_string()),
        Y::L(l) if l.is_empty() => Some("[]".into()),
        Y::M(m) if m.is_empty() => Some("{}".into()),
        _ => None,
    }
}

/// Writes a mapping's entries at `indent`; the first line may start after a prefix (`- `).
fn emit_map(out: &mut String, entries: &[(String, Y)], indent: usize, first_inline: bool) {
    for (i, (key, value)) in entries.iter().enumerate() {
        if !(first_inline && i == 0) {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(key);
        out.push(':');
        match scalar(value) {
            Some(text) => {
                out.push(' ');
                out.push_str(&text);
                out.push('\n');
            }
            None => {
                out.push('\n');
                emit_block(out, value, indent + 2);
            }
        }
    }
}

fn emit_block(out: &mut String, value: &Y, indent: usize) {
    match value {
        Y::M(entries) => emit_map(out, entries, indent, false),
        Y::L(items) => {
            for item in items {
                out.push_str(&" ".repeat(indent));
                out.push_str("- ");
                match (item, scalar(item)) {
                    (_, Some(text)) => {
                        out.push_str(&text);
                        out.push('\n');
                    }
                    (Y::M(entries), None) => emit_map(out, entries, indent + 2, true),
                    (other, None) => {
                        out.push('\n');
                        emit_block(out, other, indent + 2);
                    }
                }
            }
        }
        other => {
            out.push_str(&" ".repeat(indent));
            out.push_str(&scalar(other).unwrap());
            out.push('\n');
        }
    }
}

fn yaml(entries: &[(String, Y)]) -> String {
    let mut out = String::new();
    emit_map(&mut out, entries, 0, false);
    out
}

/// One generated spec: an INI inventory, `group_vars/all.yml`, and host_vars per host.
#[derive(Debug, Clone)]
struct Case {
    hosts: Vec<(String, String)>,
    all: Vec<(String, Y)>,
    host_vars: Vec<Vec<(String, Y)>>,
    /// Drawn only from values that must be valid: validation must accept it.
    valid: bool,
}

impl Case {
    fn files(&self) -> Vec<(String, String)> {
        let mut hosts = String::from("[haproxy_servers]\n");
        for (name, address) in &self.hosts {
            hosts.push_str(&format!("{name} ansible_host={address}\n"));
        }
        let mut files = vec![
            ("hosts".to_string(), hosts),
            ("group_vars/all.yml".to_string(), yaml(&self.all)),
        ];
        for ((name, _), vars) in self.hosts.iter().zip(&self.host_vars) {
            if !vars.is_empty()
                && !name.contains('/')
                && !name.is_empty()
                && name != "."
                && name != ".."
            {
                files.push((format!("host_vars/{name}.yml"), yaml(vars)));
            }
        }
        files
    }

    fn show(&self) -> String {
        self.files()
            .iter()
            .map(|(name, text)| format!("--- {name}\n{text}"))
            .collect()
    }
}

// ---------------------------------------------------------------- choices

/// Reads choices from generated numbers; past the end (and for 0) the plainest choice.
struct Gen<'a> {
    data: &'a [u32],
    pos: usize,
    edgy: bool,
}

impl Gen<'_> {
    fn next(&mut self) -> u32 {
        let v = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        v
    }

    fn pick(&mut self, n: usize) -> usize {
        (self.next() as usize) % n.max(1)
    }

    /// True `percent` times in 100; false for 0.
    fn maybe(&mut self, percent: u32) -> bool {
        let v = self.next() % 100;
        v >= 100 - percent
    }

    fn one<T: Clone>(&mut self, pool: &[T]) -> T {
        pool[self.pick(pool.len())].clone()
    }

    /// A value from `valid`, or in a spec that may be wrong, sometimes one from `edgy`.
    fn field<T: Clone>(&mut self, valid: &[T], edgy: &[T]) -> T {
        if self.edgy && !edgy.is_empty() && self.maybe(EDGY_PERCENT) {
            self.one(edgy)
        } else {
            self.one(valid)
        }
    }

    /// Takes the key sometimes (always when `needed`).
    fn sometimes(&mut self, percent: u32) -> bool {
        self.maybe(percent)
    }

    /// `count` distinct values of `pool` (or fewer when it is short).
    fn distinct<T: Clone>(&mut self, pool: &[T], count: usize) -> Vec<T> {
        let mut left: Vec<T> = pool.to_vec();
        let mut out = Vec::new();
        while out.len() < count && !left.is_empty() {
            let i = self.pick(left.len());
            out.push(left.remove(i));
        }
        out
    }
}

fn strs(pool: &[&str]) -> Vec<Y> {
    pool.iter().map(|t| s(*t)).collect()
}

fn ints(pool: &[i64]) -> Vec<Y> {
    pool.iter().map(|i| Y::I(*i)).collect()
}

// ---------------------------------------------------------------- the generator

fn generate(data: &[u32], valid: bool) -> Case {
    let mut g = Gen {
        data,
        pos: 0,
        edgy: !valid,
    };
    let v6 = g.maybe(25);
    let n_hosts = 1 + g.pick(3);
    let mut hosts = Vec::new();
    for i in 1..=n_hosts {
        let name = g.field(
            &[
                format!("lb{i}"),
                format!("lb-{i}.dc1"),
                format!("_lb{i}"),
                format!("LB{i}x"),
            ],
            &[
                "..".to_string(),
                ".".to_string(),
                format!("-lb{i}"),
                format!(".lb{i}"),
                format!("lb{i}/x"),
                format!("lb{i}!"),
            ],
        );
        let address = if v6 {
            g.field(
                &[format!("fd00::{i}"), format!("fd00:0:0:1::{i}")],
                &[format!("10.0.0.{i}"), format!("lb{i}.example")],
            )
        } else {
            g.field(
                &[format!("10.0.0.{i}"), format!("192.168.{i}.254")],
                &[
                    format!("fd00::{i}"),
                    format!("lb{i}.example"),
                    "10.0.0.300".into(),
                ],
            )
        };
        hosts.push((name, address));
    }
    let mut all: Vec<(String, Y)> = Vec::new();
    let mut host_vars: Vec<Vec<(String, Y)>> = vec![Vec::new(); n_hosts];

    // Ports: distinct by construction; the stats page, the peers port and HTTP take theirs.
    let mut tcp_ports = g.distinct(
        &[1i64, 21, 80, 443, 3306, 5432, 6379, 30000, 65535, 8443],
        9,
    );
    let stats_port = tcp_ports.pop().unwrap();
    all.push((
        "haproxy_stats_port".into(),
        g.field(&[Y::I(stats_port)], &ints(&[0, 65536, 3306, -1])),
    ));

    // Keepalived first: the UDP engine and the unicast addresses depend on it.
    let keepalived = g.maybe(65);
    let mut lvs = false;
    if keepalived {
        let vips: Vec<Y> = if v6 {
            strs(&["fd00::100/64", "fd00::101", "fd00:0:0:1::100/128"])
        } else {
            strs(&["192.0.2.100/24", "192.0.2.101", "198.51.100.7/32"])
        };
        if g.maybe(30) {
            let count = 1 + g.pick(2);
            let mut list = g.distinct(&vips, count);
            if g.edgy && g.maybe(EDGY_PERCENT) {
                list.push(if v6 {
                    s("192.0.2.9/24")
                } else {
                    s("fd00::9/64")
                });
            }
            all.push(("keepalived_vips".into(), Y::L(list)));
        } else {
            let vip = g.field(
                &vips,
                &strs(&["192.0.2.300/24", "fd00::1/129", "vip.example", ""]),
            );
            all.push(("keepalived_vip".into(), vip));
        }
        let interface = g.field(
            &strs(INTERFACES),
            &strs(&["", "eth0!", "eth 0", "eth/0", "an-interface-16c", "eth0#x"]),
        );
        all.push(("keepalived_interface".into(), interface));
        if g.sometimes(40) {
            let vrid = g.field(&ints(&[1, 51, 255]), &ints(&[0, 256]));
            all.push(("keepalived_virtual_router_id".into(), vrid));
        }
        let version = if g.maybe(35) { 3 } else { 2 };
        if version == 3 || g.sometimes(20) {
            all.push((
                "keepalived_vrrp_version".into(),
                g.field(&[Y::I(version)], &ints(&[1, 4])),
            ));
        }
        if g.sometimes(50) {
            let advert = if version == 3 {
                g.field(
                    &strs(&["0.01", "0.2", "1", "40.95"]),
                    &strs(&["0", "40.96", "0.005"]),
                )
            } else {
                g.field(&strs(&["1", "2", "255"]), &strs(&["0", "0.5", "256"]))
            };
            all.push(("keepalived_advert_int".into(), advert));
        }
        if (!v6 && version == 2 && g.sometimes(40)) || (g.edgy && g.maybe(EDGY_PERCENT)) {
            let pass = g.field(
                &strs(&[
                    "s3cr3t-1", "p", "Ab%&()*+", ",./:;<=>", "?@[]^_`|", "~12345",
                ]),
                &strs(&[
                    "s3cr3t!",
                    "!abc",
                    "ab#x",
                    "a$b",
                    "a\\b",
                    "a b",
                    "a\"b",
                    "a'b",
                    "a{b",
                    "",
                    "much-too-long",
                ]),
            );
            all.push(("keepalived_auth_pass".into(), pass));
        }
        if g.sometimes(25) {
            all.push(("keepalived_unicast".into(), Y::B(g.maybe(50))));
        }
        if g.sometimes(40) {
            all.push(("keepalived_haproxy_check".into(), s("script")));
            if g.sometimes(60) {
                let script = g.field(
                    &strs(&[
                        "/bin/true",
                        "/bin/sh -c 'kill -0 $(cat /run/haproxy.pid)'",
                        "/usr/bin/test -e /run/haproxy.pid # not a comment ! {}",
                        "/bin/sh -c 'test -n $HOME'",
                    ]),
                    &strs(&[
                        "/bin/check \\",
                        "/bin/echo a\\x41",
                        "/bin/echo $_PWD",
                        "/bin/echo ${_INSTANCE}",
                        "/bin/echo 'open",
                        "/bin/true\n/bin/false",
                        "  ",
                        "/bin/sh -c 'test -n \"$HOME\"'",
                    ]),
                );
                all.push(("keepalived_check_script".into(), script));
            }
        } else if g.sometimes(30) {
            let process = g.field(
                &strs(&["haproxy", "hapee-lb", "haproxy-15chars"]),
                &strs(&["haproxy-16-chars", "ha proxy", "ha!proxy"]),
            );
            all.push(("keepalived_haproxy_process".into(), process));
            if g.sometimes(30) {
                let delay = g.field(&strs(&["0", "0.1", "10"]), &strs(&["10.01", "-1", "x"]));
                all.push(("keepalived_haproxy_process_delay".into(), delay));
            }
        }
        if g.sometimes(30) {
            let priorities = g.distinct(&[1i64, 100, 200, 254, 50, 150], n_hosts);
            for (vars, p) in host_vars.iter_mut().zip(priorities) {
                let p = g.field(&[Y::I(p)], &ints(&[0, 255, 100]));
                vars.push(("keepalived_priority".into(), p));
            }
        }
        if g.edgy && g.maybe(EDGY_PERCENT) {
            let other = if v6 { "10.9.9.9" } else { "fd00::9:9" };
            host_vars[0].push(("keepalived_unicast_src_ip".into(), s(other)));
        }
        lvs = g.maybe(20);
        if lvs {
            all.push(("lbctl_udp_engine".into(), s("lvs")));
        }
        if g.sometimes(15) {
            let path = g.field(
                &strs(&[
                    "/etc/keepalived/keepalived.conf",
                    "/etc/keepalived/lbctl.conf",
                ]),
                &strs(&[
                    "/etc/haproxy/haproxy.cfg",
                    "/etc/keepalived/../x.conf",
                    "keepalived.conf",
                    "/tmp/k.conf",
                ]),
            );
            all.push(("keepalived_config_path".into(), path));
        }
    } else if g.edgy && g.maybe(EDGY_PERCENT) {
        all.push(("lbctl_udp_engine".into(), s("lvs")));
    }

    // TCP backends.
    let n_tcp = g.pick(4);
    let mut names = 0;
    let mut backend_name = |g: &mut Gen, kind: &str| {
        names += 1;
        g.field(
            &[
                format!("{kind}{names}"),
                format!("svc-{names}.x_y"),
                format!("{}{names:02}", "n".repeat(62)),
                format!("{names}{kind}"),
            ],
            &[
                "".to_string(),
                "a b".to_string(),
                "-x".to_string(),
                "x#y".to_string(),
                "n".repeat(65),
                "mysql\n    server evil 6.6.6.6:1".to_string(),
                "stats".to_string(),
            ],
        )
    };
    let mut sticky_used = false;
    let mut tcp = Vec::new();
    for _ in 0..n_tcp {
        let mut b: Vec<(String, Y)> = vec![("name".into(), s(backend_name(&mut g, "tcp")))];
        let port = tcp_ports.pop().unwrap_or(65535);
        b.push((
            "port".into(),
            g.field(&[Y::I(port)], &ints(&[0, 65536, 8404, stats_port])),
        ));
        if g.sometimes(30) {
            b.push((
                "mode".into(),
                g.field(&strs(&["tcp"]), &strs(&["udp", "http", "x"])),
            ));
        }
        if g.sometimes(40) {
            let balance = g.field(
                &strs(&[
                    "roundrobin",
                    "static-rr",
                    "leastconn",
                    "first",
                    "source",
                    "random",
                ]),
                &strs(&["roundrobbin", "uri", "hdr(host)", ""]),
            );
            b.push(("balance".into(), balance));
        }
        if g.sometimes(20) {
            let bind = g.field(
                &strs(&["*", "127.0.0.1", "::", "0.0.0.0", "::1"]),
                &strs(&["256.0.0.1", "localhost", ""]),
            );
            b.push(("bind".into(), bind));
        }
        if g.sometimes(10) {
            sticky_used = true;
            b.push((
                "sticky".into(),
                g.field(&strs(&["source"]), &strs(&["cookie", "x"])),
            ));
        }
        if g.sometimes(10) {
            b.push((
                "health_check".into(),
                Y::M(vec![
                    (
                        "path".into(),
                        g.field(
                            &strs(&["/", "/healthz", "/v1/sys/health"]),
                            &strs(&["healthz", "/a b"]),
                        ),
                    ),
                    (
                        "expect_status".into(),
                        g.field(&ints(&[200, 204, 599]), &ints(&[99, 600])),
                    ),
                    ("tls".into(), Y::B(g.maybe(30))),
                ]),
            ));
        }
        if g.sometimes(10) {
            b.push((
                "send_proxy".into(),
                g.field(&strs(&["v2", "v1"]), &strs(&["v3"])),
            ));
        }
        let n_servers = 1 + g.pick(3);
        let mut servers = Vec::new();
        for j in 1..=n_servers {
            let mut srv: Vec<(String, Y)> = vec![(
                "name".into(),
                g.field(
                    &[s(format!("w{j}")), s(format!("k8s-worker-{j}"))],
                    &strs(&["w 1", "w#1", ""]),
                ),
            )];
            let address = g.field(
                &[
                    s(format!("10.1.0.{j}")),
                    s(format!("fd01::{j}")),
                    s(format!("worker-{j}.example.invalid")),
                    s("127.0.0.1"),
                ],
                &strs(&["300.1.1.1", "bad_host!", "", "fe80::1%eth0", "-w"]),
            );
            srv.push(("address".into(), address));
            srv.push((
                "port".into(),
                g.field(&ints(&[1, 30306, 65535]), &ints(&[0, 65536])),
            ));
            if g.sometimes(30) {
                let interval = g.field(
                    &strs(&[
                        "1us",
                        "500us",
                        "1ms",
                        "2s",
                        "1m",
                        "24d",
                        "2147483647",
                        "2147483647ms",
                        "100",
                    ]),
                    &strs(&[
                        "0",
                        "0us",
                        "0ms",
                        "2147483648",
                        "25d",
                        "2 s",
                        "1.5",
                        "-1s",
                        "2sec",
                    ]),
                );
                srv.push(("check_interval".into(), interval));
            }
            if g.sometimes(20) {
                srv.push((
                    "rise".into(),
                    g.field(&ints(&[1, 2, 1000]), &ints(&[0, 1001])),
                ));
                srv.push((
                    "fall".into(),
                    g.field(&ints(&[1, 3, 1000]), &ints(&[0, -1])),
                ));
            }
            if g.sometimes(20) {
                srv.push((
                    "weight".into(),
                    g.field(&ints(&[0, 1, 100, 256]), &ints(&[257, -1])),
                ));
            }
            if g.sometimes(10) {
                srv.push(("check".into(), Y::B(g.maybe(50))));
            }
            if g.sometimes(10) {
                srv.push(("backup".into(), Y::B(g.maybe(50))));
            }
            servers.push(Y::M(srv));
        }
        b.push(("servers".into(), Y::L(servers)));
        tcp.push(Y::M(b));
    }
    if !tcp.is_empty() {
        all.push(("haproxy_tcp_backends".into(), Y::L(tcp)));
    }

    // UDP backends: what each engine can carry.
    let n_udp = g.pick(3);
    let mut udp_ports = g.distinct(&[53i64, 500, 51820, 65535, 1, 4500], 6);
    let mut named_udp = false;
    let mut udp = Vec::new();
    for _ in 0..n_udp {
        let mut b: Vec<(String, Y)> = vec![("name".into(), s(backend_name(&mut g, "udp")))];
        let port = udp_ports.pop().unwrap_or(65535);
        b.push(("port".into(), g.field(&[Y::I(port)], &ints(&[0, 70000]))));
        if g.sometimes(30) {
            b.push((
                "balance".into(),
                g.field(
                    &strs(&["roundrobin", "leastconn", "source"]),
                    &strs(&["first", "random"]),
                ),
            ));
        }
        if g.sometimes(20) {
            b.push((
                "bind".into(),
                g.field(&strs(&["*", "127.0.0.1", "::1"]), &strs(&["256.1.1.1"])),
            ));
        }
        let n_servers = 1 + g.pick(3);
        let mut servers = Vec::new();
        for j in 1..=n_servers {
            let valid_addresses: Vec<Y> = if lvs {
                // One real server per address and port, as LVS wants.
                if v6 {
                    vec![s(format!("fd01::{j}"))]
                } else {
                    vec![s(format!("10.1.0.{j}"))]
                }
            } else {
                strs(&["10.1.0.1", "fd01::1", "udp-worker.example.invalid"])
            };
            let address = g.field(
                &valid_addresses,
                &strs(&[
                    "udp-worker.example.invalid",
                    "10.1.0.1",
                    "fd01::1",
                    "bad host",
                ]),
            );
            if matches!(&address, Y::S(a) if a.parse::<std::net::IpAddr>().is_err()) {
                named_udp = true;
            }
            let mut srv: Vec<(String, Y)> = vec![
                ("name".into(), s(format!("u{j}"))),
                ("address".into(), address),
                (
                    "port".into(),
                    g.field(&ints(&[1, 31820, 65535]), &ints(&[0])),
                ),
            ];
            if g.sometimes(25) {
                // LVS needs some weight in every service; nginx renders weight 0 as `down`.
                let valid = if lvs {
                    ints(&[1, 256])
                } else {
                    ints(&[0, 1, 256])
                };
                srv.push(("weight".into(), g.field(&valid, &ints(&[257, 0]))));
            }
            if g.edgy && g.maybe(EDGY_PERCENT) {
                srv.push(("check".into(), Y::B(true)));
            }
            servers.push(Y::M(srv));
        }
        b.push(("servers".into(), Y::L(servers)));
        udp.push(Y::M(b));
    }
    if !udp.is_empty() {
        all.push(("haproxy_udp_backends".into(), Y::L(udp)));
    }
    if named_udp && !lvs && (!g.edgy || !g.maybe(EDGY_PERCENT)) {
        let resolver = g.field(
            &[s("10.0.0.53"), Y::L(strs(&["10.0.0.53", "fd00::53"]))],
            &strs(&["dns.example", ""]),
        );
        all.push(("nginx_resolver".into(), resolver));
    }

    // HTTP: a frontend and its backends, sometimes.
    let mut rate_limit = false;
    if g.sometimes(20) {
        let port = tcp_ports.pop().unwrap_or(8080);
        let mut frontend: Vec<(String, Y)> = vec![
            (
                "name".into(),
                g.field(&strs(&["web", "public-1"]), &strs(&["we b", ""])),
            ),
            (
                "port".into(),
                g.field(&[Y::I(port)], &ints(&[stats_port, 0])),
            ),
        ];
        if g.sometimes(30) {
            rate_limit = true;
            frontend.push((
                "rate_limit".into(),
                g.field(
                    &strs(&["100/10s", "600/m", "1/1d"]),
                    &strs(&["100 per s", "5/10"]),
                ),
            ));
        }
        if g.sometimes(30) {
            frontend.push(("forwarded_headers".into(), Y::B(g.maybe(50))));
        }
        all.push(("haproxy_http_frontends".into(), Y::L(vec![Y::M(frontend)])));
        let mut backends = vec![Y::M(vec![
            ("name".into(), s(backend_name(&mut g, "http"))),
            ("default".into(), Y::B(true)),
            (
                "servers".into(),
                Y::L(vec![Y::M(vec![
                    ("name".into(), s("h1")),
                    ("address".into(), s("10.2.0.1")),
                    ("port".into(), Y::I(30080)),
                ])]),
            ),
        ])];
        if g.sometimes(50) {
            let mut route = vec![("name".into(), s(backend_name(&mut g, "http")))];
            route.push((
                "hosts".into(),
                g.field(
                    &[
                        s("shop.example.com"),
                        Y::L(strs(&["*.example.org", "a.example.org"])),
                    ],
                    &strs(&["shop example", "*"]),
                ),
            ));
            if g.sometimes(40) {
                route.push((
                    "path_prefix".into(),
                    g.field(&strs(&["/api", "/api/"]), &strs(&["api", "/a b"])),
                ));
            }
            if g.sometimes(30) {
                route.push((
                    "sticky".into(),
                    g.field(&strs(&["cookie", "source"]), &strs(&["both"])),
                ));
                sticky_used = true;
            }
            route.push((
                "servers".into(),
                Y::L(vec![Y::M(vec![
                    ("name".into(), s("h2")),
                    ("address".into(), s("shop-1.example.invalid")),
                    ("port".into(), Y::I(30443)),
                ])]),
            ));
            backends.push(Y::M(route));
        }
        all.push(("haproxy_http_backends".into(), Y::L(backends)));
    }
    if (sticky_used || rate_limit) && g.sometimes(30) {
        let peers = tcp_ports.pop().unwrap_or(10001);
        all.push((
            "haproxy_peers_port".into(),
            g.field(&[Y::I(peers)], &ints(&[stats_port, 0])),
        ));
    }

    // HAProxy's global settings.
    if g.sometimes(30) {
        all.push((
            "haproxy_stats_user".into(),
            g.field(&strs(&["admin", "a.b-c_d"]), &strs(&["a:b", "a b", ""])),
        ));
        all.push((
            "haproxy_stats_password".into(),
            g.field(
                &strs(&["pa$$word", "x!y%z&", "p:w"]),
                &strs(&["two words", "a#b", "q\"x", "b\\s"]),
            ),
        ));
    } else if g.edgy && g.maybe(EDGY_PERCENT) {
        all.push(("haproxy_stats_password".into(), s("lonely")));
    }
    for (key, valid, edgy) in [
        (
            "haproxy_maxconn",
            ints(&[1, 4096, 10_000_000]),
            ints(&[0, 10_000_001]),
        ),
        ("haproxy_retries", ints(&[0, 3, 100]), ints(&[-1, 101])),
    ] {
        if g.sometimes(20) {
            let v = g.field(&valid, &edgy);
            all.push((key.into(), v));
        }
    }
    for key in [
        "haproxy_timeout_connect",
        "haproxy_timeout_client",
        "haproxy_timeout_server",
        "haproxy_timeout_check",
        "haproxy_timeout_http_request",
    ] {
        if g.sometimes(15) {
            let v = g.field(
                &strs(&["0", "1ms", "500ms", "1h", "24d", "2147483647"]),
                &strs(&["25d", "2147483648", "1 h", "soon", "-1"]),
            );
            all.push((key.into(), v));
        }
    }
    if g.sometimes(15) {
        all.push((
            "haproxy_bind_address".into(),
            g.field(&strs(&["*", "127.0.0.1", "::"]), &strs(&["any"])),
        ));
    }
    if g.sometimes(15) {
        all.push((
            "haproxy_user".into(),
            g.field(&strs(&["haproxy", "root"]), &strs(&["a b", "x#"])),
        ));
    }
    if g.sometimes(15) {
        let path = g.field(
            &strs(&[
                "/etc/haproxy/haproxy.cfg",
                "/etc/haproxy/conf.d/lbctl.cfg",
                "/var/lib/haproxy/lbctl.cfg",
            ]),
            &strs(&[
                "/etc/haproxy/../../tmp/x.cfg",
                "/etc/keepalived/keepalived.conf",
                "/etc/nginx/lbctl-stream.conf",
                "/etc/haproxy//haproxy.cfg",
                "/etc/haproxy/haproxy.cfg.lbctl-prev",
                "haproxy.cfg",
                "/tmp/haproxy.cfg",
            ]),
        );
        all.push(("haproxy_config_path".into(), path));
    }
    if g.sometimes(10) {
        let path = g.field(
            &strs(&[
                "/etc/nginx/lbctl-stream.conf",
                "/etc/nginx/streams/lbctl.conf",
            ]),
            &strs(&["/etc/haproxy/haproxy.cfg", "/etc/nginx/../passwd"]),
        );
        all.push(("nginx_stream_config_path".into(), path));
    }
    if g.sometimes(8) {
        let path = g.field(
            &strs(&["/var/lib/haproxy/server-state", "/etc/haproxy/state"]),
            &strs(&[
                "/var/lib/lbctl/admin-state",
                "/etc/haproxy/haproxy.cfg",
                "/var/lib/haproxy/../x",
            ]),
        );
        all.push(("haproxy_server_state_file".into(), path));
    }
    if g.sometimes(8) {
        let path = g.field(
            &strs(&["/var/lib/lbctl/admin-state", "/var/lib/lbctl/lb/record"]),
            &strs(&[
                "/var/lib/haproxy/server-state",
                "/etc/keepalived/keepalived.conf",
                "/var/lib/lbctl/",
            ]),
        );
        all.push(("lbctl_admin_state_file".into(), path));
    }
    if g.sometimes(10) {
        all.push((
            "lbctl_confine_paths".into(),
            g.field(&[Y::B(true), Y::B(false)], &strs(&["maybe"])),
        ));
    }
    for service in ["haproxy", "keepalived", "nginx"] {
        if g.sometimes(8) {
            let methods: &[&str] = if service == "haproxy" {
                &["systemd", "master-cli", "command"]
            } else {
                &["systemd", "command"]
            };
            let method = g.field(&strs(methods), &strs(&["sighup"]));
            let is_command = matches!(&method, Y::S(m) if m == "command");
            all.push((format!("{service}_reload_method"), method));
            if is_command || (g.edgy && g.maybe(EDGY_PERCENT)) {
                let command = g.field(
                    &strs(&[&format!("systemctl reload {service}")]),
                    &strs(&["", "a\nb"]),
                );
                all.push((format!("{service}_reload_command"), command));
            }
        }
    }
    Case {
        hosts,
        all,
        host_vars,
        valid,
    }
}

// ---------------------------------------------------------------- validation and rendering

/// What lbctl made of a case.
enum Outcome {
    /// Refused: the diagnostics, and what is wrong with how they are located, if anything.
    Refused(Vec<Diagnostic>, Vec<String>),
    /// Rendered: (host, file name, content) of every file.
    Rendered(Vec<(String, String, String)>),
}

fn run_lbctl(case: &Case, dir: &Path) -> Outcome {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let files = case.files();
    for (name, text) in &files {
        write(dir, name, text);
    }
    let inventory = vec![dir.to_path_buf()];
    let input = Input {
        inventory: &inventory,
        project_dir: dir,
        extra_vars: &[],
        lb_group: "haproxy_servers",
        keyring: Arc::new(Keyring::new(Vec::new())),
        config: Default::default(),
        templates: None,
    };
    let (templar, fleet) = match Fleet::load(&input) {
        Ok(loaded) => loaded,
        Err(diags) => {
            let problems = diags
                .iter()
                .filter_map(|d| located_problem(d, dir, &files))
                .collect();
            return Outcome::Refused(diags, problems);
        }
    };
    let templates = Templates::load(&[]).expect("the built-in templates load");
    let run = RunContext::new(templar, "Ansible managed");
    let mut out = Vec::new();
    for host in &fleet.hosts {
        match templates.render(host, &run) {
            Ok(rendered) => {
                for f in rendered.files {
                    out.push((
                        host.name.clone(),
                        f.service.file_name().to_string(),
                        f.content,
                    ));
                }
            }
            Err(d) => {
                return Outcome::Refused(
                    vec![d.clone()],
                    vec![format!("a built-in template failed: {d}")],
                );
            }
        }
    }
    Outcome::Rendered(out)
}

/// What is wrong with how `d` is located, if anything: it must name one of the case's
/// files, a line in it, a key, and give a hint; and show the input with control
/// characters escaped (one line of message, one of hint).
fn located_problem(d: &Diagnostic, dir: &Path, files: &[(String, String)]) -> Option<String> {
    let file = files
        .iter()
        .find(|(name, _)| Path::new(&d.file) == dir.join(name));
    let text = d.to_string();
    let problem = match file {
        None => "names no file of the input",
        Some((_, content)) if d.line == 0 || d.line > content.lines().count() => {
            "has no line in its file"
        }
        Some(_) if d.key.is_empty() => "names no key",
        Some(_) if d.hint.as_deref().is_none_or(str::is_empty) => "has no hint",
        Some(_)
            if text.lines().count() != 2 || text.chars().any(|c| c.is_control() && c != '\n') =>
        {
            "shows raw control characters"
        }
        Some(_) => return None,
    };
    Some(format!("{problem}: {text}"))
}

// ---------------------------------------------------------------- the real programs

/// A scratch network namespace with bridges named like the interfaces valid specs use.
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        let name = format!("lbctl-prop-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        assert!(
            Command::new("ip")
                .args(["netns", "add", &name])
                .status()
                .unwrap()
                .success()
        );
        // nginx -t binds UDP listeners, some on the loopback.
        let lo = ["netns", "exec", &name, "ip", "link", "set", "lo", "up"];
        assert!(Command::new("ip").args(lo).status().unwrap().success());
        for interface in INTERFACES {
            let ok = Command::new("ip")
                .args([
                    "netns", "exec", &name, "ip", "link", "add", interface, "type", "bridge",
                ])
                .status()
                .unwrap()
                .success();
            assert!(ok, "cannot create {interface} in the scratch namespace");
        }
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Moves the calling thread (and so every program it starts) into the scratch namespace,
/// which has no route out: a name in a configuration fails to resolve at once, as an
/// unresolvable worker's would, instead of waiting on the machine's DNS; and keepalived finds
/// the interfaces it expects. Entering once per thread spares an `nsenter` per check.
fn enter_netns(netns: &str) {
    use std::os::fd::AsRawFd;
    let ns = std::fs::File::open(format!("/run/netns/{netns}")).expect("open the namespace");
    // SAFETY: setns only changes this thread's network namespace; the descriptor is valid.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

/// One distinct file to check, and the cases (and hosts) that rendered it.
struct Job {
    kind: String,
    path: PathBuf,
    users: Vec<(usize, String)>,
}

/// The real program's verdict on `job`: `None` when it accepts the file.
fn check(job: &Job, dir: &Path) -> Option<String> {
    let mut cmd = match job.kind.as_str() {
        "haproxy.cfg" => {
            let mut c = Command::new("haproxy");
            c.args(["-c", "-f"]).arg(&job.path);
            c
        }
        "keepalived.conf" => {
            let mut c = Command::new("keepalived");
            c.args(["-t", "-f"]).arg(&job.path);
            c
        }
        "nginx-stream.conf" => {
            let wrapper = job.path.with_extension("main.conf");
            std::fs::write(
                &wrapper,
                format!(
                    "include /etc/nginx/modules-enabled/*.conf;\nevents {{}}\npid {}/nginx.pid;\nerror_log stderr;\ninclude {};\n",
                    dir.display(),
                    job.path.display()
                ),
            )
            .unwrap();
            let mut c = Command::new("nginx");
            c.args(["-t", "-q", "-c"]).arg(&wrapper);
            c
        }
        // The UDP health watcher: a POSIX sh script, and its systemd unit (its program
        // replaced by one that exists here: the load balancers' path is not this machine's).
        "udp-health" => {
            let mut c = Command::new("sh");
            c.arg("-n").arg(&job.path);
            c
        }
        "lbctl-udp-health.service" => {
            let text = std::fs::read_to_string(&job.path).unwrap();
            let unit = job.path.with_file_name(format!(
                "{}.d/lbctl-udp-health.service",
                job.path.file_name().unwrap().to_string_lossy()
            ));
            std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
            let text: String = text
                .lines()
                .map(|l| match l.strip_prefix("ExecStart=") {
                    Some(exec) => format!(
                        "ExecStart=/bin/sh {}\n",
                        exec.split_once(' ').map_or("", |(_, args)| args)
                    ),
                    None => format!("{l}\n"),
                })
                .collect();
            std::fs::write(&unit, text).unwrap();
            let mut c = Command::new("systemd-analyze");
            c.arg("verify").arg(&unit);
            c
        }
        other => panic!("unexpected file {other}"),
    };
    let out = cmd.output().expect("run the checker");
    (!out.status.success()).then(|| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Runs every job on a few threads; returns the failures.
fn check_all(jobs: &[Job], netns: &str, dir: &Path) -> Vec<(usize, String)> {
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 4);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                enter_netns(netns);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    if let Some(message) = check(job, dir) {
                        failures.lock().unwrap().push((i, message));
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    failures
}

/// Why `case` breaks the property, checking its files one by one (for shrinking).
fn violation(case: &Case, dir: &Path, netns: &str) -> Option<String> {
    match run_lbctl(case, dir) {
        Outcome::Refused(_, problems) if !problems.is_empty() => Some(problems.join("\n")),
        Outcome::Refused(diags, _) if case.valid => Some(format!(
            "validation refused a valid spec:\n{}",
            diags.iter().map(|d| format!("{d}\n")).collect::<String>()
        )),
        Outcome::Refused(..) => None,
        Outcome::Rendered(files) => {
            files
                .iter()
                .enumerate()
                .find_map(|(i, (host, kind, content))| {
                    let path = dir.join(format!("shrink-{i}-{kind}"));
                    std::fs::write(&path, content).unwrap();
                    let job = Job {
                        kind: kind.clone(),
                        path,
                        users: vec![],
                    };
                    std::thread::scope(|scope| {
                        scope
                            .spawn(|| {
                                enter_netns(netns);
                                check(&job, dir)
                            })
                            .join()
                            .unwrap()
                    })
                    .map(|m| format!("{host}'s {kind} was refused:\n{m}\n{content}"))
                })
        }
    }
}

// ---------------------------------------------------------------- the property

#[test]
fn what_validates_is_accepted_by_the_daemons() {
    require_root_and(&["haproxy", "keepalived", "nginx", "ip", "systemd-analyze"]);
    let started = Instant::now();
    let cases: usize = std::env::var("LBCTL_PROPERTY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let seed: u64 = std::env::var("LBCTL_PROPERTY_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let root = scratch("property");
    let netns = Netns::new();
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let strategy = proptest::collection::vec(any::<u32>(), CHOICES);

    // Generate and run lbctl on every case, keeping each distinct rendered file once.
    let mut trees = Vec::with_capacity(cases);
    let mut refused = 0;
    let mut refused_valid = Vec::new();
    let mut badly_located = Vec::new();
    let mut jobs: Vec<Job> = Vec::new();
    let mut by_content: HashMap<(String, String), usize> = HashMap::new();
    let mut rendered_files = 0;
    let generated = Instant::now();
    for i in 0..cases {
        let tree = strategy.new_tree(&mut runner).expect("generate");
        let valid = i % 100 < VALID_PERCENT;
        let case = generate(&tree.current(), valid);
        let dir = root.join(format!("case-{i}"));
        match run_lbctl(&case, &dir) {
            Outcome::Refused(diags, problems) => {
                refused += 1;
                if !problems.is_empty() {
                    badly_located.push((i, problems));
                } else if valid {
                    refused_valid.push((i, diags));
                }
            }
            Outcome::Rendered(files) => {
                for (host, kind, content) in files {
                    rendered_files += 1;
                    // The watcher's files differ from host to host only by the name in
                    // their header: checked once.
                    let content = match kind.as_str() {
                        "udp-health" | "lbctl-udp-health.service" => content.replace(
                            &format!("# Managed by lbctl for {host}:"),
                            "# Managed by lbctl for HOST:",
                        ),
                        _ => content,
                    };
                    let key = (kind.clone(), content);
                    let index = *by_content.entry(key.clone()).or_insert_with(|| {
                        let path = root.join(format!("checks/{}-{}", jobs.len(), kind));
                        write(
                            &root,
                            path.strip_prefix(&root).unwrap().to_str().unwrap(),
                            &key.1,
                        );
                        jobs.push(Job {
                            kind,
                            path,
                            users: Vec::new(),
                        });
                        jobs.len() - 1
                    });
                    jobs[index].users.push((i, host));
                }
            }
        }
        trees.push((tree, valid));
    }
    let generated = generated.elapsed();
    let checked = Instant::now();
    let failures = check_all(&jobs, &netns.0, &root);
    let checked = checked.elapsed();

    // Every case that breaks the property, the smallest failing example of the first.
    let mut broken: BTreeMap<usize, String> = BTreeMap::new();
    for (i, problems) in &badly_located {
        broken
            .entry(*i)
            .or_insert_with(|| format!("badly located errors:\n{}", problems.join("\n")));
    }
    for (i, diags) in &refused_valid {
        broken.entry(*i).or_insert_with(|| {
            format!(
                "validation refused a spec drawn from valid values only:\n{}",
                diags.iter().map(|d| format!("{d}\n")).collect::<String>()
            )
        });
    }
    for (job, message) in &failures {
        let job = &jobs[*job];
        for (case, host) in &job.users {
            broken.entry(*case).or_insert_with(|| {
                format!(
                    "{host}'s {} was refused by the real program:\n{message}",
                    job.kind
                )
            });
        }
    }
    let kinds: BTreeSet<&str> = jobs.iter().map(|j| j.kind.as_str()).collect();
    let summary = format!(
        "property: {cases} specs generated (seed {seed}; {} from valid values only), {refused} refused by validation with located errors, {} rendered {rendered_files} files ({} distinct: {}) checked by the real programs; {} broke the property; generation and validation {:.1} s, real-program checks {:.1} s, {:.1} s in all\n",
        cases * VALID_PERCENT / 100,
        cases - refused,
        jobs.len(),
        kinds
            .iter()
            .map(|k| format!("{} {k}", jobs.iter().filter(|j| j.kind == *k).count()))
            .collect::<Vec<_>>()
            .join(", "),
        broken.len(),
        generated.as_secs_f64(),
        checked.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    std::fs::write(
        repo_root().join("target/test-scratch/property/summary.txt"),
        &summary,
    )
    .unwrap();
    eprint!("{summary}");
    let Some((&first, why)) = broken.iter().next() else {
        return;
    };
    // Shrink the first broken case: simpler choices, as long as it still breaks.
    let (mut tree, valid) = trees.swap_remove(first);
    let dir = root.join("shrinking");
    let mut smallest = (generate(&tree.current(), valid), why.clone());
    for _ in 0..300 {
        if !tree.simplify() {
            break;
        }
        loop {
            let case = generate(&tree.current(), valid);
            match violation(&case, &dir, &netns.0) {
                Some(why) => {
                    smallest = (case, why);
                    break;
                }
                None if tree.complicate() => continue,
                None => break,
            }
        }
    }
    let others: Vec<String> = broken
        .iter()
        .skip(1)
        .take(5)
        .map(|(i, why)| {
            format!(
                "case {i}: {}",
                why.lines().take(6).collect::<Vec<_>>().join("\n    ")
            )
        })
        .collect();
    panic!(
        "{summary}\nsmallest failing spec (from case {first}):\n{}\n{}\n\nother cases:\n{}",
        smallest.0.show(),
        smallest.1,
        others.join("\n")
    );
}
