//! What a load balancer needs to be in line with the tier's record ([`converge`]), and
//! bringing load balancers whose files need no change in line ([`converge_all`]).

use std::collections::BTreeMap;

use futures_util::future::join_all;
use serde::Serialize;

use super::{HostProblem, Problems, admin_host};
use crate::{
    deploy::{DeployError, runtime_state::Converged},
    remote::{
        ADMIN_FORCED_DRAIN, ADMIN_FORCED_MAINT, AdminScriptReport, AdminState, Engine, Entry,
        NginxOutcome, READY, Record, ServerState, Setting, admin_answer, admin_script,
        nginx_marks_of, parse_admin,
    },
    spec::{HostSpec, Server, UdpEngine},
    ssh::Session,
};

/// Whether `spec` configures this server, carried by this engine.
fn configures(spec: &HostSpec, engine: Engine, backend: &str, server: &str) -> bool {
    let has = |servers: &[Server]| servers.iter().any(|s| s.name == server);
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

    /// lbctl's go-ahead to the admin script for this.
    pub(super) fn answer(&self) -> String {
        admin_answer(&self.commands, self.record.as_ref(), self.remark_nginx)
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

/// What a finished admin script reported going wrong, besides a `servers` check.
pub(super) fn script_problems(report: &AdminScriptReport) -> Vec<HostProblem> {
    let mut problems = Vec::new();
    if let Some(e) = &report.error {
        problems.push(HostProblem::Host(e.clone()));
    }
    if let Some(e) = &report.changed.command_error {
        problems.push(HostProblem::Refused(e.clone()));
    }
    if let Some(Err(e)) = &report.changed.record {
        problems.push(HostProblem::RecordNotWritten(e.clone()));
    }
    if let Some(NginxOutcome::Failed(e)) = &report.changed.nginx {
        problems.push(HostProblem::Nginx(e.clone()));
    }
    problems
}

/// Brings load balancers whose files need no change in line with the tier's record, each in
/// one round trip of the admin script (no reload for HAProxy; nginx only if its marks differ).
pub async fn converge_all(hosts: &[(&HostSpec, Session, Convergence)]) -> Vec<Converged> {
    let runs = hosts.iter().map(|(spec, session, plan)| async move {
        Converged {
            host: spec.name.clone(),
            error: converge_one(spec, session, plan)
                .await
                .err()
                .map(|e| e.to_string()),
        }
    });
    join_all(runs).await
}

async fn converge_one(
    spec: &HostSpec,
    session: &Session,
    plan: &Convergence,
) -> Result<(), Problems> {
    let one = |e: DeployError| Problems(vec![e.into()]);
    let script = admin_script(&admin_host(spec));
    let mut running = session.start(&script).await.map_err(|e| one(e.into()))?;
    let looked = running.read_until(READY).await.map_err(|e| one(e.into()))?;
    if looked {
        running
            .answer(&plan.answer())
            .await
            .map_err(|e| one(e.into()))?;
    }
    let out = running.finish().await.map_err(|e| one(e.into()))?;
    let report = parse_admin(&out.stdout, false).map_err(|error| {
        one(DeployError::Unreadable {
            error,
            output: out.clone(),
        })
    })?;
    if !looked {
        return Err(Problems(vec![match report.error {
            Some(e) => HostProblem::Host(e),
            None => DeployError::ScriptEnded {
                script: "admin",
                output: out,
            }
            .into(),
        }]));
    }
    let mut problems = script_problems(&report);
    if problems.is_empty() && !report.succeeded() {
        problems.push(HostProblem::Ended(report.outcome));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Problems(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::admin::tests::{lab, server};

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
}
