//! What each load balancer really holds: one SSH session per host, one fetch round trip each,
//! all hosts in parallel (at most `forks` at a time). Plan shows it; apply acts on it, and
//! for apply the fetch's shell stays open, so that the apply script needs no session of its
//! own (one remote shell per host for the whole apply).

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::Semaphore;

use crate::{
    deploy::DeployError,
    deploy::plan::{self, HostPlan},
    deploy::report::{HostError, Timing},
    remote::{self, FetchOptions, Fetched, PART_END, nginx_marks_in, strip_nginx_marks},
    render::RenderedHost,
    spec::{HostSpec, Service},
    ssh::{ConnectOptions, Persist, RemoteOutput, Running, Session},
};

#[derive(Debug, Clone)]
pub struct SshOptions {
    pub forks: usize,
    pub connect_timeout: Duration,
    /// Master connections stay open for the next run (`None`: closed at the end).
    pub persist: Option<Persist>,
}

impl SshOptions {
    pub fn connect(&self) -> ConnectOptions {
        ConnectOptions {
            connect_timeout: self.connect_timeout,
            persist: self.persist.clone(),
        }
    }
}

/// A host's part of the survey: its open session and plan, or why there is none.
pub struct Surveyed {
    pub host: String,
    pub session: Option<Session>,
    pub fetched: Option<Fetched>,
    /// The marks on nginx's upstream servers (drained or re-weighted UDP servers), taken
    /// off the fetched stream file before it is compared; `None` without one.
    pub nginx_marks: Option<BTreeMap<String, String>>,
    pub result: Result<HostPlan, HostError>,
    /// The connect and the fetch.
    pub timing: Timing,
    /// The shell the fetch ran in, waiting for the next script ([`survey_holding`]); to be
    /// finished (its stdin closed) when there is none.
    pub shell: Option<Running>,
    /// The script already sent into that shell, and when (an apply confirmed in advance
    /// stages each host as soon as its survey is in); `None` while the shell waits.
    pub sent: Option<(String, Instant)>,
}

impl Surveyed {
    /// Ends the held shell, if any, and closes the session.
    pub async fn close(self) {
        if let Some(shell) = self.shell {
            let _ = shell.finish().await;
        }
        if let Some(session) = self.session {
            let _ = session.close().await;
        }
    }
}

/// Closes every surveyed host's shell and session, all at once.
pub async fn close_surveyed(surveyed: Vec<Surveyed>) {
    futures_util::future::join_all(surveyed.into_iter().map(Surveyed::close)).await;
}

/// Connects to every host and fetches the files lbctl manages there, in parallel. At most
/// `forks` connections are being opened at any time (handshakes cost CPU on both ends); the
/// fetches themselves, over open connections, all run at once.
pub async fn survey(hosts: &[(HostSpec, RenderedHost)], ssh: &SshOptions) -> Vec<Surveyed> {
    let limit = Arc::new(Semaphore::new(ssh.forks.max(1)));
    let options = Arc::new(ssh.connect());
    let tasks: Vec<_> = hosts
        .iter()
        .map(|(spec, rendered)| {
            let (spec, rendered, limit) = (spec.clone(), rendered.clone(), Arc::clone(&limit));
            let options = Arc::clone(&options);
            tokio::spawn(
                async move { survey_host(&spec, &rendered, &options, &limit, false).await },
            )
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for (task, (spec, _)) in tasks.into_iter().zip(hosts) {
        out.push(task.await.unwrap_or_else(|e| Surveyed {
            host: spec.name.clone(),
            session: None,
            fetched: None,
            nginx_marks: None,
            result: Err(HostError {
                host: spec.name.clone(),
                step: "survey".into(),
                message: e.to_string(),
            }),
            timing: Timing::default(),
            shell: None,
            sent: None,
        }));
    }
    out
}

/// One host's part of [`survey`], for an apply that goes on with each host as soon as its
/// own survey is in: its fetch runs as the first part of a shell that stays open for the
/// apply script ([`Surveyed::shell`]), so that the apply opens no other session on the host.
/// At most as many hosts as `connecting` allows are being connected to at any time.
pub async fn survey_holding(
    spec: &HostSpec,
    rendered: &RenderedHost,
    options: &ConnectOptions,
    connecting: &Semaphore,
) -> Surveyed {
    survey_host(spec, rendered, options, connecting, true).await
}

async fn survey_host(
    spec: &HostSpec,
    rendered: &RenderedHost,
    options: &ConnectOptions,
    connecting: &Semaphore,
    hold: bool,
) -> Surveyed {
    let host = spec.name.clone();
    let fail = |step: &str, message: String| HostError {
        host: host.clone(),
        step: step.into(),
        message,
    };
    let mut timing = Timing::default();
    let permit = connecting.acquire().await;
    let started = Instant::now();
    let connected = Session::connect(&spec.connection, options).await;
    drop(permit);
    let session = match connected {
        Ok(s) => s,
        Err(e) => {
            return Surveyed {
                host: host.clone(),
                session: None,
                fetched: None,
                nginx_marks: None,
                result: Err(fail("connect", e.to_string())),
                timing,
                shell: None,
                sent: None,
            };
        }
    };
    timing.connect = started.elapsed().as_secs_f64();
    timing.reused_connection = session.resumed();
    let options = FetchOptions {
        admin_record: Some(spec.admin_record.clone()),
        runtime_socket: Some(spec.haproxy.runtime_socket.clone()),
        ..fetch_options(rendered)
    };
    let script = remote::fetch_script(&managed_paths(rendered), &vip_addresses(spec), &options);
    let known = rendered
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.content.as_bytes()))
        .collect();
    let started = Instant::now();
    let (fetched, shell) = if hold {
        fetch_holding(&session, &script, &known).await
    } else {
        let fetched = session.run(&script).await.map_err(DeployError::from);
        (fetched.and_then(|out| parse(out, &known)), None)
    };
    let fetched = fetched.map_err(|e| fail("fetch", e.to_string()));
    timing.fetch = started.elapsed().as_secs_f64();
    match fetched {
        Ok(fetched) => {
            let (nginx_marks, unmarked) = unmark_nginx(rendered, &fetched);
            let secrets = spec.secrets();
            let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
            let plan = plan::host_plan(rendered, unmarked.as_ref().unwrap_or(&fetched), &secrets);
            Surveyed {
                host,
                session: Some(session),
                fetched: Some(fetched),
                nginx_marks,
                result: Ok(plan),
                timing,
                shell,
                sent: None,
            }
        }
        Err(e) => Surveyed {
            host,
            session: Some(session),
            fetched: None,
            nginx_marks: None,
            result: Err(e),
            timing,
            shell,
            sent: None,
        },
    }
}

fn parse(out: RemoteOutput, known: &BTreeMap<&str, &[u8]>) -> Result<Fetched, DeployError> {
    remote::parse_fetch_knowing(&out.stdout, known)
        .map_err(|error| DeployError::Unreadable { error, output: out })
}

/// Runs the fetch `script` as the first part of a shell ([`remote::first_part`]) and, when
/// it ran to its end and its report reads well, keeps the shell waiting for the next
/// script. Otherwise the shell is ended, and an error shows everything it said, with its
/// exit status and stderr.
async fn fetch_holding(
    session: &Session,
    script: &str,
    known: &BTreeMap<&str, &[u8]>,
) -> (Result<Fetched, DeployError>, Option<Running>) {
    let mut running = match session.start(&remote::first_part(script)).await {
        Ok(running) => running,
        Err(e) => return (Err(e.into()), None),
    };
    match running.read_until(PART_END.as_bytes()).await {
        Ok(true) => {
            if let Ok(fetched) = remote::parse_fetch_knowing(running.output(), known) {
                running.take_output();
                return (Ok(fetched), Some(running));
            }
        }
        Ok(false) => {}
        Err(e) => {
            let _ = running.finish().await;
            return (Err(e.into()), None);
        }
    }
    let fetched = running
        .finish()
        .await
        .map_err(DeployError::from)
        .and_then(|out| parse(out, known));
    (fetched, None)
}

/// The marks (`down`, `weight=N` of drained or re-weighted UDP servers) on the fetched nginx
/// stream file, and when there are any, what was fetched with the file as rendered, for the
/// plan to compare: the marks are runtime state, shown as such, not a change to the file.
/// What was fetched stays as the host holds it (a saved plan records its digests).
fn unmark_nginx(
    rendered: &RenderedHost,
    fetched: &Fetched,
) -> (Option<BTreeMap<String, String>>, Option<Fetched>) {
    let Some(file) = rendered.files.iter().find(|f| f.service == Service::Nginx) else {
        return (None, None);
    };
    let Some(Some(content)) = fetched.files.get(&file.path) else {
        return (Some(BTreeMap::new()), None);
    };
    let text = String::from_utf8_lossy(content);
    let marks = nginx_marks_in(&text);
    if marks.is_empty() {
        return (Some(marks), None);
    }
    let mut unmarked = fetched.clone();
    unmarked.files.insert(
        file.path.clone(),
        Some(strip_nginx_marks(&text).into_bytes()),
    );
    (Some(marks), Some(unmarked))
}

fn managed_paths(rendered: &RenderedHost) -> Vec<String> {
    rendered.files.iter().map(|f| f.path.clone()).collect()
}

/// The VIPs as addresses (keepalived takes `address/prefix`, `ip addr` lists addresses).
pub fn vip_addresses(spec: &HostSpec) -> Vec<String> {
    spec.keepalived
        .iter()
        .flat_map(|k| k.vips.iter())
        .map(|v| v.split('/').next().unwrap_or_default().to_string())
        .collect()
}

/// The digests of what lbctl would write, so that a host whose files already match sends
/// back a digest instead of their content. HAProxy's processes are not asked for: a plan
/// does not need them.
fn fetch_options(rendered: &RenderedHost) -> FetchOptions {
    FetchOptions {
        expected: rendered
            .files
            .iter()
            .map(|f| (f.path.clone(), remote::sha256_hex(f.content.as_bytes())))
            .collect(),
        ..FetchOptions::default()
    }
}
