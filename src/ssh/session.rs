//! A session to one host: open it, and run a shell script there in one round trip.
//!
//! It drives the system's OpenSSH through the `openssh` crate (a multiplexed master
//! connection per host), so `~/.ssh/config`, agents, `ProxyJump` and known_hosts behave
//! exactly as they do for `ssh` itself. Scripts go over the master's control socket
//! directly (the crate's native mux), without starting an `ssh` client per script. It
//! knows nothing about what the scripts do.

use std::ops::Deref;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openssh::Stdio;
use tokio::io::AsyncReadExt;

use super::{RemoteOutput, Running, TransportError, launch, masters};
use crate::spec::Connection;

/// How long a dead peer may stay silent before OpenSSH drops the connection
/// (`ServerAliveInterval`; OpenSSH gives up after three unanswered probes).
pub(super) const KEEPALIVE: Duration = Duration::from_secs(5);

/// How long after the first script on a new connection is started the second, empty
/// session is opened ([`Session::start`]).
const NUDGE_AFTER: Duration = Duration::from_millis(8);

/// How long closing a session waits for that empty session to end.
const NUDGE_WAIT: Duration = Duration::from_secs(2);

/// The remote command when root is wanted: `sudo -n` only when the login user is not
/// already root, decided on the host because the user may come from `~/.ssh/config`.
/// `SSH_CONNECTION` goes along as the script's `$1` (sudo drops it from the environment): a
/// drill that cuts the host off keeps lbctl's own connection open.
const BECOME_ROOT: &str =
    r#"if [ "$(id -u)" -eq 0 ]; then exec sh -s; else exec sudo -n sh -s "$SSH_CONNECTION"; fi"#;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Applied to the TCP connect and the SSH handshake (`ConnectTimeout`, rounded up to
    /// whole seconds). The whole connect, authentication and any `ProxyJump` hop included,
    /// is additionally cut off after twice this plus five seconds.
    pub connect_timeout: Duration,
    /// Keep the master connection open after the session, for the next lbctl run to reuse;
    /// `None` closes it when the session ends.
    pub persist: Option<Persist>,
}

/// Master connections that outlive the run (OpenSSH's `ControlPersist`, as Ansible does by
/// default), kept in `directory` (`masters.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persist {
    /// How long an unused master stays open.
    pub idle: Duration,
    pub directory: PathBuf,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            persist: None,
        }
    }
}

/// An open SSH connection to one host.
#[derive(Debug)]
pub struct Session {
    pub(super) link: Link,
    become_root: bool,
    /// Whether the master was already open, left by an earlier run.
    resumed: bool,
    /// Whether no script has been started over a new master yet (see [`Session::start`]).
    first: AtomicBool,
    /// The empty session [`Session::start`] opened beside the first script, until it ends.
    nudge: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Session {
    /// Opens the master connection. Unknown host keys are refused under
    /// [`HostKeyPolicy::Strict`]; changed host keys are always refused.
    pub async fn connect(
        conn: &Connection,
        options: &ConnectOptions,
    ) -> Result<Session, TransportError> {
        let host = conn.name.clone();
        let target = target(conn);
        let become_root = conn.become_root && conn.user.as_deref() != Some("root");
        let persisted = options.persist.as_ref().and_then(|persist| {
            let masters = masters::Directory::open(&persist.directory)?;
            Some((masters, persist.idle))
        });
        if let Some((masters, _)) = &persisted
            && let Some(ssh) = masters.resume(conn)
        {
            return Ok(Session {
                link: Link::new(ssh, true, host, target),
                become_root,
                resumed: true,
                first: AtomicBool::new(false),
                nudge: Mutex::new(None),
            });
        }
        if let Some((masters, _)) = &persisted {
            masters.forget_exited();
        }
        let deadline = options.connect_timeout * 2 + Duration::from_secs(5);
        let connected = tokio::time::timeout(deadline, open(conn, options, &persisted)).await;
        let ssh = match connected {
            Err(_) => {
                return Err(TransportError::Timeout {
                    host,
                    target,
                    waited: deadline,
                });
            }
            Ok(Err(error)) => return Err(error),
            Ok(Ok(ssh)) => ssh,
        };
        if let Some((masters, _)) = &persisted {
            masters.remember(conn, ssh.control_socket());
        }
        Ok(Session {
            link: Link::new(ssh, persisted.is_some(), host, target),
            become_root,
            resumed: false,
            first: AtomicBool::new(true),
            nudge: Mutex::new(None),
        })
    }

    /// Inventory name of the host.
    pub fn host(&self) -> &str {
        &self.link.0.host
    }

    /// Whether this session reuses a master connection an earlier run left open.
    pub fn resumed(&self) -> bool {
        self.resumed
    }

    /// Runs `script` with `sh -s` on the host (through `sudo -n` when the connection asks
    /// for root and the login user is not root), feeding it on stdin: one round trip,
    /// whatever the script does. A non-zero exit is not an error; a lost connection is.
    pub async fn run(&self, script: &str) -> Result<RemoteOutput, TransportError> {
        self.start(script).await?.finish().await
    }

    /// Starts `script` as [`Session::run`] does, but leaves its stdin open after the script:
    /// its output can be read as it comes ([`Running::read_until`]), an answer written to it
    /// ([`Running::answer`]), or another script for the same shell ([`Running::send`]). It
    /// holds its own reference to the connection: the session is closed once every script
    /// started over it has finished.
    ///
    /// The first script over a new connection has a second, empty session (`true`) opened
    /// beside it, a moment later. Right after the login, OpenSSH's server sends a few small
    /// messages (host keys, the key's options) one after the other, without `TCP_NODELAY`:
    /// the kernel holds the first session's confirmation until the client acknowledges
    /// them, and the client, with nothing to send, delays that acknowledgement by 40 ms on
    /// Linux. The second session's request carries the acknowledgement at once: measured on
    /// the lab, the first session opens in about 25 ms instead of 60.
    pub async fn start(&self, script: &str) -> Result<Running, TransportError> {
        if self.first.swap(false, Ordering::Relaxed) {
            let link = self.link.clone();
            let nudge = tokio::spawn(async move {
                tokio::time::sleep(NUDGE_AFTER).await;
                let mut command = openssh::Session::to_command(link, "true");
                command
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                if let Ok(child) = command.spawn().await {
                    let _ = child.wait().await;
                }
            });
            if let Ok(mut slot) = self.nudge.lock() {
                *slot = Some(nudge);
            }
        }
        let mut command = openssh::Session::to_command(self.link.clone(), "sh");
        if self.become_root {
            command.arg("-c").arg(BECOME_ROOT);
        } else {
            command.arg("-s");
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .await
            .map_err(|error| self.link.run_error(&error))?;
        let stdin = child.stdin().take();
        let stdout = child.stdout().take();
        let stderr = child.stderr().take();
        // stderr is drained all along, so that a chatty script never blocks on it.
        let stderr = tokio::spawn(async move {
            let mut buffer = Vec::new();
            if let Some(mut stderr) = stderr {
                stderr.read_to_end(&mut buffer).await?;
            }
            Ok::<_, std::io::Error>(buffer)
        });
        let mut running = Running {
            link: self.link.clone(),
            child,
            stdin,
            stdout: stdout.map(tokio::io::BufReader::new),
            seen: Vec::new(),
            stderr,
        };
        running.write(script.as_bytes()).await?;
        Ok(running)
    }

    /// Ends the session: the master connection closes, unless it is to persist, in which
    /// case OpenSSH closes it once it has been idle for the time asked. A script still
    /// running over it ([`Session::start`]) keeps the connection until it is dropped.
    pub async fn close(self) -> Result<(), TransportError> {
        let nudge = self.nudge.lock().ok().and_then(|mut slot| slot.take());
        if let Some(mut nudge) = nudge {
            // It is over within milliseconds, unless the connection died under it.
            if tokio::time::timeout(NUDGE_WAIT, &mut nudge).await.is_err() {
                nudge.abort();
                let _ = nudge.await;
            }
        }
        let Link(link) = self.link;
        // The last script to let go of it lets the master go (see `Inner`'s drop).
        let Ok(mut inner) = Arc::try_unwrap(link) else {
            return Ok(());
        };
        if inner.persistent {
            return Ok(());
        }
        let Some(ssh) = inner.ssh.take() else {
            return Ok(());
        };
        ssh.close()
            .await
            .map_err(|error| TransportError::Disconnected {
                host: std::mem::take(&mut inner.host),
                target: std::mem::take(&mut inner.target),
                message: ssh_message(&error),
            })
    }
}

/// Starts the master connection (`launch.rs`), its socket in the persisting masters'
/// directory, else in lbctl's default one, else in a private temporary directory.
async fn open(
    conn: &Connection,
    options: &ConnectOptions,
    persisted: &Option<(masters::Directory, Duration)>,
) -> Result<openssh::Session, TransportError> {
    let control = match persisted {
        Some((masters, _)) => masters.path().to_path_buf(),
        None => masters::Directory::open(&masters::default_masters_directory())
            .map_or_else(std::env::temp_dir, |d| d.path().to_path_buf()),
    };
    let idle = persisted.as_ref().map(|(_, idle)| *idle);
    launch::master(conn, options, &control, idle).await
}

/// A login that failed, as ssh told it (`message`): a host key ssh refused, or anything else.
pub(super) fn login_failed(conn: &Connection, message: String) -> TransportError {
    let (host, target) = (conn.name.clone(), target(conn));
    if message.contains("Host key verification failed") {
        TransportError::HostKey {
            host,
            target,
            message,
        }
    } else {
        TransportError::Connect {
            host,
            target,
            message,
        }
    }
}

/// The connection behind a session, shared with the scripts started over it, and what
/// names it in errors.
#[derive(Debug, Clone)]
pub(super) struct Link(Arc<Inner>);

/// When the last reference goes, a persistent master is detached (left open for the next
/// run, as [`Session::close`] leaves it), any other dropped: openssh asks it to exit. A
/// session dropped rather than closed (a command that reads its hosts' answers and ends)
/// used to close a new persistent master, so only masters an apply or a plan opened were
/// kept.
#[derive(Debug)]
pub(super) struct Inner {
    /// Taken only by [`Session::close`] and by the drop, once the last reference is gone.
    ssh: Option<openssh::Session>,
    /// The master outlives the session (see [`ConnectOptions::persist`]).
    persistent: bool,
    host: String,
    target: String,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(ssh) = self.ssh.take()
            && self.persistent
        {
            ssh.detach();
        }
    }
}

impl Deref for Link {
    type Target = openssh::Session;

    fn deref(&self) -> &openssh::Session {
        // Present for as long as a reference to it exists: see `Inner::ssh`.
        self.0
            .ssh
            .as_ref()
            .expect("a master is taken only once its last reference is gone")
    }
}

impl Link {
    fn new(ssh: openssh::Session, persistent: bool, host: String, target: String) -> Link {
        Link(Arc::new(Inner {
            ssh: Some(ssh),
            persistent,
            host,
            target,
        }))
    }

    pub(super) fn io_error(&self, error: &std::io::Error) -> TransportError {
        self.lost(error).unwrap_or_else(|| TransportError::Run {
            host: self.0.host.clone(),
            target: self.0.target.clone(),
            message: error.to_string(),
        })
    }

    /// When `error` says the master's control socket went away under a script, and the
    /// master no longer accepts on it (it exited: its keep-alives went unanswered, the host
    /// closed the connection), the connection is reported lost with what the master wrote
    /// last in its log ("Timeout, server 10.0.0.3 not responding."), rather than as the
    /// socket's "unexpected end of file".
    fn lost(&self, error: &(dyn std::error::Error + 'static)) -> Option<TransportError> {
        use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
        let mut cause = Some(error);
        let gone = std::iter::from_fn(|| {
            let this = cause?;
            cause = this.source();
            Some(this)
        })
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| {
            matches!(
                e.kind(),
                UnexpectedEof | BrokenPipe | ConnectionReset | ConnectionAborted
            )
        });
        let socket = self.0.ssh.as_ref()?.control_socket();
        // A master that still accepts on its socket runs: the script's own channel ended
        // (a shell that exited before reading its input), which is not a lost connection.
        if !gone || std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return None;
        }
        let said = master_log(&socket.with_file_name("log")).unwrap_or_default();
        Some(TransportError::Disconnected {
            host: self.0.host.clone(),
            target: self.0.target.clone(),
            message: if said.is_empty() {
                format!("its master connection ended ({error})")
            } else {
                said
            },
        })
    }

    pub(super) fn disconnected(&self, error: &openssh::Error) -> TransportError {
        TransportError::Disconnected {
            host: self.0.host.clone(),
            target: self.0.target.clone(),
            message: ssh_message(error),
        }
    }

    pub(super) fn run_error(&self, error: &openssh::Error) -> TransportError {
        if matches!(error, openssh::Error::Disconnected) {
            self.disconnected(error)
        } else if let Some(lost) = self.lost(error) {
            lost
        } else {
            TransportError::Run {
                host: self.0.host.clone(),
                target: self.0.target.clone(),
                message: ssh_message(error),
            }
        }
    }
}

/// `address:port` as the user would type it, the port left out when `~/.ssh/config`
/// or OpenSSH's default decides it.
fn target(conn: &Connection) -> String {
    let address = if conn.address.contains(':') {
        format!("[{}]", conn.address)
    } else {
        conn.address.clone()
    };
    match conn.port {
        Some(port) => format!("{address}:{port}"),
        None => address,
    }
}

pub(super) fn whole_seconds(duration: Duration) -> Duration {
    let seconds = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    Duration::from_secs(seconds.max(1))
}

/// OpenSSH's own words for what went wrong: the innermost error message, as [`log_message`]
/// tells it.
/// The last lines of a master's log (`ssh -E`), as [`log_message`] gives them: what it said
/// before it exited. Read only as a regular file, its last 4 KiB.
fn master_log(path: &std::path::Path) -> Option<String> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    file.seek(SeekFrom::Start(meta.len().saturating_sub(4096)))
        .ok()?;
    let mut tail = Vec::new();
    file.take(4096).read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    let lines: Vec<&str> = text.lines().rev().take(3).collect();
    let lines: Vec<&str> = lines.into_iter().rev().collect();
    Some(log_message(&lines.join("\n")))
}

pub(super) fn ssh_message(error: &openssh::Error) -> String {
    let mut innermost: &dyn std::error::Error = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    let message = log_message(&innermost.to_string());
    if message.is_empty() {
        error.to_string()
    } else {
        message
    }
}

/// What ssh printed, one line per line, without the noise lines it prints on success too,
/// and without the `ssh: ` it starts its errors with. When lbctl dialed and could not
/// connect, the dialer's line says why, and ssh's own lines about the missing connection
/// are left out.
pub(super) fn log_message(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(|line| line.trim_end_matches('\r').trim())
        .map(|line| line.strip_prefix("ssh: ").unwrap_or(line))
        .filter(|line| !line.is_empty() && !line.starts_with("Warning: Permanently added"))
        .collect();
    let no_connection = |line: &str| NO_CONNECTION_PASSED.iter().any(|p| line.starts_with(p));
    let dialer_said = lines.iter().any(|line| !no_connection(line));
    let mut message = String::new();
    for line in lines {
        if dialer_said && no_connection(line) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(if message.ends_with('.') { " " } else { "; " });
        }
        message.push_str(line);
    }
    message
}

/// How ssh's lines start when the `ProxyCommand` exits without handing it a connection.
const NO_CONNECTION_PASSED: [&str; 2] = [
    "proxy dialer did not pass back a connection",
    "mm_receive_fd: ",
];

/// Closes sessions concurrently: each close waits for its master `ssh` to exit, and one at a
/// time that adds up to seconds on a large fleet.
pub async fn close_all(sessions: impl IntoIterator<Item = Session>) {
    let mut set = tokio::task::JoinSet::new();
    for session in sessions {
        set.spawn(async move {
            let _ = session.close().await;
        });
    }
    set.join_all().await;
}
