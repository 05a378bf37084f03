//! The namespace lab (`tests/lab/lab.sh`) for integration tests that need real hosts.
//!
//! A test takes it with `let lab = Lab::up();`: that fails the test (never skips it) when not
//! root or when the lab cannot come up, and the returned guard runs `lab.sh down` when
//! dropped, unless `LBCTL_KEEP_LAB=1` is set (then the lab stays up for a look by hand).
//!
//! Serialization: the tests of this binary run on parallel threads, and only the lab tests
//! wait for each other. `Lab::up()` first takes an in-process mutex (a lab test waits as long
//! as the lab tests before it take, each of them bounded), then, against other processes, an
//! exclusive `flock` on `/run/lbctl-lab.test.lock`, and holds both for the guard's life. The
//! lock is held by a child `flock` process that lives as long as its stdin, a pipe from this
//! process: dropping the guard closes the pipe, and so does this process dying in any way, so
//! a crashed test never wedges the next one. `lab.sh` itself also serializes its `up`/`down`
//! on `/run/lbctl-lab.lock`, for people running it by hand.
//!
//! SSH masters: the guard owns a fresh private directory for the master connections lbctl
//! keeps between runs ([`ssh_control_dir`], which [`crate::support::Lbctl::on_lab`] passes
//! on), and closes them and removes it when dropped. Masters are found again by the login
//! settings, the same for every lab test; a directory per guard keeps a test from resuming
//! one that an earlier test (or another process: the default directory is per user) opened.
//!
//! Every command here runs under `timeout`, so no step can hang a test run.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The lab's state directory: keys, known_hosts, per-host files and logs.
pub const STATE_DIR: &str = "/var/lib/lbctl-lab";
/// The keepalived virtual IP of the bootstrap configuration.
pub const VIP: &str = "10.77.77.100";
/// The namespace that probes and benchmarks send traffic from.
pub const CLIENT_NS: &str = "lab-client";
const TEST_LOCK: &str = "/run/lbctl-lab.test.lock";
const LOCK_WAIT_SECS: u32 = 900;
const UP_TIMEOUT_SECS: u32 = 600; // generous: a fresh machine installs packages first
const DOWN_TIMEOUT_SECS: u32 = 60;

/// A lab host as the lab names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Host {
    /// The inventory name (`lb1`, `k8s-worker-1`, `client`).
    pub name: &'static str,
    /// The network namespace (`lab-lb1`).
    pub netns: &'static str,
    /// The address on the lab bridge.
    pub ip: &'static str,
}

/// The three load balancers of the default lab (`LAB_LBS` unset).
pub const LBS: [Host; 3] = [
    Host {
        name: "lb1",
        netns: "lab-lb1",
        ip: "10.77.77.11",
    },
    Host {
        name: "lb2",
        netns: "lab-lb2",
        ip: "10.77.77.12",
    },
    Host {
        name: "lb3",
        netns: "lab-lb3",
        ip: "10.77.77.13",
    },
];

/// The workers, whose fake NodePorts answer with the worker's name.
pub const WORKERS: [Host; 3] = [
    Host {
        name: "k8s-worker-1",
        netns: "lab-w1",
        ip: "10.77.77.21",
    },
    Host {
        name: "k8s-worker-2",
        netns: "lab-w2",
        ip: "10.77.77.22",
    },
    Host {
        name: "k8s-worker-3",
        netns: "lab-w3",
        ip: "10.77.77.23",
    },
];

/// The client host.
pub const CLIENT: Host = Host {
    name: "client",
    netns: CLIENT_NS,
    ip: "10.77.77.5",
};

/// The repository's `tests/lab/lab.sh`.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/lab.sh")
}

/// The lab's inventory directory (`inventory/lab`), for lbctl's `-i`.
pub fn inventory() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("inventory/lab")
}

/// The SSH client key the lab authorizes on every host.
#[allow(dead_code)] // for tests that check a host over SSH as an operator would
pub fn ssh_key() -> PathBuf {
    Path::new(STATE_DIR).join("ssh/id_ed25519")
}

/// The known_hosts file holding every lab host's key under its address.
#[allow(dead_code)] // for tests that check a host over SSH as an operator would
pub fn known_hosts() -> PathBuf {
    Path::new(STATE_DIR).join("ssh/known_hosts")
}

/// Runs `program args` under `timeout secs` and returns its output; panics only when the
/// command cannot be started at all.
pub fn run(secs: u32, program: &str, args: &[&str]) -> Output {
    Command::new("timeout")
        .args(["-k", "5", &secs.to_string(), program])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `timeout {secs} {program}`: {e}"))
}

/// Like [`run`], feeding `input` on stdin.
pub fn run_with_input(secs: u32, program: &str, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new("timeout")
        .args(["-k", "5", &secs.to_string(), program])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `timeout {secs} {program}`: {e}"));
    // a broken pipe here means the program quit early; its status tells the rest
    let _ = child.stdin.take().expect("piped stdin").write_all(input);
    child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for {program}: {e}"))
}

/// A readable account of a finished command, for failure messages.
pub fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, check: impl FnMut() -> Option<T>) -> T {
    wait_for_or_explain(limit, what, check, String::new)
}

/// [`wait_for`], whose failure adds what `explain` says (looked up only then).
pub fn wait_for_or_explain<T>(
    limit: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
    explain: impl FnOnce() -> String,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        if start.elapsed() >= limit {
            panic!("timed out after {limit:?} waiting for {what}{}", explain());
        }
        sleep(Duration::from_millis(50));
    }
}

/// Fails the test unless it runs as root (the lab needs namespaces, a bridge and mounts).
pub fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_else(|e| panic!("cannot read /proc/self/status: {e}"));
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap_or("?");
    assert_eq!(
        euid, "0",
        "the lab tests must run as root (they create network namespaces, a bridge and \
         mounts); run `sudo -E cargo test --test suite` or as root in CI"
    );
}

/// The lab, held exclusively by this test until dropped.
pub struct Lab {
    lock: Child,
    lock_stdin: Option<ChildStdin>,
    keep: bool,
    /// Where lbctl keeps its SSH masters for this test, and only for it.
    control_dir: PathBuf,
    /// This process's lab tests, one at a time; released after `drop` has run.
    _in_process: MutexGuard<'static, ()>,
}

/// Held by the lab test of this process that has the lab.
static IN_PROCESS: Mutex<()> = Mutex::new(());

/// The SSH masters' directory of the lab this process holds, if it holds one.
static CONTROL_DIR: Mutex<Option<PathBuf>> = Mutex::new(None);

/// The directory where lbctl keeps SSH masters for the lab test under way in this process:
/// `None` when no test holds the lab.
pub fn ssh_control_dir() -> Option<PathBuf> {
    CONTROL_DIR
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// An SSH master connection (`ssh -M`) that lbctl started and OpenSSH put in the background.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Master {
    pub pid: u32,
    /// The address it is connected to (its last argument).
    pub address: String,
    /// Its control socket, through which lbctl runs commands on the host.
    pub socket: PathBuf,
}

/// The running SSH masters whose control socket is in `dir`, read from `/proc`.
pub fn ssh_masters_in(dir: &Path) -> Vec<Master> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut masters: Vec<Master> = entries
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<String> = cmdline
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if args.first()? != "ssh" || !args.iter().any(|a| a == "-M") {
                return None;
            }
            let socket = PathBuf::from(&args[args.iter().position(|a| a == "-S")? + 1]);
            socket.starts_with(dir).then(|| Master {
                pid,
                address: args.last().cloned().unwrap_or_default(),
                socket,
            })
        })
        .collect();
    masters.sort_by_key(|m| m.pid);
    masters
}

/// A fresh, empty directory for SSH masters, private to this user (lbctl insists), with a
/// path short enough for the sockets in it (a socket's path has at most 107 bytes).
fn fresh_control_dir() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "lbctl-test-ssh.{}.{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// Ends the masters kept in `dir` (SIGTERM: OpenSSH closes the connection and removes its
/// socket), then the directory.
fn close_masters(dir: &Path) {
    for master in ssh_masters_in(dir) {
        let _ = run(5, "kill", &["-TERM", &master.pid.to_string()]);
    }
    let _ = std::fs::remove_dir_all(dir);
}

impl Lab {
    /// Takes the lab lock and brings the lab up (idempotent), failing the test with the
    /// script's output when it cannot.
    pub fn up() -> Lab {
        require_root();
        // a lab test that failed left the lab down (its guard's drop ran): carry on
        let in_process = IN_PROCESS.lock().unwrap_or_else(|e| e.into_inner());
        let (lock, lock_stdin) = take_lock();
        let control_dir = fresh_control_dir();
        *CONTROL_DIR.lock().unwrap_or_else(|e| e.into_inner()) = Some(control_dir.clone());
        let lab = Lab {
            lock,
            lock_stdin: Some(lock_stdin),
            keep: std::env::var("LBCTL_KEEP_LAB").is_ok_and(|v| v == "1"),
            control_dir,
            _in_process: in_process,
        };
        lab.bring_up();
        lab
    }

    /// The SSH masters lbctl keeps for this test ([`crate::support::Lbctl::on_lab`]).
    pub fn ssh_masters(&self) -> Vec<Master> {
        ssh_masters_in(&self.control_dir)
    }

    /// Runs `lab.sh up` again (it repairs whatever is down) and fails the test if it fails.
    pub fn bring_up(&self) -> Duration {
        let start = Instant::now();
        let script = script();
        let out = Command::new("timeout")
            .args(["-k", "5", &UP_TIMEOUT_SECS.to_string()])
            .arg(&script)
            .arg("up")
            // the default three load balancers, which LBS describes: a lab of another size
            // left up by hand makes up fail with a clear message rather than confuse a test
            .env("LAB_LBS", "3")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{}",
            describe("lab.sh up failed", &out)
        );
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        start.elapsed()
    }

    /// Runs `lab.sh down` and fails the test if it fails.
    pub fn bring_down(&self) -> Duration {
        let start = Instant::now();
        let out = self.script(DOWN_TIMEOUT_SECS, &["down"]);
        assert!(
            out.status.success(),
            "{}",
            describe("lab.sh down failed", &out)
        );
        start.elapsed()
    }

    /// Runs `lab.sh args...` with a time limit.
    pub fn script(&self, secs: u32, args: &[&str]) -> Output {
        let script = script();
        run(secs, script.to_str().expect("utf-8 path"), args)
    }

    /// Runs a command inside a host's view (its network, mounts and hostname).
    pub fn exec(&self, host: &str, cmd: &[&str]) -> Output {
        let mut args = vec!["exec", host];
        args.extend_from_slice(cmd);
        self.script(60, &args)
    }

    /// Runs a command in a lab network namespace only (e.g. a probe from `lab-client`).
    pub fn netns(&self, ns: &str, secs: u32, cmd: &[&str], input: &[u8]) -> Output {
        let mut args = vec!["netns", "exec", ns];
        args.extend_from_slice(cmd);
        run_with_input(secs, "ip", &args, input)
    }

    /// What a TCP service says first (a lab worker's NodePort: its name, then it closes), from
    /// namespace `ns`; `address` is socat's (`TCP:10.77.77.100:3306`). The client only reads
    /// (`-u`), as a MySQL client waits for the server's greeting: it never closes its
    /// sending half first. One that does (socat with an empty stdin) loses the reply through
    /// HAProxy now and then: a close that comes while HAProxy is still connecting to the worker
    /// is, to HAProxy, a client that gave up (`CC` in its log), and it drops the connection
    /// (through the lab's VIP 13 of 300 such connections got nothing, 0 of 300 with `-u`).
    /// Ends at the server's close, or after 5 s without data (`-T 5`: the output is empty).
    pub fn tcp_greeting(&self, ns: &str, address: &str) -> Output {
        self.netns(ns, 10, &["socat", "-u", "-T", "5", address, "STDOUT"], b"")
    }

    /// The first datagram that comes back to one datagram `payload` sent to `host:port` from
    /// namespace `ns`, from a new source port (a new flow for nginx), waited for up to 5 s;
    /// stdout is the reply, trimmed, or empty (and a traceback on stderr) when none came.
    pub fn udp_reply(&self, ns: &str, host: &str, port: u16, payload: &str) -> Output {
        const SEND: &str = "import socket, sys\n\
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
            s.settimeout(5)\n\
            s.sendto(sys.argv[3].encode(), (sys.argv[1], int(sys.argv[2])))\n\
            print(s.recv(65536).decode(errors='replace').strip())\n";
        let port = port.to_string();
        self.netns(ns, 10, &["python3", "-c", SEND, host, &port, payload], b"")
    }

    /// Runs `command` as root on `ip` over SSH, verifying the host key.
    #[allow(dead_code)] // for tests that check a host over SSH as an operator would
    pub fn ssh(&self, ip: &str, command: &str) -> Output {
        let key = ssh_key();
        let known = format!("UserKnownHostsFile={}", known_hosts().display());
        let target = format!("root@{ip}");
        run(
            30,
            "ssh",
            &[
                "-i",
                key.to_str().expect("utf-8 path"),
                "-o",
                &known,
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=5",
                &target,
                command,
            ],
        )
    }

    /// The load balancers of `lbs` whose eth0 holds the VIP right now.
    pub fn vip_holders(&self, lbs: &[Host]) -> Vec<Host> {
        lbs.iter()
            .copied()
            .filter(|lb| {
                let out = run(
                    10,
                    "ip",
                    &["-n", lb.netns, "-o", "-4", "addr", "show", "dev", "eth0"],
                );
                String::from_utf8_lossy(&out.stdout).contains(&format!(" {VIP}/"))
            })
            .collect()
    }

    /// Waits (bounded) until exactly one of `lbs` holds the VIP, and returns it.
    pub fn wait_single_vip_holder(&self, lbs: &[Host], limit: Duration) -> Host {
        self.wait_vip(
            lbs,
            limit,
            "exactly one VIP holder",
            |holders| match holders {
                [one] => Some(*one),
                _ => None,
            },
        )
    }

    /// Waits (bounded) until `expected`, and only it, holds the VIP.
    pub fn wait_vip_held_by(&self, lbs: &[Host], expected: Host, limit: Duration) {
        self.wait_vip(
            lbs,
            limit,
            &format!("{} alone to hold the VIP", expected.name),
            |holders| (holders == [expected]).then_some(()),
        )
    }

    /// Polls the VIP's holders among `lbs` until `check` accepts them; past `limit`, fails
    /// with the holders then and the end of each one's keepalived log, which says why.
    fn wait_vip<T>(
        &self,
        lbs: &[Host],
        limit: Duration,
        what: &str,
        check: impl Fn(&[Host]) -> Option<T>,
    ) -> T {
        wait_for_or_explain(
            limit,
            what,
            || check(&self.vip_holders(lbs)),
            || {
                let holders = self.vip_holders(lbs);
                let mut text = format!(
                    " (held now by {:?})",
                    holders.iter().map(|h| h.name).collect::<Vec<_>>()
                );
                for lb in lbs {
                    let out = self.exec(lb.name, &["tail", "-n", "25", "/var/log/keepalived.log"]);
                    text += &format!(
                        "\n--- {}'s keepalived log, last lines\n{}",
                        lb.name,
                        String::from_utf8_lossy(&out.stdout)
                    );
                }
                text
            },
        )
    }

    /// SIGKILLs the daemon whose master's pid is in `host`'s `pid_file`, with its children (a
    /// worker of an earlier reload may end by itself meanwhile), and fails the test unless the
    /// master is gone within 5 s.
    pub fn kill_master(&self, host: &str, pid_file: &str) {
        let script = format!(
            "m=$(cat {pid_file}); kill -KILL $m $(pgrep -P $m) 2>/dev/null; for i in $(seq 50); do kill -0 $m 2>/dev/null || exit 0; sleep 0.1; done; exit 1"
        );
        let killed = self.exec(host, &["sh", "-c", &script]);
        assert!(
            killed.status.success(),
            "{}",
            describe(&format!("kill {host}:{pid_file}"), &killed)
        );
    }

    /// The pid of a daemon inside a host, from the host's own pid file (`/run/NAME.pid`).
    pub fn daemon_pid(&self, host: &str, pidfile: &str) -> u32 {
        let out = self.exec(host, &["cat", pidfile]);
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("{}", describe(&format!("no pid in {host}:{pidfile}"), &out)))
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        *CONTROL_DIR.lock().unwrap_or_else(|e| e.into_inner()) = None;
        close_masters(&self.control_dir);
        if self.keep {
            eprintln!(
                "LBCTL_KEEP_LAB=1: leaving the lab up ({} status)",
                script().display()
            );
        } else {
            let out = self.script(DOWN_TIMEOUT_SECS, &["down"]);
            if !out.status.success() {
                eprintln!("{}", describe("lab.sh down (on drop) failed", &out));
            }
        }
        // closing the pipe ends the lock holder, which releases the lock
        drop(self.lock_stdin.take());
        let _ = self.lock.wait();
    }
}

/// Starts the lock holder and waits (bounded, by `flock -w`) until it owns the lock.
fn take_lock() -> (Child, ChildStdin) {
    let mut child = Command::new("flock")
        .args([
            "-x",
            "-w",
            &LOCK_WAIT_SECS.to_string(),
            TEST_LOCK,
            "sh",
            "-c",
            "echo locked; exec cat >/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run flock(1) for {TEST_LOCK}: {e}"));
    let stdin = child.stdin.take().expect("piped stdin");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("reading from the lock holder: {e}"));
    if line.trim() != "locked" {
        let status = child.wait();
        panic!(
            "could not lock {TEST_LOCK} within {LOCK_WAIT_SECS} s (another test holds the lab?): \
             flock exited with {status:?}"
        );
    }
    (child, stdin)
}
