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
    deploy::deployment,
    deploy::plan::{self, HostPlan},
    deploy::report::{HostError, Timing},
    remote::{
        self, APPLY_LOCK, Deployment, FetchOptions, Fetched, PART_END, nginx_marks_in,
        strip_nginx_marks,
    },
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
    /// The held apply script already sent into that shell (an apply confirmed in advance
    /// stages each host with its fetch, or as soon as its survey is in); `None` while the
    /// shell waits.
    pub sent: Option<Early>,
}

/// A held apply script a host was sent before the whole survey was in, to stage and check
/// its files while lbctl waits for the other hosts.
pub struct Early {
    /// What it was made for.
    pub deployment: Deployment,
    /// It went along with the fetch ([`remote::fetch_then`]), made for every managed file:
    /// the host leaves out those the fetch found holding what lbctl would write.
    pub speculative: bool,
    /// When the host began on it (its check's time runs from there).
    pub since: Instant,
}

impl Early {
    /// Whether the host is staging exactly `deployment`, given what its fetch showed.
    pub fn stands_for(&self, deployment: &Deployment, fetched: Option<&Fetched>) -> bool {
        if !self.speculative {
            return self.deployment == *deployment;
        }
        let Some(fetched) = fetched else { return false };
        let mut staged = self.deployment.clone();
        staged.files.retain(|file| {
            fetched.files.get(&file.path).and_then(Option::as_deref)
                != Some(file.content.as_bytes())
        });
        staged == *deployment
    }
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
                async move { survey_host(&spec, &rendered, &options, &limit, Hold::No).await },
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
/// With `speculative` (a deployment of every managed file), the held apply script for it
/// goes along with the fetch, in the same round trip, and the host stages and checks the
/// files that differ as soon as it has fetched them ([`remote::fetch_then`];
/// [`Surveyed::sent`] says so). At most as many hosts as `connecting` allows are being
/// connected to at any time.
pub async fn survey_holding(
    spec: &HostSpec,
    rendered: &RenderedHost,
    options: &ConnectOptions,
    connecting: &Semaphore,
    speculative: Option<Deployment>,
) -> Surveyed {
    survey_host(
        spec,
        rendered,
        options,
        connecting,
        Hold::Shell(speculative.map(Box::new)),
    )
    .await
}

/// What a survey does with the fetch's shell.
enum Hold {
    /// Ends it with the fetch (a plan).
    No,
    /// Keeps it for the apply script; with a speculative deployment, sends its held apply
    /// script along with the fetch.
    Shell(Option<Box<Deployment>>),
}

async fn survey_host(
    spec: &HostSpec,
    rendered: &RenderedHost,
    options: &ConnectOptions,
    connecting: &Semaphore,
    hold: Hold,
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
    let speculative = match &hold {
        Hold::Shell(speculative) => speculative.as_ref(),
        Hold::No => None,
    };
    let startable = deployment::first_starts(spec);
    // every daemon `status` asks about (those an apply starts among them): whether each runs
    let daemons = remote::Query::full(spec).daemons;
    debug_assert!(startable.iter().all(|(service, start)| {
        daemons.contains(&(service.name().to_owned(), start.pid_file.clone()))
    }));
    let options = FetchOptions {
        admin_record: Some(spec.admin_record.clone()),
        runtime_socket: Some(spec.haproxy.runtime_socket.clone()),
        matches_to_fd3: speculative.is_some(),
        daemons,
        ..fetch_options(rendered)
    };
    let script = remote::fetch_script(&managed_paths(rendered), &vip_addresses(spec), &options);
    let known = rendered
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.content.as_bytes()))
        .collect();
    let started = Instant::now();
    let (fetched, shell, staging) = match &hold {
        Hold::Shell(None) => {
            let wire = remote::first_part(&script);
            fetch_holding(&session, &wire, &known, false).await
        }
        Hold::Shell(Some(deployment)) => {
            let then = remote::speculative_apply_script(deployment, APPLY_LOCK);
            let wire = remote::fetch_then(&script, &then, &spec.admin_record);
            fetch_holding(&session, &wire, &known, true).await
        }
        Hold::No => {
            let fetched = session.run(&script).await.map_err(DeployError::from);
            (fetched.and_then(|out| parse(out, &known)), None, false)
        }
    };
    let sent = match hold {
        Hold::Shell(Some(deployment)) if staging => Some(Early {
            deployment: *deployment,
            speculative: true,
            since: Instant::now(),
        }),
        _ => None,
    };
    let fetched = fetched.map_err(|e| fail("fetch", e.to_string()));
    timing.fetch = started.elapsed().as_secs_f64();
    match fetched {
        Ok(fetched) => {
            let (nginx_marks, unmarked) = unmark_nginx(rendered, &fetched);
            let secrets = spec.secrets();
            let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
            let mut plan =
                plan::host_plan(rendered, unmarked.as_ref().unwrap_or(&fetched), &secrets);
            let startable: Vec<Service> = startable.iter().map(|(service, _)| *service).collect();
            plan.starts = plan::starts(&plan, &fetched, &startable);
            plan.not_running = plan::not_running(&plan, &fetched);
            Surveyed {
                host,
                session: Some(session),
                fetched: Some(fetched),
                nginx_marks,
                result: Ok(plan),
                timing,
                shell,
                sent,
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
            sent,
        },
    }
}

fn parse(out: RemoteOutput, known: &BTreeMap<&str, &[u8]>) -> Result<Fetched, DeployError> {
    remote::parse_fetch_knowing(&out.stdout, known)
        .map_err(|error| DeployError::Unreadable { error, output: out })
}

/// Sends `script`, a fetch run as the first part of a shell ([`remote::first_part`], or
/// with an apply script after it: `speculative`, [`remote::fetch_then`]) and, when the fetch
/// ran to its end and its report reads well, keeps the shell for what follows, and says
/// whether the apply script sent along is under way (`true`) or the shell waits for the
/// next script. Otherwise the shell is ended, and an error shows everything it said, with
/// its exit status and stderr.
async fn fetch_holding(
    session: &Session,
    script: &str,
    known: &BTreeMap<&str, &[u8]>,
    speculative: bool,
) -> (Result<Fetched, DeployError>, Option<Running>, bool) {
    let mut running = match session.start(script).await {
        Ok(running) => running,
        Err(e) => return (Err(e.into()), None, false),
    };
    let fetched = match running.read_until(PART_END.as_bytes()).await {
        Ok(true) => remote::parse_fetch_knowing(running.output(), known).ok(),
        Ok(false) => None,
        Err(e) => {
            let _ = running.finish().await;
            return (Err(e.into()), None, false);
        }
    };
    if let Some(fetched) = fetched {
        running.take_output();
        if !speculative {
            return (Ok(fetched), Some(running), false);
        }
        let next = [
            remote::SPECULATION_STAGING.as_bytes(),
            remote::SPECULATION_DECLINED.as_bytes(),
        ];
        if let Ok(Some(which)) = running.read_until_any(&next).await {
            running.take_output();
            return (Ok(fetched), Some(running), which == 0);
        }
        // The shell ended right after the fetch: the fetch stands, the shell is gone.
        let _ = running.finish().await;
        return (Ok(fetched), None, false);
    }
    let fetched = running
        .finish()
        .await
        .map_err(DeployError::from)
        .and_then(|out| parse(out, known));
    (fetched, None, false)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::{Keep, ManagedFile, Verify};

    fn deployment(files: &[(&str, &str)]) -> Deployment {
        Deployment {
            host: "lb1".to_owned(),
            files: files
                .iter()
                .map(|(path, content)| ManagedFile {
                    service: Service::Haproxy,
                    path: (*path).to_owned(),
                    content: (*content).to_owned(),
                })
                .collect(),
            controls: BTreeMap::new(),
            verify: Verify::default(),
            keep: Keep::default(),
        }
    }

    fn early(deployment: Deployment, speculative: bool) -> Early {
        Early {
            deployment,
            speculative,
            since: Instant::now(),
        }
    }

    #[test]
    fn a_speculative_script_stands_for_the_files_the_fetch_did_not_match() {
        let every = deployment(&[("/a", "new a\n"), ("/b", "b\n")]);
        let sent = early(every.clone(), true);
        let fetched = |a: Option<&str>, b: Option<&str>| Fetched {
            files: BTreeMap::from([
                ("/a".to_owned(), a.map(|c| c.as_bytes().to_vec())),
                ("/b".to_owned(), b.map(|c| c.as_bytes().to_vec())),
            ]),
            ..Fetched::default()
        };
        // /b already holds it: the host stages /a alone, which is what the apply changes.
        let only_a = deployment(&[("/a", "new a\n")]);
        assert!(sent.stands_for(&only_a, Some(&fetched(Some("old a\n"), Some("b\n")))));
        assert!(sent.stands_for(&only_a, Some(&fetched(None, Some("b\n")))));
        // Both differ: the host stages both, and the apply must change both.
        assert!(!sent.stands_for(&only_a, Some(&fetched(None, Some("old b\n")))));
        assert!(sent.stands_for(&every, Some(&fetched(None, Some("old b\n")))));
        // What the apply hands the host differs otherwise (a file marked for the tier's
        // record, an admin state to keep): not what the host is doing.
        let marked = deployment(&[("/a", "new a, marked\n")]);
        assert!(!sent.stands_for(&marked, Some(&fetched(None, Some("b\n")))));
        let mut kept = only_a.clone();
        kept.keep.record = Some("drain\n".to_owned());
        assert!(!sent.stands_for(&kept, Some(&fetched(None, Some("b\n")))));
        // Nothing fetched: nothing to go by.
        assert!(!sent.stands_for(&only_a, None));
    }

    #[test]
    fn a_script_sent_after_the_fetch_stands_for_exactly_its_deployment() {
        let only_a = deployment(&[("/a", "new a\n")]);
        let sent = early(only_a.clone(), false);
        assert!(sent.stands_for(&only_a, None));
        assert!(!sent.stands_for(&deployment(&[("/a", "other\n")]), None));
    }
}
