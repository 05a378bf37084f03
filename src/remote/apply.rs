//! Changing a host atomically, for `apply`: the apply script's header, and its report.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use super::{
    admin_record,
    error::ReportError,
    frame::{Frame, detail, frames},
    script::{finish_script_with, quote},
    server_state,
};
use crate::{source::base64, spec::Service};

/// Where an apply holds its lock on the host; in `/run`, so a reboot never leaves it behind.
pub const APPLY_LOCK: &str = "/run/lbctl.apply.lock";

/// How long one `check` or `reload` command may run on the host.
const COMMAND_TIMEOUT_SECONDS: u32 = 120;

const APPLY: &str = include_str!("apply.sh");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedFile {
    pub service: Service,
    /// Live path on the host.
    pub path: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceControl {
    /// Shell command validating a file; `{path}` stands for the file to check and is
    /// replaced by the staged file's path, already shell-quoted (so write `-f {path}`,
    /// not `-f '{path}'`).
    pub check: String,
    /// Shell command reloading the service gracefully.
    pub reload: String,
    /// The daemon that reload acts on, when it needs it running (see
    /// [`crate::spec::Reload::needs_running`]): what it is, and its pid file. A host whose
    /// files for the service exist but where it does not run is refused before any host
    /// changes, rather than found out at its reload, mid-rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<(String, String)>,
    /// How the daemon is started where this apply installs the service, see [`FirstStart`];
    /// none for a daemon that its package starts on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_start: Option<FirstStart>,
}

/// Where an apply installs a service (none of its files exists on the host yet) and its
/// daemon does not run, as on a fresh host (Debian's keepalived does not start without a
/// configuration), a reload would act on nothing: the daemon is started instead, after the
/// swap, verified to run, and stopped again by a rollback.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirstStart {
    pub start: String,
    pub stop: String,
    /// The daemon's pid file, which says whether it runs: before the apply, and after the start.
    pub pid_file: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// The host's inventory name, for what the host tells the user.
    pub host: String,
    /// Only the files that change: a service without a changed file is not reloaded.
    pub files: Vec<ManagedFile>,
    pub controls: BTreeMap<Service, ServiceControl>,
    pub verify: Verify,
    pub keep: Keep,
}

/// What carries the servers' state (DOWN, drain, maintenance, weights) across the apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keep {
    /// HAProxy's `server-state-file`, saved right before every HAProxy reload.
    pub state_file: Option<String>,
    /// HAProxy's configuration file, which the saved state is filtered against.
    pub haproxy_config: String,
    /// lbctl's record on the host.
    pub record_path: String,
    /// What lbctl's record holds after the apply; `None`: left as it is.
    pub record: Option<String>,
    /// Runtime API commands that put the admin state back after the verify.
    pub commands: Vec<String>,
}

/// What must be true after the reloads, polled for about three seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// HAProxy's admin socket, which must answer `show info` (asked with `socat`).
    pub haproxy_runtime_socket: Option<String>,
    /// HAProxy's master CLI socket, asked whether the master refused a reload (used only
    /// where a socket is there on the host).
    pub haproxy_master_socket: Option<String>,
    pub tcp_ports: Vec<u16>,
    pub udp_ports: Vec<u16>,
    /// Daemons that must run: what each is, and its pid file.
    pub pid_files: Vec<(String, String)>,
}

impl Verify {
    /// What is verified, in words: `runtime socket S, tcp P..., udp P...`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(socket) = &self.haproxy_runtime_socket {
            parts.push(format!("runtime socket {socket}"));
        }
        if !self.tcp_ports.is_empty() {
            parts.push(format!("tcp {}", ports(&self.tcp_ports)));
        }
        if !self.udp_ports.is_empty() {
            parts.push(format!("udp {}", ports(&self.udp_ports)));
        }
        for (what, _) in &self.pid_files {
            parts.push(format!("{what} running"));
        }
        parts.join(", ")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Preflight,
    Lock,
    Stage,
    Validate,
    /// A held apply waiting for lbctl's go-ahead.
    Hold,
    Backup,
    Swap,
    Reload,
    Verify,
    /// lbctl's record written and the admin state put back (after the verify).
    Admin,
    Rollback,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Preflight => "preflight",
            Step::Lock => "lock",
            Step::Stage => "stage",
            Step::Validate => "validate",
            Step::Hold => "hold",
            Step::Backup => "backup",
            Step::Swap => "swap",
            Step::Reload => "reload",
            Step::Verify => "verify",
            Step::Admin => "admin",
            Step::Rollback => "rollback",
        }
    }

    fn parse(name: &str) -> Option<Step> {
        [
            Step::Preflight,
            Step::Lock,
            Step::Stage,
            Step::Validate,
            Step::Hold,
            Step::Backup,
            Step::Swap,
            Step::Reload,
            Step::Verify,
            Step::Admin,
            Step::Rollback,
        ]
        .into_iter()
        .find(|step| step.name() == name)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StepResult {
    pub step: Step,
    pub ok: bool,
    /// The file or service the step was about, or what went wrong during a rollback.
    pub detail: String,
}

/// The failure that stopped an apply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    pub step: Step,
    /// The command that failed, as run on the host (empty when the script was interrupted).
    pub command: String,
    /// What it printed, stderr and stdout together, or lbctl's own explanation.
    pub stderr: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed", self.step)?;
        if !self.command.is_empty() {
            write!(f, ": `{}`", self.command)?;
        }
        let stderr = self.stderr.trim();
        if !stderr.is_empty() {
            write!(f, ": {stderr}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ApplyReport {
    pub steps: Vec<StepResult>,
    pub failure: Option<Failure>,
    /// Every swapped file was put back (and the services reloaded) after a failure.
    pub rolled_back: bool,
    /// A held script got as far as waiting for the go-ahead.
    pub ready: bool,
}

impl ApplyReport {
    pub fn succeeded(&self) -> bool {
        self.failure.is_none()
    }
}

/// The script that applies `deployment` atomically with the lock at [`APPLY_LOCK`].
pub fn apply_script(deployment: &Deployment) -> String {
    apply_script_with_lock(deployment, APPLY_LOCK)
}

/// [`apply_script`] with the lock somewhere else.
pub fn apply_script_with_lock(deployment: &Deployment, lock: &str) -> String {
    apply_script_at(deployment, lock, Mode::Straight)
}

/// The apply script that stops once every file is staged and validated, reports `ready`,
/// and goes on only when [`GO`] is written to its stdin: anything else, or stdin closing,
/// aborts with the host unchanged. That lets lbctl check every host before changing any.
pub fn held_apply_script(deployment: &Deployment, lock: &str) -> String {
    apply_script_at(deployment, lock, Mode::Held)
}

/// A [`held_apply_script`] for a `deployment` of every file lbctl manages on the host, sent
/// along with the fetch ([`super::fetch_then`]) before lbctl knows which files change: it
/// leaves out, with their services' reloads, the files the fetch found holding what lbctl
/// would write, and ends at once when that is all of them. What it then stages is
/// `deployment` without those files, which lbctl compares with what the fetch shows.
pub fn speculative_apply_script(deployment: &Deployment, lock: &str) -> String {
    apply_script_at(deployment, lock, Mode::Speculative)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Goes through to the end.
    Straight,
    /// Waits for the go-ahead once its files are checked.
    Held,
    /// Held, and leaves out the files the fetch before it matched.
    Speculative,
}

/// What a held apply script waits for (see [`held_apply_script`]).
pub const GO: &str = "go\n";

/// The frame a held apply script sends when it waits for [`GO`].
pub const READY: &[u8] = b"@@lbctl ready";

/// The last frame of an apply script that applied (its report's end): all that is left is
/// for its shell to exit.
pub const APPLIED: &[u8] = b"@@lbctl end apply ok";

fn apply_script_at(deployment: &Deployment, lock: &str, mode: Mode) -> String {
    let hold = mode != Mode::Straight;
    // Speculative: each file or service line goes only when the fetch did not match it.
    let unless = |paths: &[&str]| {
        if mode != Mode::Speculative {
            return String::new();
        }
        let each: Vec<String> = paths
            .iter()
            .map(|path| format!("matched {}", base64::encode(path.as_bytes())))
            .collect();
        format!("{{ {}; }} || ", each.join(" && "))
    };
    let verify = &deployment.verify;
    let mut script = String::new();
    let _ = writeln!(script, "INVENTORY_NAME={}", quote(&deployment.host));
    let _ = writeln!(script, "LOCK={}", quote(lock));
    let _ = writeln!(script, "LOCK64={}", base64::encode(lock.as_bytes()));
    let _ = writeln!(script, "HOLD={}", if hold { "1" } else { "" });
    let _ = writeln!(
        script,
        "SPECULATIVE={}",
        if mode == Mode::Speculative { "1" } else { "" }
    );
    let _ = writeln!(script, "VERIFY64={}", detail(&verify.describe()));
    let _ = writeln!(script, "NO_CHECK64={}", detail(" (no check command)"));
    let _ = writeln!(script, "WAS_ABSENT64={}", detail(" (did not exist)"));
    let _ = writeln!(
        script,
        "STARTED64={}",
        detail(" (started: lbctl installs it, and it did not run)")
    );
    let _ = writeln!(
        script,
        "SOCKET={}",
        quote(verify.haproxy_runtime_socket.as_deref().unwrap_or(""))
    );
    let _ = writeln!(
        script,
        "MASTER={}",
        quote(verify.haproxy_master_socket.as_deref().unwrap_or(""))
    );
    let _ = writeln!(script, "TCP_PORTS={}", quote(&ports(&verify.tcp_ports)));
    let _ = writeln!(script, "UDP_PORTS={}", quote(&ports(&verify.udp_ports)));
    let _ = writeln!(script, "DAEMONS={}", verify.pid_files.len());
    script.push_str("pid_files() {\n\t:\n");
    for (what, path) in &verify.pid_files {
        let _ = writeln!(script, "\t\"$@\" {} {} || return", quote(what), quote(path));
    }
    script.push_str("}\n");
    let _ = writeln!(script, "COMMAND_TIMEOUT={COMMAND_TIMEOUT_SECONDS}");
    let _ = writeln!(script, "CHANGES={}", deployment.files.len());
    let keep = &deployment.keep;
    let _ = writeln!(
        script,
        "STATE_FILE={}",
        quote(keep.state_file.as_deref().unwrap_or(""))
    );
    let _ = writeln!(script, "HAPROXY_CONFIG={}", quote(&keep.haproxy_config));
    // Stick tables pass to a new HAProxy only through its own `peers` section: without one in
    // the configuration it starts with, there is nothing for it to learn, and so nothing to
    // wait for. When this apply does not carry that file, lbctl cannot tell: it waits.
    let peers = deployment
        .files
        .iter()
        .find(|file| file.path == keep.haproxy_config)
        .is_none_or(|file| declares_peers(&file.content));
    let _ = writeln!(script, "PEERS_SECTION={}", if peers { "1" } else { "" });
    let _ = writeln!(script, "RECORD={}", quote(&keep.record_path));
    let _ = writeln!(
        script,
        "RECORD64={}",
        detail(keep.record.as_deref().unwrap_or(""))
    );
    let _ = writeln!(script, "ADMIN64={}", detail(&keep.commands.join(";")));

    script.push_str("files() {\n\t:\n");
    for (index, file) in deployment.files.iter().enumerate() {
        let staged = format!("{}.lbctl-new", file.path);
        let check = deployment
            .controls
            .get(&file.service)
            .map(|control| control.check.replace("{path}", &quote(&staged)))
            .unwrap_or_default();
        let _ = writeln!(
            script,
            "\t{}\"$@\" {index} {} {} {} {} {} {} {} || return",
            unless(&[file.path.as_str()]),
            quote(&file.path),
            file.service.file_umask(),
            quote(&check),
            quote(&base64::encode(file.content.as_bytes())),
            detail(&file.path),
            super::fetch::sha256_hex(file.content.as_bytes()),
            if file.service.executable() { "x" } else { "-" },
        );
    }
    script.push_str("}\nservices() {\n\t:\n");
    let mut changed: Vec<Service> = deployment.files.iter().map(|file| file.service).collect();
    changed.sort();
    changed.dedup();
    for service in changed {
        let control = deployment.controls.get(&service);
        let reload = control.map_or("", |control| control.reload.as_str());
        let (what, pid_file) = control
            .and_then(|control| control.running.as_ref())
            .map_or(("", ""), |(what, pid_file)| {
                (what.as_str(), pid_file.as_str())
            });
        let (start, stop, start_pid) = control
            .and_then(|control| control.first_start.as_ref())
            .map_or(("", "", ""), |first| {
                (
                    first.start.as_str(),
                    first.stop.as_str(),
                    first.pid_file.as_str(),
                )
            });
        let paths: Vec<&str> = deployment
            .files
            .iter()
            .filter(|file| file.service == service)
            .map(|file| file.path.as_str())
            .collect();
        let quoted: Vec<String> = paths.iter().map(|path| quote(path)).collect();
        let _ = writeln!(
            script,
            "\t{}\"$@\" {service} {} {} {} {} {} {} {} {} || return",
            unless(&paths),
            quote(reload),
            detail(service.name()),
            quote(what),
            quote(pid_file),
            quote(start),
            quote(stop),
            quote(start_pid),
            quoted.join(" ")
        );
    }
    script.push_str("}\n");
    // Nothing may follow main: a held script reads its go-ahead from the same stdin (fd 3).
    let body = format!("{}{}{APPLY}", server_state::SCRIPT, admin_record::SCRIPT);
    finish_script_with(script, &body, "main 3<&0 </dev/null\n")
}

/// Reads an apply script's stdout.
pub fn parse_apply(stdout: &[u8]) -> Result<ApplyReport, ReportError> {
    const SCRIPT: &str = "apply";
    let mut report = ApplyReport::default();
    let mut ended = false;
    for frame in frames(SCRIPT, stdout)? {
        let frame = frame?;
        match frame.words.as_slice() {
            ["step", step, state, details @ ..] if !details.is_empty() => {
                let ok = match *state {
                    "ok" => true,
                    "failed" => false,
                    _ => return Err(frame.malformed("unknown step state")),
                };
                let mut detail = String::new();
                for part in details {
                    detail.push_str(&frame.text(part)?);
                }
                report.steps.push(StepResult {
                    step: frame.step(step)?,
                    ok,
                    detail,
                });
            }
            ["ready"] => report.ready = true,
            ["failure", step, command, stderr] => {
                report.failure.get_or_insert(Failure {
                    step: frame.step(step)?,
                    command: frame.text(command)?,
                    stderr: frame.text(stderr)?,
                });
            }
            ["rolled-back"] => report.rolled_back = true,
            ["end", "apply", outcome @ ("ok" | "failed")] => {
                if (*outcome == "ok") != report.failure.is_none() {
                    return Err(frame.malformed("the outcome contradicts the steps"));
                }
                ended = true;
                break;
            }
            _ => return Err(frame.malformed("unknown frame")),
        }
    }
    if !ended {
        let after = report
            .steps
            .last()
            .map(|last| format!("step {} {}", last.step, last.detail));
        return Err(ReportError::Truncated {
            script: SCRIPT,
            after,
        });
    }
    Ok(report)
}

impl Frame<'_> {
    fn step(&self, field: &str) -> Result<Step, ReportError> {
        Step::parse(field).ok_or_else(|| self.malformed("unknown step"))
    }
}

/// Whether an HAProxy configuration has a `peers` section: a line whose first word is
/// `peers` (HAProxy knows its section keywords wherever the line starts).
fn declares_peers(config: &str) -> bool {
    config
        .lines()
        .any(|line| line.split_whitespace().next() == Some("peers"))
}

fn ports(ports: &[u16]) -> String {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    ports.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haproxy_is_asked_about_its_peers_only_when_its_new_configuration_has_some() {
        let config = "/etc/haproxy/haproxy.cfg";
        let deployment = |content: Option<&str>| Deployment {
            files: content
                .map(|content| ManagedFile {
                    service: Service::Haproxy,
                    path: config.into(),
                    content: content.into(),
                })
                .into_iter()
                .collect(),
            host: "lb1".into(),
            controls: BTreeMap::new(),
            verify: Verify::default(),
            keep: Keep {
                haproxy_config: config.into(),
                ..Keep::default()
            },
        };
        let header = |content: Option<&str>| {
            apply_script(&deployment(content))
                .lines()
                .find(|line| line.starts_with("PEERS_SECTION="))
                .map(str::to_owned)
        };
        // `peers` after `stick-table` names a section; it is not one.
        let without = "global\n    daemon\nbackend b\n    stick-table type ip size 1k peers lb\n";
        assert_eq!(header(Some(without)).as_deref(), Some("PEERS_SECTION="));
        let with = "global\n    daemon\npeers lb\n    peer lb1 10.0.0.1:10000\n";
        assert_eq!(header(Some(with)).as_deref(), Some("PEERS_SECTION=1"));
        let indented = "global\n    daemon\n  peers lb\n    peer lb1 10.0.0.1:10000\n";
        assert_eq!(header(Some(indented)).as_deref(), Some("PEERS_SECTION=1"));
        // Without the configuration in the apply, lbctl cannot tell: the host asks.
        assert_eq!(header(None).as_deref(), Some("PEERS_SECTION=1"));
    }

    /// A held script says it still waits every few seconds, from its `ready` until lbctl's
    /// answer comes (and a line may follow that answer): its report reads as without them.
    #[test]
    fn a_held_scripts_keep_alives_are_passed_over() {
        let plain = "@@lbctl begin apply 1\n@@lbctl step lock ok L3J1bi9sb2Nr\n@@lbctl ready\n@@lbctl step backup ok -\n@@lbctl end apply ok\n";
        let beating = "@@lbctl begin apply 1\n@@lbctl step lock ok L3J1bi9sb2Nr\n@@lbctl ready\n@@lbctl waiting\n@@lbctl waiting\n@@lbctl step backup ok -\n@@lbctl waiting\n@@lbctl end apply ok\n";
        let report = parse_apply(beating.as_bytes()).unwrap();
        assert_eq!(report, parse_apply(plain.as_bytes()).unwrap());
        assert!(report.ready && report.succeeded());
        assert_eq!(report.steps.len(), 2);
        // told to stop, or its connection lost, while it waited
        let stopped = "@@lbctl begin apply 1\n@@lbctl ready\n@@lbctl waiting\n@@lbctl step hold failed -\n@@lbctl failure hold - aW50ZXJydXB0ZWQ=\n@@lbctl end apply failed\n";
        let report = parse_apply(stopped.as_bytes()).unwrap();
        assert_eq!(report.failure.unwrap().stderr, "interrupted");
        // cut off while it waited: what it said last is the step before
        assert_eq!(
            parse_apply(b"@@lbctl begin apply 1\n@@lbctl step lock ok L3J1bi9sb2Nr\n@@lbctl ready\n@@lbctl waiting\n"),
            Err(ReportError::Truncated {
                script: "apply",
                after: Some("step lock /run/lock".to_owned()),
            })
        );
    }

    #[test]
    fn a_report_without_its_end_is_truncated() {
        let stdout = b"motd\n@@lbctl begin apply 1\n@@lbctl step lock ok L3J1bi9sb2Nr\n";
        assert_eq!(
            parse_apply(stdout),
            Err(ReportError::Truncated {
                script: "apply",
                after: Some("step lock /run/lock".to_owned()),
            })
        );
        assert_eq!(
            parse_apply(b"sudo: a password is required\n"),
            Err(ReportError::Missing { script: "apply" })
        );
    }
}
