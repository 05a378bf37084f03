//! The frames lbctl's scripts print, and how they are read back.
//!
//! lbctl reads only the stdout lines that start with `@@lbctl `, so a chatty login shell or
//! a command printing to stdout cannot confuse it. Every free-form field (paths, contents,
//! command output, messages) is base64 on one line, or `-` when empty, so no file content
//! can look like a frame. A report opens with `@@lbctl begin <script> 1` and closes with
//! `@@lbctl end <script> ...`; a report without its end is truncated and says so.
//!
//! A script waiting for lbctl's answer (a held apply, an admin script) says `@@lbctl waiting`
//! every few seconds, so that its host's sshd notices a connection lost meanwhile (see
//! `beat_begin` in `common.sh`); the line belongs to no report, and [`frames`] passes over it.
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

use super::ReportError;
use crate::source::base64;

/// `text` as one frame field (base64, or `-` when empty).
pub(super) fn detail(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        base64::encode(text.as_bytes())
    }
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
}

/// The line a script prints while it waits for lbctl, to be passed over (see the module's
/// documentation).
const WAITING: &[u8] = b"waiting";

/// The frames after `begin <script> 1`, checked to exist; [`WAITING`] lines are left out.
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
        .filter(|(_, rest)| *rest != WAITING)
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
