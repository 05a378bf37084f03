//! A real OpenSSH server on 127.0.0.1 for tests: its own host key, its own client key and
//! a known_hosts file that trusts it, nothing taken from or written to the user's `~/.ssh`.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lbctl::spec::{Connection, HostKeyPolicy};

const SSHD: &str = "/usr/sbin/sshd";

/// A directory under the system's temp dir, removed with everything in it on drop.
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    pub fn new(label: &str) -> Scratch {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "lbctl-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create a scratch directory");
        Scratch { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

pub struct Sshd {
    child: Child,
    pub port: u16,
    pub dir: Scratch,
}

impl Sshd {
    /// Starts `sshd -D` on a free port, and panics with the reason when it cannot: these
    /// tests need the real server, never a stand-in.
    pub fn start() -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: the transport tests need a real OpenSSH server \
             (apt-get install openssh-server)"
        );
        assert!(
            is_root(),
            "the transport tests start {SSHD} and log in as root, so they must run as root"
        );
        // The privilege separation directory that systemd would normally create.
        fs::create_dir_all("/run/sshd").expect("create /run/sshd");

        let dir = Scratch::new("sshd");
        keygen(&dir.join("host_key"));
        keygen(&dir.join("client_key"));
        fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys"))
            .expect("write authorized_keys");
        fs::write(dir.join("ssh_config"), "").expect("write an empty ssh_config");
        fs::write(dir.join("empty_known_hosts"), "").expect("write an empty known_hosts");

        let port = free_port();
        let host_key = fs::read_to_string(dir.join("host_key.pub")).expect("read the host key");
        let host_key: Vec<&str> = host_key.split_whitespace().take(2).collect();
        fs::write(
            dir.join("known_hosts"),
            format!("[127.0.0.1]:{port} {}\n", host_key.join(" ")),
        )
        .expect("write known_hosts");

        let config = format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {dir}/host_key\n\
             PidFile {dir}/sshd.pid\n\
             AuthorizedKeysFile {dir}/authorized_keys\n\
             PermitRootLogin prohibit-password\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             StrictModes no\n\
             LogLevel VERBOSE\n",
            dir = dir.path().display()
        );
        fs::write(dir.join("sshd_config"), config).expect("write sshd_config");
        let log = fs::File::create(dir.join("sshd.log")).expect("create the sshd log");
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(dir.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        let mut sshd = Sshd { child, port, dir };
        sshd.wait_until_listening();
        sshd
    }

    /// A connection that trusts this server's host key, as `root` with the test's key.
    pub fn connection(&self) -> Connection {
        Connection {
            name: "lb-test".to_owned(),
            address: "127.0.0.1".to_owned(),
            port: Some(self.port),
            user: Some("root".to_owned()),
            private_key: Some(self.dir.join("client_key")),
            known_hosts: Some(self.dir.join("known_hosts")),
            ssh_config: Some(self.dir.join("ssh_config")),
            become_root: false,
            strict_host_keys: HostKeyPolicy::Strict,
        }
    }

    /// Ends every session this server is serving (its per-connection processes), as a
    /// crashed host or a cut cable would, and waits until they are gone.
    pub fn end_sessions(&self) {
        let listener = self.child.id().to_string();
        let sessions: Vec<String> = fs::read_dir("/proc")
            .expect("read /proc")
            .filter_map(|entry| {
                let pid = entry.ok()?.file_name().into_string().ok()?;
                let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
                let parent = status.lines().find_map(|line| line.strip_prefix("PPid:"))?;
                (parent.trim() == listener).then_some(pid)
            })
            .collect();
        assert!(!sessions.is_empty(), "sshd serves no session");
        for pid in &sessions {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while sessions
            .iter()
            .any(|pid| Path::new(&format!("/proc/{pid}")).exists())
        {
            assert!(Instant::now() < deadline, "sshd sessions did not end");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("sshd exited with {status}:\n{}", self.log());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "sshd did not listen on port {} within 10 s:\n{}",
            self.port,
            self.log()
        );
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("find a free port")
        .port()
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "lbctl-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("run ssh-keygen (openssh-client)");
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .map(|uids| uids.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// A throwaway unprivileged login for `ansible_become` tests, removed on drop with its sudoers
/// entry: it logs in with the test server's key, and may run anything as root through
/// `sudo -n` when created with `may_sudo`.
pub struct LoginUser {
    pub name: String,
    sudoers: Option<PathBuf>,
}

impl LoginUser {
    pub fn create(label: &str, may_sudo: bool) -> LoginUser {
        assert!(
            Path::new("/usr/bin/sudo").exists(),
            "sudo is missing: the become tests log in as an unprivileged user and need it \
             (apt-get install sudo; scripts/test installs it)"
        );
        assert!(is_root(), "creating a test user needs root");
        let name = format!("lbctl-{label}-{}", std::process::id());
        let _ = Command::new("userdel").arg(&name).status();
        run(Command::new("useradd")
            .args(["--system", "--no-create-home", "--home-dir", "/nonexistent"])
            .args(["--shell", "/bin/sh"])
            .arg(&name));
        // A system account's password is locked ("!"), and sshd refuses locked accounts even
        // for a key; "*" only means that no password works.
        run(Command::new("usermod").args(["-p", "*"]).arg(&name));
        let mut user = LoginUser {
            name,
            sudoers: None,
        };
        if may_sudo {
            let file = PathBuf::from(format!("/etc/sudoers.d/{}", user.name));
            fs::write(&file, format!("{} ALL=(root) NOPASSWD: ALL\n", user.name))
                .expect("write the sudoers entry");
            run(Command::new("chmod").arg("0440").arg(&file));
            user.sudoers = Some(file);
        }
        user
    }
}

impl Drop for LoginUser {
    fn drop(&mut self) {
        if let Some(file) = &self.sudoers {
            let _ = fs::remove_file(file);
        }
        let _ = Command::new("pkill")
            .args(["-KILL", "-u", &self.name])
            .status();
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

fn run(command: &mut Command) {
    let status = command.status().expect("run a user administration command");
    assert!(status.success(), "{command:?} failed: {status}");
}
