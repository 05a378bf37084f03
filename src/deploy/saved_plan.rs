//! Saved plans (`plan --out FILE`, `apply FILE`): everything an apply needs, fixed at plan
//! time, so that what a reviewer approved is exactly what is applied. Per host: how to reach
//! it, every rendered file with the SHA-256 of what the host held when planned, how each
//! service is checked and reloaded, and what is verified after. Applying one re-reads no
//! inventory; it first asks every host for its files and refuses, changing nothing, when any
//! host no longer holds what was planned.
//!
//! The file is JSON with a format name and a version; it holds rendered configurations and so
//! their secrets, and is written with mode 0600.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::Write as _,
    os::unix::fs::OpenOptionsExt,
    path::Path,
    time::Instant,
};

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::{
    deploy::plan::{Action, FilePlan, HostPlan},
    deploy::report::{HostError, Timing},
    deploy::standby::Standby,
    deploy::survey::Surveyed,
    remote::{
        self, Deployment, FetchOptions, Keep, ManagedFile, ReportError, ServiceControl, Verify,
    },
    render::RenderedHost,
    source::field,
    spec::managed_path::{self, Owner},
    spec::{Connection, HostSpec, Service},
    ssh::{ConnectOptions, Session},
};

/// What the file says it is.
pub const FORMAT: &str = "lbctl-plan";
/// The version this lbctl writes and reads.
pub const VERSION: u32 = 1;
/// Largest plan file read: 1 GiB. A plan holds each host's files twice (content and diff);
/// 20,000 backends of five servers on three hosts make about 100 MiB.
const MAX_PLAN_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    pub format: String,
    pub version: u32,
    /// The lbctl that wrote it.
    pub lbctl: String,
    /// Seconds since the epoch when it was written.
    pub created: u64,
    /// The `--limit` it was made with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    pub hosts: Vec<PlannedHost>,
    /// When `--limit` left load balancers out: those the plan leaves alone (left out, or with
    /// nothing to change), asked when it is applied whether one can take the VIP over while
    /// its holder changes (see `standby.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub standbys: Vec<Standby>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedHost {
    pub host: String,
    pub connection: Connection,
    /// Whether it held the VIP when planned (the rollout order uses who holds it when applied).
    pub held_vip: bool,
    /// The VIPs, as `ip` lists them: who holds one goes last.
    pub vips: Vec<String>,
    pub files: Vec<PlannedFile>,
    pub controls: BTreeMap<Service, ServiceControl>,
    pub verify: Verify,
    /// What carries the servers' state across the apply: HAProxy's state file, and nginx's
    /// marks as lbctl's record on the host asks for them when the plan is applied.
    #[serde(default)]
    pub keep: Keep,
    /// Whether the files stay in their services' usual directories (`lbctl_confine_paths`,
    /// true unless the inventory said otherwise): checked again when the plan is read.
    #[serde(default = "confined")]
    pub confine_paths: bool,
}

fn confined() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedFile {
    pub service: Service,
    pub path: String,
    pub action: Action,
    /// SHA-256 of the file on the host when planned; `None`: it did not exist.
    pub planned_on: Option<String>,
    /// SHA-256 of `content`.
    pub sha256: String,
    /// What lbctl writes (secrets included).
    pub content: String,
    /// The redacted diff the plan showed.
    pub diff: String,
}

/// Why a saved plan cannot be read or applied.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    #[error("cannot read the plan file {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path} is not an lbctl plan file: {message}")]
    Format { path: String, message: String },
    #[error("{path} is an lbctl plan file of version {found}; this lbctl reads version {VERSION}")]
    Version { path: String, found: u32 },
    #[error("cannot write the plan file {path}: {message}")]
    Write { path: String, message: String },
    #[error("{path} is not the plan lbctl wrote; nothing was changed on any host:\n  {}", problems.join("\n  "))]
    Altered { path: String, problems: Vec<String> },
}

impl SavedPlan {
    /// The plan of every surveyed host, or `None` when some host could not be surveyed (a
    /// plan file must cover every host it names, as planned).
    pub fn from_survey(
        hosts: &[(HostSpec, RenderedHost)],
        surveyed: &[Surveyed],
        limit: Option<&str>,
        outside: &[HostSpec],
    ) -> Option<SavedPlan> {
        let mut planned = Vec::with_capacity(hosts.len());
        // A partial plan (some load balancer left out) may have to lean on the hosts it
        // leaves alone to hold the VIP.
        let partial = !outside.is_empty();
        let mut standbys: Vec<Standby> = outside.iter().map(Standby::of).collect();
        for ((spec, rendered), s) in hosts.iter().zip(surveyed) {
            let (Ok(plan), Some(fetched)) = (&s.result, &s.fetched) else {
                return None;
            };
            let files = plan
                .files
                .iter()
                .zip(&rendered.files)
                .map(|(file, rendered)| {
                    // A nginx stream file keeps the marks the live one has (drained UDP
                    // servers): the plan refuses to apply if those change meanwhile.
                    let content = match &s.nginx_marks {
                        Some(marks) if file.service == Service::Nginx && !marks.is_empty() => {
                            remote::mark_nginx_servers(&rendered.content, marks)
                        }
                        _ => rendered.content.clone(),
                    };
                    PlannedFile {
                        service: file.service,
                        path: file.path.clone(),
                        action: file.action,
                        planned_on: fetched
                            .files
                            .get(&file.path)
                            .and_then(|c| c.as_deref())
                            .map(remote::sha256_hex),
                        sha256: remote::sha256_hex(content.as_bytes()),
                        content,
                        diff: file.diff.clone(),
                    }
                })
                .collect();
            let deployment = crate::deploy::deployment::build(spec, plan, None);
            if partial && !plan.changed() {
                standbys.push(Standby::of(spec));
            }
            planned.push(PlannedHost {
                host: spec.name.clone(),
                connection: spec.connection.clone(),
                held_vip: plan.holds_vip,
                vips: crate::deploy::survey::vip_addresses(spec),
                files,
                controls: deployment.controls,
                verify: deployment.verify,
                keep: deployment.keep,
                confine_paths: managed_path::confined(spec.scope.vars()),
            });
        }
        Some(SavedPlan {
            format: FORMAT.to_string(),
            version: VERSION,
            lbctl: env!("CARGO_PKG_VERSION").to_string(),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            limit: limit.map(String::from),
            hosts: planned,
            standbys,
        })
    }

    /// Writes the plan to `path`, created afresh with mode 0600 (it holds secrets): the
    /// content goes to a new file beside it, which then replaces `path` (a symlink there is
    /// replaced, never followed).
    pub fn write(&self, path: &Path) -> Result<(), SavedPlanError> {
        let failed = |message: String| SavedPlanError::Write {
            path: path.display().to_string(),
            message,
        };
        let name = path
            .file_name()
            .ok_or_else(|| failed("it names no file".into()))?;
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".lbctl-{}", std::process::id()));
        let temp = path.with_file_name(temp_name);
        let text = serde_json::to_vec_pretty(self).map_err(|e| failed(e.to_string()))?;
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)
            .and_then(|mut f| {
                f.write_all(&text)?;
                f.write_all(b"\n")?;
                f.sync_all()
            })
            .and_then(|()| std::fs::rename(&temp, path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(failed(e.to_string()));
        }
        Ok(())
    }

    pub fn read(path: &Path) -> Result<SavedPlan, SavedPlanError> {
        let shown = path.display().to_string();
        let text = std::fs::File::open(path)
            .and_then(|file| crate::source::read_at_most(file, MAX_PLAN_BYTES))
            .map_err(|e| SavedPlanError::Read {
                path: shown.clone(),
                message: e.to_string(),
            })?;
        let value: serde_json::Value =
            serde_json::from_slice(&text).map_err(|e| SavedPlanError::Format {
                path: shown.clone(),
                message: e.to_string(),
            })?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(SavedPlanError::Format {
                path: shown,
                message: format!("it has no \"format\": \"{FORMAT}\""),
            });
        }
        let found = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
        if found != u64::from(VERSION) {
            return Err(SavedPlanError::Version {
                path: shown,
                found: u32::try_from(found).unwrap_or(u32::MAX),
            });
        }
        let plan: SavedPlan =
            serde_json::from_value(value).map_err(|e| SavedPlanError::Format {
                path: shown.clone(),
                message: e.to_string(),
            })?;
        let problems = plan.problems();
        if problems.is_empty() {
            Ok(plan)
        } else {
            Err(SavedPlanError::Altered {
                path: shown,
                problems,
            })
        }
    }

    /// What in the plan `lbctl plan` would not have written: a file whose content is not the
    /// one its SHA-256 stands for (edited or damaged since), a host named twice, a connection
    /// or a path the inventory's rules refuse (`managed_path`), two files at one path. The
    /// plan is applied exactly as it is, so it is held to the rules its inventory was.
    fn problems(&self) -> Vec<String> {
        // nginx's stream file may be the UDP health watcher's source, in the watcher's
        // directory (see `spec/udp_health.rs`)
        let owners = |service: Service| -> Vec<Owner> {
            match service {
                Service::Nginx => vec![service.into(), Service::UdpHealth.into()],
                _ => vec![service.into()],
            }
        };
        let mut problems = Vec::new();
        let mut names = BTreeSet::new();
        for host in &self.hosts {
            let name = &host.host;
            if !names.insert(name.as_str()) {
                problems.push(format!("{name}: the host appears twice"));
            }
            if host.connection.name != *name {
                problems.push(format!(
                    "{name}: its connection is to another host ({})",
                    host.connection.name
                ));
            }
            problems.extend(host.connection.problems());
            let mut paths: Vec<(&str, Vec<Owner>)> = host
                .files
                .iter()
                .map(|f| (f.path.as_str(), owners(f.service)))
                .collect();
            // (a plan from before lbctl kept a record has none)
            if !host.keep.record_path.is_empty() {
                paths.push((&host.keep.record_path, vec![Owner::Lbctl]));
            }
            if let Some(state) = &host.keep.state_file {
                paths.push((state, vec![Service::Haproxy.into()]));
            }
            for (i, (path, owners)) in paths.iter().enumerate() {
                // refused only when no owner it may belong to takes it
                let refusals: Vec<_> = owners
                    .iter()
                    .filter_map(|owner| managed_path::problem(path, *owner, host.confine_paths))
                    .collect();
                if refusals.len() == owners.len()
                    && let Some((message, _)) = refusals.into_iter().next()
                {
                    problems.push(format!("{name}: {} {message}", field::quote(path)));
                }
                if let Some((other, _)) = paths[..i].iter().find(|(p, _)| {
                    p == path
                        || managed_path::is_inside(path, p)
                        || managed_path::is_inside(p, path)
                }) {
                    problems.push(format!("{name}: {path} and {other} overlap"));
                }
            }
            for file in &host.files {
                if remote::sha256_hex(file.content.as_bytes()) != file.sha256 {
                    problems.push(format!(
                        "{name}: what the plan writes to {} is not what it recorded (its SHA-256 differs): the file was edited or damaged after `lbctl plan` wrote it",
                        file.path
                    ));
                }
            }
        }
        for standby in &self.standbys {
            if standby.connection.name != standby.host {
                problems.push(format!(
                    "{}: its connection is to another host ({})",
                    standby.host, standby.connection.name
                ));
            }
            problems.extend(standby.connection.problems());
        }
        problems
    }
}

impl PlannedHost {
    /// The plan as `plan` showed it, with who holds the VIP now.
    pub fn host_plan(&self, holds_vip: bool) -> HostPlan {
        HostPlan {
            host: self.host.clone(),
            holds_vip,
            files: self
                .files
                .iter()
                .map(|f| FilePlan {
                    service: f.service,
                    path: f.path.clone(),
                    action: f.action,
                    diff: f.diff.clone(),
                    content: f.content.clone(),
                })
                .collect(),
        }
    }

    /// What the host is handed: the files the plan changes, and its services' commands.
    pub fn deployment(&self) -> Deployment {
        Deployment {
            files: self
                .files
                .iter()
                .filter(|f| f.action != Action::Unchanged)
                .map(|f| ManagedFile {
                    service: f.service,
                    path: f.path.clone(),
                    content: f.content.clone(),
                })
                .collect(),
            controls: self.controls.clone(),
            verify: self.verify.clone(),
            keep: self.keep.clone(),
        }
    }
}

/// One planned host's open session, or why there is none, and how long connecting took.
pub struct Connected {
    pub session: Result<Session, HostError>,
    pub timing: Timing,
}

/// What changed on a host since the plan (empty: nothing), and who holds the VIP now.
pub struct Moved {
    pub holds_vip: bool,
    /// `(path, what the plan was made on, what is there now)`, digests or `absent`.
    pub files: Vec<(String, String, String)>,
}

/// Connects to one planned host, once `connecting` lets it (at most `forks` hosts are being
/// connected to at once: handshakes cost CPU on both ends).
pub async fn connect(
    host: &PlannedHost,
    options: &ConnectOptions,
    connecting: &Semaphore,
) -> Connected {
    let mut timing = Timing::default();
    let permit = connecting.acquire().await;
    let started = Instant::now();
    let connected = Session::connect(&host.connection, options).await;
    drop(permit);
    timing.connect = started.elapsed().as_secs_f64();
    let session = connected.map_err(|e| HostError {
        host: host.host.clone(),
        step: "connect".into(),
        message: e.to_string(),
    });
    if let Ok(session) = &session {
        timing.reused_connection = session.resumed();
    }
    Connected { session, timing }
}

impl PlannedHost {
    /// The script that asks the host, in one round trip, whether its files are still what
    /// the plan was made on, and who holds the VIP.
    pub fn check_script(&self) -> String {
        let paths: Vec<String> = self.files.iter().map(|f| f.path.clone()).collect();
        // A file still as planned on answers with its digest alone.
        let options = FetchOptions {
            expected: self
                .files
                .iter()
                .filter_map(|f| Some((f.path.clone(), f.planned_on.clone()?)))
                .collect(),
            ..FetchOptions::default()
        };
        remote::fetch_script(&paths, &self.vips, &options)
    }

    /// What the host's answer to [`PlannedHost::check_script`] says moved.
    pub fn moved(&self, stdout: &[u8]) -> Result<Moved, ReportError> {
        let fetched = remote::parse_fetch_digests(stdout)?;
        let mut files = Vec::new();
        for f in &self.files {
            let now = fetched.files.get(&f.path).cloned().flatten();
            if now != f.planned_on {
                let shown = |d: &Option<String>| d.clone().unwrap_or_else(|| "absent".into());
                files.push((f.path.clone(), shown(&f.planned_on), shown(&now)));
            }
        }
        Ok(Moved {
            holds_vip: fetched.vips.values().any(|&held| held),
            files,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn plan() -> SavedPlan {
        SavedPlan {
            format: FORMAT.into(),
            version: VERSION,
            lbctl: "test".into(),
            created: 0,
            limit: None,
            hosts: Vec::new(),
            standbys: Vec::new(),
        }
    }

    #[test]
    fn the_file_is_private_and_replaces_what_was_there() {
        let dir = std::env::temp_dir().join(format!("lbctl-saved-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        // a symlink at the path is replaced, its target left alone
        let target = dir.join("target");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for p in [&path, &link] {
            plan().write(p).unwrap();
            let meta = std::fs::symlink_metadata(p).unwrap();
            assert!(meta.is_file());
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
            assert_eq!(SavedPlan::read(p).unwrap().version, VERSION);
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn file(service: Service, path: &str, content: &str) -> PlannedFile {
        PlannedFile {
            service,
            path: path.into(),
            action: Action::Update,
            planned_on: None,
            sha256: remote::sha256_hex(content.as_bytes()),
            content: content.into(),
            diff: String::new(),
        }
    }

    fn host(name: &str) -> PlannedHost {
        PlannedHost {
            host: name.into(),
            connection: Connection {
                name: name.into(),
                address: "10.0.0.11".into(),
                port: None,
                user: Some("deploy".into()),
                private_key: None,
                known_hosts: None,
                ssh_config: None,
                become_root: true,
                strict_host_keys: crate::spec::HostKeyPolicy::Strict,
            },
            held_vip: false,
            vips: Vec::new(),
            files: vec![
                file(Service::Haproxy, "/etc/haproxy/haproxy.cfg", "global\n"),
                // the UDP health watcher's source of nginx's file, in the watcher's directory
                file(
                    Service::Nginx,
                    "/etc/lbctl/nginx-stream.conf",
                    "stream {}\n",
                ),
            ],
            controls: BTreeMap::new(),
            verify: Verify::default(),
            keep: Keep {
                record_path: "/var/lib/lbctl/admin-state".into(),
                state_file: Some("/var/lib/haproxy/server-state".into()),
                ..Keep::default()
            },
            confine_paths: true,
        }
    }

    /// The problems of `plan` once written and read back, or `None` when it is read.
    fn read_back(plan: &SavedPlan, name: &str) -> Option<Vec<String>> {
        let dir = std::env::temp_dir().join(format!("lbctl-saved-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p");
        plan.write(&path).unwrap();
        let read = SavedPlan::read(&path);
        let _ = std::fs::remove_dir_all(&dir);
        match read {
            Ok(_) => None,
            Err(SavedPlanError::Altered { problems, .. }) => Some(problems),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_plan_is_read_back_only_as_lbctl_wrote_it() {
        let mut p = plan();
        p.hosts = vec![host("lb1"), host("lb2"), host("lb_3")];
        // an inventory name without ansible_host (an alias in ~/.ssh/config) is its address
        p.hosts[2].connection.address = "lb_3".into();
        assert_eq!(read_back(&p, "good"), None);

        let mut edited = p.clone();
        edited.hosts[1].files[0]
            .content
            .push_str("    stats enable\n");
        assert_eq!(
            read_back(&edited, "edited"),
            Some(vec!["lb2: what the plan writes to /etc/haproxy/haproxy.cfg is not what it recorded (its SHA-256 differs): the file was edited or damaged after `lbctl plan` wrote it".to_string()])
        );

        let mut twice = p.clone();
        twice.hosts.push(host("lb1"));
        assert_eq!(
            read_back(&twice, "twice"),
            Some(vec!["lb1: the host appears twice".to_string()])
        );

        let mut elsewhere = p.clone();
        elsewhere.hosts[0].files[0] =
            file(Service::Haproxy, "/etc/passwd", "root::0:0::/:/bin/sh\n");
        let problems = read_back(&elsewhere, "elsewhere").unwrap();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].starts_with("lb1: \"/etc/passwd\" is outside haproxy's usual directories"),
            "{problems:?}"
        );
        // ... unless the inventory let files live elsewhere; `..` never
        elsewhere.hosts[0].confine_paths = false;
        assert_eq!(read_back(&elsewhere, "unconfined"), None);
        elsewhere.hosts[0].files[0].path = "/etc/haproxy/../passwd".into();
        assert!(read_back(&elsewhere, "dotdot").unwrap()[0].contains("is not normalised"));

        let mut inside = p.clone();
        inside.hosts[0].keep.state_file = Some("/etc/haproxy/haproxy.cfg/state".into());
        assert_eq!(
            read_back(&inside, "inside"),
            Some(vec![
                "lb1: /etc/haproxy/haproxy.cfg/state and /etc/haproxy/haproxy.cfg overlap"
                    .to_string()
            ])
        );

        let mut reach = p.clone();
        reach.hosts[0].connection.address = "-oProxyCommand=sh".into();
        reach.hosts[1].connection.user = Some("root -v".into());
        reach.standbys = vec![Standby {
            host: "lb3".into(),
            connection: host("lb4").connection,
            vips: Vec::new(),
            haproxy_pid_file: "/run/haproxy.pid".into(),
            keepalived_pid_file: None,
        }];
        assert_eq!(
            read_back(&reach, "reach"),
            Some(vec![
                "lb1: the address \"-oProxyCommand=sh\" is not an IP address or host name"
                    .to_string(),
                "lb2: the user \"root -v\" holds a character lbctl does not pass to ssh"
                    .to_string(),
                "lb3: its connection is to another host (lb4)".to_string(),
            ])
        );
    }

    #[test]
    fn another_version_or_format_is_refused() {
        let dir = std::env::temp_dir().join(format!("lbctl-saved-v-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p");
        std::fs::write(
            &path,
            r#"{"format": "lbctl-plan", "version": 2, "hosts": []}"#,
        )
        .unwrap();
        assert!(matches!(
            SavedPlan::read(&path),
            Err(SavedPlanError::Version { found: 2, .. })
        ));
        std::fs::write(&path, r#"{"hosts": []}"#).unwrap();
        assert!(matches!(
            SavedPlan::read(&path),
            Err(SavedPlanError::Format { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
