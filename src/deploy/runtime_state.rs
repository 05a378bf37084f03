//! The admin state lbctl set on the tier (drains, maintenance, weights), as `plan` and
//! `apply` find it next to the files: what is in force where, since when and by whom, and
//! which load balancers are out of line with it (and so converged by the next apply).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::{
    deploy::admin::{self, Convergence, Drift},
    deploy::deployment::Admin,
    deploy::survey,
    remote::{Engine, Entry, Record, ServerState, Setting},
    spec::HostSpec,
};

/// What one load balancer showed of its admin state: lbctl's record there, HAProxy's
/// servers (asked when the record sets anything), nginx's marks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Seen<'a> {
    pub record: Option<&'a Record>,
    pub servers: Option<&'a [ServerState]>,
    pub marks: Option<&'a BTreeMap<String, String>>,
}

/// The tier's admin state, for the user.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RuntimeState {
    /// What lbctl set and is in force: one item per worker and setting.
    pub settings: Vec<Standing>,
    /// Load balancers out of line with the tier's record.
    pub drift: Vec<HostDrift>,
    /// `apply`: the load balancers brought in line, and how it went.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub converged: Vec<Converged>,
}

impl RuntimeState {
    pub fn is_empty(&self) -> bool {
        self.settings.is_empty() && self.drift.is_empty()
    }
}

/// A load balancer an apply brought in line with the tier's record.
#[derive(Debug, Clone, Serialize)]
pub struct Converged {
    pub host: String,
    pub error: Option<String>,
}

/// The survey's view of the tier's admin state.
pub struct Surveyed {
    pub tier: Record,
    /// Per host, in the fleet's order; `None` where the survey failed.
    pub convergences: Vec<Option<Convergence>>,
    pub state: RuntimeState,
}

/// The tier's admin state from what every load balancer's fetch showed.
pub fn from_survey(hosts: &[HostSpec], surveyed: &[survey::Surveyed]) -> Surveyed {
    let seen: Vec<Option<Seen<'_>>> = surveyed
        .iter()
        .map(|s| {
            let fetched = s.fetched.as_ref()?;
            Some(Seen {
                record: fetched.admin_record.as_ref().and_then(|r| r.as_ref().ok()),
                servers: match &fetched.servers {
                    Some(Ok(servers)) => Some(servers.as_slice()),
                    _ => None,
                },
                marks: s.nginx_marks.as_ref(),
            })
        })
        .collect();
    let tier = tier_record(&seen);
    let convergences = convergences(hosts, &seen, &tier);
    let state = describe(hosts, &tier, &convergences);
    Surveyed {
        tier,
        convergences,
        state,
    }
}

/// What an apply that changes `spec`'s files carries for its admin state: the tier's record
/// for its servers, and the commands that bring HAProxy in line after the reload (every
/// setting in force again, for the servers a changed address or port kept out of the saved
/// state, and whatever the host missed). `None` when lbctl never set anything there.
pub fn for_apply(
    spec: &HostSpec,
    tier: &Record,
    convergence: Option<&Convergence>,
) -> Option<Admin> {
    let record = admin::for_host(spec, tier);
    let rewrite = convergence.is_some_and(|c| c.record.is_some());
    if record.is_empty() && !rewrite {
        return None;
    }
    let mut commands = convergence.map(|c| c.commands.clone()).unwrap_or_default();
    for entry in record.active().filter(|e| e.engine == Engine::Haproxy) {
        let command = entry.setting.command(&entry.backend, &entry.server);
        if !commands.contains(&command) {
            commands.push(command);
        }
    }
    Some(Admin { record, commands })
}

/// A setting in force for a worker: `k8s-worker-2 drained on lb1, lb2, lb3 since 14:02`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Standing {
    pub worker: String,
    pub setting: Setting,
    /// `backend/server`s it holds for.
    pub servers: Vec<String>,
    /// The load balancers where it is in force.
    pub hosts: Vec<String>,
    /// The earliest time it was set (seconds since the epoch).
    pub since: u64,
    pub who: String,
    pub run: String,
    pub reason: String,
}

/// One load balancer out of line, and what converges it.
#[derive(Debug, Clone, Serialize)]
pub struct HostDrift {
    pub host: String,
    pub items: Vec<Drift>,
}

/// The tier's record: the newest entry of every record seen.
pub fn tier_record(seen: &[Option<Seen<'_>>]) -> Record {
    Record::merge(seen.iter().flatten().filter_map(|s| s.record))
}

/// What every load balancer needs to be in line with `tier` (`None` where nothing was seen).
pub fn convergences(
    hosts: &[HostSpec],
    seen: &[Option<Seen<'_>>],
    tier: &Record,
) -> Vec<Option<Convergence>> {
    hosts
        .iter()
        .zip(seen)
        .map(|(spec, seen)| {
            let seen = seen.as_ref()?;
            let empty = Record::default();
            Some(admin::converge(
                spec,
                tier,
                seen.record.unwrap_or(&empty),
                seen.servers,
                seen.marks,
            ))
        })
        .collect()
}

/// The state for the user: what is in force where, and who is out of line.
pub fn describe(
    hosts: &[HostSpec],
    tier: &Record,
    convergences: &[Option<Convergence>],
) -> RuntimeState {
    let mut standing: BTreeMap<(String, String), Standing> = BTreeMap::new();
    for entry in tier.active() {
        let key = (entry.worker.clone(), format!("{:?}", entry.setting));
        let item = standing.entry(key).or_insert_with(|| Standing {
            worker: entry.worker.clone(),
            setting: entry.setting,
            servers: Vec::new(),
            hosts: Vec::new(),
            since: entry.since,
            who: entry.who.clone(),
            run: entry.run.clone(),
            reason: entry.reason.clone(),
        });
        if entry.since < item.since {
            item.since = entry.since;
            item.who.clone_from(&entry.who);
            item.run.clone_from(&entry.run);
            item.reason.clone_from(&entry.reason);
        }
        // The backend alone when the server is named after the worker, as it usually is.
        let server = format!(
            "{}{}{}",
            entry.backend,
            if entry.server == entry.worker {
                String::new()
            } else {
                format!("/{}", entry.server)
            },
            if entry.engine == Engine::Nginx {
                " (udp)"
            } else {
                ""
            }
        );
        if !item.servers.contains(&server) {
            item.servers.push(server);
        }
        let mut here: BTreeSet<&str> = item.hosts.iter().map(String::as_str).collect();
        for (spec, c) in hosts.iter().zip(convergences) {
            let Some(c) = c else { continue };
            let configured = !admin::for_host(spec, &single(entry)).is_empty();
            let out_of_line = c.drift.iter().any(|d| d.entry == *entry);
            if configured && !out_of_line {
                here.insert(&spec.name);
            }
        }
        let here: Vec<String> = hosts
            .iter()
            .filter(|h| here.contains(h.name.as_str()))
            .map(|h| h.name.clone())
            .collect();
        item.hosts = here;
    }
    let drift = hosts
        .iter()
        .zip(convergences)
        .filter_map(|(spec, c)| {
            let c = c.as_ref()?;
            (!c.drift.is_empty()).then(|| HostDrift {
                host: spec.name.clone(),
                items: c.drift.clone(),
            })
        })
        .collect();
    RuntimeState {
        settings: standing.into_values().collect(),
        drift,
        converged: Vec::new(),
    }
}

fn single(entry: &Entry) -> Record {
    let mut record = Record::default();
    record.insert(entry.clone());
    record
}
