//! What a load balancer is doing right now: which VIPs it holds, whether HAProxy, keepalived
//! and the UDP health watcher run, HAProxy's runtime view of every server, and which UDP
//! servers the watcher has marked down in nginx.
//!
//! Plain data in, a POSIX `sh` script out (one round trip, changing nothing, framed as
//! `frame.rs` describes); the script's stdout in, plain data out. `status` shows it once,
//! `failover-test` polls it.
//!
//! ```text
//! @@lbctl begin lb-state 1
//! @@lbctl vip <vip> held | free
//! @@lbctl daemon <name> running <pid> | stopped <pid or ->
//! @@lbctl stat <show stat output> | stat-error <message>
//! @@lbctl udp <address:port> <nginx's UDP sessions to it>
//! @@lbctl record <lbctl's admin record> | -
//! @@lbctl udp-down <backend/server, one a line> | udp-down-error <message>
//! @@lbctl udp-weights <"backend/server weight", one a line>
//! @@lbctl clock <ms since the epoch, right after the last observation>
//! @@lbctl error <message>
//! @@lbctl end lb-state
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::{
    remote::admin_record::{Record, RecordError},
    remote::nginx_marks,
    remote::show_stat::{RowKind, StatRow, parse_show_stat},
    remote::{self, ReportError},
    spec::HostSpec,
};

const SCRIPT: &str = concat!(include_str!("clock.sh"), include_str!("lb_state.sh"));
const NAME: &str = "lb-state";

/// What to look at on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// VIPs as configured (`10.0.0.10/24`); each is reported held or free.
    pub vips: Vec<String>,
    /// Daemons by name, each with its pidfile.
    pub daemons: Vec<(String, String)>,
    /// HAProxy's admin socket, asked `show stat` for backends and servers; `None`: not asked.
    pub runtime_socket: Option<String>,
    /// UDP servers (`address:port`) whose sessions are counted: the connected UDP sockets
    /// to them (nginx opens one per client flow).
    pub udp_peers: Vec<String>,
    /// lbctl's admin record, read when given.
    pub admin_record: Option<String>,
    /// Where to read the UDP servers out of nginx (by the UDP health watcher, or `lbctl
    /// drain|maint`); `None`: not asked.
    pub udp_live: Option<UdpLive>,
}

/// Why the host could not say which UDP servers nginx keeps out (its own words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UdpDownError(pub String);

/// The UDP health watcher's files that say which UDP servers nginx keeps out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UdpLive {
    /// What the watcher wrote once nginx's reload took effect, one `backend/server` a line.
    pub applied: String,
    /// nginx's stream file, whose marks are read when the watcher has not written `applied`
    /// yet.
    pub live: String,
}

impl Query {
    /// Everything lbctl knows how to ask a load balancer it manages.
    pub fn full(spec: &HostSpec) -> Query {
        let mut daemons = vec![("haproxy".to_string(), spec.haproxy.pid_file.clone())];
        if spec.keepalived.is_some() {
            daemons.push((
                "keepalived".to_string(),
                spec.daemons.keepalived_pid_file.clone(),
            ));
        }
        if let Some(w) = &spec.udp_health {
            // nginx carries the UDP services, and the watcher keeps its file
            daemons.push(("nginx".to_string(), w.nginx_pid_file.clone()));
            daemons.push(("udp-health".to_string(), w.pid_file.clone()));
        }
        Query {
            vips: vips(spec),
            daemons,
            runtime_socket: Some(spec.haproxy.runtime_socket.clone()),
            udp_peers: Vec::new(),
            admin_record: Some(spec.admin_record.clone()),
            udp_live: udp_live(spec),
        }
    }

    /// Only the VIPs: the cheapest question, for watching a VIP move.
    pub fn vips_only(spec: &HostSpec) -> Query {
        Query {
            vips: vips(spec),
            ..Query::default()
        }
    }

    /// Only the servers, as HAProxy's checks and nginx (UDP) see them: for watching health
    /// checks.
    pub fn servers_only(spec: &HostSpec) -> Query {
        Query {
            runtime_socket: Some(spec.haproxy.runtime_socket.clone()),
            udp_live: udp_live(spec),
            ..Query::default()
        }
    }

    pub fn script(&self) -> String {
        let mut script = String::new();
        let socket = self.runtime_socket.as_deref().unwrap_or("");
        let _ = writeln!(script, "SOCKET={}", remote::quote(socket));
        let udp = self.udp_live.clone().unwrap_or_default();
        let _ = writeln!(script, "UDP_LIVE={}", remote::quote(&udp.live));
        let _ = writeln!(script, "UDP_APPLIED={}", remote::quote(&udp.applied));
        // Backends and servers only (types 2 + 4): frontends say nothing about health.
        let _ = writeln!(script, "STAT_COMMAND='show stat -1 6 -1'");
        let want = if self.vips.is_empty() { "" } else { "1" };
        let _ = writeln!(script, "WANT_VIPS={want}\nADDRESSES=");
        let record = self.admin_record.as_deref().unwrap_or("");
        let _ = writeln!(script, "RECORD={}", remote::quote(record));
        script.push_str("vips() {\n\t:\n");
        for vip in &self.vips {
            let _ = writeln!(
                script,
                "\tstate_vip {} {}",
                remote::quote(vip),
                remote::quote(&remote::address_of(vip))
            );
        }
        script.push_str("}\ndaemons() {\n\t:\n");
        for (name, pidfile) in &self.daemons {
            let _ = writeln!(
                script,
                "\tstate_daemon {} {}",
                remote::quote(name),
                remote::quote(pidfile)
            );
        }
        script.push_str("}\nudp_peers() {\n\t:\n");
        for peer in &self.udp_peers {
            let _ = writeln!(script, "\tstate_udp {}", remote::quote(peer));
        }
        script.push_str("}\n");
        let body = format!("{}{SCRIPT}", nginx_marks::SCRIPT);
        remote::finish_script(script, &body)
    }
}

fn udp_live(spec: &HostSpec) -> Option<UdpLive> {
    spec.udp_health.as_ref().map(|w| UdpLive {
        applied: w.applied_path.clone(),
        live: w.live_path.clone(),
    })
}

fn vips(spec: &HostSpec) -> Vec<String> {
    spec.keepalived
        .as_ref()
        .map(|k| k.vips.clone())
        .unwrap_or_default()
}

/// One host's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LbState {
    /// Every VIP asked about, and whether this host holds it.
    pub vips: BTreeMap<String, bool>,
    pub daemons: BTreeMap<String, Daemon>,
    /// `show stat`'s rows, or why the runtime API did not answer; `None` when not asked.
    pub stat: Option<Result<Vec<StatRow>, ReportError>>,
    /// nginx's UDP sessions to each peer asked about.
    pub udp_sessions: BTreeMap<String, u64>,
    /// lbctl's admin record (empty when there is none), or why it cannot be read; `None`
    /// when not asked.
    pub admin_record: Option<Result<Record, RecordError>>,
    /// The UDP servers (`backend/server`) marked down in nginx's stream file, or why it could
    /// not be read; `None` when not asked.
    pub udp_down: Option<Result<Vec<String>, UdpDownError>>,
    /// The weight nginx gives each UDP server (`backend/server`), from its stream file;
    /// empty when not asked or unreadable.
    pub udp_weights: BTreeMap<String, u64>,
    /// The host's clock (ms since the epoch) right after it looked; `None` without GNU date.
    pub clock_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Daemon {
    pub running: bool,
    /// From the pidfile, when it held one.
    pub pid: Option<u32>,
}

impl LbState {
    pub fn holds_vip(&self) -> bool {
        self.vips.values().any(|&held| held)
    }

    /// The server `name` of backend `backend`, as the runtime API sees it.
    pub fn server(&self, backend: &str, name: &str) -> Option<&StatRow> {
        self.rows()
            .iter()
            .find(|r| r.kind == RowKind::Server && r.proxy == backend && r.name == name)
    }

    /// Whether nginx has the UDP server `backend/name` marked down; `None` when the stream
    /// file was not read.
    pub fn udp_marked_down(&self, backend: &str, name: &str) -> Option<bool> {
        match &self.udp_down {
            Some(Ok(keys)) => Some(
                keys.iter()
                    .any(|k| k.split_once('/') == Some((backend, name))),
            ),
            _ => None,
        }
    }

    /// The weight nginx gives the UDP server `backend/name`, when its stream file was read.
    pub fn udp_weight(&self, backend: &str, name: &str) -> Option<u64> {
        self.udp_weights.get(&format!("{backend}/{name}")).copied()
    }

    /// Every server row of `backend`.
    pub fn servers<'a>(&'a self, backend: &'a str) -> impl Iterator<Item = &'a StatRow> {
        self.rows()
            .iter()
            .filter(move |r| r.kind == RowKind::Server && r.proxy == backend)
    }

    fn rows(&self) -> &[StatRow] {
        match &self.stat {
            Some(Ok(rows)) => rows,
            _ => &[],
        }
    }
}

/// Reads the script's stdout.
pub fn parse_lb_state(stdout: &[u8]) -> Result<LbState, ReportError> {
    let mut state = LbState::default();
    let mut ended = false;
    for frame in remote::frames(NAME, stdout)? {
        let frame = frame?;
        match frame.words.as_slice() {
            ["vip", vip, held @ ("held" | "free")] => {
                state.vips.insert(frame.text(vip)?, *held == "held");
            }
            ["daemon", name, running @ ("running" | "stopped"), pid] => {
                let pid = match *pid {
                    "-" => None,
                    pid => Some(frame.pid(pid)?),
                };
                let running = *running == "running";
                state
                    .daemons
                    .insert((*name).to_string(), Daemon { running, pid });
            }
            ["stat", csv] => {
                let csv = frame.text(csv)?;
                state.stat = Some(parse_show_stat(&csv));
            }
            ["stat-error", message] => {
                state.stat = Some(Err(ReportError::Host(frame.text(message)?)));
            }
            ["udp", peer, count] => {
                let count = count
                    .parse()
                    .map_err(|_| frame.malformed("invalid count"))?;
                state.udp_sessions.insert(frame.text(peer)?, count);
            }
            ["record", content] => {
                state.admin_record = Some(Record::parse(&frame.text(content)?));
            }
            ["udp-down", keys] => {
                let keys = frame.text(keys)?;
                state.udp_down = Some(Ok(keys.lines().map(str::to_string).collect()));
            }
            ["udp-weights", lines] => {
                for line in frame.text(lines)?.lines() {
                    let (key, weight) = line
                        .split_once(' ')
                        .and_then(|(k, w)| Some((k, w.parse().ok()?)))
                        .ok_or_else(|| frame.malformed("invalid UDP server weight"))?;
                    state.udp_weights.insert(key.to_string(), weight);
                }
            }
            ["udp-down-error", message] => {
                state.udp_down = Some(Err(UdpDownError(frame.text(message)?)));
            }
            ["clock", ms] => {
                state.clock_ms = Some(ms.parse().map_err(|_| frame.malformed("invalid clock"))?);
            }
            ["error", message] => return Err(ReportError::Host(frame.text(message)?)),
            ["end", "lb-state"] => {
                ended = true;
                break;
            }
            _ => return Err(frame.malformed("unknown frame")),
        }
    }
    if !ended {
        return Err(ReportError::Truncated {
            script: NAME,
            after: None,
        });
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_locally(script: &str) -> Vec<u8> {
        use std::io::Write;
        let mut child = std::process::Command::new("sh")
            .arg("-s")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap().stdout
    }

    #[test]
    fn the_script_reports_vips_daemons_and_a_missing_socket() {
        let dir = std::env::temp_dir().join(format!("lbctl-lb-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let alive = dir.join("alive.pid");
        std::fs::write(&alive, format!("{}\n", std::process::id())).unwrap();
        let query = Query {
            vips: vec!["127.0.0.1/8".into(), "192.0.2.77/24".into()],
            daemons: vec![
                ("haproxy".into(), alive.display().to_string()),
                (
                    "keepalived".into(),
                    dir.join("absent.pid").display().to_string(),
                ),
            ],
            runtime_socket: Some(dir.join("no.sock").display().to_string()),
            udp_peers: vec!["192.0.2.9:31820".into()],
            admin_record: Some(dir.join("admin-state").display().to_string()),
            udp_live: Some(UdpLive {
                applied: dir.join("nginx-down").display().to_string(),
                live: dir.join("live.conf").display().to_string(),
            }),
        };
        std::fs::write(
            dir.join("live.conf"),
            "stream {\n    upstream udp_dns {\n        server 10.0.0.1:53 max_fails=1 fail_timeout=10s down; # lbctl:dns/w1 down\n        server 10.0.0.2:53 max_fails=1 fail_timeout=10s weight=2; # lbctl:dns/w2 weight=2\n        server 10.0.0.3:53 max_fails=1 fail_timeout=10s; # lbctl:dns/w3\n        server 10.0.0.4:53 weight=3 max_fails=1 fail_timeout=10s weight=7; # lbctl:dns/w4 weight=7\n        server 10.0.0.5:53 weight=3 max_fails=1 fail_timeout=10s; # lbctl:dns/w5\n    }\n}\n",
        )
        .unwrap();
        let state = parse_lb_state(&run_locally(&query.script())).unwrap();
        assert!(state.vips["127.0.0.1/8"]);
        assert!(!state.vips["192.0.2.77/24"]);
        assert!(state.holds_vip());
        assert_eq!(
            state.daemons["haproxy"],
            Daemon {
                running: true,
                pid: Some(std::process::id())
            }
        );
        assert!(!state.daemons["keepalived"].running);
        assert_eq!(state.udp_sessions["192.0.2.9:31820"], 0);
        assert_eq!(state.admin_record, Some(Ok(Record::default())));
        assert_eq!(state.udp_down, Some(Ok(vec!["dns/w1".to_string()])));
        assert_eq!(state.udp_marked_down("dns", "w1"), Some(true));
        assert_eq!(state.udp_marked_down("dns", "w2"), Some(false));
        assert_eq!(state.udp_marked_down("dns", "w3"), Some(false));
        // nginx's weight: the last on the line (lbctl's mark after the configured one)
        let weights: Vec<_> = ["w1", "w2", "w3", "w4", "w5", "w6"]
            .iter()
            .map(|w| state.udp_weight("dns", w))
            .collect();
        assert_eq!(weights, [Some(1), Some(2), Some(1), Some(7), Some(3), None]);
        // once the watcher says what nginx runs, that is what counts
        std::fs::write(dir.join("nginx-down"), "dns/w3\n").unwrap();
        let state = parse_lb_state(&run_locally(&query.script())).unwrap();
        assert_eq!(state.udp_down, Some(Ok(vec!["dns/w3".to_string()])));
        let error = state.stat.unwrap().unwrap_err();
        assert!(error.to_string().contains("is not a socket"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_report_without_its_end_is_truncated() {
        let stdout = b"@@lbctl begin lb-state 1\n@@lbctl vip MTAuMC4wLjEw held\n";
        assert!(matches!(
            parse_lb_state(stdout),
            Err(ReportError::Truncated { .. })
        ));
    }
}
