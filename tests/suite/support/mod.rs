//! What the integration tests share: [`Lbctl`], which runs the real binary the way a user
//! would and checks what the test expects of it; scratch directories and files; the namespace
//! lab ([`lab`]) and a real OpenSSH server ([`sshd`]).

pub mod lab;
pub mod sshd;

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// How long one lbctl run may take unless the test says otherwise (`timeout`).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// One run of `lbctl` and what the test expects of it, checked by [`Lbctl::run`]:
///
/// ```ignore
/// let run = Lbctl::new()
///     .args(["-i", "/nonexistent/inventory", "validate"])
///     .stderr_has("inventory not found")
///     .exit(1)
///     .run();
/// ```
///
/// It runs from the repository root (so relative inventories and role defaults are found),
/// with stdin closed, under `timeout` (five minutes unless [`Lbctl::timeout`] says), and
/// expects exit 0 unless [`Lbctl::exit`] says. Every unmet expectation is reported at once,
/// with the command and both streams.
///
/// SSH master connections: a run keeps none and reuses none (`LBCTL_SSH_PERSIST=0`), unless
/// the test says where to keep them ([`Lbctl::keep_connections_in`]); [`Lbctl::on_lab`] keeps
/// them, as lbctl does by default, in the held lab's own directory ([`lab::Lab`]). Masters
/// are found again by the login settings alone, which every lab test shares: a master left by
/// another test (or another process on the machine, or the user's own lbctl) must never stand
/// in for this test's connection.
#[must_use = "an Lbctl does nothing until run"]
pub struct Lbctl {
    args: Vec<String>,
    cwd: PathBuf,
    timeout: Duration,
    exit: i32,
    stdout_has: Vec<String>,
    stdout_lacks: Vec<String>,
    stderr_has: Vec<String>,
    /// Where lbctl keeps its SSH masters between runs; `None`: it keeps none.
    ssh_control_dir: Option<PathBuf>,
    /// Environment variables set for this run only.
    env: Vec<(String, String)>,
}

/// What a finished run printed, for the test's further checks.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Lbctl {
    pub fn new() -> Self {
        Lbctl {
            args: Vec::new(),
            cwd: repo_root(),
            timeout: DEFAULT_TIMEOUT,
            exit: 0,
            stdout_has: Vec::new(),
            stdout_lacks: Vec::new(),
            stderr_has: Vec::new(),
            ssh_control_dir: None,
            env: Vec::new(),
        }
    }

    /// lbctl on the lab's inventory (`-i inventory/lab`): hold a [`lab::Lab`] while it runs.
    /// Its SSH masters are kept between runs (lbctl's default) in that lab's own directory,
    /// so the runs of one lab test reuse them as an operator's runs do, and no other test's.
    pub fn on_lab() -> Self {
        let lbctl = Lbctl::new().args(["-i", "inventory/lab"]);
        match lab::ssh_control_dir() {
            Some(dir) => lbctl.keep_connections_in(dir),
            None => lbctl,
        }
    }

    /// Keeps SSH master connections between runs (`--ssh-persist`'s default) in `dir`, and
    /// reuses those found there.
    pub fn keep_connections_in(mut self, dir: impl Into<PathBuf>) -> Self {
        self.ssh_control_dir = Some(dir.into());
        self
    }

    /// Sets an environment variable for this run.
    pub fn env(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.push((name.to_string(), value.into()));
        self
    }

    pub fn arg(mut self, a: impl AsRef<str>) -> Self {
        self.args.push(a.as_ref().to_string());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    /// Runs lbctl from `dir` instead of the repository root.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = dir.into();
        self
    }

    /// Kills lbctl after `secs` seconds (the run then exits 124 and fails its exit check).
    pub fn timeout(mut self, secs: u64) -> Self {
        self.timeout = Duration::from_secs(secs);
        self
    }

    /// The exit code the run must end with (0 unless set).
    pub fn exit(mut self, code: i32) -> Self {
        self.exit = code;
        self
    }

    /// Standard output must contain `text`.
    pub fn stdout_has(mut self, text: impl Into<String>) -> Self {
        self.stdout_has.push(text.into());
        self
    }

    /// Standard output must not contain `text`.
    pub fn stdout_lacks(mut self, text: impl Into<String>) -> Self {
        self.stdout_lacks.push(text.into());
        self
    }

    /// Standard error must contain `text`.
    pub fn stderr_has(mut self, text: impl Into<String>) -> Self {
        self.stderr_has.push(text.into());
        self
    }

    /// Runs lbctl and fails the test, showing everything, unless every expectation holds.
    pub fn run(self) -> Run {
        let run = self.execute();
        let mut unmet = String::new();
        if run.code != self.exit {
            let _ = writeln!(unmet, "  exit {} (expected {})", run.code, self.exit);
            if run.code == 124 {
                let _ = writeln!(unmet, "  (124: killed after {:?})", self.timeout);
            }
        }
        for (stream, text, wanted, present) in [
            ("stdout", &run.stdout, &self.stdout_has, true),
            ("stdout", &run.stdout, &self.stdout_lacks, false),
            ("stderr", &run.stderr, &self.stderr_has, true),
        ] {
            for w in wanted
                .iter()
                .filter(|w| text.contains(w.as_str()) != present)
            {
                let verb = if present { "lacks" } else { "has" };
                let _ = writeln!(unmet, "  {stream} {verb} {w:?}");
            }
        }
        assert!(
            unmet.is_empty(),
            "`{}`:\n{unmet}--- stdout\n{}--- stderr\n{}",
            self.command_line(),
            run.stdout,
            run.stderr
        );
        run
    }

    /// Runs lbctl and checks nothing: for a test that gathers the failures of a table of
    /// cases, and for clean-up that must not fail a test twice.
    pub fn output(self) -> Run {
        assert!(
            self.exit == 0
                && self.stdout_has.is_empty()
                && self.stdout_lacks.is_empty()
                && self.stderr_has.is_empty(),
            "`{}`: output() checks nothing; use run() for expectations",
            self.command_line()
        );
        self.execute()
    }

    /// Starts lbctl itself (no `timeout` in between, so the child is lbctl: a test may kill
    /// it) with every stream closed, and checks nothing. Its SSH masters are not its children
    /// (OpenSSH puts a master in the background): [`lab::Lab::ssh_masters`] finds them.
    pub fn spawn(self) -> Child {
        self.command(env!("CARGO_BIN_EXE_lbctl"))
            .args(&self.args)
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", self.command_line()))
    }

    fn execute(&self) -> Run {
        let out = self
            .command("timeout")
            .args(["-k", "5", &self.timeout.as_secs().to_string()])
            .arg(env!("CARGO_BIN_EXE_lbctl"))
            .args(&self.args)
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", self.command_line()));
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `program` with lbctl's SSH settings in its environment.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        match &self.ssh_control_dir {
            Some(dir) => command
                .env_remove("LBCTL_SSH_PERSIST")
                .env("LBCTL_SSH_CONTROL_DIR", dir),
            None => command
                .env("LBCTL_SSH_PERSIST", "0")
                .env_remove("LBCTL_SSH_CONTROL_DIR"),
        };
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    fn command_line(&self) -> String {
        let mut line = String::from("lbctl");
        for a in &self.args {
            line.push(' ');
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || "'\"$".contains(c)) {
                line.push_str(&format!("{a:?}"));
            } else {
                line.push_str(a);
            }
        }
        line
    }
}

impl Run {
    /// Standard output as JSON (`--json`), failing the test when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}):\n--- stdout\n{}--- stderr\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// Every server `lbctl status --json` lists, over every backend of every host.
pub fn status_servers(status: &serde_json::Value) -> Vec<&serde_json::Value> {
    status["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|h| h["backends"].as_array().into_iter().flatten())
        .flat_map(|b| b["servers"].as_array().into_iter().flatten())
        .collect()
}

/// How many servers `lbctl status` lists on the lab with lbctl's configuration applied:
/// 3 load balancers x (3 TCP backends + the UDP one HAProxy checks) x 3 workers.
pub const LAB_SERVERS: usize = 36;

/// Waits (bounded by `limit`) until `lbctl status --json` on the lab lists all
/// [`LAB_SERVERS`] servers and `serving` holds for each (health checks need `rise` of them
/// after a reload), and returns that status.
pub fn wait_every_server(
    limit: Duration,
    what: &str,
    serving: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    lab::wait_for(limit, what, || {
        let run = Lbctl::on_lab()
            .args(["status", "--json"])
            .timeout(30)
            .output();
        if run.code != 0 {
            return None;
        }
        let status = run.json();
        let servers = status_servers(&status);
        (servers.len() == LAB_SERVERS && servers.iter().all(|s| serving(s))).then_some(status)
    })
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh, empty scratch directory under the target dir, unique per test name.
pub fn scratch(name: &str) -> PathBuf {
    let dir = repo_root().join("target/test-scratch").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// Makes a FIFO at `path` (`mkfifo`): a file that blocks whoever reads it.
pub fn mkfifo(path: impl AsRef<Path>) {
    let path = path.as_ref();
    let made = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success(), "mkfifo {}: {made}", path.display());
}

/// Writes `bytes` to a new file `name` in `dir` as lbctl writes a plan (mode 0600, created
/// fresh: an old one is removed first); its path.
pub fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut file, bytes).unwrap();
    path
}

/// Fails the test (never skips) when a required program or privilege is missing.
pub fn require_root_and(programs: &[&str]) {
    let uid = Command::new("id").arg("-u").output().expect("run id");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "this test needs root (network namespaces); run the suite as root, as .ci/run does"
    );
    for p in programs {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {p}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "`{p}` is not installed; .ci/run installs it (apt-get install haproxy keepalived nginx libnginx-mod-stream)"
        );
    }
}

/// The builder itself: each expectation fails the test when unmet, and only then.
mod builder {
    use super::Lbctl;

    #[test]
    fn met_expectations_pass_and_return_the_output() {
        let run = Lbctl::new()
            .arg("nosuch")
            .stderr_has("unrecognized subcommand 'nosuch'")
            .stdout_lacks("Usage")
            .exit(1)
            .run();
        assert_eq!(run.code, 1);
        assert!(run.stderr.contains("Usage: lbctl"), "{}", run.stderr);
    }

    #[test]
    #[should_panic(
        expected = "`lbctl nosuch`:\n  exit 1 (expected 0)\n  stderr lacks \"absent\"\n"
    )]
    fn unmet_expectations_fail_the_test_all_at_once() {
        let _ = Lbctl::new().arg("nosuch").stderr_has("absent").run();
    }

    #[test]
    #[should_panic(expected = "stdout has \"Usage\"")]
    fn text_that_must_be_absent_fails_the_test() {
        let _ = Lbctl::new().arg("--help").stdout_lacks("Usage").run();
    }
}

/// New integration tests join this binary: a `.rs` file elsewhere under `tests/` would be a
/// binary of its own (linked and run apart, its lab tests not serialized with these).
#[test]
fn every_integration_test_is_a_module_of_the_suite() {
    let tests = repo_root().join("tests");
    let mut stray = Vec::new();
    let mut dirs = vec![tests.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path == tests.join("suite") {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                stray.push(
                    path.strip_prefix(repo_root())
                        .unwrap()
                        .display()
                        .to_string(),
                );
            }
        }
    }
    assert!(
        stray.is_empty(),
        "{}: an integration test is a module of tests/suite/main.rs",
        stray.join(", ")
    );
}
