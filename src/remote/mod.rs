//! What lbctl runs on a load balancer, and what it reads back.
//!
//! Plain data in, POSIX `sh` script text out; the script's stdout in, plain data out. The
//! scripts are fed to `sh -s` by the transport and do their work in one round trip each:
//! [`fetch_script`] reads what a host holds (for `plan`), [`apply_script`] changes it
//! atomically (for `apply`). Nothing here knows about templates, inventories or SSH.
//!
//! # Framing
//!
//! lbctl reads only the stdout lines that start with `@@lbctl `, so a chatty login shell or
//! a command printing to stdout cannot confuse it. Every free-form field (paths, contents,
//! command output, messages) is base64 on one line, or `-` when empty, so no file content
//! can look like a frame. A report opens with `@@lbctl begin <script> 1` and closes with
//! `@@lbctl end <script> ...`; a report without its end is truncated and says so.
//!
//! ```text
//! @@lbctl begin fetch 1
//! @@lbctl file <path> present <content> | absent | unreadable <message>
//! @@lbctl vip <vip> held | free
//! @@lbctl lock free | held <pid or ->
//! @@lbctl error <message>
//! @@lbctl end fetch
//!
//! @@lbctl begin apply 1
//! @@lbctl step <step> ok | failed <detail>
//! @@lbctl failure <step> <command> <stderr>
//! @@lbctl rolled-back
//! @@lbctl end apply ok | failed
//! ```

pub mod lb_state;
pub mod runtime_api;

mod base64;

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::net::IpAddr;

/// Where an apply holds its lock on the host; in `/run`, so a reboot never leaves it behind.
pub const APPLY_LOCK: &str = "/run/lbctl.apply.lock";

/// How long one `check` or `reload` command may run on the host.
const COMMAND_TIMEOUT_SECONDS: u32 = 120;

const COMMON: &str = include_str!("common.sh");
const FETCH: &str = include_str!("fetch.sh");
const APPLY: &str = include_str!("apply.sh");

pub use crate::spec::service::Service;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedFile {
    pub service: Service,
    /// Live path on the host.
    pub path: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceControl {
    /// Shell command validating a file; `{path}` stands for the file to check and is
    /// replaced by the staged file's path, already shell-quoted (so write `-f {path}`,
    /// not `-f '{path}'`).
    pub check: String,
    /// Shell command reloading the service gracefully.
    pub reload: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// Only the files that change: a service without a changed file is not reloaded.
    pub files: Vec<ManagedFile>,
    pub controls: BTreeMap<Service, ServiceControl>,
    pub verify: Verify,
}

/// What must be true after the reloads, polled for about three seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verify {
    /// HAProxy's admin socket, which must answer `show info` (asked with `socat`).
    pub haproxy_runtime_socket: Option<String>,
    pub tcp_ports: Vec<u16>,
    pub udp_ports: Vec<u16>,
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
        parts.join(", ")
    }
}

/// The rest of what a fetch looks at, besides files and VIPs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// The apply lock whose holder is reported.
    pub lock: String,
    /// SHA-256 digests (lowercase hex) of what lbctl would write, by path: a file that
    /// already holds exactly that is reported as matching, without its content.
    pub expected: BTreeMap<String, String>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            lock: APPLY_LOCK.to_owned(),
            expected: BTreeMap::new(),
        }
    }
}

/// What a host holds right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fetched {
    /// Every requested path, with its exact bytes, or `None` when it does not exist.
    pub files: BTreeMap<String, Option<Vec<u8>>>,
    /// Every requested VIP, as given, and whether the host holds it now.
    pub vips: BTreeMap<String, bool>,
    pub lock: LockState,
}

impl Fetched {
    pub fn holds_any_vip(&self) -> bool {
        self.vips.values().any(|&held| held)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LockState {
    #[default]
    Free,
    /// Another apply is running; `pid` is its shell's, when it could be read.
    Held { pid: Option<u32> },
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error(
        "the host printed no lbctl {script} report: the script did not run (is `sh` there, and does `sudo -n` work?)"
    )]
    Missing { script: &'static str },
    #[error(
        "the {script} report ended early{}: the connection or the script died, so what happened on the host is unknown",
        after.as_ref().map(|after| format!(" after {after}")).unwrap_or_default()
    )]
    Truncated {
        script: &'static str,
        after: Option<String>,
    },
    #[error("line {line} of the {script} report is malformed: {reason}")]
    Malformed {
        script: &'static str,
        line: usize,
        reason: String,
    },
    #[error("cannot read {path} on the host: {message}")]
    Unreadable { path: String, message: String },
    #[error("{0}")]
    Host(String),
}

/// The script that reads, in one round trip and changing nothing: each of `paths` (exact
/// bytes, or absent), which of `vips` the host holds (`ip -o addr show`), whether an apply
/// holds the lock.
pub fn fetch_script(paths: &[String], vips: &[String], options: &FetchOptions) -> String {
    let mut script = String::new();
    let _ = writeln!(script, "LOCK={}", quote(&options.lock));
    let _ = writeln!(
        script,
        "WANT_VIPS={}",
        if vips.is_empty() { "" } else { "1" }
    );
    script.push_str("sums() {\n\tsha256sum --");
    let summed = paths.iter().filter(|p| options.expected.contains_key(*p));
    let mut any = false;
    for path in summed {
        let _ = write!(script, " {}", quote(path));
        any = true;
    }
    script.push_str(if any { "\n}\n" } else { " /dev/null\n}\n" });
    script.push_str("paths() {\n\t:\n");
    for path in paths {
        let digest = options.expected.get(path).map(String::as_str);
        let _ = writeln!(
            script,
            "\tfetch_file {} {} {}",
            quote(path),
            base64::encode(path.as_bytes()),
            quote(digest.unwrap_or("")),
        );
    }
    script.push_str("}\nvips() {\n\t:\n");
    for vip in vips {
        let _ = writeln!(
            script,
            "\tfetch_vip {} {}",
            quote(&address_of(vip)),
            base64::encode(vip.as_bytes()),
        );
    }
    script.push_str("}\n");
    finish_script(script, FETCH)
}

/// The script that applies `deployment` atomically with the lock at [`APPLY_LOCK`].
pub fn apply_script(deployment: &Deployment) -> String {
    apply_script_with_lock(deployment, APPLY_LOCK)
}

/// [`apply_script`] with the lock somewhere else.
pub fn apply_script_with_lock(deployment: &Deployment, lock: &str) -> String {
    apply_script_at(deployment, lock, false)
}

/// The apply script that stops once every file is staged and validated, reports `ready`,
/// and goes on only when [`GO`] is written to its stdin: anything else, or stdin closing,
/// aborts with the host unchanged. That lets lbctl check every host before changing any.
pub fn held_apply_script(deployment: &Deployment, lock: &str) -> String {
    apply_script_at(deployment, lock, true)
}

/// What a held apply script waits for (see [`held_apply_script`]).
pub const GO: &str = "go\n";

/// The frame a held apply script sends when it waits for [`GO`].
pub const READY: &[u8] = b"@@lbctl ready";

fn apply_script_at(deployment: &Deployment, lock: &str, hold: bool) -> String {
    let verify = &deployment.verify;
    let mut script = String::new();
    let _ = writeln!(script, "LOCK={}", quote(lock));
    let _ = writeln!(script, "LOCK64={}", base64::encode(lock.as_bytes()));
    let _ = writeln!(script, "HOLD={}", if hold { "1" } else { "" });
    let _ = writeln!(script, "VERIFY64={}", detail(&verify.describe()));
    let _ = writeln!(script, "NO_CHECK64={}", detail(" (no check command)"));
    let _ = writeln!(script, "WAS_ABSENT64={}", detail(" (did not exist)"));
    let _ = writeln!(
        script,
        "SOCKET={}",
        quote(verify.haproxy_runtime_socket.as_deref().unwrap_or(""))
    );
    let _ = writeln!(script, "TCP_PORTS={}", quote(&ports(&verify.tcp_ports)));
    let _ = writeln!(script, "UDP_PORTS={}", quote(&ports(&verify.udp_ports)));
    let _ = writeln!(script, "COMMAND_TIMEOUT={COMMAND_TIMEOUT_SECONDS}");
    let _ = writeln!(script, "CHANGES={}", deployment.files.len());

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
            "\t\"$@\" {index} {} {} {} {} {} || return",
            quote(&file.path),
            file.service.file_umask(),
            quote(&check),
            quote(&base64::encode(file.content.as_bytes())),
            detail(&file.path),
        );
    }
    script.push_str("}\nservices() {\n\t:\n");
    let mut changed: Vec<Service> = deployment.files.iter().map(|file| file.service).collect();
    changed.sort();
    changed.dedup();
    for service in changed {
        let reload = deployment
            .controls
            .get(&service)
            .map(|control| control.reload.as_str())
            .unwrap_or("");
        let _ = writeln!(
            script,
            "\t\"$@\" {service} {} {} || return",
            quote(reload),
            detail(service.name())
        );
    }
    script.push_str("}\n");
    // Nothing may follow main: a held script reads its go-ahead from the same stdin (fd 3).
    finish_script_with(script, APPLY, "main 3<&0 </dev/null\n")
}

/// `text` as one frame field (base64, or `-` when empty).
fn detail(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        base64::encode(text.as_bytes())
    }
}

/// Reads a fetch script's stdout.
pub fn parse_fetch(stdout: &[u8]) -> Result<Fetched, ReportError> {
    parse_fetch_knowing(stdout, &BTreeMap::new())
}

/// [`parse_fetch`] for a script given digests: `known` holds, by path, the content whose
/// digest was sent, which is what a host reporting a match holds.
pub fn parse_fetch_knowing(
    stdout: &[u8],
    known: &BTreeMap<&str, &[u8]>,
) -> Result<Fetched, ReportError> {
    const SCRIPT: &str = "fetch";
    let mut fetched = Fetched::default();
    let mut ended = false;
    for frame in frames(SCRIPT, stdout)? {
        let frame = frame?;
        let malformed = |reason: &str| frame.malformed(reason);
        match frame.words.as_slice() {
            ["file", path, rest @ ..] => {
                let path = frame.text(path)?;
                match rest {
                    ["present", content] => {
                        fetched.files.insert(path, Some(frame.bytes(content)?));
                    }
                    ["absent"] => {
                        fetched.files.insert(path, None);
                    }
                    ["matches", digest] => {
                        let content = known
                            .get(path.as_str())
                            .filter(|content| sha256_hex(content) == *digest)
                            .ok_or_else(|| malformed("a match with a digest lbctl did not send"))?;
                        fetched.files.insert(path, Some(content.to_vec()));
                    }
                    ["unreadable", message] => {
                        let message = frame.text(message)?;
                        return Err(ReportError::Unreadable { path, message });
                    }
                    _ => return Err(malformed("unknown file state")),
                }
            }
            ["vip", vip, state] => {
                let held = match *state {
                    "held" => true,
                    "free" => false,
                    _ => return Err(malformed("unknown vip state")),
                };
                fetched.vips.insert(frame.text(vip)?, held);
            }
            ["lock", "free"] => fetched.lock = LockState::Free,
            ["lock", "held", pid] => {
                fetched.lock = LockState::Held {
                    pid: pid.parse().ok(),
                }
            }
            ["error", message] => return Err(ReportError::Host(frame.text(message)?)),
            ["end", "fetch"] => {
                ended = true;
                break;
            }
            _ => return Err(malformed("unknown frame")),
        }
    }
    if !ended {
        return Err(ReportError::Truncated {
            script: SCRIPT,
            after: None,
        });
    }
    Ok(fetched)
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

/// One `@@lbctl` line of a report, split into its words.
pub(crate) struct Frame<'a> {
    script: &'static str,
    line: usize,
    pub(crate) words: Vec<&'a str>,
}

impl Frame<'_> {
    pub(crate) fn malformed(&self, reason: &str) -> ReportError {
        ReportError::Malformed {
            script: self.script,
            line: self.line,
            reason: format!("{reason}: {}", self.words.join(" ")),
        }
    }

    pub(crate) fn bytes(&self, field: &str) -> Result<Vec<u8>, ReportError> {
        if field == "-" {
            return Ok(Vec::new());
        }
        base64::decode(field).ok_or_else(|| self.malformed("invalid base64"))
    }

    pub(crate) fn text(&self, field: &str) -> Result<String, ReportError> {
        Ok(String::from_utf8_lossy(&self.bytes(field)?).into_owned())
    }

    pub(crate) fn pid(&self, field: &str) -> Result<u32, ReportError> {
        field.parse().map_err(|_| self.malformed("invalid pid"))
    }

    fn step(&self, field: &str) -> Result<Step, ReportError> {
        Step::parse(field).ok_or_else(|| self.malformed("unknown step"))
    }
}

/// The frames after `begin <script> 1`, checked to exist.
pub(crate) fn frames<'a>(
    script: &'static str,
    stdout: &'a [u8],
) -> Result<impl Iterator<Item = Result<Frame<'a>, ReportError>>, ReportError> {
    let mut lines = stdout
        .split(|&byte| byte == b'\n')
        .enumerate()
        .filter_map(|(index, line)| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            line.strip_prefix(b"@@lbctl ").map(|rest| (index + 1, rest))
        })
        .map(move |(line, rest)| match std::str::from_utf8(rest) {
            Ok(rest) => Ok(Frame {
                script,
                line,
                words: rest.split(' ').collect(),
            }),
            Err(_) => Err(ReportError::Malformed {
                script,
                line,
                reason: "not UTF-8".to_owned(),
            }),
        });
    let begin = lines.next().ok_or(ReportError::Missing { script })??;
    match begin.words.as_slice() {
        ["begin", name, "1"] if *name == script => Ok(lines),
        ["begin", name, version] if *name == script => Err(begin.malformed(&format!(
            "the host ran version {version} of the script, this lbctl reads version 1"
        ))),
        _ => Err(begin.malformed("expected the report to begin")),
    }
}

pub(crate) fn finish_script(header: String, body: &str) -> String {
    // Commands must not read the rest of the script from stdin: main only starts once the
    // shell has read every definition, and runs with stdin closed.
    finish_script_with(header, body, "main </dev/null\n")
}

fn finish_script_with(header: String, body: &str, call: &str) -> String {
    let mut script = header;
    script.push_str(COMMON);
    script.push_str(body);
    script.push_str(call);
    script
}

/// The SHA-256 of `content` in lowercase hex, as `sha256sum` prints it.
pub fn sha256_hex(content: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(content);
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// `text` as one single-quoted shell word.
pub(crate) fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn ports(ports: &[u16]) -> String {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    ports.join(" ")
}

/// The address of a VIP as `ip -o addr show` prints it: without a prefix length, and in
/// canonical form for IPv6.
pub(crate) fn address_of(vip: &str) -> String {
    let address = vip.split('/').next().unwrap_or(vip);
    match address.parse::<IpAddr>() {
        Ok(address) => address.to_string(),
        Err(_) => address.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vips_are_compared_the_way_ip_prints_them() {
        assert_eq!(address_of("10.0.0.10/24"), "10.0.0.10");
        assert_eq!(address_of("2001:DB8:0:0::1/64"), "2001:db8::1");
        assert_eq!(address_of("vip.example"), "vip.example");
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("it's"), r"'it'\''s'");
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
