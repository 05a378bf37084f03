//! The client's view of a failover test: new TCP connections to the VIP's frontends at a
//! steady rate, each a success only when it connects *and* its first byte arrives within the
//! timeout. The timeout is longer than HAProxy's connect timeout times its retries, so a
//! connection HAProxy redispatched to a healthy worker counts as the success it is for the
//! client. A UDP frontend gets datagrams instead, each from a new source port (a new flow),
//! each a success only when a reply arrives within [`UDP_DEADLINE`] (and begins as
//! expected, when the service's health check says what its replies begin with).
//!
//! It runs where lbctl runs (tokio), or on another host over SSH (a bounded `sh` loop around
//! `socat`; `remote/probe.sh`), and is bounded in attempts, time and in-flight connections
//! either way. Attempts are timed from the probe's start, so the caller can sort them into
//! the phases of its test afterwards.

use std::{
    collections::BTreeMap,
    fmt,
    fmt::Write as _,
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Serialize;
use tokio::{
    io::AsyncReadExt,
    net::{TcpStream, UdpSocket},
    sync::watch,
    task::JoinSet,
};

use crate::{
    drill::DrillError,
    drill::{clock, interrupt::interrupted, narrator::Narrator},
    remote::{self, ReportError},
    spec::Connection,
    ssh::Session,
};

const SCRIPT: &str = include_str!("probe.sh");
const NAME: &str = "probe";
/// Probing before anything is broken, so that a tier already failing shows as such.
const BASELINE: Duration = Duration::from_secs(1);
/// Probing after the tier is whole again.
pub const TAIL: Duration = Duration::from_secs(1);
/// How much longer than the drill's window the probe may run, whatever happens to lbctl.
const PROBE_MARGIN: Duration = Duration::from_secs(30);

/// How long a datagram waits for its reply: a new flow unanswered for a second has failed.
pub const UDP_DEADLINE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// A UDP frontend: the datagram to send and what its reply must begin with.
    pub datagram: Option<Datagram>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Datagram {
    pub payload: Vec<u8>,
    /// The reply's first bytes; empty: any reply.
    pub expect: Vec<u8>,
}

impl Target {
    pub fn tcp(host: String, port: u16) -> Target {
        Target {
            host,
            port,
            datagram: None,
        }
    }

    /// How long one attempt may take.
    fn timeout(&self, tcp: Duration) -> Duration {
        if self.datagram.is_some() {
            UDP_DEADLINE
        } else {
            tcp
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)?;
        } else {
            write!(f, "{}:{}", self.host, self.port)?;
        }
        if self.datagram.is_some() {
            f.write_str("/udp")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Taken in turn, one per attempt.
    pub targets: Vec<Target>,
    /// New connections per second.
    pub rate: u32,
    /// For one attempt: connect and first byte.
    pub timeout: Duration,
    /// The probe stops by itself after this long, whatever happens to its caller.
    pub max_duration: Duration,
}

impl Settings {
    fn period(&self) -> Duration {
        Duration::from_secs(1) / self.rate.max(1)
    }

    fn max_attempts(&self) -> u64 {
        (self.max_duration.as_secs_f64() * f64::from(self.rate.max(1))).ceil() as u64
    }
}

/// One connection attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// When it started, from the probe's start.
    pub at: Duration,
    pub target: usize,
    /// How long until its first byte, or until it failed.
    pub took: Duration,
    /// Why it failed; `None` for a success.
    pub error: Option<String>,
}

/// Every attempt of a finished probe.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub started: Instant,
    pub targets: Vec<Target>,
    pub attempts: Vec<Attempt>,
}

/// Attempts and failures in one phase of a test.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub attempts: u64,
    pub failed: u64,
    /// Each distinct failure, with its target, and how often it happened.
    pub errors: BTreeMap<String, u64>,
}

impl Recorded {
    /// Milliseconds from the probe's start to `at` (0 before it).
    pub fn ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.started).as_millis() as u64
    }

    /// Every attempt, for a timeline.
    pub fn points(&self) -> Vec<crate::drill::ProbePoint> {
        self.attempts
            .iter()
            .map(|a| crate::drill::ProbePoint {
                at_ms: a.at.as_millis() as u64,
                took_ms: a.took.as_millis() as u64,
                target: a.target,
                error: a.error.clone(),
            })
            .collect()
    }

    /// The attempts that started in `[from, to)` (`to`: `None` for the end).
    pub fn tally(&self, from: Instant, to: Option<Instant>) -> Tally {
        self.tally_of(from, to, |_| true)
    }

    /// The attempts to UDP targets (datagrams) that started in `[from, to)`.
    pub fn tally_udp(&self, from: Instant, to: Option<Instant>) -> Tally {
        self.tally_of(from, to, |t| t.datagram.is_some())
    }

    fn tally_of(
        &self,
        from: Instant,
        to: Option<Instant>,
        which: impl Fn(&Target) -> bool,
    ) -> Tally {
        let mut tally = Tally::default();
        for a in &self.attempts {
            let at = self.started + a.at;
            if at < from || to.is_some_and(|to| at >= to) || !which(&self.targets[a.target]) {
                continue;
            }
            tally.attempts += 1;
            if let Some(e) = &a.error {
                tally.failed += 1;
                let key = format!("{}: {e}", self.targets[a.target]);
                *tally.errors.entry(key).or_default() += 1;
            }
        }
        tally
    }
}

/// Every attempt of a probe, and for a remote probe when it started by its host's clock
/// (mapped onto ours), which its attempts are timed from.
type Attempts = (Option<Instant>, Vec<Attempt>);

/// A probe under way.
pub struct Running {
    pub started: Instant,
    targets: Vec<Target>,
    stop: Stop,
    task: tokio::task::JoinHandle<Result<Attempts, DrillError>>,
}

enum Stop {
    Local(watch::Sender<bool>),
    Remote {
        session: Arc<Session>,
        stop_file: String,
    },
}

impl Running {
    /// Ends the probe and waits (bounded by one attempt's timeout) for what is in flight.
    pub async fn stop(self) -> Result<Recorded, DrillError> {
        match &self.stop {
            Stop::Local(tx) => {
                let _ = tx.send(true);
            }
            Stop::Remote { session, stop_file } => {
                session
                    .run(&format!(": >{}\n", remote::quote(stop_file)))
                    .await
                    .map_err(DrillError::ProbeNotStopped)?;
            }
        }
        let (started, attempts) = self
            .task
            .await
            .map_err(|e| DrillError::ProbeTask(e.to_string()))??;
        Ok(Recorded {
            started: started.unwrap_or(self.started),
            targets: self.targets,
            attempts,
        })
    }
}

/// Starts probing from lbctl itself, or from the named host over its session, and says so.
pub fn start_from(
    settings: Settings,
    from: Option<(&str, &Arc<Session>)>,
    run_id: &str,
    say: &dyn Narrator,
) -> Running {
    say.say(&format!(
        "probing {} from {}: {} new connections/s, each must answer within {:?}",
        settings
            .targets
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        from.map_or("lbctl", |(name, _)| name),
        settings.rate,
        settings.timeout
    ));
    match from {
        Some((_, session)) => start_remote(Arc::clone(session), settings, run_id),
        None => start_local(settings),
    }
}

/// A drill's client probe, past its baseline.
pub struct Probing {
    pub probe: Running,
    /// Where the probe runs: `lbctl`, or the inventory host it runs on.
    pub from: String,
    /// How long the drill may take in all: the probe's own limit, and the watch's.
    pub limit: Duration,
}

/// Starts a drill's client probe (`rate` new connections a second to `targets`, each given
/// `timeout`), from lbctl or from the host `from` over its session, and lets it run for the
/// baseline. `window` is how long the fault and the recovery may take; the probe's own limit
/// follows from it. Interrupted meanwhile, it stops the probe and fails before anything was
/// changed.
pub async fn start_probe(
    targets: Vec<Target>,
    rate: u32,
    timeout: Duration,
    window: Duration,
    from: Option<(&Connection, &Arc<Session>)>,
    run_id: &str,
    say: &dyn Narrator,
) -> Result<Probing, DrillError> {
    let limit = BASELINE + window + TAIL + PROBE_MARGIN;
    let settings = Settings {
        targets,
        rate,
        timeout,
        max_duration: limit,
    };
    let probe = start_from(
        settings,
        from.map(|(c, s)| (c.name.as_str(), s)),
        run_id,
        say,
    );
    if let Some(why) = tokio::select! {
        _ = tokio::time::sleep(BASELINE) => None,
        why = interrupted() => Some(why),
    } {
        let _ = probe.stop().await;
        return Err(DrillError::Interrupted {
            why,
            when: "before anything was changed".into(),
        });
    }
    Ok(Probing {
        probe,
        from: from.map_or("lbctl".to_string(), |(c, _)| c.name.clone()),
        limit,
    })
}

/// Starts probing from this machine.
pub fn start_local(settings: Settings) -> Running {
    let (tx, rx) = watch::channel(false);
    let started = Instant::now();
    let targets = settings.targets.clone();
    let task = tokio::spawn(async move { Ok((None, run_local(settings, started, rx).await?)) });
    Running {
        started,
        targets,
        stop: Stop::Local(tx),
        task,
    }
}

async fn run_local(
    settings: Settings,
    started: Instant,
    mut stop: watch::Receiver<bool>,
) -> Result<Vec<Attempt>, DrillError> {
    let mut tick = tokio::time::interval(settings.period());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let deadline = tokio::time::Instant::from_std(started + settings.max_duration);
    let mut in_flight = JoinSet::new();
    let mut attempts = Vec::new();
    let mut sent: u64 = 0;
    while sent < settings.max_attempts() {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
            _ = tokio::time::sleep_until(deadline) => break,
        }
        let index = (sent % settings.targets.len() as u64) as usize;
        let target = settings.targets[index].clone();
        let timeout = target.timeout(settings.timeout);
        in_flight.spawn(async move {
            let at = started.elapsed();
            let begun = Instant::now();
            let error = match &target.datagram {
                None => match tokio::time::timeout(timeout, connect_and_read(&target)).await {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => Some(format!("no first byte within {timeout:?}")),
                },
                Some(d) => match tokio::time::timeout(timeout, exchange(&target, d)).await {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => Some(format!("no reply within {timeout:?}")),
                },
            };
            Attempt {
                at,
                target: index,
                took: begun.elapsed(),
                error,
            }
        });
        sent += 1;
        while let Some(done) = in_flight.try_join_next() {
            attempts.push(done.map_err(|e| DrillError::ProbeAttempt(e.to_string()))?);
        }
    }
    while let Some(done) = in_flight.join_next().await {
        attempts.push(done.map_err(|e| DrillError::ProbeAttempt(e.to_string()))?);
    }
    attempts.sort_by_key(|a| a.at);
    Ok(attempts)
}

/// Why one attempt failed, as the probe's tally counts it.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("closed before the first byte")]
    Closed,
    #[error("read: {0}")]
    Read(std::io::Error),
    #[error("bind: {0}")]
    Bind(std::io::Error),
    #[error("send: {0}")]
    Send(std::io::Error),
    #[error("receive: {0}")]
    Receive(std::io::Error),
    #[error("a reply that does not begin as expected")]
    UnexpectedReply,
}

async fn connect_and_read(target: &Target) -> Result<(), AttemptError> {
    let mut stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(AttemptError::Connect)?;
    let mut first = [0u8; 1];
    match stream.read(&mut first).await {
        Ok(0) => Err(AttemptError::Closed),
        Ok(_) => Ok(()),
        Err(e) => Err(AttemptError::Read(e)),
    }
}

/// One datagram from a socket of its own (a new source port: a new flow for the load
/// balancer), and its reply.
async fn exchange(target: &Target, d: &Datagram) -> Result<(), AttemptError> {
    let any = if target.host.contains(':') {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    };
    let socket = UdpSocket::bind(any).await.map_err(AttemptError::Bind)?;
    socket
        .connect((target.host.as_str(), target.port))
        .await
        .map_err(AttemptError::Connect)?;
    socket.send(&d.payload).await.map_err(AttemptError::Send)?;
    let mut reply = vec![0u8; 65536];
    let n = socket
        .recv(&mut reply)
        .await
        .map_err(AttemptError::Receive)?;
    if reply[..n].starts_with(&d.expect) {
        Ok(())
    } else {
        Err(AttemptError::UnexpectedReply)
    }
}

/// Starts probing from the host behind `session`, with `sh` and `socat` there. `run_id`
/// names the file that stops it.
pub fn start_remote(session: Arc<Session>, settings: Settings, run_id: &str) -> Running {
    let stop_file = format!("/tmp/lbctl-probe-{run_id}.stop");
    let script = remote_script(&settings, &stop_file);
    let started = Instant::now();
    let targets = settings.targets.clone();
    let task = {
        let session = Arc::clone(&session);
        tokio::spawn(async move {
            // The attempts are timed by the host's clock from the script's own start, which
            // comes a round trip or more after ours: mapped onto our clock, an attempt made
            // just after a fault began is not counted as one made before it.
            let clock = clock::sync_clock(&session).await;
            let sent = Instant::now();
            let out = session
                .run(&script)
                .await
                .map_err(DrillError::RemoteProbe)?;
            let answered = Instant::now();
            let (base_ms, attempts) =
                parse_remote(&out.stdout, &settings.targets, settings.timeout).map_err(|e| {
                    DrillError::RemoteProbeReport {
                        host: session.host().to_string(),
                        error: e.with_output(out),
                    }
                })?;
            Ok((clock.map(|c| c.local(base_ms, sent, answered)), attempts))
        })
    };
    Running {
        started,
        targets,
        stop: Stop::Remote { session, stop_file },
        task,
    }
}

fn remote_script(settings: &Settings, stop_file: &str) -> String {
    let mut sh = String::new();
    let _ = writeln!(sh, "TARGETS={}", settings.targets.len());
    for (i, t) in settings.targets.iter().enumerate() {
        let target = match &t.datagram {
            None => format!("{} {} tcp", t.host, t.port),
            Some(d) => format!(
                "{} {} udp {} {}",
                t.host,
                t.port,
                printf_format(&d.payload),
                // `-` for any reply: an empty word would vanish in the split
                if d.expect.is_empty() {
                    "-".to_string()
                } else {
                    printf_format(&d.expect)
                }
            ),
        };
        let _ = writeln!(sh, "TARGET_{i}={}", remote::quote(&target));
    }
    let _ = writeln!(
        sh,
        "TIMEOUT={}",
        settings.timeout.as_secs_f64().ceil().max(1.0) as u64
    );
    let _ = writeln!(sh, "PERIOD={:.3}", settings.period().as_secs_f64());
    let _ = writeln!(sh, "MAX_ATTEMPTS={}", settings.max_attempts());
    let _ = writeln!(sh, "MAX_MS={}", settings.max_duration.as_millis());
    let _ = writeln!(sh, "STOP_FILE={}", remote::quote(stop_file));
    remote::finish_script(sh, SCRIPT)
}

/// `bytes` as a `printf` format that writes exactly them, in one shell word: letters and
/// digits as they are, every other byte as an octal escape.
fn printf_format(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("\\{b:03o}")
            }
        })
        .collect()
}

/// Reads the remote probe's report: when it started by the remote clock (ms since the epoch),
/// and its attempts, timed from then.
fn parse_remote(
    stdout: &[u8],
    targets: &[Target],
    timeout: Duration,
) -> Result<(u64, Vec<Attempt>), ReportError> {
    let mut base: Option<u64> = None;
    let mut attempts = Vec::new();
    let mut ended = false;
    for frame in remote::frames(NAME, stdout)? {
        let frame = frame?;
        let ms = |field: &str| {
            field
                .parse::<u64>()
                .map_err(|_| frame.malformed("invalid time"))
        };
        match frame.words.as_slice() {
            ["started", at] => base = Some(ms(at)?),
            ["probe", _seq, target, start, outcome @ ("ok" | "fail"), end] => {
                let base = base.ok_or_else(|| frame.malformed("an attempt before the start"))?;
                let (start, end) = (ms(start)?, ms(end)?);
                let took = Duration::from_millis(end.saturating_sub(start));
                let index: usize = target
                    .parse()
                    .map_err(|_| frame.malformed("invalid target"))?;
                let udp = targets
                    .get(index)
                    .ok_or_else(|| frame.malformed("unknown target"))?
                    .datagram
                    .is_some();
                let error = (*outcome == "fail").then(|| match udp {
                    true if took >= UDP_DEADLINE => format!("no reply within {UDP_DEADLINE:?}"),
                    true => "refused, or a reply that does not begin as expected".to_string(),
                    false if took >= timeout => format!("no first byte within {timeout:?}"),
                    false => "refused, reset or closed before the first byte".to_string(),
                });
                attempts.push(Attempt {
                    at: Duration::from_millis(start.saturating_sub(base)),
                    target: index,
                    took,
                    error,
                });
            }
            ["error", message] => return Err(ReportError::Host(frame.text(message)?)),
            ["end", "probe"] => {
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
    attempts.sort_by_key(|a| a.at);
    let base = base.ok_or(ReportError::Truncated {
        script: NAME,
        after: None,
    })?;
    Ok((base, attempts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(targets: Vec<Target>) -> Settings {
        Settings {
            targets,
            rate: 50,
            timeout: Duration::from_secs(1),
            max_duration: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn local_probe_counts_answers_and_refusals() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let good = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Ok((mut s, _)) = listener.accept().await {
                let _ = s.write_all(b"worker\n").await;
            }
        });
        // a port nothing listens on: bound, then dropped
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let targets = vec![
            Target::tcp("127.0.0.1".into(), good),
            Target::tcp("127.0.0.1".into(), closed),
        ];
        let running = start_local(settings(targets));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let recorded = running.stop().await.unwrap();
        server.abort();
        let tally = recorded.tally(recorded.started, None);
        assert!(tally.attempts >= 8, "{tally:?}");
        assert_eq!(tally.failed, tally.attempts / 2, "{tally:?}");
        let (error, _) = tally.errors.iter().next().unwrap();
        assert!(error.contains(&format!(":{closed}: connect")), "{error}");
        let later = recorded.tally(recorded.started + Duration::from_secs(10), None);
        assert_eq!(later.attempts, 0);
    }

    /// A TCP server on `address` writing `worker` to every connection (20 at most).
    fn tcp_worker(address: &str) -> u16 {
        let listener = std::net::TcpListener::bind(address).unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            use std::io::Write;
            for mut s in listener.incoming().flatten().take(20) {
                let _ = s.write_all(b"worker\n");
            }
        });
        port
    }

    #[test]
    fn the_remote_script_runs_with_sh_and_socat() {
        let port = tcp_worker("127.0.0.1:0");
        let echo = udp_echo(b"worker\n");
        // an IPv6 VIP, which socat takes only in brackets
        let port6 = tcp_worker("[::1]:0");
        let echo6 = udp_echo_on("[::1]:0", b"worker\n");
        let mut udp6 = udp_target(echo6, b"hello", b"work");
        udp6.host = "::1".into();
        let mut s = settings(vec![
            Target::tcp("127.0.0.1".into(), port),
            udp_target(echo, b"hello %s\n", b"work"),
            udp_target(echo, b"x", b"someone else"),
            Target::tcp("::1".into(), port6),
            udp6,
        ]);
        s.max_duration = Duration::from_millis(600);
        let stop = std::env::temp_dir().join(format!("lbctl-probe-test-{}", std::process::id()));
        let script = remote_script(&s, &stop.display().to_string());
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        let (_, attempts) = parse_remote(&out.stdout, &s.targets, s.timeout).unwrap();
        assert!(
            attempts.len() >= 10,
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        for a in &attempts {
            assert_eq!(a.error.is_none(), a.target != 2, "{attempts:?}");
        }
        let unexpected = attempts.iter().find(|a| a.target == 2).unwrap();
        assert!(
            unexpected.took < UDP_DEADLINE,
            "a reply ends the attempt at once: {unexpected:?}"
        );
    }

    /// A UDP server on loopback answering every datagram with `reply`.
    fn udp_echo(reply: &'static [u8]) -> u16 {
        udp_echo_on("127.0.0.1:0", reply)
    }

    /// [`udp_echo`] on `address`.
    fn udp_echo_on(address: &str, reply: &'static [u8]) -> u16 {
        let socket = std::net::UdpSocket::bind(address).unwrap();
        let port = socket.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((_, from)) = socket.recv_from(&mut buf) {
                let _ = socket.send_to(reply, from);
            }
        });
        port
    }

    fn udp_target(port: u16, payload: &[u8], expect: &[u8]) -> Target {
        Target {
            host: "127.0.0.1".into(),
            port,
            datagram: Some(Datagram {
                payload: payload.to_vec(),
                expect: expect.to_vec(),
            }),
        }
    }

    #[tokio::test]
    async fn local_probe_sends_datagrams_and_waits_for_replies() {
        let echo = udp_echo(b"worker\n");
        // bound, never answering
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let closed = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let targets = vec![
            udp_target(echo, b"ping", b"worker"),
            udp_target(silent.local_addr().unwrap().port(), b"ping", b""),
            udp_target(closed, b"ping", b""),
        ];
        let running = start_local(settings(targets));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let recorded = running.stop().await.unwrap();
        let tally = recorded.tally(recorded.started, None);
        let failed = |target: usize| {
            recorded
                .attempts
                .iter()
                .filter(|a| a.target == target && a.error.is_some())
                .count()
        };
        let tried = |target: usize| {
            recorded
                .attempts
                .iter()
                .filter(|a| a.target == target)
                .count()
        };
        assert_eq!(failed(0), 0, "{tally:?}");
        assert_eq!(failed(1), tried(1), "{tally:?}");
        assert_eq!(failed(2), tried(2), "{tally:?}");
        assert!(
            tally
                .errors
                .keys()
                .any(|e| e.contains("/udp: no reply within 1s")),
            "{tally:?}"
        );
        assert!(
            tally
                .errors
                .keys()
                .any(|e| e.contains("/udp: receive: Connection refused")),
            "{tally:?}"
        );
    }
}
