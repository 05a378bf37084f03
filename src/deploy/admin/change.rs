//! A change on every load balancer at once, in two phases over one held script each: every
//! reachable load balancer looks ([`look`]); lbctl decides from all the answers
//! ([`not_ready`], the last-server guard); then every one goes ahead, brought in line with
//! the tier's record on the way ([`go_ahead`]), and its outcome is checked ([`settle`]).

use std::{collections::BTreeSet, sync::Arc, time::Instant};

use futures_util::future::join_all;

use super::{
    AdminError, AdminReport, HostProblem, HostReport, NotReady, Problems, Request, ServerChange,
    converge,
    converge::script_problems,
    describe, describe_mark, engine, for_host,
    guard::{last_servers, takes_away},
    runtime_has, setting_words,
};
use crate::{
    deploy::{DeployError, survey::SshOptions},
    remote::{
        AdminScriptReport, Engine, Entry, READY, Record, ServerState, admin_script, nginx_marks_of,
        parse_admin,
    },
    spec::{Fleet, HostSpec, Kind, Placement},
    ssh::{self, Running, Session},
};

/// One load balancer during a change.
struct Host<'s> {
    spec: &'s HostSpec,
    report: HostReport,
    started: Instant,
    looked: AdminScriptReport,
    /// Why it answered but could not look.
    problem: Option<HostProblem>,
    running: Option<Running>,
}

/// Sets `request.setting` on the worker's servers on every load balancer. Every load
/// balancer that answers looks first, and none changes unless all of them could look and
/// the change is allowed; one that cannot be reached is named in its report. Returns the
/// report and the open sessions (for `--wait`), in the fleet's order.
pub async fn change(
    fleet: &Fleet,
    request: &Request,
    ssh: &SshOptions,
) -> Result<(AdminReport, Vec<Option<Arc<Session>>>), AdminError> {
    let connections: Vec<_> = fleet.hosts.iter().map(|h| h.connection.clone()).collect();
    let connected = ssh::connect_all(&connections, ssh.connect(), ssh.forks).await;
    let sessions: Vec<Option<Arc<Session>>> = connected
        .iter()
        .map(|c| c.session.as_ref().ok().cloned())
        .collect();

    // Phase 1: every reachable load balancer looks, at once.
    let looks = fleet
        .hosts
        .iter()
        .zip(&connected)
        .map(|(spec, c)| async move {
            let mut host = Host {
                spec,
                report: HostReport {
                    host: spec.name.clone(),
                    error: None,
                    unreachable: false,
                    servers: Vec::new(),
                    converged: Vec::new(),
                    nginx: None,
                    seconds: 0.0,
                },
                started: Instant::now(),
                looked: AdminScriptReport::default(),
                problem: None,
                running: None,
            };
            match &c.session {
                Err(e) => {
                    host.report.error = Some(e.to_string());
                    host.report.unreachable = true;
                }
                Ok(session) => match look(session, &admin_script(&super::admin_host(spec))).await {
                    Ok((looked, running)) => {
                        host.looked = looked;
                        host.running = Some(running);
                    }
                    // The connection, not the host, failed: a connection an earlier run
                    // kept open (`--ssh-persist`) to a host since cut off reports it only
                    // here, once its keep-alives go unanswered. Its script, if it started,
                    // changes nothing without the go-ahead: the host is unreachable, as one
                    // whose connection could not be opened is.
                    Err(HostProblem::Deploy(DeployError::Transport(e))) => {
                        host.report.error = Some(e.to_string());
                        host.report.unreachable = true;
                    }
                    Err(e) => {
                        host.report.error = Some(e.to_string());
                        host.problem = Some(e);
                    }
                },
            }
            host
        });
    let mut hosts: Vec<Host<'_>> = join_all(looks).await;
    // `drain --wait` counts over the sessions of the load balancers that were reached.
    let sessions: Vec<Option<Arc<Session>>> = sessions
        .into_iter()
        .zip(&hosts)
        .map(|(session, h)| session.filter(|_| !h.report.unreachable))
        .collect();

    let not_ready = not_ready(&hosts, request);
    if !not_ready.is_empty() {
        stop_all(&mut hosts).await;
        return Err(AdminError::NotReady(not_ready));
    }

    let tier = tier_record(&hosts, request);
    if takes_away(request.setting) && !request.force {
        let last: Vec<String> = hosts
            .iter()
            .filter(|h| h.running.is_some())
            .flat_map(|h| {
                let ours: Vec<&Placement> = request.on(&h.spec.name).collect();
                let runtime = match &h.looked.looked.servers {
                    Some(Ok(servers)) => servers.as_slice(),
                    _ => &[],
                };
                let marks = nginx_marks_of(&for_host(h.spec, &tier));
                last_servers(h.spec, &ours, runtime, &marks)
            })
            .collect();
        if !last.is_empty() {
            stop_all(&mut hosts).await;
            return Err(AdminError::LastServer {
                worker: request.worker.clone(),
                backends: last,
            });
        }
    }

    // Phase 2: every load balancer that looked goes ahead.
    join_all(hosts.iter_mut().map(|h| go_ahead(h, request, &tier))).await;

    let report = AdminReport {
        worker: request.worker.clone(),
        setting: request.setting,
        stamp: request.stamp.clone(),
        hosts: hosts.into_iter().map(|h| h.report).collect(),
    };
    Ok((report, sessions))
}

/// Starts the held script and reads what it saw, up to its `ready`.
async fn look(
    session: &Session,
    script: &str,
) -> Result<(AdminScriptReport, Running), HostProblem> {
    let mut running = session.start(script).await.map_err(DeployError::from)?;
    if running.read_until(READY).await.map_err(DeployError::from)? {
        let looked = parse_admin(running.output(), true).map_err(DeployError::from)?;
        return Ok((looked, running));
    }
    let out = running.finish().await.map_err(DeployError::from)?;
    match parse_admin(&out.stdout, false) {
        Ok(report) => Err(match report.error {
            Some(e) => HostProblem::Host(e),
            None => DeployError::ScriptEnded {
                script: "admin",
                output: out,
            }
            .into(),
        }),
        Err(error) => Err(DeployError::Unreadable { error, output: out }.into()),
    }
}

/// What keeps the change from going ahead anywhere: a load balancer that answered but could
/// not look, an unreadable record, a server the running HAProxy does not have.
fn not_ready(hosts: &[Host<'_>], request: &Request) -> Vec<NotReady> {
    let mut out = Vec::new();
    for h in hosts.iter().filter(|h| !h.report.unreachable) {
        let host = h.spec.name.clone();
        if let Some(problem) = &h.problem {
            out.push(NotReady::CannotLook {
                host,
                problem: problem.clone(),
            });
            continue;
        }
        let looked = &h.looked.looked;
        if let Some(Err(error)) = &looked.record {
            out.push(NotReady::Record {
                host: host.clone(),
                path: h.spec.admin_record.clone(),
                error: error.clone(),
            });
        }
        let ours: Vec<&Placement> = request.on(&h.spec.name).collect();
        match &looked.servers {
            Some(Ok(servers)) => {
                for p in ours.iter().filter(|p| p.kind != Kind::Udp) {
                    if !servers
                        .iter()
                        .any(|s| s.backend == p.backend && s.server == p.server)
                    {
                        out.push(NotReady::NoServer {
                            host: host.clone(),
                            backend: p.backend.clone(),
                            server: p.server.clone(),
                        });
                    }
                }
            }
            Some(Err(error)) if ours.iter().any(|p| p.kind != Kind::Udp) => {
                out.push(NotReady::RuntimeApi {
                    host: host.clone(),
                    error: error.clone(),
                });
            }
            _ => {}
        }
        if ours.iter().any(|p| p.kind == Kind::Udp) && looked.nginx_marks.is_none() {
            out.push(NotReady::NoStreamFile { host });
        }
    }
    out
}

/// The tier's record: the newest of every record read, then this change.
fn tier_record(hosts: &[Host<'_>], request: &Request) -> Record {
    let records: Vec<Record> = hosts
        .iter()
        .filter_map(|h| h.looked.looked.record.clone()?.ok())
        .collect();
    let mut tier = Record::merge(&records);
    for p in &request.placements {
        tier.insert(Entry {
            engine: engine(p.kind),
            backend: p.backend.clone(),
            server: p.server.clone(),
            setting: request.setting,
            worker: request.worker.clone(),
            since: request.stamp.since,
            run: request.stamp.run.clone(),
            who: request.stamp.who.clone(),
            reason: request.stamp.reason.clone(),
        });
    }
    tier
}

async fn stop_all(hosts: &mut [Host<'_>]) {
    let stops = hosts
        .iter_mut()
        .filter_map(|h| h.running.take())
        .map(|running| async move {
            let _ = running.finish().await;
        });
    join_all(stops).await;
}

/// Phase 2 on one load balancer that looked: what it needs to be in line with the tier's
/// record (this change included) goes to its script, and the outcome is checked.
async fn go_ahead(h: &mut Host<'_>, request: &Request, tier: &Record) {
    let Some(mut running) = h.running.take() else {
        return;
    };
    let looked = &h.looked.looked;
    let held = looked
        .record
        .clone()
        .and_then(Result::ok)
        .unwrap_or_default();
    let runtime = match &looked.servers {
        Some(Ok(servers)) => Some(servers.as_slice()),
        _ => None,
    };
    let plan = converge(h.spec, tier, &held, runtime, looked.nginx_marks.as_ref());
    let ours: BTreeSet<(Engine, &str, &str)> = request
        .on(&h.spec.name)
        .map(|p| (engine(p.kind), p.backend.as_str(), p.server.as_str()))
        .collect();
    h.report.converged = plan
        .drift
        .iter()
        .filter(|d| {
            !ours.contains(&(
                d.entry.engine,
                d.entry.backend.as_str(),
                d.entry.server.as_str(),
            ))
        })
        .map(|d| setting_words(&d.entry))
        .collect();
    let report = async {
        running.answer(&plan.answer()).await?;
        let out = running.finish().await?;
        parse_admin(&out.stdout, false)
            .map_err(|error| DeployError::Unreadable { error, output: out })
    }
    .await;
    h.report.seconds = h.started.elapsed().as_secs_f64();
    match report {
        Ok(report) => {
            let problems = settle(h, request, &report, tier);
            if !problems.0.is_empty() {
                h.report.error = Some(problems.to_string());
            }
        }
        Err(e) => {
            h.report.error =
                Some(HostProblem::Unknown(Box::new(HostProblem::Deploy(e))).to_string());
        }
    }
}

/// Records how phase 2 went on one load balancer, and checks the result: every server of the
/// worker in the state asked for.
fn settle(
    h: &mut Host<'_>,
    request: &Request,
    report: &AdminScriptReport,
    tier: &Record,
) -> Problems {
    let mut problems = script_problems(report);
    h.report.nginx = report.changed.nginx.clone();
    let before = match &h.looked.looked.servers {
        Some(Ok(s)) => s.clone(),
        _ => Vec::new(),
    };
    let after = match &report.changed.after {
        Some(Ok(s)) => s.clone(),
        Some(Err(e)) => {
            problems.push(HostProblem::After(e.clone()));
            Vec::new()
        }
        None => Vec::new(),
    };
    let marks_before = h.looked.looked.nginx_marks.as_ref();
    let marks_after = nginx_marks_of(&for_host(h.spec, tier));
    for p in request.on(&h.spec.name) {
        let engine = engine(p.kind);
        let (before, after) = match engine {
            Engine::Haproxy => {
                let find = |list: &[ServerState]| {
                    list.iter()
                        .find(|s| s.backend == p.backend && s.server == p.server)
                        .cloned()
                };
                let (was, now) = (find(&before), find(&after));
                match &now {
                    Some(now) if !runtime_has(request.setting, now) => {
                        problems.push(HostProblem::NotAsAsked {
                            backend: p.backend.clone(),
                            server: p.server.clone(),
                            state: describe(now),
                        });
                    }
                    None if report.changed.after.is_some() => {
                        problems.push(HostProblem::Vanished {
                            backend: p.backend.clone(),
                            server: p.server.clone(),
                        });
                    }
                    _ => {}
                }
                (
                    was.as_ref().map_or_else(|| "?".into(), describe),
                    now.as_ref().map_or_else(|| "?".into(), describe),
                )
            }
            Engine::Nginx => {
                let key = format!("{}/{}", p.backend, p.server);
                (
                    describe_mark(marks_before, &key),
                    describe_mark(Some(&marks_after), &key),
                )
            }
        };
        h.report.servers.push(ServerChange {
            engine,
            backend: p.backend.clone(),
            server: p.server.clone(),
            before,
            after,
        });
    }
    if !report.succeeded() && problems.is_empty() {
        problems.push(HostProblem::Ended(report.outcome));
    }
    Problems(problems)
}
