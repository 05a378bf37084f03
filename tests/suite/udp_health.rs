//! lbctl's UDP health watcher (`templates/udp-health.j2`) as rendered, run here with `sh`
//! against real programs, its paths moved to a scratch directory: the `down` marks it writes
//! into nginx's stream file (which `nginx -t` accepts), how it reads HAProxy's states (from
//! a stand-in admin socket served by socat), and HAProxy's external check of `udp` health
//! checks against real UDP servers on loopback.

use std::{
    net::UdpSocket,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::support::{Lbctl, require_root_and, scratch};

/// The rendered watcher of `tests/inputs/udp-health`'s lb1, with every path it uses moved
/// under `dir` and nginx's reload replaced by a note in a file.
struct Watcher {
    dir: PathBuf,
    script: PathBuf,
}

impl Watcher {
    fn new(name: &str) -> Watcher {
        let dir = scratch(&format!("udp-health-{name}"));
        let out = dir.join("rendered");
        Lbctl::new()
            .args(["-i", "tests/inputs/udp-health", "render", "-o"])
            .arg(out.to_str().unwrap())
            .run();
        let source = dir.join("source.conf");
        std::fs::copy(out.join("lb1/nginx-stream.conf"), &source).unwrap();
        let mut text = std::fs::read_to_string(out.join("lb1/udp-health")).unwrap();
        let moves = [
            ("SELF='/etc/lbctl/udp-health'", "script"),
            ("SOCKET='/run/haproxy/admin.sock'", "admin.sock"),
            ("SOURCE='/etc/lbctl/nginx-stream.conf'", "source.conf"),
            ("LIVE='/etc/nginx/lbctl-stream.conf'", "live.conf"),
            ("APPLIED='/etc/lbctl/nginx-down'", "nginx-down"),
            ("NGINX_PID='/run/nginx.pid'", "nginx.pid"),
            ("PID_FILE='/run/lbctl-udp-health.pid'", "pid"),
            ("LOG='/var/log/lbctl-udp-health.log'", "log"),
            ("LOCK=/run/lbctl-udp-health.lock", "lock"),
        ];
        for (line, file) in moves {
            let (var, _) = line.split_once('=').unwrap();
            assert!(text.contains(line), "the script no longer has {line}");
            text = text.replace(line, &format!("{var}='{}'", dir.join(file).display()));
        }
        let reload = "\tsystemctl reload nginx\n";
        assert!(text.contains(reload), "nginx's reload command moved");
        text = text.replace(
            reload,
            &format!("\techo reloaded >>'{}'\n", dir.join("reloads").display()),
        );
        let script = dir.join("script");
        std::fs::write(&script, text).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        Watcher { dir, script }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new("timeout")
            .args(["20", "sh"])
            .arg(&self.script)
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    fn live(&self) -> String {
        std::fs::read_to_string(self.path("live.conf")).unwrap()
    }

    fn reloads(&self) -> usize {
        std::fs::read_to_string(self.path("reloads"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    /// Serves `show stat` answers on the watcher's admin socket: `rows` as HAProxy would
    /// print them, whatever is asked. Like HAProxy, it reads the command line before it
    /// answers and closes: a stand-in that answered at once could close before the watcher's
    /// `socat` had written its command, which then fails (a broken pipe) and reads as no
    /// answer (seen once in CI under load).
    fn haproxy_says(&self, rows: &str) -> Killed {
        let answer = self.path("answer.csv");
        std::fs::write(
            &answer,
            format!("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight\n{rows}\n"),
        )
        .unwrap();
        let socket = self.path("admin.sock");
        let _ = std::fs::remove_file(&socket);
        let child = Killed(
            Command::new("socat")
                .arg(format!("UNIX-LISTEN:{},fork", socket.display()))
                .arg(format!("SYSTEM:read -r _; cat {}", answer.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        // The socket's file appears at bind(), a moment before socat listens: wait for a
        // connection that is accepted, not for the file (a watcher that found nobody listening
        // would leave every mark as it was).
        let start = Instant::now();
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "socat did not listen"
            );
            thread::sleep(Duration::from_millis(20));
        }
        child
    }
}

/// A helper process, killed when the test ends however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The watcher a test started in the background, stopped when the test ends.
struct Stopped(PathBuf);

impl Drop for Stopped {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The server lines of a stream file, trimmed.
fn servers(conf: &str) -> Vec<&str> {
    conf.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("server "))
        .collect()
}

fn nginx_accepts(dir: &Path, conf: &Path) {
    let wrapper = dir.join("wrapper.conf");
    std::fs::write(
        &wrapper,
        format!(
            "include /etc/nginx/modules-enabled/*.conf;\nevents {{}}\npid {}/nginx.pid;\nerror_log stderr;\ninclude {};\n",
            dir.display(),
            conf.display()
        ),
    )
    .unwrap();
    let out = Command::new("nginx")
        .args(["-t", "-q", "-c"])
        .arg(&wrapper)
        .output()
        .unwrap();
    assert!(out.status.success(), "nginx -t: {}", describe(&out));
}

/// One server's row of HAProxy's `show stat` as the stand-in socket answers it: proxy,
/// server, and the status column the watcher reads.
fn stat_row(px: &str, sv: &str, status: &str) -> String {
    format!("{px},{sv},0,0,0,0,,0,0,0,,0,,0,0,0,0,{status},1")
}

#[test]
fn sync_marks_the_servers_down_in_a_file_nginx_accepts() {
    require_root_and(&["nginx", "socat", "sh", "sed", "flock"]);
    let w = Watcher::new("sync");
    let rows = [
        stat_row("wireguard", "w1", "DOWN"),
        stat_row("wireguard", "w2", "UP"),
        stat_row("dns", "w1", "UP"),
        stat_row("dns", "w2", "DOWN"),
        stat_row("syslog", "w1", "no check"),
        stat_row("syslog", "w2", "DOWN"),
    ]
    .join("\n");
    // `lbctl drain` marked statsd/w1 down and `lbctl weight` gave wireguard/w2 a weight of its
    // own, in lbctl's file (as nginx_marks.sh does): nginx's keeps them.
    let source = std::fs::read_to_string(w.path("source.conf")).unwrap();
    let source = source
        .replace(
            "server 10.0.0.21:30125 max_fails=1 fail_timeout=10s; # lbctl:statsd/w1\n",
            "server 10.0.0.21:30125 max_fails=1 fail_timeout=10s down; # lbctl:statsd/w1 down\n",
        )
        .replace(
            "server 10.0.0.22:31820 max_fails=1 fail_timeout=10s; # lbctl:wireguard/w2\n",
            "server 10.0.0.22:31820 max_fails=1 fail_timeout=10s weight=5; # lbctl:wireguard/w2 weight=5\n",
        );
    assert_eq!(source.matches("; # lbctl:").count(), 8, "{source}");
    assert_eq!(source.matches(" down\n").count(), 1, "{source}");
    std::fs::write(w.path("source.conf"), &source).unwrap();
    let haproxy = w.haproxy_says(&rows);
    let out = w.run(&["sync"], &[]);
    drop(haproxy);
    assert!(out.status.success(), "{}", describe(&out));
    let live = w.live();
    assert!(
        live.starts_with("# Written by lbctl-udp-health from "),
        "{live}"
    );
    let marked: Vec<&str> = servers(&live)
        .into_iter()
        .filter(|l| l.contains(" down"))
        .collect();
    assert_eq!(
        marked,
        [
            "server 10.0.0.21:31820 max_fails=1 fail_timeout=10s down; # lbctl:wireguard/w1 down",
            "server 10.0.0.22:30053 weight=2 max_fails=1 fail_timeout=10s down; # lbctl:dns/w2 down",
            // weight 0 is rendered `down`; a mark more changes nothing for nginx
            "server 10.0.0.22:30514 down max_fails=1 fail_timeout=10s down; # lbctl:syslog/w2 down",
            "server 10.0.0.21:30125 max_fails=1 fail_timeout=10s down; # lbctl:statsd/w1 down",
        ],
        "{live}"
    );
    assert!(
        live.contains("server 10.0.0.22:31820 max_fails=1 fail_timeout=10s weight=5; # lbctl:wireguard/w2 weight=5\n"),
        "{live}"
    );
    assert_eq!(
        servers(&live).len(),
        servers(&source).len(),
        "same servers, in the same order"
    );
    nginx_accepts(&w.dir, &w.path("live.conf"));
    assert_eq!(w.reloads(), 1);
    // once nginx runs it (no nginx here: at once), every server out of nginx, for lbctl status
    assert_eq!(
        std::fs::read_to_string(w.path("nginx-down")).unwrap(),
        "wireguard/w1\ndns/w2\nsyslog/w2\nstatsd/w1\n"
    );
    // HAProxy does not answer now: the marks stay as they are, and nothing is reloaded.
    let out = w.run(&["sync"], &[]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(w.reloads(), 1);
    assert_eq!(w.live(), live);
    // what the watcher marked, not what lbctl's file already had
    let status = w.run(&["status"], &[]);
    assert_eq!(
        String::from_utf8_lossy(&status.stdout),
        "wireguard/w1\ndns/w2\nsyslog/w2\n"
    );
}

#[test]
fn haproxy_states_decide_and_a_service_never_loses_every_server() {
    require_root_and(&["nginx", "socat", "sh", "sed", "flock"]);
    let w = Watcher::new("states");
    // wireguard: w1 going down but still UP, w2 DOWN. dns: both DOWN, so neither is marked.
    // syslog: w1 in maintenance. statsd: w2 draining.
    let rows = [
        stat_row("wireguard", "w1", "UP 1/2"),
        stat_row("wireguard", "w2", "DOWN"),
        stat_row("dns", "w1", "DOWN"),
        stat_row("dns", "w2", "DOWN 1/2"),
        stat_row("syslog", "w1", "MAINT"),
        stat_row("syslog", "w2", "no check"),
        stat_row("statsd", "w1", "UP"),
        stat_row("statsd", "w2", "DRAIN"),
    ]
    .join("\n");
    let haproxy = w.haproxy_says(&rows);
    let out = w.run(&["sync"], &[]);
    drop(haproxy);
    assert!(out.status.success(), "{}", describe(&out));
    let status = w.run(&["status"], &[]);
    assert_eq!(
        String::from_utf8_lossy(&status.stdout),
        "wireguard/w2\nsyslog/w1\nstatsd/w2\n",
        "{}",
        describe(&status)
    );
    let live = w.live();
    let marked: Vec<&str> = servers(&live)
        .into_iter()
        .filter(|l| l.ends_with(" down"))
        .collect();
    assert_eq!(marked.len(), 3, "{live}");
    nginx_accepts(&w.dir, &w.path("live.conf"));

    // HAProxy reloaded: every server starts UP before its first check. One marked down stays
    // so until HAProxy has seen it pass a check; one whose checks pass is back.
    let row = |px: &str, sv: &str, status: &str, check: &str| {
        format!(
            "{px},{sv},0,0,0,0,,0,0,0,,0,,0,0,0,0,{status},1,1,0,0,0,0,0,,1,2,1,,0,,2,0,,0,{check}"
        )
    };
    let rows = [
        row("wireguard", "w1", "UP", "L7OK"),
        row("wireguard", "w2", "UP", "INI"),
        row("syslog", "w1", "UP 1/2", "L4TOUT"),
        row("syslog", "w2", "UP", "* L4OK"),
        row("statsd", "w1", "UP", ""),
        row("statsd", "w2", "UP", "* L4OK"),
    ]
    .join("\n");
    let haproxy = w.haproxy_says(&rows);
    let out = w.run(&["sync"], &[]);
    drop(haproxy);
    assert!(out.status.success(), "{}", describe(&out));
    let status = w.run(&["status"], &[]);
    assert_eq!(
        String::from_utf8_lossy(&status.stdout),
        "wireguard/w2\nsyslog/w1\n",
        "{}",
        describe(&status)
    );
}

#[test]
fn the_watcher_runs_once_and_restart_replaces_it() {
    require_root_and(&["socat", "sh", "sed", "flock", "setsid"]);
    let w = Watcher::new("restart");
    let _haproxy = w.haproxy_says(
        "wireguard,w1,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1\nwireguard,w2,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1",
    );
    let _stop = Stopped(w.path("pid"));
    let out = w.run(&["restart"], &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let pid = || {
        std::fs::read_to_string(w.path("pid"))
            .unwrap()
            .trim()
            .to_string()
    };
    let first = pid();
    let start = Instant::now();
    while !std::fs::read_to_string(w.path("live.conf"))
        .unwrap_or_default()
        .contains("; # lbctl:wireguard/w1 down")
    {
        assert!(start.elapsed() < Duration::from_secs(10), "never marked");
        thread::sleep(Duration::from_millis(50));
    }
    let out = w.run(&["restart"], &[]);
    assert!(out.status.success(), "{}", describe(&out));
    let second = pid();
    assert_ne!(first, second);
    assert!(
        !Path::new(&format!("/proc/{first}")).exists(),
        "the first watcher still runs"
    );
    // A second `run` while one runs gives up instead of running twice.
    let twice = w.run(&["run"], &[]);
    assert_eq!(twice.status.code(), Some(1), "{}", describe(&twice));
    assert!(
        String::from_utf8_lossy(&twice.stderr).contains("another watcher holds"),
        "{}",
        describe(&twice)
    );
    let log = std::fs::read_to_string(w.path("log")).unwrap();
    assert!(
        log.contains("nginx reloaded; marked down: wireguard/w1"),
        "{log}"
    );
}

/// A UDP server on loopback answering every datagram with `reply` (or never, when `None`),
/// for as long as the test runs.
fn udp_server(reply: Option<&'static [u8]>) -> u16 {
    udp_server_on("127.0.0.1:0", reply)
}

/// [`udp_server`] on `address` (`[::1]:0` for IPv6's loopback).
fn udp_server_on(address: &str, reply: Option<&'static [u8]>) -> u16 {
    let socket = UdpSocket::bind(address).unwrap();
    let port = socket.local_addr().unwrap().port();
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            // the DNS check's query, byte for byte
            if n > 0
                && buf[..2] == [0x12, 0x34]
                && let Some(reply) = reply
            {
                let _ = socket.send_to(reply, from);
            }
        }
    });
    port
}

#[test]
fn the_external_check_sends_the_datagram_and_reads_the_reply() {
    require_root_and(&["socat", "sh", "bash", "timeout", "dd"]);
    // Every way a host may check: through bash's /dev/udp (where there is a bash), through
    // socat (where there is none: the script's bash moved out of the way), and through socat
    // again where bash was built without /dev/udp (a stand-in whose /dev/udp leads nowhere).
    let no_udp = scratch("udp-health-bash-without-udp").join("bash");
    std::fs::write(
        &no_udp,
        "#!/bin/bash\nexec /bin/bash -c \"${2//\\/dev\\/udp\\//\\/nonexistent\\/}\" \"${@:3}\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&no_udp, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (name, bash) in [
        ("external-bash", None),
        ("external-socat", Some("/nonexistent/bash")),
        ("external-bash-without-udp", no_udp.to_str()),
    ] {
        let w = Watcher::new(name);
        let text = std::fs::read_to_string(&w.script).unwrap();
        let text = match bash {
            Some(bash) => {
                let line = "BASH_FOR_CHECKS=/bin/bash\n";
                assert!(text.contains(line), "the script no longer has {line}");
                text.replace(line, &format!("BASH_FOR_CHECKS={bash}\n"))
            }
            // with bash, socat is not needed: one that cannot start proves it
            None => {
                let socat = "socat -T \"$DEADLINE\"";
                assert!(text.contains(socat), "the script no longer has {socat}");
                text.replace(socat, "/nonexistent/socat -T \"$DEADLINE\"")
            }
        };
        std::fs::write(&w.script, text).unwrap();
        external_check_answers(&w, name);
    }
}

fn external_check_answers(w: &Watcher, how: &str) {
    let check = |address: &str, port: u16, backend: &str| {
        let started = Instant::now();
        let out = w.run(
            &["NOT_USED", "NOT_USED", address, &port.to_string()],
            &[("HAPROXY_PROXY_NAME", backend)],
        );
        (out.status.code(), started.elapsed(), describe(&out))
    };
    let answers = udp_server(Some(b"\x12\x34\x81\x80 answer"));
    // A reply ends the check well before the 500 ms deadline: the quickest of three tries,
    // so that one slow process start on a busy machine does not count as waiting.
    let mut quickest = Duration::MAX;
    for _ in 0..3 {
        let (code, took, out) = check("127.0.0.1", answers, "dns");
        assert_eq!(code, Some(0), "{how}: {out}");
        quickest = quickest.min(took);
    }
    assert!(
        quickest < Duration::from_millis(400),
        "{how}: a reply ends the check: {quickest:?}"
    );
    // HAProxy gives an IPv6 server's address without brackets
    let v6 = udp_server_on("[::1]:0", Some(b"\x12\x34\x81\x80 answer"));
    let (code, _, out) = check("::1", v6, "dns");
    assert_eq!(code, Some(0), "{how}, IPv6: {out}");
    let wrong = udp_server(Some(b"\x99\x99 someone else"));
    assert_eq!(check("127.0.0.1", wrong, "dns").0, Some(1), "{how}");
    let silent = udp_server(None);
    let (code, took, _) = check("127.0.0.1", silent, "dns");
    assert_eq!(code, Some(1), "{how}");
    assert!(
        took >= Duration::from_millis(450),
        "{how}: silence waits for the deadline (500 ms): {took:?}"
    );
    let closed = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, took, _) = check("127.0.0.1", closed, "dns");
    assert_eq!(code, Some(1), "{how}");
    assert!(
        took < Duration::from_millis(450),
        "{how}: a closed port (ICMP unreachable) fails at once: {took:?}"
    );
    let (code, _, out) = check("127.0.0.1", answers, "wireguard");
    assert_eq!(
        code,
        Some(2),
        "{how}: no datagram check for an HTTP-checked backend: {out}"
    );
}
