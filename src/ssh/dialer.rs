//! lbctl opens the TCP connection for OpenSSH, with `TCP_NODELAY` set before the first byte.
//!
//! OpenSSH's client sets `TCP_NODELAY` only for sessions that ask for a terminal, and
//! lbctl's never do. During a login it sends its `NEWKEYS` and, right after, its request for
//! the authentication service: two small writes. The kernel holds the second until the server
//! acknowledges the first, and the server, with nothing to say, delays that acknowledgement
//! by 40 ms (Linux). Captured on the lab's bridge, every fresh login paid it: 41–44 ms, on
//! every host at once, before any script could start.
//!
//! So lbctl dials: ssh's `ProxyCommand` runs `lbctl ssh-dial` ([`Dial::argv`]), which
//! connects as ssh itself would (address family, connect timeout and attempts, TCP
//! keepalives, addresses in the resolver's order) with `TCP_NODELAY` set, and hands the
//! connected socket back to ssh (`ProxyUseFdpass`, [`pass_to_ssh`]). ssh then talks over it
//! exactly as over a socket of its own: host key verification, authentication and the rest
//! of `~/.ssh/config` stay ssh's.
//!
//! lbctl dials only where the user's configuration leaves the connection to ssh, as
//! `ssh -G` reports it for that host ([`Dial::from_effective_config`]): no `ProxyCommand`
//! or `ProxyJump` (a proxy of the user's decides), no `BindAddress` or `BindInterface`, no
//! `CanonicalizeHostname` (ssh does not canonicalize a proxied name) and no `CheckHostIP`
//! (ssh cannot check the address of a proxied connection). Anywhere else ssh connects itself,
//! as it always did.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};

/// The lbctl executable that `ProxyCommand` runs; unset, ssh connects itself.
static DIALER: OnceLock<PathBuf> = OnceLock::new();

/// Lets ssh's connections be dialed by `exe` (lbctl's own executable, which has the
/// `ssh-dial` command). A path that cannot go into a `ProxyCommand` unquoted is not used:
/// ssh hands the command to the user's shell, whichever it is.
pub fn dial_through(exe: PathBuf) {
    if exe
        .to_str()
        .is_some_and(|path| path.starts_with('/') && path.chars().all(|c| plain(c) || c == '/'))
    {
        let _ = DIALER.set(exe);
    }
}

/// The executable set by [`dial_through`].
pub(super) fn dialer() -> Option<&'static Path> {
    DIALER.get().map(PathBuf::as_path)
}

/// A character that means the same to every shell and to ssh's `%` expansion.
fn plain(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | ',' | '=' | '@' | ':')
}

/// Which addresses a name may resolve to (`AddressFamily`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Any,
    Inet,
    Inet6,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Any => "any",
            Family::Inet => "inet",
            Family::Inet6 => "inet6",
        }
    }

    pub fn parse(name: &str) -> Option<Family> {
        match name {
            "any" => Some(Family::Any),
            "inet" => Some(Family::Inet),
            "inet6" => Some(Family::Inet6),
            _ => None,
        }
    }

    fn admits(self, address: &SocketAddr) -> bool {
        match self {
            Family::Any => true,
            Family::Inet => address.is_ipv4(),
            Family::Inet6 => address.is_ipv6(),
        }
    }
}

/// Why `ssh-dial` could not hand ssh a connection; `Display` is ssh's own words for it, as
/// ssh prints them after `ssh: `.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("Could not resolve hostname {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("connect to host {host} port {port}: {reason}")]
    Connect {
        host: String,
        port: u16,
        reason: String,
    },
    #[error("cannot hand the connection to ssh: {0}")]
    Handover(#[source] io::Error),
}

/// One connection to dial, with ssh's settings for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    pub host: String,
    pub port: u16,
    pub family: Family,
    /// `ConnectTimeout` in seconds; `None` waits as long as the kernel does.
    pub timeout: Option<u64>,
    /// `ConnectionAttempts`: tries, a second apart.
    pub attempts: u32,
    /// `TCPKeepAlive`.
    pub keepalive: bool,
}

impl Dial {
    /// The connection ssh would open, from `ssh -G`'s report of its settings for a host;
    /// `None` where ssh must open it itself (see the module's doc), or the report is not
    /// understood.
    pub fn from_effective_config(report: &str) -> Option<Dial> {
        let mut host = None;
        let mut port = None;
        let mut family = Family::Any;
        let mut timeout = None;
        let mut attempts = 1;
        let mut keepalive = true;
        for line in report.lines() {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            let value = value.trim();
            match key.to_ascii_lowercase().as_str() {
                "proxycommand" | "proxyjump" | "bindaddress" | "bindinterface" => return None,
                "canonicalizehostname" if value != "false" => return None,
                "checkhostip" if value != "no" => return None,
                "hostname" => host = Some(value.to_owned()),
                "port" => port = Some(value.parse().ok()?),
                "addressfamily" => family = Family::parse(value)?,
                "connecttimeout" if value != "none" => timeout = Some(value.parse().ok()?),
                "connectionattempts" => attempts = value.parse().ok()?,
                "tcpkeepalive" => keepalive = value == "yes",
                _ => {}
            }
        }
        let host = host.filter(|h| !h.starts_with('-') && h.chars().all(plain))?;
        Some(Dial {
            host,
            port: port?,
            family,
            timeout,
            attempts: attempts.max(1),
            keepalive,
        })
    }

    /// The `ssh-dial` command's arguments for this connection.
    pub fn argv(&self) -> Vec<String> {
        let mut argv = vec![
            "ssh-dial".to_owned(),
            self.host.clone(),
            self.port.to_string(),
            "--family".to_owned(),
            self.family.name().to_owned(),
            "--attempts".to_owned(),
            self.attempts.to_string(),
        ];
        if let Some(seconds) = self.timeout {
            argv.extend(["--timeout".to_owned(), seconds.to_string()]);
        }
        if !self.keepalive {
            argv.push("--no-keepalive".to_owned());
        }
        argv
    }

    /// The `ProxyCommand` that runs `dialer` for this connection: every word plain (see
    /// [`plain`]), so that no shell and no `%` expansion reads it otherwise.
    pub fn proxy_command(&self, dialer: &Path) -> String {
        let mut command = dialer.display().to_string();
        for word in self.argv() {
            command.push(' ');
            command.push_str(&word);
        }
        command
    }

    /// Connects as ssh would: every address the name resolves to (of the family asked), in
    /// order, each within the timeout; all of them again, a second later, for each further
    /// attempt. The error is ssh's own words for it, as ssh would print them.
    pub fn connect(&self) -> Result<TcpStream, DialError> {
        let addresses: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| DialError::Resolve {
                host: self.host.clone(),
                reason: resolver_message(&e),
            })?
            .filter(|a| self.family.admits(a))
            .collect();
        if addresses.is_empty() {
            return Err(DialError::Resolve {
                host: self.host.clone(),
                reason: "Address family for hostname not supported".to_owned(),
            });
        }
        let mut last = None;
        for attempt in 0..self.attempts {
            if attempt > 0 {
                std::thread::sleep(Duration::from_secs(1));
            }
            for address in &addresses {
                let connected = match self.timeout {
                    Some(seconds) => {
                        TcpStream::connect_timeout(address, Duration::from_secs(seconds.max(1)))
                    }
                    None => TcpStream::connect(address),
                };
                match connected.and_then(|stream| self.tune(stream)) {
                    Ok(stream) => return Ok(stream),
                    Err(error) => last = Some(error),
                }
            }
        }
        Err(DialError::Connect {
            host: self.host.clone(),
            port: self.port,
            reason: last.map_or_else(|| "no address".to_owned(), |e| os_message(&e)),
        })
    }

    fn tune(&self, stream: TcpStream) -> io::Result<TcpStream> {
        stream.set_nodelay(true)?;
        if self.keepalive {
            rustix::net::sockopt::set_socket_keepalive(&stream, true)?;
        }
        Ok(stream)
    }
}

/// Where the launcher tells `ssh-dial` to write why it could not connect: the master's log.
/// ssh sends a `ProxyCommand`'s standard error to /dev/null when the master is to persist
/// (`ControlPersist`), and the reason would be lost.
pub const LOG_VARIABLE: &str = "LBCTL_SSH_DIAL_LOG";

/// `lbctl ssh-dial`'s work: connects, and hands the connection to the ssh that ran it.
pub fn dial_for_ssh(dial: &Dial) -> Result<(), DialError> {
    let stream = dial.connect()?;
    pass_to_ssh(&stream, io::stdout()).map_err(DialError::Handover)
}

/// Adds `line` to the log named by [`LOG_VARIABLE`], a file the launcher created: never
/// created here, and never through a symbolic link.
pub fn add_to_log(line: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let Some(path) = std::env::var_os(LOG_VARIABLE) else {
        return;
    };
    if let Ok(mut log) = std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        let _ = writeln!(log, "{line}");
    }
}

/// Hands `stream` to the ssh that ran this command: ssh reads it from the socket it gave as
/// standard output (`ProxyUseFdpass`), with one byte beside it.
fn pass_to_ssh(stream: &TcpStream, ssh: impl AsFd) -> io::Result<()> {
    let fds = [stream.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("no room for the descriptor"));
    }
    rustix::net::sendmsg(ssh, &[IoSlice::new(&[0])], &mut control, SendFlags::empty())?;
    Ok(())
}

/// The system's message without Rust's ` (os error N)`, as ssh prints `strerror`.
fn os_message(error: &io::Error) -> String {
    if error.kind() == io::ErrorKind::TimedOut {
        return "Connection timed out".to_owned();
    }
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// The resolver's message (`Name or service not known`), without Rust's preamble.
fn resolver_message(error: &io::Error) -> String {
    let text = error.to_string();
    text.strip_prefix("failed to lookup address information: ")
        .map_or(text.clone(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "user root\nhostname 10.77.77.11\nport 22\naddressfamily any\n\
        canonicalizehostname false\ncheckhostip no\ntcpkeepalive yes\nconnectionattempts 1\n\
        connecttimeout 10\nproxyusefdpass no\nipqos lowdelay throughput\n";

    #[test]
    fn a_host_ssh_would_connect_to_itself_is_dialed_with_its_settings() {
        let dial = Dial::from_effective_config(REPORT).unwrap();
        assert_eq!(
            dial,
            Dial {
                host: "10.77.77.11".into(),
                port: 22,
                family: Family::Any,
                timeout: Some(10),
                attempts: 1,
                keepalive: true,
            }
        );
        assert_eq!(
            dial.proxy_command(Path::new("/usr/bin/lbctl")),
            "/usr/bin/lbctl ssh-dial 10.77.77.11 22 --family any --attempts 1 --timeout 10"
        );
        let other = REPORT
            .replace("addressfamily any", "addressfamily inet6")
            .replace("connecttimeout 10", "connecttimeout none")
            .replace("tcpkeepalive yes", "tcpkeepalive no")
            .replace("connectionattempts 1", "connectionattempts 3");
        let dial = Dial::from_effective_config(&other).unwrap();
        assert_eq!(
            dial.argv()[1..],
            [
                "10.77.77.11",
                "22",
                "--family",
                "inet6",
                "--attempts",
                "3",
                "--no-keepalive"
            ]
        );
    }

    #[test]
    fn ssh_connects_itself_where_the_users_configuration_decides_the_connection() {
        for extra in [
            "proxycommand nc %h %p",
            "proxyjump bastion",
            "bindaddress 10.0.0.1",
            "bindinterface eth1",
        ] {
            let report = format!("{REPORT}{extra}\n");
            assert_eq!(Dial::from_effective_config(&report), None, "{extra}");
        }
        for (from, to) in [
            ("canonicalizehostname false", "canonicalizehostname true"),
            ("canonicalizehostname false", "canonicalizehostname always"),
            ("checkhostip no", "checkhostip yes"),
            ("addressfamily any", "addressfamily sideways"),
            ("port 22", "port twenty-two"),
            // a name no shell may read otherwise: only plain characters are dialed
            ("hostname 10.77.77.11", "hostname lb1;reboot"),
            ("hostname 10.77.77.11", "hostname $(id)"),
            ("hostname 10.77.77.11", "hostname fe80::1%eth0"),
            ("hostname 10.77.77.11", "hostname -oProxyCommand=x"),
        ] {
            let report = REPORT.replace(from, to);
            assert_eq!(Dial::from_effective_config(&report), None, "{to}");
        }
        assert_eq!(Dial::from_effective_config(""), None);
    }

    #[test]
    fn a_refused_connection_is_reported_in_ssh_s_words() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let dial = Dial {
            host: "127.0.0.1".into(),
            port,
            family: Family::Any,
            timeout: Some(2),
            attempts: 1,
            keepalive: true,
        };
        assert_eq!(
            dial.connect().unwrap_err().to_string(),
            format!("connect to host 127.0.0.1 port {port}: Connection refused")
        );
        let inet6 = Dial {
            family: Family::Inet6,
            ..dial
        };
        assert!(
            inet6
                .connect()
                .unwrap_err()
                .to_string()
                .starts_with("Could not resolve hostname 127.0.0.1: "),
        );
    }

    #[test]
    fn the_connection_is_handed_over_with_nodelay_and_keepalive_set() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dial = Dial {
            host: "127.0.0.1".into(),
            port: listener.local_addr().unwrap().port(),
            family: Family::Inet,
            timeout: None,
            attempts: 1,
            keepalive: true,
        };
        let stream = dial.connect().unwrap();
        let (ssh, ours) = std::os::unix::net::UnixStream::pair().unwrap();
        pass_to_ssh(&stream, &ours).unwrap();
        drop(stream);

        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
        let mut byte = [0u8; 1];
        let got = rustix::net::recvmsg(
            &ssh,
            &mut [io::IoSliceMut::new(&mut byte)],
            &mut control,
            rustix::net::RecvFlags::empty(),
        )
        .unwrap();
        assert_eq!(got.bytes, 1);
        let received = control
            .drain()
            .find_map(|message| match message {
                rustix::net::RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
                _ => None,
            })
            .expect("a descriptor");
        let received = TcpStream::from(received);
        assert!(received.nodelay().unwrap());
        assert!(rustix::net::sockopt::socket_keepalive(&received).unwrap());
        let (mut accepted, _) = listener.accept().unwrap();
        use std::io::{Read, Write};
        (&received).write_all(b"SSH-2.0-x\r\n").unwrap();
        let mut banner = [0u8; 11];
        accepted.read_exact(&mut banner).unwrap();
        assert_eq!(&banner, b"SSH-2.0-x\r\n");
    }
}
