//! The SSH layer against a real `sshd`, and lbctl's remote scripts run by a real `sh` with
//! the real `haproxy -c` as the check. A temp directory plays the load balancer.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use lbctl::remote::{
    APPLIED, ApplyReport, Deployment, FetchOptions, GO, Keep, LockState, ManagedFile, PART_END,
    READY, SPECULATION_DECLINED, SPECULATION_STAGING, Service, ServiceControl, Step, Verify,
    apply_script_with_lock, fetch_script, fetch_then, first_part, held_apply_script, parse_apply,
    parse_fetch, parse_fetch_knowing, sha256_hex, speculative_apply_script,
};
use lbctl::spec::HostKeyPolicy;
use lbctl::ssh::{ConnectOptions, Persist, Running, Session, TransportError};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::support::mkfifo;
use crate::support::sshd::{LoginUser, Scratch, Sshd, free_port};

const HAPROXY: &str = "/usr/sbin/haproxy";

/// Connections are dialed by lbctl's executable where the configuration allows, as lbctl's
/// own commands do (`main.rs`).
fn dialing() {
    lbctl::ssh::dial_through(PathBuf::from(env!("CARGO_BIN_EXE_lbctl")));
}

fn options() -> ConnectOptions {
    dialing();
    ConnectOptions {
        connect_timeout: Duration::from_secs(5),
        persist: None,
    }
}

#[tokio::test]
async fn ssh_runs_a_script_and_reports_stdout_stderr_and_status() {
    let sshd = Sshd::start();
    let session = Session::connect(&sshd.connection(), &options())
        .await
        .unwrap_or_else(|error| panic!("{error}\n{}", sshd.log()));

    let output = session
        .run("echo hello\necho warning >&2\nexit 3\n")
        .await
        .unwrap();
    assert_eq!(output.status, Some(3));
    assert_eq!(output.stdout, b"hello\n");
    assert_eq!(output.stderr, b"warning\n");
    // OpenSSH reports 255 and death by a signal alike; the process mux reports 127 apart.
    assert_eq!(session.run("exit 127").await.unwrap().status, Some(127));
    assert_eq!(session.run("kill -KILL $$").await.unwrap().status, None);

    // A script far larger than a pipe buffer arrives whole, in one round trip.
    let big = "x".repeat(100_000);
    let script = format!("cat <<'EOF' | wc -c\n{big}\nEOF\nid -un\n");
    let output = session.run(&script).await.unwrap();
    assert!(output.success(), "{output}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "100001\nroot\n");

    session.close().await.unwrap();
}

/// The pid of the sshd process that serves the connection a script runs over.
async fn served_by(session: &Session) -> String {
    let output = session.run("echo $PPID").await.unwrap();
    assert!(output.success(), "{output}");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Ends the masters a test keeps in a directory, even when it fails.
struct Masters(PathBuf);

impl Drop for Masters {
    fn drop(&mut self) {
        for record in fs::read_dir(&self.0).into_iter().flatten().flatten() {
            let _ = Command::new("ssh")
                .arg("-S")
                .arg(record.path())
                .args(["-O", "exit", "lb-test"])
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn persisting_in(directory: &Path) -> ConnectOptions {
    dialing();
    ConnectOptions {
        connect_timeout: Duration::from_secs(5),
        persist: Some(Persist {
            idle: Duration::from_secs(30),
            directory: directory.to_path_buf(),
        }),
    }
}

#[tokio::test]
async fn a_persisting_master_is_reused_by_the_next_run_and_replaced_once_it_has_exited() {
    let sshd = Sshd::start();
    let directory = sshd.dir.join("masters");
    let options = persisting_in(&directory);
    let _masters = Masters(directory.clone());

    let first = Session::connect(&sshd.connection(), &options)
        .await
        .unwrap();
    assert!(!first.resumed());
    let server = served_by(&first).await;
    first.close().await.unwrap();
    assert_eq!(
        fs::metadata(&directory).unwrap().permissions().mode() & 0o777,
        0o700,
        "the control directory must be private"
    );

    // The next run skips the login: same master, same sshd connection.
    let second = Session::connect(&sshd.connection(), &options)
        .await
        .unwrap();
    assert!(second.resumed());
    assert_eq!(served_by(&second).await, server);
    second.close().await.unwrap();

    // Another login (here: another user name for the same host) never reuses it.
    let mut other = sshd.connection();
    other.user = None;
    let third = Session::connect(&other, &options).await.unwrap();
    assert!(!third.resumed());
    third.close().await.unwrap();

    // Once the master has gone (the host dropped the connection), a fresh one is opened.
    sshd.end_sessions();
    wait_until(|| {
        let records = fs::read_dir(&directory).unwrap().flatten();
        records
            .filter(|r| r.file_type().unwrap().is_symlink())
            .all(|r| fs::metadata(r.path()).is_err())
    });
    let fourth = Session::connect(&sshd.connection(), &options)
        .await
        .unwrap();
    assert!(!fourth.resumed());
    assert_ne!(served_by(&fourth).await, server);
    fourth.close().await.unwrap();
}

/// A command that reads its hosts' answers and ends (`status`) drops its sessions rather
/// than closing them: a new persisting master outlives that too, for the next run, where it
/// used to be closed (only an apply's or a plan's masters were kept). A master that does not
/// persist still ends with its last script.
#[tokio::test]
async fn a_persisting_master_outlives_a_session_dropped_without_close() {
    let sshd = Sshd::start();
    let directory = sshd.dir.join("masters");
    let kept = persisting_in(&directory);
    let _masters = Masters(directory.clone());
    let first = Session::connect(&sshd.connection(), &kept).await.unwrap();
    assert!(!first.resumed());
    let server = served_by(&first).await;
    drop(first);
    let second = Session::connect(&sshd.connection(), &kept).await.unwrap();
    assert!(
        second.resumed(),
        "the dropped session's master was not kept"
    );
    assert_eq!(served_by(&second).await, server);
    drop(second);
    let third = Session::connect(&sshd.connection(), &kept).await.unwrap();
    assert!(third.resumed());
    third.close().await.unwrap();

    // without persisting, the next connection is another login
    let once = Session::connect(&sshd.connection(), &options())
        .await
        .unwrap();
    let once_server = served_by(&once).await;
    drop(once);
    let again = Session::connect(&sshd.connection(), &options())
        .await
        .unwrap();
    assert!(!again.resumed());
    assert_ne!(served_by(&again).await, once_server);
    again.close().await.unwrap();
}

/// A kept master serves the runs of the network namespace it was opened in only: in another
/// one the same address may be another machine (here: nothing, the namespace has no up
/// interface), so lbctl connects there afresh, and fails.
#[tokio::test]
async fn a_kept_master_is_not_resumed_from_another_network_namespace() {
    let sshd = Sshd::start();
    let directory = sshd.dir.join("masters");
    let options = persisting_in(&directory);
    let _masters = Masters(directory.clone());
    let first = Session::connect(&sshd.connection(), &options)
        .await
        .unwrap();
    first.close().await.unwrap();
    let again = Session::connect(&sshd.connection(), &options)
        .await
        .unwrap();
    assert!(again.resumed());
    again.close().await.unwrap();

    let connection = sshd.connection();
    let elsewhere = std::thread::spawn(move || {
        // SAFETY: unshare has no memory-safety preconditions; CLONE_NEWNET moves this thread
        // alone (and the processes it starts) to a new network namespace.
        let moved = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            moved,
            0,
            "unshare(CLONE_NEWNET) (needs root): {}",
            std::io::Error::last_os_error()
        );
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let session = Session::connect(&connection, &options).await?;
                let resumed = session.resumed();
                session.close().await?;
                Ok::<_, TransportError>(resumed)
            })
    })
    .join()
    .unwrap();
    match elsewhere {
        Err(TransportError::Connect { message, .. }) => {
            assert!(message.contains("unreachable"), "{message}");
        }
        other => panic!("from another network namespace: {other:?}"),
    }
}

/// Waits up to ten seconds for `done`.
fn wait_until(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting after 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn ssh_become_root_runs_the_script_as_root() {
    let sshd = Sshd::start();
    let mut connection = sshd.connection();
    // The login user comes from ssh's defaults, so whether sudo is needed is decided on
    // the host; the login user here is root, so the script runs without sudo.
    connection.user = None;
    connection.become_root = true;
    let session = Session::connect(&connection, &options()).await.unwrap();
    let output = session.run("id -u\n").await.unwrap();
    assert!(output.success(), "{output}");
    assert_eq!(output.stdout, b"0\n");
    session.close().await.unwrap();
}

#[tokio::test]
async fn become_runs_an_apply_through_sudo_for_an_unprivileged_login() {
    let sshd = Sshd::start();
    // A directory only root may enter, as /etc/haproxy is for anyone else to write.
    let host = Scratch::new("become-sudo");
    fs::set_permissions(host.path(), fs::Permissions::from_mode(0o700)).unwrap();
    let live = path(&host, "haproxy.cfg");
    let new = haproxy_cfg(&host, free_port(), &[]);
    let deployment = haproxy_deployment(&live, &new, "true");
    let script = apply_script_with_lock(&deployment, &path(&host, "apply.lock"));
    let login = |user: &LoginUser, become_root: bool| {
        let mut connection = sshd.connection();
        connection.user = Some(user.name.clone());
        connection.become_root = become_root;
        connection
    };

    // The login may sudo: with become, the apply runs as root and writes the file.
    let admin = LoginUser::create("sudo", true);
    let session = Session::connect(&login(&admin, true), &options())
        .await
        .unwrap();
    assert_eq!(session.run("id -u\n").await.unwrap().stdout, b"0\n");
    let output = session.run(&script).await.unwrap();
    session.close().await.unwrap();
    let report = parse_apply(&output.stdout).unwrap();
    assert!(report.succeeded(), "{report:?}\n{output}");
    assert_eq!(fs::read_to_string(&live).unwrap(), new);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(&live).unwrap().uid(), 0);

    // Without become, the same login cannot take the lock, and the report says where.
    let session = Session::connect(&login(&admin, false), &options())
        .await
        .unwrap();
    let output = session.run(&script).await.unwrap();
    session.close().await.unwrap();
    let report = parse_apply(&output.stdout).unwrap();
    let failure = report.failure.expect("an apply without root fails");
    assert_eq!(failure.step, Step::Lock, "{failure:?}");

    // A login that may not sudo: `sudo -n` refuses instead of asking for a password, and
    // lbctl says that the script did not run and why that may be.
    let stranger = LoginUser::create("nosudo", false);
    let session = Session::connect(&login(&stranger, true), &options())
        .await
        .unwrap();
    let output = session.run(&script).await.unwrap();
    session.close().await.unwrap();
    assert!(!output.success(), "{output}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("sudo"),
        "{output}"
    );
    let error = parse_apply(&output.stdout).unwrap_err().to_string();
    assert!(error.contains("sudo -n"), "{error}");
    assert_eq!(fs::read_to_string(&live).unwrap(), new);
}

#[tokio::test]
async fn ssh_run_on_a_lost_connection_fails_with_the_reason() {
    let sshd = Sshd::start();
    let session = Session::connect(&sshd.connection(), &options())
        .await
        .unwrap();
    assert!(session.run("true").await.unwrap().success());
    sshd.end_sessions();

    let started = Instant::now();
    let error = session.run("true").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(error, TransportError::Disconnected { .. }),
        "unexpected error: {error}"
    );
    let message = error.to_string();
    assert!(message.contains("lb-test"), "{message}");
}

/// The master ssh's own account of how it connected to `sshd` (its log, which the user's
/// configuration here asks to be at `LogLevel DEBUG`), after a script ran over it.
async fn how_ssh_connected(sshd: &Sshd, config: &str) -> String {
    fs::write(
        sshd.dir.join("ssh_config"),
        format!("Host 127.0.0.1\n  LogLevel DEBUG\n{config}"),
    )
    .unwrap();
    let directory = sshd.dir.join("masters");
    let _masters = Masters(directory.clone());
    let session = Session::connect(&sshd.connection(), &persisting_in(&directory))
        .await
        .unwrap_or_else(|error| panic!("{error}\n{}", sshd.log()));
    let output = session.run("echo $SSH_CONNECTION").await.unwrap();
    assert!(output.success(), "{output}");
    let seen = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        seen.ends_with(&format!(" 127.0.0.1 {}\n", sshd.port)),
        "{seen}"
    );
    let log: String = fs::read_dir(&directory)
        .unwrap()
        .flatten()
        .filter_map(|entry| fs::read_to_string(entry.path().join("log")).ok())
        .collect();
    session.close().await.unwrap();
    log
}

#[tokio::test]
async fn lbctl_dials_a_new_connection_for_ssh_and_ssh_logs_in_over_it() {
    let sshd = Sshd::start();
    let log = how_ssh_connected(&sshd, "").await;
    // `lbctl ssh-dial` connected, and handed the socket to ssh (ProxyUseFdpass); the
    // dialer's own tests check that it has TCP_NODELAY set.
    let dialed = format!(
        "Executing proxy dialer command: exec {} ssh-dial 127.0.0.1 {} --family any",
        env!("CARGO_BIN_EXE_lbctl"),
        sshd.port
    );
    assert!(log.contains(&dialed), "{log}");
    assert!(!log.contains("Connecting to 127.0.0.1"), "{log}");
}

#[tokio::test]
async fn ssh_connects_itself_where_the_users_configuration_asks_what_a_dialed_socket_cannot_give() {
    let sshd = Sshd::start();
    // ssh checks a host's address in known_hosts only on a connection it opened itself.
    let log = how_ssh_connected(&sshd, "  CheckHostIP yes\n").await;
    let direct = format!("Connecting to 127.0.0.1 [127.0.0.1] port {}.", sshd.port);
    assert!(log.contains(&direct), "{log}");
    assert!(!log.contains("proxy"), "{log}");
}

#[tokio::test]
async fn a_proxy_command_of_the_users_own_is_used_instead_of_lbctl_s_dialer() {
    let sshd = Sshd::start();
    let marker = sshd.dir.join("proxy-used");
    let config = format!(
        "  ProxyCommand sh -c 'echo %h:%p > {}; exec socat - TCP:%h:%p'\n",
        marker.display()
    );
    let log = how_ssh_connected(&sshd, &config).await;
    assert!(log.contains("Executing proxy command: exec sh -c"), "{log}");
    assert!(!log.contains("ssh-dial"), "{log}");
    assert_eq!(
        fs::read_to_string(&marker).unwrap(),
        format!("127.0.0.1:{}\n", sshd.port)
    );
}

#[tokio::test]
async fn ssh_refuses_an_unknown_host_key_under_strict() {
    let sshd = Sshd::start();
    let mut connection = sshd.connection();
    connection.known_hosts = Some(sshd.dir.join("empty_known_hosts"));

    let error = Session::connect(&connection, &options()).await.unwrap_err();
    assert!(
        matches!(error, TransportError::HostKey { .. }),
        "unexpected error: {error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("Host key verification failed"),
        "{message}"
    );
    assert!(message.contains("lb-test"), "{message}");
    assert!(
        message.contains(&format!("127.0.0.1:{}", sshd.port)),
        "{message}"
    );
    assert_eq!(
        fs::read_to_string(sshd.dir.join("empty_known_hosts")).unwrap(),
        ""
    );
}

#[tokio::test]
async fn ssh_accept_new_records_an_unknown_host_key() {
    let sshd = Sshd::start();
    let mut connection = sshd.connection();
    connection.known_hosts = Some(sshd.dir.join("empty_known_hosts"));
    connection.strict_host_keys = HostKeyPolicy::AcceptNew;

    let session = Session::connect(&connection, &options()).await.unwrap();
    assert!(session.run("true").await.unwrap().success());
    session.close().await.unwrap();
    let recorded = fs::read_to_string(sshd.dir.join("empty_known_hosts")).unwrap();
    assert!(
        recorded.contains(&format!("[127.0.0.1]:{}", sshd.port)),
        "{recorded}"
    );
}

#[tokio::test]
async fn ssh_connect_to_a_closed_port_fails_fast() {
    let sshd = Sshd::start();
    let mut connection = sshd.connection();
    let port = free_port();
    connection.port = Some(port);

    let started = Instant::now();
    let error = Session::connect(&connection, &options()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        matches!(error, TransportError::Connect { .. }),
        "unexpected error: {error}"
    );
    let message = error.to_string();
    assert!(message.contains("Connection refused"), "{message}");
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
}

#[tokio::test]
async fn ssh_connect_to_a_silent_server_fails_within_the_timeout() {
    let sshd = Sshd::start();
    // Accepts TCP connections (the kernel does) but never says a word of SSH.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut connection = sshd.connection();
    connection.port = Some(silent.local_addr().unwrap().port());
    dialing();
    let options = ConnectOptions {
        connect_timeout: Duration::from_secs(1),
        persist: None,
    };

    let started = Instant::now();
    let error = Session::connect(&connection, &options).await.unwrap_err();
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(8), "took {waited:?}");
    let message = error.to_string();
    assert!(message.contains("timed out"), "{message}");
}

#[tokio::test]
async fn fetch_over_ssh_returns_files_byte_for_byte_and_absent_files_as_absent() {
    let sshd = Sshd::start();
    let host = Scratch::new("fetch");
    let all_bytes: Vec<u8> = (0..=255).collect();
    let tricky = b"@@lbctl end fetch\r\n@@lbctl file - absent\n-\n".to_vec();
    fs::create_dir(host.join("dir with space")).unwrap();
    let files: Vec<(String, Option<Vec<u8>>)> = vec![
        (path(&host, "binary"), Some(all_bytes)),
        (path(&host, "tricky.cfg"), Some(tricky)),
        (path(&host, "empty"), Some(Vec::new())),
        (
            path(&host, "dir with space/it's.cfg"),
            Some(b"quoted".to_vec()),
        ),
        (path(&host, "absent.cfg"), None),
        (path(&host, "no-such-dir/absent.cfg"), None),
    ];
    for (path, content) in &files {
        if let Some(content) = content {
            fs::write(path, content).unwrap();
        }
    }
    let paths: Vec<String> = files.iter().map(|(path, _)| path.clone()).collect();
    let vips = vec!["127.0.0.1/8".to_owned(), "192.0.2.10".to_owned()];
    let options = FetchOptions {
        lock: path(&host, "apply.lock"),
        ..FetchOptions::default()
    };

    let session = Session::connect(&sshd.connection(), &self::options())
        .await
        .unwrap();
    let output = session
        .run(&fetch_script(&paths, &vips, &options))
        .await
        .unwrap();
    assert!(output.success(), "{output}");
    let fetched = parse_fetch(&output.stdout).unwrap();
    let expected_files: BTreeMap<_, _> = files.iter().cloned().collect();
    assert_eq!(fetched.files, expected_files);

    // Given the digests of what lbctl would write, a file that matches comes back as a match
    // (its content is not sent again); one that differs, or is absent, as before.
    let (binary, tricky, absent) = (&files[0], &files[1], &files[4]);
    let known: BTreeMap<&str, &[u8]> = BTreeMap::from([
        (binary.0.as_str(), binary.1.as_deref().unwrap()),
        (
            tricky.0.as_str(),
            b"what lbctl would write instead".as_slice(),
        ),
        (absent.0.as_str(), b"new".as_slice()),
    ]);
    let with_digests = FetchOptions {
        expected: known
            .iter()
            .map(|(path, content)| (path.to_string(), sha256_hex(content)))
            .collect(),
        ..options.clone()
    };
    let output = session
        .run(&fetch_script(&paths, &vips, &with_digests))
        .await
        .unwrap();
    session.close().await.unwrap();
    assert!(output.success(), "{output}");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        report.contains(&format!(
            " matches {}",
            sha256_hex(binary.1.as_deref().unwrap())
        )),
        "{report}"
    );
    assert_eq!(report.matches(" matches ").count(), 1, "{report}");
    let fetched = parse_fetch_knowing(&output.stdout, &known).unwrap();
    assert_eq!(fetched.files, expected_files);
    // A match is only believed for a digest lbctl sent.
    assert!(parse_fetch(&output.stdout).is_err());
    assert_eq!(
        fetched.vips,
        BTreeMap::from([
            ("127.0.0.1/8".to_owned(), true),
            ("192.0.2.10".to_owned(), false)
        ])
    );
    assert!(fetched.holds_any_vip());
    assert_eq!(fetched.lock, LockState::Free);
}

#[tokio::test]
async fn fetch_reports_a_directory_as_unreadable() {
    let host = Scratch::new("fetch-dir");
    let script = fetch_script(&[path(&host, "")], &[], &FetchOptions::default());
    let output = run_locally(&script).await;
    let error = parse_fetch(&output.stdout).unwrap_err();
    assert!(error.to_string().contains("is a directory"), "{error}");
}

/// Why fetch refuses to read `path`; it is asked for the file's digest too, which must not
/// read it either (a FIFO would block `sha256sum`).
async fn fetch_refusal(path: &str) -> String {
    let options = FetchOptions {
        expected: BTreeMap::from([(path.to_owned(), sha256_hex(b"new"))]),
        ..FetchOptions::default()
    };
    let script = fetch_script(&[path.to_owned()], &[], &options);
    let output = run_locally(&script).await;
    parse_fetch(&output.stdout)
        .map(|f| panic!("{path} was read: {f:?}"))
        .unwrap_err()
        .to_string()
}

/// `plan` shows the current content of exactly the managed file: never what a link there (or
/// on the way to it) points at, never a FIFO or a device, never a file too large to send.
/// What a plan says an apply starts rests on this: the daemon runs when its pid file names a
/// live process. A pid file that is missing, empty, not a number, names no process or is a
/// FIFO (read, it would block the fetch) says it does not.
#[tokio::test]
async fn fetch_says_which_daemons_run_reading_each_pid_file_once() {
    let host = Scratch::new("fetch-daemons");
    let me = std::process::id();
    let mut exited = Command::new("true").spawn().unwrap();
    let gone = exited.id();
    exited.wait().unwrap();
    let files = [
        ("live", format!("{me}\n")),
        ("unterminated", me.to_string()),
        ("gone", format!("{gone}\n")),
        ("empty", String::new()),
        ("word", "12ab\n".to_string()),
    ];
    for (name, content) in &files {
        fs::write(host.join(&format!("{name}.pid")), content).unwrap();
    }
    mkfifo(path(&host, "fifo.pid"));
    let names = [
        "live",
        "unterminated",
        "gone",
        "empty",
        "word",
        "fifo",
        "missing",
    ];
    let options = FetchOptions {
        daemons: names
            .iter()
            .map(|name| (name.to_string(), path(&host, &format!("{name}.pid"))))
            .collect(),
        ..FetchOptions::default()
    };
    let fetched = tokio::time::timeout(Duration::from_secs(10), fetch_locally(&options))
        .await
        .expect("the fetch ended");
    let running = |name: &str| (name.to_string(), name == "live" || name == "unterminated");
    assert_eq!(fetched.daemons, names.iter().map(|n| running(n)).collect());
}

#[tokio::test]
async fn fetch_reads_no_link_no_special_file_and_no_huge_file() {
    let host = Scratch::new("fetch-refusals");
    let secret = path(&host, "secret");
    fs::write(&secret, "root-only secret\n").unwrap();
    let link = path(&host, "haproxy.cfg");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    let error = fetch_refusal(&link).await;
    assert!(error.contains("is a symbolic link"), "{error}");
    assert!(!error.contains("root-only"), "{error}");

    fs::create_dir(host.join("real")).unwrap();
    fs::write(host.join("real/haproxy.cfg"), "behind a link\n").unwrap();
    std::os::unix::fs::symlink(host.join("real"), host.join("linked")).unwrap();
    let error = fetch_refusal(&path(&host, "linked/haproxy.cfg")).await;
    assert!(error.contains("through a symbolic link"), "{error}");

    let fifo = path(&host, "fifo.cfg");
    mkfifo(&fifo);
    let error = fetch_refusal(&fifo).await;
    assert!(error.contains("not a regular file"), "{error}");

    let huge = path(&host, "huge.cfg");
    fs::File::create(&huge)
        .unwrap()
        .set_len(lbctl::remote::MAX_FETCH_BYTES + 1)
        .unwrap();
    let error = fetch_refusal(&huge).await;
    assert!(error.contains("more than lbctl reads"), "{error}");
}

/// Links planted at the names apply stages and keeps files under (by anyone who may write into
/// the directory, such as the service's own user) are removed and replaced, never written
/// through: what they point at keeps its content.
#[tokio::test]
async fn apply_never_writes_through_a_link_it_did_not_create() {
    let host = Scratch::new("apply-planted-links");
    fs::set_permissions(host.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let live = path(&host, "haproxy.cfg");
    let old = haproxy_cfg(&host, free_port(), &[]);
    let new = haproxy_cfg(&host, free_port(), &[free_port()]);
    fs::write(&live, &old).unwrap();
    let victims = [path(&host, "victim-prev"), path(&host, "victim-new")];
    for victim in &victims {
        fs::write(victim, "precious\n").unwrap();
    }
    std::os::unix::fs::symlink(&victims[0], format!("{live}.lbctl-prev")).unwrap();
    std::os::unix::fs::symlink(&victims[1], format!("{live}.lbctl-new")).unwrap();

    let (report, output) = apply_locally(&haproxy_deployment(&live, &new, "true"), &host).await;

    assert!(report.succeeded(), "{report:?}\n{output:?}");
    assert_eq!(fs::read_to_string(&live).unwrap(), new);
    for victim in &victims {
        assert_eq!(
            fs::read_to_string(victim).unwrap(),
            "precious\n",
            "{victim}"
        );
    }
    let prev = format!("{live}.lbctl-prev");
    assert!(
        !fs::symlink_metadata(&prev)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read_to_string(&prev).unwrap(), old);

    // A rollback puts the previous file back by rename, through no link either.
    let newer = haproxy_cfg(&host, free_port(), &[]);
    fs::remove_file(&prev).unwrap();
    std::os::unix::fs::symlink(&victims[0], &prev).unwrap();
    let (report, _) = apply_locally(&haproxy_deployment(&live, &newer, "false"), &host).await;
    assert!(
        report
            .steps
            .iter()
            .any(|s| s.step == Step::Rollback && s.ok && s.detail == format!("restored {live}")),
        "{report:?}"
    );
    assert_eq!(fs::read_to_string(&live).unwrap(), new);
    assert_eq!(fs::read_to_string(&victims[0]).unwrap(), "precious\n");
}

/// A live file that is itself a link, or a directory on the way that is one, is refused
/// before anything changes: apply does not write through links it did not create.
#[tokio::test]
async fn apply_refuses_a_live_file_or_directory_that_is_a_link() {
    let host = Scratch::new("apply-linked-live");
    let victim = path(&host, "victim.cfg");
    fs::write(&victim, "precious\n").unwrap();
    let live = path(&host, "haproxy.cfg");
    std::os::unix::fs::symlink(&victim, &live).unwrap();
    let new = haproxy_cfg(&host, free_port(), &[]);
    let (report, _) = apply_locally(&haproxy_deployment(&live, &new, "true"), &host).await;
    let failure = report.failure.expect("refused");
    assert_eq!(failure.step, Step::Stage);
    assert!(failure.stderr.contains("symbolic link"), "{failure}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(
        fs::symlink_metadata(&live)
            .unwrap()
            .file_type()
            .is_symlink()
    );

    fs::create_dir(host.join("real")).unwrap();
    std::os::unix::fs::symlink(host.join("real"), host.join("linked")).unwrap();
    let behind = path(&host, "linked/haproxy.cfg");
    let (report, _) = apply_locally(&haproxy_deployment(&behind, &new, "true"), &host).await;
    let failure = report.failure.expect("refused");
    assert!(failure.stderr.contains("symbolic link"), "{failure}");
    assert_eq!(fs::read_dir(host.join("real")).unwrap().count(), 0);
}

#[tokio::test]
async fn a_held_apply_checks_then_waits_and_changes_nothing_without_the_go_ahead() {
    let SshChange {
        live,
        old,
        new,
        deployment,
        lock,
        session,
        _host,
        _sshd,
    } = SshChange::connect("apply-held").await;

    // Ready means staged and checked: the new file waits next to the live one, unchanged.
    let held = hold(&session, &deployment, &lock).await;
    assert_eq!(fs::read_to_string(&live).unwrap(), old);
    assert_eq!(
        fs::read_to_string(format!("{live}.lbctl-new")).unwrap(),
        new
    );
    // No go-ahead (stdin closes): the script stops, removes what it staged, keeps the file.
    let output = held.finish().await.unwrap();
    let report = parse_apply(&output.stdout).unwrap();
    assert!(!report.succeeded());
    assert!(report.ready);
    assert_eq!(
        report.failure.as_ref().unwrap().step,
        Step::Hold,
        "{report:?}"
    );
    assert!(!report.rolled_back);
    assert_eq!(fs::read_to_string(&live).unwrap(), old);
    assert!(!Path::new(&format!("{live}.lbctl-new")).exists());
    let steps: Vec<Step> = report.steps.iter().map(|s| s.step).collect();
    assert!(!steps.contains(&Step::Swap), "{steps:?}");

    // With the go-ahead it goes on: swap, reload, verify.
    let mut held = hold(&session, &deployment, &lock).await;
    held.answer(GO).await.unwrap();
    let output = held.finish().await.unwrap();
    session.close().await.unwrap();
    let report = parse_apply(&output.stdout).unwrap();
    assert!(report.succeeded(), "{report:?}\n{output}");
    assert_eq!(fs::read_to_string(&live).unwrap(), new);
    let details: Vec<&str> = report.steps.iter().map(|s| s.detail.as_str()).collect();
    assert!(details.contains(&live.as_str()), "{details:?}");
}

/// A held apply says it still waits every 5 s (`@@lbctl waiting`), so that its host's sshd
/// notices a connection lost meanwhile (the lab's
/// `apply::a_held_apply_cut_off_from_lbctl_frees_its_lock_once_the_cut_heals`); lbctl passes
/// over those lines, and the go-ahead ends them: the script applies, and its shell exits at
/// once, nothing of the writer left to hold the channel or the lock.
#[tokio::test]
async fn a_held_apply_says_it_still_waits_and_goes_ahead_as_ever() {
    let SshChange {
        live,
        new,
        deployment,
        lock,
        session,
        _host,
        _sshd,
        ..
    } = SshChange::connect("apply-held-beating").await;
    let mut held = hold(&session, &deployment, &lock).await;
    let ready = Instant::now();
    let waiting =
        tokio::time::timeout(Duration::from_secs(10), held.read_until(b"@@lbctl waiting")).await;
    assert!(
        matches!(waiting, Ok(Ok(true))),
        "no keep-alive within 10 s of ready: {waiting:?}\n{}",
        String::from_utf8_lossy(held.output())
    );
    let after = ready.elapsed();
    assert!(
        after > Duration::from_secs(4) && after < Duration::from_secs(8),
        "the first keep-alive came {after:?} after ready"
    );
    held.answer(GO).await.unwrap();
    let went = Instant::now();
    assert!(held.read_until(APPLIED).await.unwrap());
    let output = held.finish().await.unwrap();
    let ended = went.elapsed();
    assert!(
        ended < Duration::from_secs(3),
        "the shell took {ended:?} to end after the go-ahead"
    );
    let report = parse_apply(&output.stdout).unwrap();
    assert!(report.succeeded(), "{report:?}\n{output}");
    assert_eq!(fs::read_to_string(&live).unwrap(), new);
    let free = Command::new("flock")
        .args(["-n", &lock, "true"])
        .status()
        .unwrap();
    assert!(free.success(), "the apply lock is still held");
    session.close().await.unwrap();
}

/// What `apply` does on each host: the fetch runs as the first part of a shell that stays
/// open, and the held apply script follows in the same shell (no second session): both
/// reports read on their own, the file changes only with the go-ahead, and the session
/// closes once the script has finished.
#[tokio::test]
async fn an_apply_follows_the_fetch_in_the_same_shell() {
    let SshChange {
        live,
        old,
        new,
        deployment,
        lock,
        session,
        _host,
        _sshd,
    } = SshChange::connect("apply-after-fetch").await;
    let options = FetchOptions {
        lock: lock.clone(),
        ..FetchOptions::default()
    };
    let fetch = fetch_script(std::slice::from_ref(&live), &[], &options);
    let mut shell = session.start(&first_part(&fetch)).await.unwrap();
    assert!(shell.read_until(PART_END.as_bytes()).await.unwrap());
    let fetched = parse_fetch(&shell.take_output()).unwrap();
    assert_eq!(fetched.files[&live].as_deref(), Some(old.as_bytes()));
    assert_eq!(fetched.lock, LockState::Free);

    // The fetch's variables and functions are gone: the apply script defines its own.
    shell
        .send(&held_apply_script(&deployment, &lock))
        .await
        .unwrap();
    assert!(shell.read_until(READY).await.unwrap());
    assert_eq!(fs::read_to_string(&live).unwrap(), old);
    shell.answer(GO).await.unwrap();
    let output = shell.finish().await.unwrap();
    session.close().await.unwrap();
    let report = parse_apply(&output.stdout).unwrap();
    assert!(report.succeeded(), "{report:?}\n{output}");
    assert_eq!(output.status, Some(0));
    assert_eq!(fs::read_to_string(&live).unwrap(), new);
}

/// What `apply --yes` does on each host with small files: the apply script, made for every
/// managed file, goes along with the fetch in one round trip; the host stages and checks
/// only the files the fetch did not find already as lbctl would write them, and reloads only
/// their services. When every file matches, the script ends at once, without the lock. On a
/// host whose admin record holds something, it does not run, and the shell takes the next
/// script.
#[tokio::test]
async fn a_speculative_apply_goes_with_the_fetch_and_stages_only_what_differs() {
    let SshChange {
        live,
        old,
        new,
        mut deployment,
        lock,
        session,
        _host,
        _sshd,
    } = SshChange::connect("apply-with-fetch").await;
    // A second managed file that already holds what lbctl would write: its "reload" would
    // leave a mark.
    let same = format!("{live}.same");
    let same_content = "already as lbctl writes it\n";
    fs::write(&same, same_content).unwrap();
    let marked = format!("{live}.reloaded");
    deployment.files.push(ManagedFile {
        service: Service::Keepalived,
        path: same.clone(),
        content: same_content.to_owned(),
    });
    deployment.controls.insert(
        Service::Keepalived,
        ServiceControl {
            check: "test -s {path}".to_owned(),
            reload: format!("touch '{marked}'"),
            running: None,
            first_start: None,
        },
    );
    let record = format!("{live}.record");
    let mut shell = fetch_then_apply(&session, &deployment, &lock, &record).await;
    assert!(shell.read_until(PART_END.as_bytes()).await.unwrap());
    let known = BTreeMap::from([(same.as_str(), same_content.as_bytes())]);
    let fetched = parse_fetch_knowing(&shell.take_output(), &known).unwrap();
    assert_eq!(fetched.files[&live].as_deref(), Some(old.as_bytes()));
    assert_eq!(
        fetched.files[&same].as_deref(),
        Some(same_content.as_bytes())
    );

    // Staged and checked without another word from lbctl; nothing live changed yet.
    next_part(&mut shell, SPECULATION_STAGING).await;
    assert!(shell.read_until(READY).await.unwrap());
    assert_eq!(fs::read_to_string(&live).unwrap(), old);
    shell.answer(GO).await.unwrap();
    let output = shell.finish().await.unwrap();
    let report = parse_apply(&output.stdout).unwrap();
    assert!(report.succeeded(), "{report:?}\n{output}");
    assert_eq!(fs::read_to_string(&live).unwrap(), new);
    let touched: Vec<(Step, &str)> = report
        .steps
        .iter()
        .filter(|s| matches!(s.step, Step::Stage | Step::Swap | Step::Reload))
        .map(|s| (s.step, s.detail.as_str()))
        .collect();
    assert_eq!(
        touched,
        [
            (Step::Stage, live.as_str()),
            (Step::Swap, live.as_str()),
            (Step::Reload, "haproxy")
        ],
        "{output}"
    );
    assert!(
        !Path::new(&marked).exists(),
        "an unchanged service was reloaded"
    );
    assert!(!Path::new(&format!("{same}.lbctl-prev")).exists());

    // Now every file matches: the script ends at once, without taking the lock.
    deployment.files[0].content = new.clone();
    // Another apply holds the lock: a script that took it would fail.
    // (--no-fork: the lock goes with the process killed below)
    let mut holder = Command::new("flock")
        .args(["--no-fork", &lock, "sleep", "30"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Command::new("flock")
        .args(["-n", &lock, "true"])
        .status()
        .unwrap()
        .success()
    {
        assert!(Instant::now() < deadline, "flock never took {lock}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut shell = fetch_then_apply(&session, &deployment, &lock, &record).await;
    next_part(&mut shell, SPECULATION_STAGING).await;
    let output = shell.finish().await.unwrap();
    let _ = holder.kill();
    let _ = holder.wait();
    let report = parse_apply(&output.stdout).unwrap();
    assert!(report.succeeded(), "{report:?}\n{output}");
    assert!(!report.ready);
    assert!(report.steps.is_empty(), "{report:?}");

    // lbctl's admin record on the host holds something: the script does not run, and the
    // shell takes the one lbctl sends once it has seen the whole survey.
    fs::write(&record, "drain\n").unwrap();
    deployment.files[0].content = old.clone();
    let mut shell = fetch_then_apply(&session, &deployment, &lock, &record).await;
    assert!(shell.read_until(PART_END.as_bytes()).await.unwrap());
    next_part(&mut shell, SPECULATION_DECLINED).await;
    assert_eq!(fs::read_to_string(&live).unwrap(), new);
    let only_live = Deployment {
        files: vec![deployment.files[0].clone()],
        ..deployment.clone()
    };
    shell
        .send(&held_apply_script(&only_live, &lock))
        .await
        .unwrap();
    if !shell.read_until(READY).await.unwrap() {
        let out = shell.finish().await.unwrap();
        panic!("{out}\n{}", String::from_utf8_lossy(&out.stdout));
    }
    shell.answer(GO).await.unwrap();
    let output = shell.finish().await.unwrap();
    session.close().await.unwrap();
    let report = parse_apply(&output.stdout).unwrap();
    assert!(report.succeeded(), "{report:?}\n{output}");
    assert_eq!(fs::read_to_string(&live).unwrap(), old);
}

/// The fetch of every file of `deployment` (each with its digest) and the speculative apply
/// script for it after it, as `apply --yes` sends them, started over `session`.
async fn fetch_then_apply(
    session: &Session,
    deployment: &Deployment,
    lock: &str,
    record: &str,
) -> Running {
    let options = FetchOptions {
        lock: lock.to_owned(),
        expected: deployment
            .files
            .iter()
            .map(|f| (f.path.clone(), sha256_hex(f.content.as_bytes())))
            .collect(),
        matches_to_fd3: true,
        ..FetchOptions::default()
    };
    let paths: Vec<String> = deployment.files.iter().map(|f| f.path.clone()).collect();
    let fetch = fetch_script(&paths, &[], &options);
    let then = speculative_apply_script(deployment, lock);
    session
        .start(&fetch_then(&fetch, &then, record))
        .await
        .unwrap()
}

/// Reads up to `marker`, the line after the fetch that says what the shell does next, and
/// drops what came before.
async fn next_part(shell: &mut Running, marker: &str) {
    assert!(
        shell.read_until(marker.as_bytes()).await.unwrap(),
        "{marker}"
    );
    shell.take_output();
}

#[tokio::test]
async fn apply_over_ssh_swaps_the_file_and_fetch_sees_it() {
    let SshChange {
        live,
        old: _,
        new,
        deployment,
        lock,
        session,
        _host,
        _sshd,
    } = SshChange::connect("apply-ssh").await;
    let output = session
        .run(&apply_script_with_lock(&deployment, &lock))
        .await
        .unwrap();
    let report = parse_apply(&output.stdout).unwrap();
    assert!(report.succeeded(), "{report:?}\n{output}");
    assert_eq!(output.status, Some(0));

    let options = FetchOptions {
        lock,
        ..FetchOptions::default()
    };
    let fetched = session
        .run(&fetch_script(std::slice::from_ref(&live), &[], &options))
        .await
        .unwrap();
    session.close().await.unwrap();
    let fetched = parse_fetch(&fetched.stdout).unwrap();
    assert_eq!(fetched.files[&live].as_deref(), Some(new.as_bytes()));
}

#[tokio::test]
async fn apply_swaps_a_valid_change_and_keeps_the_previous_file() {
    let host = Scratch::new("apply-ok");
    let live = path(&host, "haproxy.cfg");
    let keepalived = path(&host, "keepalived/keepalived.conf");
    let old = haproxy_cfg(&host, free_port(), &[]);
    let new = haproxy_cfg(&host, free_port(), &[free_port()]);
    fs::write(&live, &old).unwrap();
    let reloaded = path(&host, "reloaded");
    let mut deployment = haproxy_deployment(&live, &new, &format!("echo haproxy >> '{reloaded}'"));
    deployment.files.push(ManagedFile {
        service: Service::Keepalived,
        path: keepalived.clone(),
        content: "vrrp_instance VI_1 { authentication { auth_pass secret } }\n".to_owned(),
    });
    deployment.controls.insert(
        Service::Keepalived,
        ServiceControl {
            check: "test -s {path}".to_owned(),
            reload: format!("echo keepalived >> '{reloaded}'"),
            running: None,
            first_start: None,
        },
    );

    let (report, output) = apply_locally(&deployment, &host).await;

    assert!(report.succeeded(), "{report:?}");
    assert_eq!(output.status.code(), Some(0));
    assert!(!report.rolled_back);
    assert_eq!(fs::read_to_string(&live).unwrap(), new);
    assert_eq!(
        fs::read_to_string(format!("{live}.lbctl-prev")).unwrap(),
        old
    );
    assert!(!Path::new(&format!("{live}.lbctl-new")).exists());
    assert_eq!(mode(&live), 0o644);
    assert_eq!(mode(&keepalived), 0o600);
    // Each service with a changed file is reloaded exactly once.
    assert_eq!(
        fs::read_to_string(&reloaded).unwrap(),
        "haproxy\nkeepalived\n"
    );
    let steps: Vec<(Step, bool)> = report.steps.iter().map(|s| (s.step, s.ok)).collect();
    assert_eq!(
        steps,
        [
            (Step::Preflight, true),
            (Step::Lock, true),
            (Step::Stage, true),
            (Step::Stage, true),
            (Step::Validate, true),
            (Step::Validate, true),
            (Step::Backup, true),
            (Step::Backup, true),
            (Step::Swap, true),
            (Step::Swap, true),
            (Step::Reload, true),
            (Step::Reload, true),
        ]
    );
    // Nothing the script prints gives a file's content away.
    let printed = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    assert!(!printed.contains("secret"), "{printed}");
    let report_text = format!("{report:?}");
    assert!(!report_text.contains("secret"), "{report_text}");
}

#[tokio::test]
async fn apply_with_nothing_to_change_reloads_and_verifies_nothing() {
    let host = Scratch::new("apply-nothing");
    let deployment = Deployment {
        host: "lb1".to_owned(),
        files: Vec::new(),
        controls: haproxy_deployment("unused", "", "false").controls,
        verify: Verify {
            haproxy_runtime_socket: None,
            haproxy_master_socket: None,
            tcp_ports: vec![free_port()],
            udp_ports: Vec::new(),
            pid_files: Vec::new(),
        },
        keep: Keep::default(),
    };

    let (report, output) = apply_locally(&deployment, &host).await;

    assert!(report.succeeded(), "{report:?}");
    assert_eq!(output.status.code(), Some(0));
    let steps: Vec<Step> = report.steps.iter().map(|s| s.step).collect();
    assert_eq!(steps, [Step::Preflight, Step::Lock]);
}

#[tokio::test]
async fn apply_rejects_an_invalid_haproxy_config_at_validate_and_leaves_the_live_file() {
    let host = Scratch::new("apply-invalid");
    let live = path(&host, "haproxy.cfg");
    let old = haproxy_cfg(&host, free_port(), &[]);
    fs::write(&live, &old).unwrap();
    let reloaded = path(&host, "reloaded");
    let invalid = "frontend fe\n    bind 127.0.0.1:1\n    no_such_keyword here\n";
    let deployment = haproxy_deployment(&live, invalid, &format!("touch '{reloaded}'"));

    let (report, output) = apply_locally(&deployment, &host).await;

    assert_eq!(output.status.code(), Some(1));
    let failure = report.failure.as_ref().expect("a failure");
    assert_eq!(failure.step, Step::Validate);
    assert!(failure.command.starts_with("haproxy -c -f "), "{failure}");
    assert!(failure.command.contains(".lbctl-new"), "{failure}");
    assert!(failure.stderr.contains("no_such_keyword"), "{failure}");
    assert!(!report.rolled_back);
    assert_eq!(fs::read_to_string(&live).unwrap(), old);
    assert!(!Path::new(&format!("{live}.lbctl-new")).exists());
    assert!(!Path::new(&format!("{live}.lbctl-prev")).exists());
    assert!(!Path::new(&reloaded).exists(), "nothing may be reloaded");
}

#[tokio::test]
async fn a_check_that_fails_while_haproxy_is_still_being_asked_stops_at_once() {
    // HAProxy's runtime socket, as the apply asks it beside the check (resync_begin): it
    // takes the question and never answers, so the asking would last at least the 2 s that
    // socat gives an answer.
    let host = Scratch::new("apply-invalid-asking");
    let socket = path(&host, "admin.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let held = std::thread::spawn(move || {
        let mut kept = Vec::new();
        for stream in listener.incoming().take(4) {
            kept.push(stream);
        }
        std::thread::sleep(Duration::from_secs(5));
    });
    let live = path(&host, "haproxy.cfg");
    let old = haproxy_cfg(&host, free_port(), &[]);
    fs::write(&live, &old).unwrap();
    let reloaded = path(&host, "reloaded");
    let invalid = "frontend fe\n    bind 127.0.0.1:1\n    no_such_keyword here\n";
    let mut deployment = haproxy_deployment(&live, invalid, &format!("touch '{reloaded}'"));
    deployment.verify.haproxy_runtime_socket = Some(socket);

    let started = Instant::now();
    let (report, output) = apply_locally(&deployment, &host).await;

    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the check's failure waited for HAProxy's answer: {:?}",
        started.elapsed()
    );
    assert_eq!(output.status.code(), Some(1));
    let failure = report.failure.as_ref().expect("a failure");
    assert_eq!(failure.step, Step::Validate, "{failure}");
    assert!(failure.stderr.contains("no_such_keyword"), "{failure}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.matches("@@lbctl end apply failed").count(),
        1,
        "{stdout}"
    );
    assert!(!report.rolled_back);
    assert_eq!(fs::read_to_string(&live).unwrap(), old);
    assert!(!Path::new(&format!("{live}.lbctl-new")).exists());
    assert!(!Path::new(&reloaded).exists(), "nothing may be reloaded");
    drop(held);
}

#[tokio::test]
async fn apply_rolls_back_when_the_reload_fails() {
    let host = Scratch::new("apply-reload");
    let live = path(&host, "haproxy.cfg");
    let old = haproxy_cfg(&host, free_port(), &[]);
    let new = haproxy_cfg(&host, free_port(), &[free_port()]);
    fs::write(&live, &old).unwrap();
    // Fails the first time (the new config), succeeds on the rollback's reload.
    let marker = path(&host, "tried");
    let reload = format!(
        "if [ -e '{marker}' ]; then echo second >> '{marker}'; \
         else echo first > '{marker}'; echo 'reload exploded' >&2; exit 1; fi"
    );
    let deployment = haproxy_deployment(&live, &new, &reload);

    let (report, output) = apply_locally(&deployment, &host).await;

    assert_eq!(output.status.code(), Some(1));
    let failure = report.failure.as_ref().expect("a failure");
    assert_eq!(failure.step, Step::Reload);
    assert_eq!(failure.command, reload);
    assert_eq!(failure.stderr.trim(), "reload exploded");
    assert!(report.rolled_back, "{report:?}");
    assert_eq!(fs::read_to_string(&live).unwrap(), old);
    assert_eq!(fs::read_to_string(&marker).unwrap(), "first\nsecond\n");
    assert!(
        report
            .steps
            .iter()
            .any(|s| s.step == Step::Rollback && s.ok && s.detail == "reloaded haproxy"),
        "{report:?}"
    );
}

/// A rollback whose reload fails too (the daemon died before the apply, so neither reload
/// can reach it) puts the file back but is not reported as rolled back: nothing serves the
/// previous configuration, and the report says which rollback step failed.
#[tokio::test]
async fn a_rollback_whose_reload_fails_is_not_reported_rolled_back() {
    let host = Scratch::new("apply-rollback-reload-fails");
    let live = path(&host, "haproxy.cfg");
    let old = haproxy_cfg(&host, free_port(), &[]);
    fs::write(&live, &old).unwrap();
    let new = haproxy_cfg(&host, free_port(), &[free_port()]);
    let reload = "echo 'master.sock: Connection refused' >&2; false";
    let deployment = haproxy_deployment(&live, &new, reload);

    let (report, output) = apply_locally(&deployment, &host).await;

    assert_eq!(output.status.code(), Some(1));
    assert_eq!(report.failure.as_ref().map(|f| f.step), Some(Step::Reload));
    assert!(!report.rolled_back, "{report:?}");
    assert_eq!(fs::read_to_string(&live).unwrap(), old, "the file is back");
    let failed: Vec<&str> = report
        .steps
        .iter()
        .filter(|s| s.step == Step::Rollback && !s.ok)
        .map(|s| s.detail.as_str())
        .collect();
    assert_eq!(failed.len(), 1, "{report:?}");
    assert!(
        failed[0].starts_with("reloading haproxy failed: ")
            && failed[0].contains("Connection refused"),
        "{failed:?}"
    );
}

/// A daemon whose reload acts on its running process (systemd's reload, HAProxy's master
/// CLI) and that is not running: the apply is refused at its preflight, before it takes the
/// lock or stages anything, saying which daemon, which pid file, and what to do; a held apply
/// never says it is ready. Where the service's file does not exist yet (lbctl installs it),
/// or the reload is the user's own command (which may start it), nothing is asked.
#[tokio::test]
async fn a_dead_daemon_whose_reload_needs_it_running_is_refused_before_anything_is_staged() {
    let host = Scratch::new("apply-dead-daemon");
    let live = path(&host, "haproxy.cfg");
    let old = haproxy_cfg(&host, free_port(), &[]);
    fs::write(&live, &old).unwrap();
    let new = haproxy_cfg(&host, free_port(), &[free_port()]);
    let reloaded = path(&host, "reloaded");
    let lock = path(&host, "apply.lock");
    let pid_file = path(&host, "haproxy.pid");
    // no process ever has a pid as large as the kernel's limit
    let dead = fs::read_to_string("/proc/sys/kernel/pid_max").unwrap();
    let dead = dead.trim();
    let mut deployment = haproxy_deployment(&live, &new, &format!("touch '{reloaded}'"));
    deployment.host = "lb2".to_owned();
    let haproxy = deployment.controls.get_mut(&Service::Haproxy).unwrap();
    haproxy.running = Some(("HAProxy".to_owned(), pid_file.clone()));

    for (pid, says) in [
        (
            format!("{dead}\n"),
            format!("pid {dead} in {pid_file} is gone"),
        ),
        (String::new(), format!("no pid in {pid_file}")),
    ] {
        fs::write(&pid_file, pid).unwrap();
        let (report, output) = apply_locally(&deployment, &host).await;
        assert_eq!(output.status.code(), Some(1));
        let failure = report.failure.as_ref().expect("refused");
        assert_eq!(failure.step, Step::Preflight, "{report:?}");
        assert_eq!(failure.command, format!("kill -0 $(cat {pid_file})"));
        assert_eq!(
            failure.stderr,
            format!(
                "HAProxy is not running: {says}, and reloading it (`touch '{reloaded}'`) needs it \
                 running: start it (e.g. `systemctl start haproxy`) and apply again, or leave \
                 this host out with `--limit 'all:!lb2'`"
            )
        );
        let steps: Vec<(Step, bool)> = report.steps.iter().map(|s| (s.step, s.ok)).collect();
        assert_eq!(steps, [(Step::Preflight, false)]);
        assert!(!report.rolled_back);
        assert_eq!(fs::read_to_string(&live).unwrap(), old);
        assert!(!Path::new(&format!("{live}.lbctl-new")).exists());
        assert!(!Path::new(&lock).exists(), "the lock is not even taken");
        assert!(!Path::new(&reloaded).exists(), "nothing is reloaded");
    }

    // Held, as `apply` runs it on every host at once: refused before it is ready.
    let held = run_locally(&held_apply_script(&deployment, &lock)).await;
    let report = parse_apply(&held.stdout).unwrap();
    assert!(!report.ready, "{report:?}");
    assert_eq!(report.failure.map(|f| f.step), Some(Step::Preflight));
    assert_eq!(fs::read_to_string(&live).unwrap(), old);

    // A daemon being installed: none of its files exists yet, so nothing runs; not asked.
    let fresh = path(&host, "etc/haproxy/haproxy.cfg");
    let mut installing = haproxy_deployment(&fresh, &new, &format!("touch '{reloaded}'"));
    installing.controls = deployment.controls.clone();
    let (report, _) = apply_locally(&installing, &host).await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(fs::read_to_string(&fresh).unwrap(), new);
    fs::remove_file(&reloaded).unwrap();

    // A reload of the user's own: it may start the daemon, so nothing is asked.
    let mut command = deployment.clone();
    command.controls.get_mut(&Service::Haproxy).unwrap().running = None;
    let (report, _) = apply_locally(&command, &host).await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(fs::read_to_string(&live).unwrap(), new);
    assert!(Path::new(&reloaded).exists());

    // Running (this test's own process): the apply goes through.
    fs::write(&live, &old).unwrap();
    fs::remove_file(&reloaded).unwrap();
    fs::write(&pid_file, format!("{}\n", std::process::id())).unwrap();
    let (report, _) = apply_locally(&deployment, &host).await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(fs::read_to_string(&live).unwrap(), new);
    assert!(Path::new(&reloaded).exists());
}

#[tokio::test]
async fn apply_removes_a_file_that_did_not_exist_before_on_rollback() {
    let host = Scratch::new("apply-new-file");
    let live = path(&host, "etc/haproxy/haproxy.cfg");
    let new = haproxy_cfg(&host, free_port(), &[]);
    let deployment = haproxy_deployment(&live, &new, "echo no >&2; false");

    let (report, _) = apply_locally(&deployment, &host).await;

    assert_eq!(report.failure.as_ref().map(|f| f.step), Some(Step::Reload));
    assert!(!Path::new(&live).exists());
    assert!(
        !host.join("etc").exists(),
        "the directories staging created are removed again"
    );
    // The rollback's own reload failed too, and says so: not rolled back.
    assert!(!report.rolled_back, "{report:?}");
    assert!(
        report
            .steps
            .iter()
            .any(|s| s.step == Step::Rollback && !s.ok),
        "{report:?}"
    );
}

#[tokio::test]
async fn apply_is_refused_while_another_apply_holds_the_lock() {
    let host = Scratch::new("apply-lock");
    let live = path(&host, "haproxy.cfg");
    let old = haproxy_cfg(&host, free_port(), &[]);
    let first_config = haproxy_cfg(&host, free_port(), &[free_port()]);
    fs::write(&live, &old).unwrap();
    let lock = path(&host, "apply.lock");

    // The first apply's reload waits until the test lets it go.
    let (reloading, release) = (host.join("reloading"), host.join("release"));
    let reload = format!(
        "touch '{}'; while [ ! -e '{}' ]; do sleep 0.05; done",
        reloading.display(),
        release.display()
    );
    let first = haproxy_deployment(&live, &first_config, &reload);
    let mut first = spawn_locally(&apply_script_with_lock(&first, &lock)).await;
    let first_pid = first.id().unwrap();
    let mut first_stdout = BufReader::new(first.stdout.take().unwrap());
    let mut seen = String::new();
    read_until(&mut first_stdout, &mut seen, "@@lbctl step swap ok").await;
    wait_for(&reloading);

    // While the first apply reloads, a plan sees the lock and who holds it ...
    let fetched = fetch_locally(&FetchOptions {
        lock: lock.clone(),
        ..FetchOptions::default()
    })
    .await;
    assert_eq!(
        fetched.lock,
        LockState::Held {
            pid: Some(first_pid)
        }
    );

    // ... and a second apply is refused, touching nothing.
    let second = haproxy_deployment(&live, &old, "true");
    let output = run_locally(&apply_script_with_lock(&second, &lock)).await;
    let report = parse_apply(&output.stdout).unwrap();
    let failure = report.failure.as_ref().expect("a failure");
    assert_eq!(failure.step, Step::Lock);
    assert!(
        failure.stderr.contains("another lbctl apply")
            && failure.stderr.contains(&format!("pid {first_pid}")),
        "{failure}"
    );
    assert!(!report.rolled_back);

    fs::write(&release, "").unwrap();
    read_until(&mut first_stdout, &mut seen, "@@lbctl end apply").await;
    let first_report = parse_apply(seen.as_bytes()).unwrap();
    assert!(first_report.succeeded(), "{first_report:?}");
    assert!(first.wait().await.unwrap().success());
    assert_eq!(fs::read_to_string(&live).unwrap(), first_config);

    // The lock went with the first apply.
    let fetched = fetch_locally(&FetchOptions {
        lock,
        ..FetchOptions::default()
    })
    .await;
    assert_eq!(fetched.lock, LockState::Free);
}

#[tokio::test]
async fn apply_verifies_the_runtime_socket_and_ports_after_a_real_haproxy_reload() {
    let host = Scratch::new("apply-verify");
    let live = path(&host, "haproxy.cfg");
    let (port, added_port) = (free_port(), free_port());
    fs::write(&live, haproxy_cfg(&host, port, &[])).unwrap();
    let haproxy = HaproxyDaemon::start(&host);
    let before = haproxy.processes(&host);
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();

    let new = haproxy_cfg(&host, port, &[added_port]);
    let reload = format!("kill -USR2 \"$(cat '{}')\"", path(&host, "haproxy.pid"));
    let mut deployment = haproxy_deployment(&live, &new, &reload);
    deployment.verify = Verify {
        haproxy_runtime_socket: Some(path(&host, "admin.sock")),
        haproxy_master_socket: Some(path(&host, "master.sock")),
        tcp_ports: vec![port, added_port],
        udp_ports: vec![udp.local_addr().unwrap().port()],
        pid_files: Vec::new(),
    };

    let (report, _) = apply_locally(&deployment, &host).await;

    assert!(report.succeeded(), "{report:?}");
    let verified = report.steps.last().unwrap();
    assert_eq!((verified.step, verified.ok), (Step::Verify, true));
    TcpStream::connect(("127.0.0.1", added_port)).expect("the reloaded HAProxy listens");
    // A graceful reload: same master, new workers.
    let after = haproxy.processes(&host);
    assert_eq!(after.0, before.0);
    assert_ne!(after.1, before.1);
}

#[tokio::test]
async fn apply_says_so_when_haproxys_master_refuses_a_reload_and_rolls_back() {
    refused_reload_is_rolled_back(
        "apply-refused",
        true,
        "HAProxy's master refused the new configuration",
    )
    .await;
}

#[tokio::test]
async fn without_the_master_cli_a_refused_reload_is_found_when_no_new_process_answers() {
    refused_reload_is_rolled_back(
        "apply-refused-no-master",
        false,
        "still answers from its process before the reload",
    )
    .await;
}

/// An apply whose reload HAProxy's master refuses, told where the master CLI is (`master`) or
/// not: it fails at the verify saying `says`, and the previous file is back and served.
async fn refused_reload_is_rolled_back(name: &str, master: bool, says: &str) {
    let host = Scratch::new(name);
    let live = path(&host, "haproxy.cfg");
    let port = free_port();
    let old = haproxy_cfg(&host, port, &[]);
    fs::write(&live, &old).unwrap();
    let haproxy = HaproxyDaemon::start(&host);
    let before = haproxy.processes(&host);

    // `haproxy -c` binds nothing, so it passes an address this machine lacks; the new process
    // cannot bind it, and the master keeps the old one
    let new = old.replace("bind 127.0.0.1:", "bind 10.99.99.99:");
    let reload = format!("kill -USR2 \"$(cat '{}')\"", path(&host, "haproxy.pid"));
    let mut deployment = haproxy_deployment(&live, &new, &reload);
    deployment.verify.haproxy_runtime_socket = Some(path(&host, "admin.sock"));
    deployment.verify.haproxy_master_socket = master.then(|| path(&host, "master.sock"));

    let (report, _) = apply_locally(&deployment, &host).await;

    let failure = report.failure.as_ref().expect("a failure");
    assert_eq!(failure.step, Step::Verify, "{failure}");
    assert!(failure.stderr.contains(says), "{failure}");
    assert!(report.rolled_back, "{report:?}");
    assert_eq!(fs::read_to_string(&live).unwrap(), old);
    // the rollback's reload was taken: a new worker, with the old file, serves the old port
    let after = haproxy.processes(&host);
    assert_eq!(after.0, before.0);
    assert_ne!(after.1, before.1);
    TcpStream::connect(("127.0.0.1", port)).expect("HAProxy still listens");
}

/// A runtime API command on HAProxy's admin socket in `host`, and its answer.
fn runtime(host: &Scratch, command: &str) -> String {
    let mut cli = std::os::unix::net::UnixStream::connect(host.join("admin.sock")).unwrap();
    cli.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    cli.write_all(format!("{command}\n").as_bytes()).unwrap();
    cli.shutdown(std::net::Shutdown::Write).unwrap();
    let mut output = String::new();
    cli.read_to_string(&mut output).unwrap();
    output
}

/// `(admin flags, port)` of each server of backend `be`, from `show servers state`.
fn servers_state(host: &Scratch) -> BTreeMap<String, (u32, u16)> {
    lbctl::remote::parse_servers_state(&runtime(host, "show servers state"))
        .unwrap()
        .into_iter()
        .filter(|s| s.backend == "be")
        .map(|s| (s.server, (s.admin_flags, s.port)))
        .collect()
}

/// The state-keeping configuration: HAProxy starts every process from `server-state`.
fn stateful_cfg(host: &Scratch, port: u16, moved_port: u16) -> String {
    format!(
        "global\n    stats socket {} mode 600 level admin\n    server-state-file {}\n\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         \x20   load-server-state-from-file global\n\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\n\
         backend be\n    server s1 127.0.0.1:9\n    server s2 127.0.0.1:{moved_port}\n    server s3 127.0.0.1:{}\n",
        path(host, "admin.sock"),
        path(host, "server-state"),
        moved_port + 3,
    )
}

#[tokio::test]
async fn apply_keeps_servers_state_across_a_real_reload_but_not_a_moved_servers() {
    let host = Scratch::new("apply-keeps-state");
    let live = path(&host, "haproxy.cfg");
    let port = free_port();
    fs::write(&live, stateful_cfg(&host, port, 10)).unwrap();
    let haproxy = HaproxyDaemon::start(&host);
    let before = haproxy.processes(&host);
    runtime(&host, "set server be/s1 state drain");
    runtime(&host, "set server be/s2 state maint");
    runtime(&host, "set server be/s3 state maint");

    // s2 and s3 move to other ports; the record asks for s3 in maintenance after the reload
    let reload = format!("kill -USR2 \"$(cat '{}')\"", path(&host, "haproxy.pid"));
    let mut deployment = haproxy_deployment(&live, &stateful_cfg(&host, port, 11), &reload);
    deployment.verify.haproxy_runtime_socket = Some(path(&host, "admin.sock"));
    deployment.keep = Keep {
        state_file: Some(path(&host, "server-state")),
        haproxy_config: live.clone(),
        record_path: path(&host, "lbctl/admin-state"),
        record: Some("# lbctl admin state 1\n".into()),
        commands: vec!["set server be/s3 state maint".into()],
    };
    let (report, output) = apply_locally(&deployment, &host).await;

    assert!(report.succeeded(), "{report:?} {output:?}");
    let admin = report.steps.last().unwrap();
    assert_eq!((admin.step, admin.ok), (Step::Admin, true), "{report:?}");
    assert_ne!(haproxy.processes(&host).1, before.1, "reloaded");
    let state = servers_state(&host);
    assert_eq!(
        state["s1"],
        (0x08, 9),
        "s1 still drained after the reload: {state:?}"
    );
    assert_eq!(
        state["s2"],
        (0, 11),
        "s2 moved: from its configuration: {state:?}"
    );
    assert_eq!(
        state["s3"].0 & 0x01,
        0x01,
        "s3 moved, then put in maintenance: {state:?}"
    );
    assert_eq!(
        fs::read_to_string(path(&host, "lbctl/admin-state")).unwrap(),
        "# lbctl admin state 1\n"
    );
}

#[tokio::test]
async fn apply_rolls_back_when_verification_fails() {
    let host = Scratch::new("apply-verify-fails");
    let live = path(&host, "haproxy.cfg");
    let old = haproxy_cfg(&host, free_port(), &[]);
    fs::write(&live, &old).unwrap();
    let silent_port = free_port();
    let mut deployment = haproxy_deployment(&live, &haproxy_cfg(&host, free_port(), &[]), "true");
    deployment.verify.tcp_ports = vec![silent_port];
    deployment.verify.haproxy_runtime_socket = Some(path(&host, "no-such.sock"));

    let started = Instant::now();
    let (report, _) = apply_locally(&deployment, &host).await;

    assert!(started.elapsed() < Duration::from_secs(10));
    let failure = report.failure.as_ref().expect("a failure");
    assert_eq!(failure.step, Step::Verify);
    assert!(
        failure
            .stderr
            .contains(&format!("nothing listens on TCP port {silent_port}")),
        "{failure}"
    );
    assert!(failure.stderr.contains("did not answer"), "{failure}");
    assert!(report.rolled_back);
    assert_eq!(fs::read_to_string(&live).unwrap(), old);
}

#[tokio::test]
async fn apply_rolls_back_when_the_connection_to_lbctl_dies() {
    let host = Scratch::new("apply-hangup");
    let live = path(&host, "haproxy.cfg");
    let old = haproxy_cfg(&host, free_port(), &[]);
    fs::write(&live, &old).unwrap();
    let new = haproxy_cfg(&host, free_port(), &[free_port()]);
    let lock = path(&host, "apply.lock");
    let deployment = haproxy_deployment(&live, &new, "sleep 1");

    let mut child = spawn_locally(&apply_script_with_lock(&deployment, &lock)).await;
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    read_until(&mut stdout, &mut String::new(), "@@lbctl step swap ok").await;
    assert_eq!(fs::read_to_string(&live).unwrap(), new);
    // What sshd does when the client vanishes: the script's stdout leads nowhere.
    drop(stdout);
    drop(child.stderr.take());

    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the script ends")
        .unwrap();
    assert!(!status.success());
    assert_eq!(fs::read_to_string(&live).unwrap(), old);
    assert!(!Path::new(&format!("{live}.lbctl-new")).exists());
    let fetched = fetch_locally(&FetchOptions {
        lock,
        ..FetchOptions::default()
    })
    .await;
    assert_eq!(fetched.lock, LockState::Free);
}

#[tokio::test]
async fn apply_rolls_back_when_terminated() {
    let host = Scratch::new("apply-term");
    let live = path(&host, "haproxy.cfg");
    let old = haproxy_cfg(&host, free_port(), &[]);
    fs::write(&live, &old).unwrap();
    let new = haproxy_cfg(&host, free_port(), &[free_port()]);
    let reloading = host.join("reloading");
    let reload = format!("touch '{}'; sleep 1", reloading.display());
    let deployment = haproxy_deployment(&live, &new, &reload);

    let mut child = spawn_locally(&apply_script_with_lock(
        &deployment,
        &path(&host, "apply.lock"),
    ))
    .await;
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    read_until(&mut stdout, &mut seen, "@@lbctl step swap ok").await;
    wait_for(&reloading);
    let pid = child.id().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    read_until(&mut stdout, &mut seen, "@@lbctl end apply").await;
    assert!(!child.wait().await.unwrap().success());

    let report = parse_apply(seen.as_bytes()).unwrap();
    let failure = report.failure.as_ref().expect("a failure");
    assert_eq!(failure.step, Step::Reload);
    assert!(failure.stderr.contains("terminated"), "{failure}");
    assert!(report.rolled_back, "{report:?}");
    assert_eq!(fs::read_to_string(&live).unwrap(), old);
}

// --- helpers -----------------------------------------------------------------------------

/// A host reached over SSH whose HAProxy file is about to change from `old` to `new` (both
/// valid), with the deployment doing it and the lock it takes. Bind `_host` and `_sshd` when
/// taking it apart: they keep the scratch directory and the server alive.
struct SshChange {
    live: String,
    old: String,
    new: String,
    deployment: Deployment,
    lock: String,
    session: Session,
    _host: Scratch,
    _sshd: Sshd,
}

/// A held apply of `deployment` started over `session`, staged, checked and ready.
async fn hold(session: &Session, deployment: &Deployment, lock: &str) -> Running {
    let mut held = session
        .start(&held_apply_script(deployment, lock))
        .await
        .unwrap();
    assert!(held.read_until(READY).await.unwrap());
    held
}

impl SshChange {
    async fn connect(name: &str) -> SshChange {
        let sshd = Sshd::start();
        let host = Scratch::new(name);
        let live = path(&host, "haproxy.cfg");
        let old = haproxy_cfg(&host, free_port(), &[]);
        let new = haproxy_cfg(&host, free_port(), &[free_port()]);
        fs::write(&live, &old).unwrap();
        let deployment = haproxy_deployment(&live, &new, "true");
        let lock = path(&host, "apply.lock");
        let session = Session::connect(&sshd.connection(), &options())
            .await
            .unwrap();
        SshChange {
            live,
            old,
            new,
            deployment,
            lock,
            session,
            _host: host,
            _sshd: sshd,
        }
    }
}

fn path(host: &Scratch, name: &str) -> String {
    host.join(name).to_str().unwrap().to_owned()
}

fn mode(path: &str) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A valid HAProxy configuration listening on `port` (and on each of `more`), with an
/// admin socket in `host`.
fn haproxy_cfg(host: &Scratch, port: u16, more: &[u16]) -> String {
    let mut config = format!(
        "global\n    stats socket {} mode 600 level admin\n\n\
         defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\n\
         backend be\n    server s1 127.0.0.1:9\n",
        path(host, "admin.sock")
    );
    for (index, port) in more.iter().enumerate() {
        config.push_str(&format!(
            "\nfrontend extra{index}\n    bind 127.0.0.1:{port}\n    default_backend be\n"
        ));
    }
    config
}

/// One HAProxy file, checked by the real `haproxy -c`, reloaded by `reload`.
fn haproxy_deployment(live: &str, content: &str, reload: &str) -> Deployment {
    assert!(
        Path::new(HAPROXY).exists(),
        "{HAPROXY} is missing: the apply tests validate with the real haproxy (apt-get install haproxy)"
    );
    Deployment {
        host: "lb1".to_owned(),
        files: vec![ManagedFile {
            service: Service::Haproxy,
            path: live.to_owned(),
            content: content.to_owned(),
        }],
        controls: BTreeMap::from([(
            Service::Haproxy,
            ServiceControl {
                // Not `-q`: HAProxy 2.6 then keeps the reason for a rejection to itself.
                check: "haproxy -c -f {path}".to_owned(),
                reload: reload.to_owned(),
                running: None,
                first_start: None,
            },
        )]),
        verify: Verify::default(),
        keep: Keep::default(),
    }
}

async fn spawn_locally(script: &str) -> tokio::process::Child {
    let mut child = tokio::process::Command::new("sh")
        .arg("-s")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start sh");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(script.as_bytes()).await.unwrap();
    drop(stdin);
    child
}

async fn run_locally(script: &str) -> Output {
    spawn_locally(script)
        .await
        .wait_with_output()
        .await
        .unwrap()
}

/// Runs the apply script with `sh -s`, as the transport would, with the lock in `host`.
async fn apply_locally(deployment: &Deployment, host: &Scratch) -> (ApplyReport, Output) {
    let script = apply_script_with_lock(deployment, &path(host, "apply.lock"));
    let output = run_locally(&script).await;
    let report = parse_apply(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "{error}\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (report, output)
}

async fn fetch_locally(options: &FetchOptions) -> lbctl::remote::Fetched {
    let output = run_locally(&fetch_script(&[], &[], options)).await;
    parse_fetch(&output.stdout).unwrap()
}

/// Reads lines into `seen` until one starts with `prefix`; fails after ten seconds.
async fn read_until(
    stdout: &mut BufReader<tokio::process::ChildStdout>,
    seen: &mut String,
    prefix: &str,
) {
    let read = async {
        loop {
            let mut line = String::new();
            if stdout.read_line(&mut line).await.unwrap() == 0 {
                panic!("the script ended before printing {prefix:?}:\n{seen}");
            }
            seen.push_str(&line);
            if line.starts_with(prefix) {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .unwrap_or_else(|_| panic!("no {prefix:?} within 10 s"));
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// HAProxy in master-worker mode, as on a load balancer, stopped (by its pid) on drop.
struct HaproxyDaemon {
    pidfile: PathBuf,
}

impl HaproxyDaemon {
    fn start(host: &Scratch) -> HaproxyDaemon {
        let pidfile = host.join("haproxy.pid");
        let status = Command::new(HAPROXY)
            .args(["-W", "-D", "-p"])
            .arg(&pidfile)
            .arg("-S")
            .arg(host.join("master.sock"))
            .arg("-f")
            .arg(host.join("haproxy.cfg"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("start haproxy");
        assert!(status.success(), "haproxy did not start: {status}");
        let daemon = HaproxyDaemon { pidfile };
        let deadline = Instant::now() + Duration::from_secs(5);
        let written = |path: &Path| fs::metadata(path).is_ok_and(|meta| meta.len() > 0);
        // The master's CLI socket accepts only once the master is ready; a socket file alone
        // is not enough (a fetch right after start was refused under load).
        let accepting = |path: &Path| std::os::unix::net::UnixStream::connect(path).is_ok();
        while !host.join("admin.sock").exists()
            || !written(&daemon.pidfile)
            || !accepting(&host.join("master.sock"))
        {
            assert!(Instant::now() < deadline, "haproxy did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        daemon
    }

    /// The master's pid and its current workers', from `show proc` on its CLI socket: a
    /// `master` row, then `worker` rows, the old ones after a `# old workers` comment. A master
    /// that has just started or reloaded may reset the connection before its worker is up, so
    /// this asks again, for at most 5 s, until it names a master and a worker.
    fn processes(&self, host: &Scratch) -> (u32, Vec<u32>) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let output = show_proc(&host.join("master.sock"));
            let (mut master, mut workers, mut old) = (None, Vec::new(), false);
            for line in output.as_deref().unwrap_or_default().lines() {
                if let Some(comment) = line.trim().strip_prefix('#') {
                    old = comment.trim().starts_with("old");
                    continue;
                }
                let mut fields = line.split_whitespace();
                match (fields.next().map(str::parse::<u32>), fields.next()) {
                    (Some(Ok(pid)), Some("master")) => master = Some(pid),
                    (Some(Ok(pid)), Some("worker")) if !old => workers.push(pid),
                    _ => {}
                }
            }
            if let Some(master) = master.filter(|_| !workers.is_empty()) {
                return (master, workers);
            }
            assert!(
                Instant::now() < deadline,
                "no master and worker in `show proc`: {output:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `show proc` on HAProxy's master CLI socket. The master answers once the command's input
/// has ended, as with socat.
fn show_proc(socket: &Path) -> std::io::Result<String> {
    let mut cli = std::os::unix::net::UnixStream::connect(socket)?;
    cli.set_read_timeout(Some(Duration::from_secs(5)))?;
    cli.write_all(b"show proc\n")?;
    cli.shutdown(std::net::Shutdown::Write)?;
    let mut output = String::new();
    cli.read_to_string(&mut output)?;
    Ok(output)
}

impl Drop for HaproxyDaemon {
    fn drop(&mut self) {
        if let Ok(pid) = fs::read_to_string(&self.pidfile) {
            let _ = Command::new("kill").args(["-TERM", pid.trim()]).status();
        }
    }
}
