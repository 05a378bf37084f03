//! Reading what a host holds, for `plan`: the fetch script's header, and its report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::source::base64;

use super::{
    admin_record::{Record, RecordError},
    apply::APPLY_LOCK,
    error::ReportError,
    frame::frames,
    script::{address_of, finish_script, quote},
    show_stat::{ServerState, parse_servers_state},
};

const FETCH: &str = include_str!("fetch.sh");

/// The largest managed file a fetch reads (a rendered haproxy.cfg for 20,000 backends is about
/// 30 MiB): a larger one is reported, not sent.
pub const MAX_FETCH_BYTES: u64 = 64 << 20;

/// The rest of what a fetch looks at, besides files and VIPs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// The apply lock whose holder is reported.
    pub lock: String,
    /// SHA-256 digests (lowercase hex) of what lbctl would write, by path: a file that
    /// already holds exactly that is reported as matching, without its content.
    pub expected: BTreeMap<String, String>,
    /// lbctl's admin record, read when given; when it sets anything (a drain, a
    /// maintenance, a weight), HAProxy is asked `show servers state` on `runtime_socket` too,
    /// so that a state HAProxy lost shows.
    pub admin_record: Option<String>,
    pub runtime_socket: Option<String>,
    /// Each file that matches its digest is also named on fd 3, for the apply script that
    /// [`super::fetch_then`] sends along.
    pub matches_to_fd3: bool,
    /// Daemons asked whether they run, each a name and its pid file: those an apply starts
    /// where it installs them (see `remote::FirstStart`).
    pub daemons: Vec<(String, String)>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            lock: APPLY_LOCK.to_owned(),
            expected: BTreeMap::new(),
            admin_record: None,
            runtime_socket: None,
            matches_to_fd3: false,
            daemons: Vec::new(),
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
    /// lbctl's admin record (empty when there is none), or why it cannot be read; `None`
    /// when not asked.
    pub admin_record: Option<Result<Record, RecordError>>,
    /// HAProxy's servers, asked when the record sets anything, or why the runtime API did
    /// not answer.
    pub servers: Option<Result<Vec<ServerState>, ReportError>>,
    /// Every daemon asked about ([`FetchOptions::daemons`]), by name, and whether it runs.
    pub daemons: BTreeMap<String, bool>,
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

/// The script that reads, in one round trip and changing nothing: each of `paths` (exact
/// bytes, or absent), which of `vips` the host holds (`ip -o addr show`), whether an apply
/// holds the lock.
pub fn fetch_script(paths: &[String], vips: &[String], options: &FetchOptions) -> String {
    let mut script = String::new();
    let _ = writeln!(script, "LOCK={}", quote(&options.lock));
    let _ = writeln!(script, "MAX_BYTES={MAX_FETCH_BYTES}");
    let _ = writeln!(
        script,
        "RECORD={}",
        quote(options.admin_record.as_deref().unwrap_or(""))
    );
    let _ = writeln!(
        script,
        "SOCKET={}",
        quote(options.runtime_socket.as_deref().unwrap_or(""))
    );
    let _ = writeln!(
        script,
        "MATCHES_TO_FD3={}",
        if options.matches_to_fd3 { "1" } else { "" }
    );
    let _ = writeln!(
        script,
        "WANT_VIPS={}",
        if vips.is_empty() { "" } else { "1" }
    );
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
    script.push_str("}\ndaemons() {\n\t:\n");
    for (name, pid_file) in &options.daemons {
        let _ = writeln!(
            script,
            "\tfetch_daemon {} {}",
            quote(pid_file),
            base64::encode(name.as_bytes()),
        );
    }
    script.push_str("}\n");
    finish_script(script, FETCH)
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
    let (answers, mut fetched) = parse_with(stdout)?;
    let mut files = BTreeMap::new();
    for (path, answer) in answers {
        let content = match answer {
            Answer::Absent => None,
            Answer::Present(bytes) => Some(bytes),
            Answer::Matches(digest, unknown) => Some(
                known
                    .get(path.as_str())
                    .filter(|content| sha256_hex(content) == digest)
                    .map(|content| content.to_vec())
                    .ok_or(*unknown)?,
            ),
        };
        files.insert(path, content);
    }
    fetched.files = files;
    Ok(fetched)
}

/// What a host holds, by digest: [`parse_fetch`] where each file is its SHA-256 (lowercase
/// hex), whether the host sent the file or, for a digest it was given, only said that it
/// matches.
pub fn parse_fetch_digests(stdout: &[u8]) -> Result<FetchedDigests, ReportError> {
    let (answers, fetched) = parse_with(stdout)?;
    let files = answers
        .into_iter()
        .map(|(path, answer)| {
            let digest = match answer {
                Answer::Absent => None,
                Answer::Present(bytes) => Some(sha256_hex(&bytes)),
                Answer::Matches(digest, _) => Some(digest),
            };
            (path, digest)
        })
        .collect();
    Ok(FetchedDigests {
        files,
        vips: fetched.vips,
        lock: fetched.lock,
    })
}

/// [`Fetched`] with each file as its SHA-256.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchedDigests {
    pub files: BTreeMap<String, Option<String>>,
    pub vips: BTreeMap<String, bool>,
    pub lock: LockState,
}

/// What a fetch said of one file.
enum Answer {
    Absent,
    Present(Vec<u8>),
    /// Its digest is the one lbctl sent; the error is for a digest lbctl did not send.
    Matches(String, Box<ReportError>),
}

/// Every file's answer, and the rest of what the host said (files left empty).
type Parsed = (BTreeMap<String, Answer>, Fetched);

fn parse_with(stdout: &[u8]) -> Result<Parsed, ReportError> {
    const SCRIPT: &str = "fetch";
    let mut fetched = Fetched::default();
    let mut answers = BTreeMap::new();
    let mut ended = false;
    for frame in frames(SCRIPT, stdout)? {
        let frame = frame?;
        let malformed = |reason: &str| frame.malformed(reason);
        match frame.words.as_slice() {
            ["file", path, rest @ ..] => {
                let path = frame.text(path)?;
                match rest {
                    ["present", content] => {
                        answers.insert(path, Answer::Present(frame.bytes(content)?));
                    }
                    ["absent"] => {
                        answers.insert(path, Answer::Absent);
                    }
                    ["matches", digest] => {
                        let unknown = malformed("a match with a digest lbctl did not send");
                        answers.insert(
                            path,
                            Answer::Matches((*digest).to_string(), Box::new(unknown)),
                        );
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
            ["daemon", name, state] => {
                let running = match *state {
                    "running" => true,
                    "stopped" => false,
                    _ => return Err(malformed("unknown daemon state")),
                };
                fetched.daemons.insert(frame.text(name)?, running);
            }
            ["lock", "free"] => fetched.lock = LockState::Free,
            ["lock", "held", pid] => {
                fetched.lock = LockState::Held {
                    pid: pid.parse().ok(),
                }
            }
            ["record", content] => {
                fetched.admin_record = Some(Record::parse(&frame.text(content)?));
            }
            ["servers", state] => {
                fetched.servers = Some(parse_servers_state(&frame.text(state)?));
            }
            ["servers-error", message] => {
                fetched.servers = Some(Err(ReportError::Host(frame.text(message)?)));
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
    Ok((answers, fetched))
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
