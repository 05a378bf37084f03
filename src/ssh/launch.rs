//! Starting a master connection, its TCP connection dialed by lbctl where it may be
//! (`dialer.rs`).
//!
//! The openssh crate's builder starts masters with options of its choosing and no others;
//! this starts them as it does (`ssh -M -f -N`, the control socket and log in a private
//! temporary directory, the crate's `Session` then driving the master over the socket), with
//! the `ProxyCommand` that dials added where the user's configuration leaves room for it.

use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use super::TransportError;
use super::dialer::{Dial, LOG_VARIABLE, dialer};
use super::session::{ConnectOptions, KEEPALIVE, log_message, login_failed, whole_seconds};
use crate::spec::{Connection, HostKeyPolicy};

/// Starts a master for `conn` in a new directory under `control`, persisting for `persist`
/// when idle (else until the session closes it). The error is ssh's own account (its log).
pub(super) async fn master(
    conn: &Connection,
    options: &ConnectOptions,
    control: &Path,
    persist: Option<Duration>,
) -> Result<openssh::Session, TransportError> {
    let common = ssh_options(conn, options);
    let dialed = match dialer() {
        Some(dialer) if shell_runs_proxy_commands() => effective_dial(&common, &conn.address)
            .await
            .map(|dial| (dial, dialer)),
        _ => None,
    };
    let no_directory = |e: std::io::Error| {
        login_failed(
            conn,
            format!(
                "cannot make a private directory in {} for the SSH control socket: {e}",
                control.display()
            ),
        )
    };
    let directory = tempfile::Builder::new()
        .prefix(".ssh-connection")
        .tempdir_in(control)
        .map_err(no_directory)?;
    let log = directory.path().join("log");
    // ssh logs to the file (-E); its own standard error goes there too.
    let stderr = fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&log)
        .map_err(no_directory)?;
    let persist = match persist {
        Some(idle) => format!("ControlPersist={}s", whole_seconds(idle).as_secs()),
        None => "ControlPersist=yes".to_owned(),
    };
    let mut master = tokio::process::Command::new("ssh");
    master
        .arg("-E")
        .arg(&log)
        .arg("-S")
        .arg(directory.path().join("master"))
        .args(["-M", "-f", "-N", "-o", &persist])
        .args(&common);
    if let Some((dial, dialer)) = &dialed {
        master
            .arg("-o")
            .arg(format!("ProxyCommand={}", dial.proxy_command(dialer)))
            .args(["-o", "ProxyUseFdpass=yes"])
            .env(LOG_VARIABLE, &log);
    }
    master
        .arg("--")
        .arg(&conn.address)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true);
    // ssh forks once it has logged in: its exit says how the login went.
    let status = master
        .status()
        .await
        .map_err(|e| login_failed(conn, format!("cannot run ssh: {e}")))?;
    if status.success() {
        return Ok(openssh::Session::new_native_mux(directory));
    }
    let message = log_message(&fs::read_to_string(&log).unwrap_or_default());
    Err(login_failed(
        conn,
        if message.is_empty() {
            format!("ssh exited with {status} and an empty log")
        } else {
            message
        },
    ))
}

/// Whether the shell ssh runs a `ProxyCommand` with (`$SHELL`, else /bin/sh) is one that
/// runs `exec` and plain words as written: not, say, `nologin` or `false`.
fn shell_runs_proxy_commands() -> bool {
    const SHELLS: [&str; 14] = [
        "sh", "bash", "dash", "zsh", "ksh", "ksh93", "mksh", "ash", "busybox", "yash", "posh",
        "fish", "csh", "tcsh",
    ];
    match std::env::var_os("SHELL") {
        None => true,
        Some(shell) => Path::new(&shell)
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| SHELLS.contains(&name)),
    }
}

/// What `ssh -G` says ssh would connect to, when lbctl may dial it.
async fn effective_dial(common: &[OsString], address: &str) -> Option<Dial> {
    let report = tokio::process::Command::new("ssh")
        .arg("-G")
        .args(common)
        .arg("--")
        .arg(address)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .ok()?;
    if !report.status.success() {
        return None;
    }
    Dial::from_effective_config(&String::from_utf8_lossy(&report.stdout))
}

/// The options lbctl gives ssh for `conn`, as the openssh crate's builder gives them.
fn ssh_options(conn: &Connection, options: &ConnectOptions) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    let mut option = |text: String| {
        args.push("-o".into());
        args.push(text.into());
    };
    option("BatchMode=yes".into());
    option(match conn.strict_host_keys {
        HostKeyPolicy::Strict => "StrictHostKeyChecking=yes".into(),
        HostKeyPolicy::AcceptNew => "StrictHostKeyChecking=accept-new".into(),
    });
    option(format!(
        "ConnectTimeout={}",
        whole_seconds(options.connect_timeout).as_secs()
    ));
    option(format!("ServerAliveInterval={}", KEEPALIVE.as_secs()));
    if let Some(port) = conn.port {
        args.extend(["-p".into(), port.to_string().into()]);
    }
    if let Some(user) = &conn.user {
        args.extend(["-l".into(), user.into()]);
    }
    if let Some(key) = &conn.private_key {
        args.extend(["-o".into(), "IdentitiesOnly=yes".into(), "-i".into()]);
        args.push(key.into());
    }
    if let Some(config) = &conn.ssh_config {
        args.push("-F".into());
        args.push(config.into());
    }
    if let Some(known_hosts) = &conn.known_hosts {
        let mut option: OsString = "UserKnownHostsFile=".into();
        option.push(known_hosts);
        args.extend(["-o".into(), option]);
    }
    args
}
