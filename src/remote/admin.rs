//! `lbctl drain|maint|ready|weight` on one load balancer: the held script `admin.sh` and
//! its report. Phase 1 looks (lbctl's record, HAProxy's servers, nginx's marks) and waits;
//! lbctl decides from every load balancer's answer and answers with the runtime API
//! commands and the new record ([`answer`]); phase 2 changes, re-marks nginx, saves
//! HAProxy's state for its next start, and looks again.
//!
//! ```text
//! @@lbctl begin admin 1
//! @@lbctl record <record> | -
//! @@lbctl servers <show servers state> | servers-error <message>
//! @@lbctl nginx-marks <"KEY WORDS" lines> | nginx-absent
//! @@lbctl ready
//! @@lbctl command-error <what HAProxy answered>
//! @@lbctl record-written | record-error <message>
//! @@lbctl nginx unchanged | reloaded | failed <message>
//! @@lbctl state-saved | state-error <message>
//! @@lbctl after <show servers state>
//! @@lbctl error <message>
//! @@lbctl end admin ok | failed | stopped
//! ```

use std::{collections::BTreeMap, fmt::Write as _};

use serde::Serialize;

use crate::remote::{
    self, ReportError,
    admin_record::{self, Record, RecordError},
    nginx_marks, server_state,
    show_stat::{ServerState, parse_servers_state},
};
use crate::source::base64;

const NAME: &str = "admin";
const SCRIPT: &str = include_str!("admin.sh");
/// How long phase 1 waits for an apply holding the lock.
const LOCK_WAIT_SECONDS: u32 = 10;
/// How long nginx's check or reload may take.
const COMMAND_TIMEOUT_SECONDS: u32 = 60;

/// What the script needs to know about one load balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminHost {
    /// The apply lock, which the script holds while it looks and changes.
    pub lock: String,
    /// HAProxy's admin socket; `None`: no HAProxy server is touched.
    pub socket: Option<String>,
    /// HAProxy's configuration, which the saved state is filtered against.
    pub config: String,
    /// HAProxy's `server-state-file`; `None`: not saved.
    pub state_file: Option<String>,
    /// lbctl's record.
    pub record: String,
    /// nginx's stream file and how to check and reload it; `None`: no UDP server.
    pub nginx: Option<AdminNginx>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminNginx {
    pub config: String,
    /// A shell command checking a stream file; `{path}` stands for it.
    pub check: String,
    pub reload: String,
}

/// The held script for `host` (see the module's documentation).
pub fn admin_script(host: &AdminHost) -> String {
    let mut s = String::new();
    let q = remote::quote;
    let _ = writeln!(s, "LOCK={}", q(&host.lock));
    let _ = writeln!(s, "LOCK_WAIT={LOCK_WAIT_SECONDS}");
    let _ = writeln!(s, "COMMAND_TIMEOUT={COMMAND_TIMEOUT_SECONDS}");
    let _ = writeln!(s, "SOCKET={}", q(host.socket.as_deref().unwrap_or("")));
    let _ = writeln!(s, "CONFIG={}", q(&host.config));
    let _ = writeln!(
        s,
        "STATE_FILE={}",
        q(host.state_file.as_deref().unwrap_or(""))
    );
    let _ = writeln!(s, "RECORD={}", q(&host.record));
    match &host.nginx {
        Some(n) => {
            let staged = format!("{}.lbctl-new", n.config);
            let _ = writeln!(s, "NGINX_CONF={}", q(&n.config));
            let _ = writeln!(
                s,
                "NGINX_CHECK={}",
                q(&n.check.replace("{path}", &q(&staged)))
            );
            let _ = writeln!(s, "NGINX_RELOAD={}", q(&n.reload));
        }
        None => s.push_str("NGINX_CONF=\nNGINX_CHECK=\nNGINX_RELOAD=\n"),
    }
    let body = format!(
        "{}{}{}{SCRIPT}",
        server_state::SCRIPT,
        admin_record::SCRIPT,
        nginx_marks::SCRIPT
    );
    remote::finish_script_with(s, &body, "main 3<&0 </dev/null\n")
}

/// lbctl's go-ahead: the runtime API commands to send, the record to write (`None`: leave it
/// as it is), and whether nginx's stream file is to be marked again from the record.
pub fn admin_answer(commands: &[String], record: Option<&Record>, remark_nginx: bool) -> String {
    let field = |text: &str| {
        if text.is_empty() {
            "-".to_string()
        } else {
            base64::encode(text.as_bytes())
        }
    };
    format!(
        "go\n{}\n{}\n{}\n",
        field(&commands.join(";")),
        record.map_or_else(|| "-".to_string(), |r| field(&r.text())),
        if remark_nginx { "1" } else { "-" }
    )
}

/// What phase 1 saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Looked {
    /// lbctl's record on the host (empty when there is none), or why it cannot be read.
    pub record: Option<Result<Record, RecordError>>,
    /// HAProxy's servers, or why the runtime API did not answer; `None`: not asked.
    pub servers: Option<Result<Vec<ServerState>, ReportError>>,
    /// The marks on nginx's tagged upstream servers; `None`: no nginx, or no file.
    pub nginx_marks: Option<BTreeMap<String, String>>,
}

/// How nginx's stream file fared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "outcome", content = "error")]
pub enum NginxOutcome {
    Unchanged,
    Reloaded,
    Failed(String),
}

/// What phase 2 did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changed {
    /// HAProxy's answer to a command that did not work.
    pub command_error: Option<String>,
    /// `Some(Ok)`: the record was written; `None`: it was left as it was.
    pub record: Option<Result<(), ReportError>>,
    pub nginx: Option<NginxOutcome>,
    /// `Some(Err)`: HAProxy did not answer, the state file is as it was.
    pub state_saved: Option<Result<(), ReportError>>,
    /// HAProxy's servers after the change.
    pub after: Option<Result<Vec<ServerState>, ReportError>>,
}

/// A whole report: what the script saw, and what it did if lbctl went ahead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminScriptReport {
    pub looked: Looked,
    /// Reached `ready`.
    pub ready: bool,
    pub changed: Changed,
    /// The host's own error (a tool missing, the lock held), which ended the script.
    pub error: Option<String>,
    /// How the script ended (`Failed` until it says).
    pub outcome: ScriptOutcome,
}

impl AdminScriptReport {
    pub fn succeeded(&self) -> bool {
        self.outcome == ScriptOutcome::Ok
    }
}

/// How the admin script ended: its `end admin` frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ScriptOutcome {
    Ok,
    #[default]
    Failed,
    /// lbctl did not go ahead; nothing was changed.
    Stopped,
}

impl std::fmt::Display for ScriptOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ScriptOutcome::Ok => "ok",
            ScriptOutcome::Failed => "failed",
            ScriptOutcome::Stopped => "stopped",
        })
    }
}

/// Reads the script's stdout: the whole of it, or (for phase 1) everything up to `ready`,
/// in which case there is no end and the report is not truncated.
pub fn parse_admin(stdout: &[u8], until_ready: bool) -> Result<AdminScriptReport, ReportError> {
    let mut report = AdminScriptReport::default();
    let mut ended = false;
    for frame in remote::frames(NAME, stdout)? {
        let frame = frame?;
        let servers = |field: &str| -> Result<Result<Vec<ServerState>, ReportError>, ReportError> {
            Ok(parse_servers_state(&frame.text(field)?))
        };
        let host = |field: &str| -> Result<ReportError, ReportError> {
            Ok(ReportError::Host(frame.text(field)?))
        };
        match frame.words.as_slice() {
            ["record", content] => {
                report.looked.record = Some(Record::parse(&frame.text(content)?));
            }
            ["servers", state] => report.looked.servers = Some(servers(state)?),
            ["servers-error", message] => {
                report.looked.servers = Some(Err(host(message)?));
            }
            ["nginx-marks", marks] => {
                let marks = frame.text(marks)?;
                report.looked.nginx_marks = Some(
                    marks
                        .lines()
                        .filter_map(|l| l.split_once(' '))
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                );
            }
            ["nginx-absent"] => report.looked.nginx_marks = None,
            ["ready"] => {
                report.ready = true;
                if until_ready {
                    return Ok(report);
                }
            }
            ["command-error", answer] => report.changed.command_error = Some(frame.text(answer)?),
            ["record-written"] => report.changed.record = Some(Ok(())),
            ["record-error", message] => report.changed.record = Some(Err(host(message)?)),
            ["nginx", "unchanged"] => report.changed.nginx = Some(NginxOutcome::Unchanged),
            ["nginx", "reloaded"] => report.changed.nginx = Some(NginxOutcome::Reloaded),
            ["nginx", "failed", message] => {
                report.changed.nginx = Some(NginxOutcome::Failed(frame.text(message)?));
            }
            ["state-saved"] => report.changed.state_saved = Some(Ok(())),
            ["state-error", message] => {
                report.changed.state_saved = Some(Err(host(message)?));
            }
            ["after", state] => report.changed.after = Some(servers(state)?),
            ["error", message] => report.error = Some(frame.text(message)?),
            ["end", "admin", outcome @ ("ok" | "failed" | "stopped")] => {
                report.outcome = match *outcome {
                    "ok" => ScriptOutcome::Ok,
                    "stopped" => ScriptOutcome::Stopped,
                    _ => ScriptOutcome::Failed,
                };
                ended = true;
                break;
            }
            _ => return Err(frame.malformed("unknown frame")),
        }
    }
    if !ended {
        return Err(ReportError::Truncated {
            script: NAME,
            after: None,
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::admin_record::{AdminState, Engine, Entry, Setting};

    /// Runs the script as lbctl does: the answer goes only once the script said `ready`
    /// (the shell reads its script from the same stdin, ahead of where it is).
    fn run_locally(script: &str, answer: &str) -> Vec<u8> {
        use std::io::{BufRead, Read, Write};
        let mut child = std::process::Command::new("sh")
            .arg("-s")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(script.as_bytes()).unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut seen = Vec::new();
        loop {
            let start = seen.len();
            if stdout.read_until(b'\n', &mut seen).unwrap() == 0 {
                break;
            }
            if &seen[start..] == b"@@lbctl ready\n" {
                stdin.write_all(answer.as_bytes()).unwrap();
                break;
            }
        }
        drop(stdin);
        stdout.read_to_end(&mut seen).unwrap();
        child.wait().unwrap();
        seen
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("lbctl-admin-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn host(dir: &std::path::Path) -> AdminHost {
        let path = |name: &str| dir.join(name).display().to_string();
        AdminHost {
            lock: path("lock"),
            socket: None,
            config: path("haproxy.cfg"),
            state_file: None,
            record: path("state/admin-state"),
            nginx: Some(AdminNginx {
                config: path("stream.conf"),
                check: "grep -q lbctl {path}".into(),
                reload: format!("echo reloaded >>{}", path("reloads")),
            }),
        }
    }

    fn record() -> Record {
        let mut record = Record::default();
        record.insert(Entry {
            engine: Engine::Nginx,
            backend: "wireguard".into(),
            server: "w2".into(),
            setting: Setting::State(AdminState::Drain),
            worker: "w2".into(),
            since: 1_700_000_000,
            run: "abc".into(),
            who: "me@here".into(),
            reason: "kernel".into(),
        });
        record
    }

    /// The admin script says it still waits every few seconds, from its `ready` until lbctl's
    /// answer comes: what it looked at, and what it changed, read as without those lines.
    #[test]
    fn keep_alives_while_the_script_waits_are_passed_over() {
        let looked =
            "@@lbctl begin admin 1\n@@lbctl record -\n@@lbctl nginx-absent\n@@lbctl ready\n";
        let waited = format!("{looked}@@lbctl waiting\n@@lbctl waiting\n");
        let until_ready = parse_admin(waited.as_bytes(), true).unwrap();
        assert!(until_ready.ready);
        assert_eq!(until_ready.looked.record, Some(Ok(Record::default())));
        let changed = format!("{waited}@@lbctl record-written\n@@lbctl end admin ok\n");
        let report = parse_admin(changed.as_bytes(), false).unwrap();
        assert_eq!(report.outcome, ScriptOutcome::Ok);
        assert_eq!(report.changed.record, Some(Ok(())));
        let stopped = format!("{waited}@@lbctl end admin stopped\n");
        assert_eq!(
            parse_admin(stopped.as_bytes(), false).unwrap().outcome,
            ScriptOutcome::Stopped
        );
    }

    const STREAM: &str =
        "upstream u {\n    server 10.0.0.2:31820 max_fails=1; # lbctl:wireguard/w2\n}\n";

    #[test]
    fn lbctl_not_going_ahead_changes_nothing() {
        let dir = scratch("stop");
        std::fs::write(dir.join("stream.conf"), STREAM).unwrap();
        let out = run_locally(&admin_script(&host(&dir)), "");
        let report = parse_admin(&out, false).unwrap();
        assert!(report.ready);
        assert_eq!(report.outcome, ScriptOutcome::Stopped);
        assert_eq!(report.looked.record, Some(Ok(Record::default())));
        assert_eq!(report.looked.nginx_marks, Some(BTreeMap::new()));
        assert!(!dir.join("state/admin-state").exists());
        assert_eq!(
            std::fs::read_to_string(dir.join("stream.conf")).unwrap(),
            STREAM
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_record_is_written_and_nginx_marked_checked_and_reloaded_once() {
        let dir = scratch("go");
        std::fs::write(dir.join("stream.conf"), STREAM).unwrap();
        let record = record();
        let out = run_locally(
            &admin_script(&host(&dir)),
            &admin_answer(&[], Some(&record), true),
        );
        let report = parse_admin(&out, false).unwrap();
        assert!(report.succeeded(), "{report:?}");
        assert_eq!(report.changed.record, Some(Ok(())));
        assert_eq!(report.changed.nginx, Some(NginxOutcome::Reloaded));
        let written = std::fs::read_to_string(dir.join("state/admin-state")).unwrap();
        assert_eq!(Record::parse(&written).unwrap(), record);
        let stream = std::fs::read_to_string(dir.join("stream.conf")).unwrap();
        assert!(
            stream.contains("max_fails=1 down; # lbctl:wireguard/w2 down"),
            "{stream}"
        );
        assert_eq!(nginx_marks::strip(&stream), STREAM);

        // Again: the record now says so, nginx is already marked, nothing is reloaded.
        let out = run_locally(&admin_script(&host(&dir)), &admin_answer(&[], None, true));
        let report = parse_admin(&out, false).unwrap();
        assert_eq!(report.looked.record, Some(Ok(record)));
        assert_eq!(
            report.looked.nginx_marks.as_ref().unwrap()["wireguard/w2"],
            "down"
        );
        assert_eq!(report.changed.nginx, Some(NginxOutcome::Unchanged));
        assert_eq!(report.changed.record, None);
        assert_eq!(
            std::fs::read_to_string(dir.join("reloads")).unwrap(),
            "reloaded\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_stream_file_nginx_refuses_is_put_back() {
        let dir = scratch("refused");
        std::fs::write(dir.join("stream.conf"), STREAM).unwrap();
        let mut h = host(&dir);
        h.nginx.as_mut().unwrap().check = "echo no such directive >&2; exit 1".into();
        let out = run_locally(&admin_script(&h), &admin_answer(&[], Some(&record()), true));
        let report = parse_admin(&out, false).unwrap();
        assert_eq!(report.outcome, ScriptOutcome::Failed);
        match report.changed.nginx {
            Some(NginxOutcome::Failed(why)) => assert!(why.contains("no such directive"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            std::fs::read_to_string(dir.join("stream.conf")).unwrap(),
            STREAM
        );
        assert!(!dir.join("stream.conf.lbctl-new").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
