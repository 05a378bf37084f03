//! `lbctl drain|maint|ready|weight`: one setting for a worker's servers on every load
//! balancer at once, one SSH round trip each (the held script of `remote::admin`) and no
//! reload for HAProxy; and what keeps the tier's admin state in line afterwards.
//!
//! The tier's record is the newest entry, per server and setting, of every load balancer's
//! record ([`Record::merge`]). Each load balancer is brought in line with it
//! ([`converge`]): the entries its own record lacks (it was unreachable when they were set)
//! and the ones its HAProxy lost (restarted without its state file) are set again, and nginx
//! is re-marked if its marks differ. A drain does that on the way, and so does `apply`.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::Instant,
};

use futures_util::future::join_all;
use serde::Serialize;

use crate::{
    deploy::{deployment::NGINX_CHECK, runtime_state::Converged, survey::SshOptions},
    remote::{
        ADMIN_ANY_DRAIN, ADMIN_ANY_MAINT, ADMIN_FORCED_DRAIN, ADMIN_FORCED_MAINT, APPLY_LOCK,
        AdminHost, AdminNginx, AdminScriptReport, AdminState, Engine, Entry, NginxOutcome, OpState,
        Query, READY, Record, RowKind, ServerState, Setting, admin_answer, admin_script,
        nginx_marks_of, parse_admin, parse_lb_state,
    },
    spec::{Fleet, HostSpec, Kind, Placement, UdpEngine},
    ssh::{self, Running, Session},
};

/// Why a change went ahead nowhere.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// A load balancer answered but could not look (a tool missing, an apply holding the
    /// lock), its record is unreadable, or its HAProxy lacks one of the worker's servers.
    #[error("nothing was changed:\n  {}", .0.join("\n  "))]
    NotReady(Vec<String>),
    /// The change would leave backends with no server taking new traffic.
    #[error(
        "refusing to take {worker} out: it is the last server taking traffic in {}; nothing was changed",
        .backends.join(", ")
    )]
    LastServer {
        worker: String,
        backends: Vec<String>,
    },
}

impl AdminError {
    /// What to do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            AdminError::NotReady(_) => None,
            AdminError::LastServer { .. } => Some(
                "bring another server of the backend up first, or pass --force to take the service down"
                    .into(),
            ),
        }
    }
}

/// Who set a setting, when, and why: what every entry of the record carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stamp {
    /// Seconds since the epoch.
    pub since: u64,
    pub run: String,
    pub who: String,
    pub reason: String,
}

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct Request {
    pub worker: String,
    /// The worker's servers, on every load balancer.
    pub placements: Vec<Placement>,
    pub setting: Setting,
    /// Take the last server of a backend that takes traffic out all the same.
    pub force: bool,
    pub stamp: Stamp,
}

#[derive(Debug, Clone, Serialize)]
pub struct AdminReport {
    pub worker: String,
    pub setting: Setting,
    #[serde(flatten)]
    pub stamp: Stamp,
    pub hosts: Vec<HostReport>,
}

impl AdminReport {
    /// Every load balancer was reached and did what was asked.
    pub fn complete(&self) -> bool {
        self.hosts.iter().all(|h| h.error.is_none())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct HostReport {
    pub host: String,
    /// Why this load balancer was not changed, or not as asked (it is then converged by the
    /// next `apply` or `drain|maint|ready|weight`).
    pub error: Option<String>,
    pub unreachable: bool,
    /// The worker's servers here, before and after.
    pub servers: Vec<ServerChange>,
    /// Other settings of the tier's record this load balancer was brought in line with.
    pub converged: Vec<String>,
    /// nginx, when the worker has UDP servers here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nginx: Option<NginxOutcome>,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerChange {
    pub engine: Engine,
    pub backend: String,
    pub server: String,
    /// HAProxy's words (`UP`, `DOWN`, `DRAIN`, `MAINT`, with `weight N` when it is not the
    /// configured one); for nginx, `up`, `down` or `weight=N`.
    pub before: String,
    pub after: String,
}

/// The engine that carries a placement's backend.
pub fn engine(kind: Kind) -> Engine {
    match kind {
        Kind::Tcp | Kind::Http => Engine::Haproxy,
        Kind::Udp => Engine::Nginx,
    }
}

/// What the admin script needs to know about `spec`.
pub fn admin_host(spec: &HostSpec) -> AdminHost {
    AdminHost {
        lock: APPLY_LOCK.to_string(),
        socket: Some(spec.haproxy.runtime_socket.clone()),
        config: spec.haproxy.config_path.clone(),
        state_file: Some(spec.haproxy.server_state_file.clone()),
        record: spec.admin_record.clone(),
        nginx: match &spec.udp_engine {
            UdpEngine::Nginx {
                config_path,
                reload,
                ..
            } if !spec.udp_backends.is_empty() => Some(AdminNginx {
                config: config_path.clone(),
                check: NGINX_CHECK.to_string(),
                reload: reload.shell(),
            }),
            _ => None,
        },
    }
}

/// Whether `spec` configures this server, carried by this engine.
fn configures(spec: &HostSpec, engine: Engine, backend: &str, server: &str) -> bool {
    let has = |servers: &[crate::spec::Server]| servers.iter().any(|s| s.name == server);
    match engine {
        Engine::Haproxy => {
            spec.tcp_backends
                .iter()
                .any(|b| b.name == backend && has(&b.servers))
                || spec
                    .http_backends
                    .iter()
                    .any(|b| b.name == backend && has(&b.servers))
        }
        Engine::Nginx => {
            matches!(spec.udp_engine, UdpEngine::Nginx { .. })
                && spec
                    .udp_backends
                    .iter()
                    .any(|b| b.name == backend && has(&b.servers))
        }
    }
}

/// The part of the tier's record that concerns `spec`'s servers.
pub fn for_host(spec: &HostSpec, tier: &Record) -> Record {
    let mut record = tier.clone();
    record.retain(|e| configures(spec, e.engine, &e.backend, &e.server));
    record
}

/// Whether HAProxy's runtime state already is what `setting` asks for.
pub fn runtime_has(setting: Setting, server: &ServerState) -> bool {
    match setting {
        Setting::State(AdminState::Drain) => {
            server.admin_flags & ADMIN_FORCED_DRAIN != 0
                && server.admin_flags & ADMIN_FORCED_MAINT == 0
        }
        Setting::State(AdminState::Maint) => server.admin_flags & ADMIN_FORCED_MAINT != 0,
        Setting::State(AdminState::Ready) => {
            server.admin_flags & (ADMIN_FORCED_DRAIN | ADMIN_FORCED_MAINT) == 0
        }
        Setting::Weight(Some(weight)) => server.weight == weight,
        Setting::Weight(None) => server.weight == server.configured_weight,
    }
}

/// Why a load balancer is out of line with the tier's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Why {
    /// Its record lacks the entry: it did not get the change (unreachable at the time).
    Missed,
    /// Its record has it, its HAProxy does not (restarted without its state file, or changed
    /// by hand).
    Lost,
    /// nginx's marks differ from the record.
    NginxMarks,
}

/// One setting a load balancer is out of line with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub entry: Entry,
    pub why: Why,
}

/// What one load balancer needs to be in line with the tier's record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Convergence {
    /// Runtime API commands.
    pub commands: Vec<String>,
    /// Its record, when it differs from what it holds.
    pub record: Option<Record>,
    /// nginx's stream file needs other marks.
    pub remark_nginx: bool,
    pub drift: Vec<Drift>,
}

impl Convergence {
    pub fn needed(&self) -> bool {
        !self.commands.is_empty() || self.record.is_some() || self.remark_nginx
    }
}

/// What `spec`'s load balancer needs, holding `held` as its record, HAProxy's `runtime` state
/// (when known) and nginx's current `marks` (when it has a stream file), to be in line with
/// the tier's record `tier`.
pub fn converge(
    spec: &HostSpec,
    tier: &Record,
    held: &Record,
    runtime: Option<&[ServerState]>,
    marks: Option<&BTreeMap<String, String>>,
) -> Convergence {
    let wanted = for_host(spec, tier);
    let mut out = Convergence::default();
    for entry in wanted.entries() {
        let why = if held.get(&entry.key()) != Some(entry) {
            Some(Why::Missed)
        } else if entry.engine == Engine::Haproxy && entry.setting.active() {
            runtime
                .and_then(|servers| {
                    servers
                        .iter()
                        .find(|s| s.backend == entry.backend && s.server == entry.server)
                })
                .filter(|s| !runtime_has(entry.setting, s))
                .map(|_| Why::Lost)
        } else {
            None
        };
        if let Some(why) = why {
            if entry.engine == Engine::Haproxy {
                out.commands
                    .push(entry.setting.command(&entry.backend, &entry.server));
            }
            if why != Why::Missed || entry.setting.active() || held.get(&entry.key()).is_some() {
                out.drift.push(Drift {
                    entry: entry.clone(),
                    why,
                });
            }
        }
    }
    if wanted != *held {
        out.record = Some(wanted.clone());
    }
    if let Some(marks) = marks {
        let want = nginx_marks_of(&wanted);
        if &want != marks {
            out.remark_nginx = true;
            for entry in wanted.active().filter(|e| e.engine == Engine::Nginx) {
                let key = format!("{}/{}", entry.backend, entry.server);
                if marks.get(&key) != want.get(&key) && !out.drift.iter().any(|d| d.entry == *entry)
                {
                    out.drift.push(Drift {
                        entry: entry.clone(),
                        why: Why::NginxMarks,
                    });
                }
            }
        }
    }
    out
}

/// How a server looks to an operator: HAProxy's words, and its weight when it is its own.
pub fn describe(server: &ServerState) -> String {
    let state = if server.admin_flags & ADMIN_ANY_MAINT != 0 {
        "MAINT"
    } else if server.admin_flags & ADMIN_ANY_DRAIN != 0 {
        "DRAIN"
    } else {
        match server.op {
            OpState::Running => "UP",
            OpState::Stopping => "UP (failing)",
            OpState::Starting => "DOWN (recovering)",
            OpState::Stopped => "DOWN",
        }
    };
    if server.weight == server.configured_weight {
        state.to_string()
    } else {
        format!("{state}, weight {}", server.weight)
    }
}

fn describe_mark(marks: Option<&BTreeMap<String, String>>, key: &str) -> String {
    marks
        .and_then(|m| m.get(key))
        .cloned()
        .unwrap_or_else(|| "up".to_string())
}

/// Whether `setting` takes traffic away from a server.
fn takes_away(setting: Setting) -> bool {
    matches!(
        setting,
        Setting::State(AdminState::Drain | AdminState::Maint) | Setting::Weight(Some(0))
    )
}

/// The backends on this load balancer that would be left with no server taking new traffic.
fn last_servers(
    spec: &HostSpec,
    placements: &[&Placement],
    runtime: &[ServerState],
    marks_after: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    let backends: BTreeSet<(Kind, &str)> = placements
        .iter()
        .map(|p| (p.kind, p.backend.as_str()))
        .collect();
    for (kind, backend) in backends {
        let ours: BTreeSet<&str> = placements
            .iter()
            .filter(|p| p.backend == backend)
            .map(|p| p.server.as_str())
            .collect();
        let (others, ours_taking) = if kind == Kind::Udp {
            let servers: Vec<&str> = spec
                .udp_backends
                .iter()
                .filter(|b| b.name == backend)
                .flat_map(|b| b.servers.iter().map(|s| s.name.as_str()))
                .collect();
            let up = |s: &str| {
                marks_after
                    .get(&format!("{backend}/{s}"))
                    .is_none_or(|m| m != "down")
            };
            (
                servers
                    .iter()
                    .copied()
                    .filter(|s| !ours.contains(s) && up(s))
                    .count(),
                true,
            )
        } else {
            let in_backend = runtime.iter().filter(|s| s.backend == backend);
            (
                in_backend
                    .clone()
                    .filter(|s| !ours.contains(s.server.as_str()) && s.takes_traffic())
                    .count(),
                in_backend
                    .filter(|s| ours.contains(s.server.as_str()))
                    .any(ServerState::takes_traffic),
            )
        };
        if others == 0 && ours_taking {
            out.push(format!("{backend} on {}", spec.name));
        }
    }
    out
}

/// One load balancer during a change.
struct Host<'s> {
    spec: &'s HostSpec,
    report: HostReport,
    started: Instant,
    looked: AdminScriptReport,
    running: Option<Running<'s>>,
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
    let scripts: Vec<String> = fleet
        .hosts
        .iter()
        .map(|h| admin_script(&admin_host(h)))
        .collect();

    // Phase 1: every reachable load balancer looks, at once.
    let looks =
        fleet
            .hosts
            .iter()
            .zip(&connected)
            .zip(&scripts)
            .map(|((spec, c), script)| async move {
                let started = Instant::now();
                let mut report = HostReport {
                    host: spec.name.clone(),
                    error: None,
                    unreachable: false,
                    servers: Vec::new(),
                    converged: Vec::new(),
                    nginx: None,
                    seconds: 0.0,
                };
                let (looked, running) = match &c.session {
                    Err(e) => {
                        report.error = Some(e.to_string());
                        report.unreachable = true;
                        (AdminScriptReport::default(), None)
                    }
                    Ok(session) => match look(session, script).await {
                        Ok((looked, running)) => (looked, Some(running)),
                        Err(e) => {
                            report.error = Some(e);
                            (AdminScriptReport::default(), None)
                        }
                    },
                };
                Host {
                    spec,
                    report,
                    started,
                    looked,
                    running,
                }
            });
    let mut hosts: Vec<Host<'_>> = join_all(looks).await;

    let problems = problems(&hosts, request);
    if !problems.is_empty() {
        stop_all(&mut hosts).await;
        return Err(AdminError::NotReady(problems));
    }

    // The tier's record: the newest of every record read, then this change.
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

    if takes_away(request.setting) && !request.force {
        let mut last = Vec::new();
        for h in hosts.iter().filter(|h| h.running.is_some()) {
            let ours: Vec<&Placement> = request
                .placements
                .iter()
                .filter(|p| p.lb == h.spec.name)
                .collect();
            let runtime = match &h.looked.looked.servers {
                Some(Ok(servers)) => servers.as_slice(),
                _ => &[],
            };
            let marks = nginx_marks_of(&for_host(h.spec, &tier));
            last.extend(last_servers(h.spec, &ours, runtime, &marks));
        }
        if !last.is_empty() {
            stop_all(&mut hosts).await;
            return Err(AdminError::LastServer {
                worker: request.worker.clone(),
                backends: last,
            });
        }
    }

    // Phase 2: every load balancer that looked goes ahead.
    let changes = hosts.iter_mut().map(|h| {
        let tier = &tier;
        async move {
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
                .placements
                .iter()
                .filter(|p| p.lb == h.spec.name)
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
            let answered = running
                .answer(&admin_answer(
                    &plan.commands,
                    plan.record.as_ref(),
                    plan.remark_nginx,
                ))
                .await;
            let finished = match answered {
                Ok(()) => running.finish().await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let report = finished.and_then(|out| {
                parse_admin(&out.stdout, false).map_err(|e| format!("{e} ({out})"))
            });
            settle(h, request, report, tier);
        }
    });
    join_all(changes).await;

    let report = AdminReport {
        worker: request.worker.clone(),
        setting: request.setting,
        stamp: request.stamp.clone(),
        hosts: hosts.into_iter().map(|h| h.report).collect(),
    };
    Ok((report, sessions))
}

/// Starts the held script and reads what it saw, up to its `ready`.
async fn look<'s>(
    session: &'s Session,
    script: &str,
) -> Result<(AdminScriptReport, Running<'s>), String> {
    let mut running = session.start(script).await.map_err(|e| e.to_string())?;
    if running.read_until(READY).await.map_err(|e| e.to_string())? {
        let looked = parse_admin(running.output(), true).map_err(|e| e.to_string())?;
        Ok((looked, running))
    } else {
        let out = running.finish().await.map_err(|e| e.to_string())?;
        match parse_admin(&out.stdout, false) {
            Ok(report) => Err(report
                .error
                .unwrap_or_else(|| format!("the admin script ended early ({out})"))),
            Err(e) => Err(format!("{e} ({out})")),
        }
    }
}

/// What keeps the change from going ahead anywhere: a load balancer that answered but could
/// not look, an unreadable record, a server the running HAProxy does not have.
fn problems(hosts: &[Host<'_>], request: &Request) -> Vec<String> {
    let mut problems = Vec::new();
    for h in hosts {
        if h.report.unreachable {
            continue;
        }
        let name = &h.spec.name;
        if let Some(e) = &h.report.error {
            problems.push(format!("{name}: {e}"));
            continue;
        }
        let looked = &h.looked.looked;
        if let Some(Err(e)) = &looked.record {
            problems.push(format!(
                "{name}: {}: {e} (move it away to start a new record)",
                h.spec.admin_record
            ));
        }
        let ours: Vec<&Placement> = request
            .placements
            .iter()
            .filter(|p| &p.lb == name)
            .collect();
        match &looked.servers {
            Some(Ok(servers)) => {
                for p in ours.iter().filter(|p| p.kind != Kind::Udp) {
                    if !servers
                        .iter()
                        .any(|s| s.backend == p.backend && s.server == p.server)
                    {
                        problems.push(format!(
                            "{name}: the running HAProxy has no server {}/{} (is lbctl's configuration applied?)",
                            p.backend, p.server
                        ));
                    }
                }
            }
            Some(Err(e)) if ours.iter().any(|p| p.kind != Kind::Udp) => {
                problems.push(format!("{name}: HAProxy's runtime API: {e}"));
            }
            _ => {}
        }
        if ours.iter().any(|p| p.kind == Kind::Udp) && looked.nginx_marks.is_none() {
            problems.push(format!(
                "{name}: nginx's stream file is not there (is lbctl's configuration applied?)"
            ));
        }
    }
    problems
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

/// A setting in words: `mysql/k8s-worker-2 drain`, `wireguard/k8s-worker-2 weight 5`.
pub fn setting_words(entry: &Entry) -> String {
    let what = match entry.setting {
        Setting::State(state) => state.name().to_string(),
        Setting::Weight(Some(w)) => format!("weight {w}"),
        Setting::Weight(None) => "configured weight".to_string(),
    };
    format!("{}/{} {what}", entry.backend, entry.server)
}

/// Records how phase 2 went on one load balancer, and checks the result: every server of the
/// worker in the state asked for.
fn settle(
    h: &mut Host<'_>,
    request: &Request,
    report: Result<AdminScriptReport, String>,
    tier: &Record,
) {
    h.report.seconds = h.started.elapsed().as_secs_f64();
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            h.report.error = Some(format!(
                "{e}; what happened there is unknown: the next apply or drain brings it in line"
            ));
            return;
        }
    };
    let mut problems = Vec::new();
    if let Some(e) = &report.error {
        problems.push(e.clone());
    }
    if let Some(e) = &report.changed.command_error {
        problems.push(format!("HAProxy refused: {e}"));
    }
    if let Some(Err(e)) = &report.changed.record {
        problems.push(e.clone());
    }
    if let Some(NginxOutcome::Failed(e)) = &report.changed.nginx {
        problems.push(e.clone());
    }
    h.report.nginx = report.changed.nginx.clone();
    let before = match &h.looked.looked.servers {
        Some(Ok(s)) => s.clone(),
        _ => Vec::new(),
    };
    let after = match &report.changed.after {
        Some(Ok(s)) => s.clone(),
        Some(Err(e)) => {
            problems.push(format!("HAProxy's runtime API after the change: {e}"));
            Vec::new()
        }
        None => Vec::new(),
    };
    let marks_before = h.looked.looked.nginx_marks.as_ref();
    let marks_after = nginx_marks_of(&for_host(h.spec, tier));
    for p in request.placements.iter().filter(|p| p.lb == h.spec.name) {
        let engine = engine(p.kind);
        let change = match engine {
            Engine::Haproxy => {
                let find = |list: &[ServerState]| {
                    list.iter()
                        .find(|s| s.backend == p.backend && s.server == p.server)
                        .cloned()
                };
                let (was, now) = (find(&before), find(&after));
                match &now {
                    Some(now) if !runtime_has(request.setting, now) => problems.push(format!(
                        "{}/{} is {} after the change",
                        p.backend,
                        p.server,
                        describe(now)
                    )),
                    None if report.changed.after.is_some() => problems.push(format!(
                        "{}/{} is not in HAProxy after the change",
                        p.backend, p.server
                    )),
                    _ => {}
                }
                ServerChange {
                    engine,
                    backend: p.backend.clone(),
                    server: p.server.clone(),
                    before: was.as_ref().map_or_else(|| "?".into(), describe),
                    after: now.as_ref().map_or_else(|| "?".into(), describe),
                }
            }
            Engine::Nginx => {
                let key = format!("{}/{}", p.backend, p.server);
                ServerChange {
                    engine,
                    backend: p.backend.clone(),
                    server: p.server.clone(),
                    before: describe_mark(marks_before, &key),
                    after: describe_mark(Some(&marks_after), &key),
                }
            }
        };
        h.report.servers.push(change);
    }
    if !report.succeeded() && problems.is_empty() {
        problems.push(format!("the admin script ended {}", report.outcome));
    }
    if !problems.is_empty() {
        h.report.error = Some(problems.join("; "));
    }
}

/// Sessions still open to the worker's servers on one load balancer.
#[derive(Debug, Clone, Serialize)]
pub struct Left {
    pub host: String,
    /// HAProxy's current sessions to the worker's servers, plus nginx's UDP sessions to them;
    /// or why they could not be counted.
    pub sessions: Result<u64, String>,
}

/// Counts, on every load balancer with a session, the sessions still open to the worker's
/// servers (`scur` for HAProxy, connected UDP sockets of nginx to the server's address for
/// UDP), in one round trip each.
pub async fn count_sessions(
    fleet: &Fleet,
    sessions: &[Option<Arc<Session>>],
    placements: &[Placement],
) -> Vec<Left> {
    let counts = fleet
        .hosts
        .iter()
        .zip(sessions)
        .filter_map(|(spec, session)| Some((spec, session.as_ref()?)))
        .map(|(spec, session)| async move {
            let ours: Vec<&Placement> = placements.iter().filter(|p| p.lb == spec.name).collect();
            let mut query = Query::servers_only(spec);
            query.udp_peers = ours
                .iter()
                .filter(|p| p.kind == Kind::Udp)
                .map(|p| format!("{}:{}", p.address, p.port))
                .collect();
            let count = async {
                let out = session
                    .run(&query.script())
                    .await
                    .map_err(|e| e.to_string())?;
                let state = parse_lb_state(&out.stdout).map_err(|e| format!("{e} ({out})"))?;
                let rows = match &state.stat {
                    Some(Ok(rows)) => rows,
                    Some(Err(e)) => return Err(format!("HAProxy's runtime API: {e}")),
                    None => return Err("HAProxy's runtime API was not asked".into()),
                };
                let tcp: u64 = rows
                    .iter()
                    .filter(|r| {
                        r.kind == RowKind::Server
                            && ours.iter().any(|p| {
                                p.kind != Kind::Udp && p.backend == r.proxy && p.server == r.name
                            })
                    })
                    .map(|r| r.sessions)
                    .sum();
                let udp: u64 = state.udp_sessions.values().sum();
                Ok(tcp + udp)
            };
            Left {
                host: spec.name.clone(),
                sessions: count.await,
            }
        });
    join_all(counts).await
}

/// Closes the sessions a change opened.
pub async fn close(sessions: Vec<Option<Arc<Session>>>) {
    ssh::close_all(
        sessions
            .into_iter()
            .flatten()
            .filter_map(|s| Arc::try_unwrap(s).ok()),
    )
    .await;
}

/// Brings load balancers whose files need no change in line with the tier's record, each in
/// one round trip of the admin script (no reload for HAProxy; nginx only if its marks differ).
pub async fn converge_all(hosts: &[(&HostSpec, Session, Convergence)]) -> Vec<Converged> {
    let runs = hosts.iter().map(|(spec, session, plan)| async move {
        let script = admin_script(&admin_host(spec));
        let outcome = async {
            let mut running = session.start(&script).await.map_err(|e| e.to_string())?;
            if !running.read_until(READY).await.map_err(|e| e.to_string())? {
                let out = running.finish().await.map_err(|e| e.to_string())?;
                let report = parse_admin(&out.stdout, false).map_err(|e| format!("{e} ({out})"))?;
                return Err(report
                    .error
                    .unwrap_or_else(|| format!("the admin script ended early ({out})")));
            }
            running
                .answer(&admin_answer(
                    &plan.commands,
                    plan.record.as_ref(),
                    plan.remark_nginx,
                ))
                .await
                .map_err(|e| e.to_string())?;
            let out = running.finish().await.map_err(|e| e.to_string())?;
            let report = parse_admin(&out.stdout, false).map_err(|e| format!("{e} ({out})"))?;
            let mut problems = Vec::new();
            problems.extend(report.error.clone());
            problems.extend(
                report
                    .changed
                    .command_error
                    .as_ref()
                    .map(|e| format!("HAProxy refused: {e}")),
            );
            if let Some(NginxOutcome::Failed(e)) = &report.changed.nginx {
                problems.push(e.clone());
            }
            if let Some(Err(e)) = &report.changed.record {
                problems.push(e.clone());
            }
            if problems.is_empty() && report.succeeded() {
                Ok(())
            } else if problems.is_empty() {
                Err(format!("the admin script ended {}", report.outcome))
            } else {
                Err(problems.join("; "))
            }
        };
        Converged {
            host: spec.name.clone(),
            error: outcome.await.err(),
        }
    });
    join_all(runs).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Keyring;
    use crate::source::VarMap;
    use crate::spec::{Input, Worker};

    /// The lab's inventory: three load balancers, three workers, TCP and UDP backends.
    fn lab() -> Fleet {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let inventory = [root.join("inventory/lab")];
        let input = Input {
            inventory: &inventory,
            project_dir: root,
            extra_vars: &[],
            lb_group: "haproxy_servers",
            keyring: std::sync::Arc::new(Keyring::new(Vec::new())),
            config: VarMap::default(),
            templates: None,
        };
        Fleet::load(&input).expect("inventory/lab loads").2
    }

    fn entry(engine: Engine, backend: &str, setting: Setting, since: u64) -> Entry {
        Entry {
            engine,
            backend: backend.into(),
            server: "k8s-worker-2".into(),
            setting,
            worker: "k8s-worker-2".into(),
            since,
            run: format!("r{since}"),
            who: "me@ops".into(),
            reason: String::new(),
        }
    }

    fn server(backend: &str, name: &str, admin_flags: u32, weight: u32) -> ServerState {
        ServerState {
            backend: backend.into(),
            server: name.into(),
            address: "10.77.77.22".into(),
            port: 30306,
            op: OpState::Running,
            admin_flags,
            weight,
            configured_weight: 1,
        }
    }

    #[test]
    fn a_worker_is_in_every_backend_tcp_and_udp_on_every_lb() {
        let fleet = lab();
        let worker = Worker {
            name: "k8s-worker-2",
            address: "10.77.77.22",
        };
        let all = worker.placements(&fleet, &[]).unwrap();
        assert_eq!(all.len(), 12, "4 backends on 3 load balancers");
        assert_eq!(all.iter().filter(|p| p.kind == Kind::Udp).count(), 3);
        let redis = worker.placements(&fleet, &["redis".to_string()]).unwrap();
        assert!(
            redis
                .iter()
                .all(|p| p.backend == "redis" && p.lb.starts_with("lb"))
        );
        assert!(worker.placements(&fleet, &["nope".to_string()]).is_err());
        let lb = Worker {
            name: "lb1",
            address: "10.77.77.11",
        };
        assert!(lb.placements(&fleet, &[]).is_err());
    }

    #[test]
    fn a_load_balancer_that_missed_a_drain_or_lost_it_is_brought_in_line() {
        let fleet = lab();
        let spec = &fleet.hosts[2];
        let drain = Setting::State(AdminState::Drain);
        let mut tier = Record::default();
        tier.insert(entry(Engine::Haproxy, "mysql", drain, 10));
        tier.insert(entry(Engine::Nginx, "wireguard", drain, 10));
        // a server no configuration has any more: dropped, not converged
        tier.insert(entry(Engine::Haproxy, "gone", drain, 10));

        // missed: nothing in its record, nginx unmarked
        let none = BTreeMap::new();
        let c = converge(spec, &tier, &Record::default(), None, Some(&none));
        assert_eq!(c.commands, ["set server mysql/k8s-worker-2 state drain"]);
        assert!(c.remark_nginx);
        let record = c.record.expect("the record is written");
        assert_eq!(record.entries().count(), 2, "without the gone server");
        assert!(
            c.drift
                .iter()
                .all(|d| d.why == Why::Missed || d.why == Why::NginxMarks)
        );

        // in line: its record has it, HAProxy shows it, nginx is marked
        let marks = BTreeMap::from([("wireguard/k8s-worker-2".to_string(), "down".to_string())]);
        let runtime = [server("mysql", "k8s-worker-2", 0x08, 1)];
        let c = converge(spec, &tier, &record, Some(&runtime), Some(&marks));
        assert!(!c.needed(), "{c:?}");

        // lost: its record has it, its HAProxy does not (restarted without its state)
        let runtime = [server("mysql", "k8s-worker-2", 0, 1)];
        let c = converge(spec, &tier, &record, Some(&runtime), Some(&marks));
        assert_eq!(c.commands, ["set server mysql/k8s-worker-2 state drain"]);
        assert_eq!(c.drift[0].why, Why::Lost);
        assert!(c.record.is_none() && !c.remark_nginx);

        // a later ready it missed: put back, and said so (its record held the drain)
        let mut later = tier.clone();
        later.insert(entry(
            Engine::Haproxy,
            "mysql",
            Setting::State(AdminState::Ready),
            20,
        ));
        let runtime = [server("mysql", "k8s-worker-2", 0x08, 1)];
        let c = converge(spec, &later, &record, Some(&runtime), Some(&marks));
        assert_eq!(c.commands, ["set server mysql/k8s-worker-2 state ready"]);
        assert_eq!(c.drift.len(), 1);
    }

    #[test]
    fn the_last_server_taking_traffic_is_not_taken_out() {
        let fleet = lab();
        let spec = &fleet.hosts[0];
        let worker = Worker {
            name: "k8s-worker-2",
            address: "10.77.77.22",
        };
        let all = worker.placements(&fleet, &["mysql".to_string()]).unwrap();
        let ours: Vec<&Placement> = all.iter().filter(|p| p.lb == spec.name).collect();
        let runtime = [
            server("mysql", "k8s-worker-1", 0x08, 1), // drained
            server("mysql", "k8s-worker-2", 0, 1),
            server("mysql", "k8s-worker-3", 0, 0), // weight 0
        ];
        assert_eq!(
            last_servers(spec, &ours, &runtime, &BTreeMap::new()),
            ["mysql on lb1"]
        );
        let runtime = [
            server("mysql", "k8s-worker-1", 0, 1),
            server("mysql", "k8s-worker-2", 0, 1),
        ];
        assert!(last_servers(spec, &ours, &runtime, &BTreeMap::new()).is_empty());
    }
}
