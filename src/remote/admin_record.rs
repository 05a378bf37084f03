//! lbctl's record, kept on each load balancer, of the admin state it set there with `drain`,
//! `maint`, `ready` and `weight`: what, for which worker, since when, by whom and in which
//! run. HAProxy's own state file carries the state across reloads; the record is what lets
//! lbctl say who set it, put it back after a restart that lost it, and bring a load balancer
//! that missed a change (it was unreachable) in line with the others.
//!
//! One line per server and setting, newest wins when the load balancers' records are merged;
//! a `ready` (or a weight back to the configured one) stays in the record, so that a load
//! balancer that missed it is not taken for the newer word.
//!
//! ```text
//! # lbctl admin state 1
//! ENGINE BACKEND SERVER state ready|drain|maint SINCE RUN WORKER64 WHO64 REASON64
//! ENGINE BACKEND SERVER weight N|- SINCE RUN WORKER64 WHO64 REASON64
//! ```
//!
//! `ENGINE` is `haproxy` (TCP and HTTP backends, changed through the runtime API) or `nginx`
//! (UDP backends, marked `down` in the stream configuration); `SINCE` is seconds since the
//! epoch by lbctl's clock; the last three fields are base64, or `-` when empty.

use std::{cmp::Ordering, collections::BTreeMap, fmt::Write as _};

use serde::Serialize;

use crate::source::base64;

/// The shell function that writes the record on a host (`install_record`), shared by the
/// admin script and apply.
pub(crate) const SCRIPT: &str = include_str!("admin_record.sh");

/// The first line of a record.
pub const HEADER: &str = "# lbctl admin state 1";

/// What carries a server's traffic, and so how its admin state is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// HAProxy: TCP and HTTP backends, through the runtime API, without a reload.
    Haproxy,
    /// nginx's stream module: UDP backends, marked `down` in its configuration and reloaded.
    Nginx,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Haproxy => "haproxy",
            Engine::Nginx => "nginx",
        }
    }

    fn parse(word: &str) -> Option<Engine> {
        match word {
            "haproxy" => Some(Engine::Haproxy),
            "nginx" => Some(Engine::Nginx),
            _ => None,
        }
    }
}

/// HAProxy's own words for a server's admin state (`set server <b>/<s> state ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminState {
    /// Takes traffic as configured.
    Ready,
    /// Takes no new connections; the ones it has go on.
    Drain,
    /// Takes nothing, and is not health-checked.
    Maint,
}

impl AdminState {
    pub fn name(self) -> &'static str {
        match self {
            AdminState::Ready => "ready",
            AdminState::Drain => "drain",
            AdminState::Maint => "maint",
        }
    }

    fn parse(word: &str) -> Option<AdminState> {
        match word {
            "ready" => Some(AdminState::Ready),
            "drain" => Some(AdminState::Drain),
            "maint" => Some(AdminState::Maint),
            _ => None,
        }
    }
}

/// What an entry sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Setting {
    State(AdminState),
    /// `None`: back to the weight in the configuration.
    Weight(Option<u32>),
}

impl Setting {
    pub fn attribute(self) -> Attribute {
        match self {
            Setting::State(_) => Attribute::State,
            Setting::Weight(_) => Attribute::Weight,
        }
    }

    /// Anything but the configuration's own: a drain, a maintenance, a weight of its own.
    pub fn active(self) -> bool {
        !matches!(
            self,
            Setting::State(AdminState::Ready) | Setting::Weight(None)
        )
    }

    /// The runtime API command that puts `backend/server` in this state.
    pub fn command(self, backend: &str, server: &str) -> String {
        match self {
            Setting::State(state) => {
                format!("set server {backend}/{server} state {}", state.name())
            }
            Setting::Weight(Some(weight)) => {
                format!("set server {backend}/{server} weight {weight}")
            }
            // HAProxy takes a percentage of the configured weight.
            Setting::Weight(None) => format!("set server {backend}/{server} weight 100%"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Attribute {
    State,
    Weight,
}

/// One setting of one server, and who set it when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub engine: Engine,
    pub backend: String,
    pub server: String,
    pub setting: Setting,
    /// The inventory host it was set for (`--worker`).
    pub worker: String,
    /// Seconds since the epoch, by the clock of the machine lbctl ran on.
    pub since: u64,
    /// The lbctl run that set it.
    pub run: String,
    /// `user@machine` that ran lbctl.
    pub who: String,
    /// `--reason`, when given.
    pub reason: String,
}

/// An entry's identity: one per server and attribute.
pub type Key = (Engine, String, String, Attribute);

impl Entry {
    pub fn key(&self) -> Key {
        (
            self.engine,
            self.backend.clone(),
            self.server.clone(),
            self.setting.attribute(),
        )
    }

    /// Which of two entries for the same key is the newer: the later time, then the later
    /// run id (two runs in one second), then the one that asks for more (so that two load
    /// balancers never disagree on which is newer).
    fn newer_than(&self, other: &Entry) -> bool {
        let rank = |e: &Entry| {
            (
                e.since,
                e.run.clone(),
                e.setting.active(),
                format!("{:?}", e.setting),
            )
        };
        rank(self).cmp(&rank(other)) == Ordering::Greater
    }

    fn line(&self) -> String {
        let (attribute, value) = match self.setting {
            Setting::State(state) => ("state", state.name().to_string()),
            Setting::Weight(Some(weight)) => ("weight", weight.to_string()),
            Setting::Weight(None) => ("weight", "-".to_string()),
        };
        format!(
            "{} {} {} {attribute} {value} {} {} {} {} {}",
            self.engine.name(),
            self.backend,
            self.server,
            self.since,
            self.run,
            field(&self.worker),
            field(&self.who),
            field(&self.reason),
        )
    }
}

fn field(text: &str) -> String {
    if text.is_empty() {
        "-".to_string()
    } else {
        base64::encode(text.as_bytes())
    }
}

/// A record: at most one entry per key, in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Record {
    entries: BTreeMap<Key, Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} of lbctl's admin record is malformed: {reason}")]
pub struct RecordError {
    pub line: usize,
    pub reason: String,
}

/// The longest record lbctl reads: far more than any tier's servers need.
const MAX_ENTRIES: usize = 100_000;

impl Record {
    /// Reads a record as the host holds it; an absent or empty file is an empty record.
    pub fn parse(text: &str) -> Result<Record, RecordError> {
        let mut record = Record::default();
        let mut lines = text.lines().enumerate();
        match lines.next() {
            None => return Ok(record),
            Some((_, first)) if first.trim().is_empty() => {}
            Some((_, first)) if first == HEADER => {}
            Some((_, first)) => {
                return Err(RecordError {
                    line: 1,
                    reason: format!(
                        "expected `{HEADER}`, found `{}` (a newer lbctl wrote it, or not lbctl)",
                        first.chars().take(60).collect::<String>()
                    ),
                });
            }
        }
        for (index, line) in lines {
            let line_number = index + 1;
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: &str| RecordError {
                line: line_number,
                reason: reason.to_string(),
            };
            if record.entries.len() >= MAX_ENTRIES {
                return Err(bad("too many entries"));
            }
            let words: Vec<&str> = line.split(' ').collect();
            let [
                engine,
                backend,
                server,
                attribute,
                value,
                since,
                run,
                worker,
                who,
                reason,
            ] = words.as_slice()
            else {
                return Err(bad("expected 10 fields"));
            };
            let engine = Engine::parse(engine).ok_or_else(|| bad("unknown engine"))?;
            for name in [backend, server] {
                if !valid_name(name) {
                    return Err(bad("a backend or server name lbctl would never write"));
                }
            }
            let setting = match (*attribute, *value) {
                ("state", state) => Setting::State(
                    AdminState::parse(state).ok_or_else(|| bad("unknown admin state"))?,
                ),
                ("weight", "-") => Setting::Weight(None),
                ("weight", weight) => Setting::Weight(Some(
                    weight
                        .parse()
                        .ok()
                        .filter(|w| *w <= MAX_WEIGHT)
                        .ok_or_else(|| bad("weight is not 0-256"))?,
                )),
                _ => return Err(bad("unknown setting")),
            };
            if !run.chars().all(|c| c.is_ascii_alphanumeric()) || run.len() > 32 {
                return Err(bad("invalid run id"));
            }
            let text = |field: &str| -> Result<String, RecordError> {
                if field == "-" {
                    return Ok(String::new());
                }
                base64::decode(field)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .ok_or_else(|| bad("invalid base64"))
            };
            record.insert(Entry {
                engine,
                backend: backend.to_string(),
                server: server.to_string(),
                setting,
                worker: text(worker)?,
                since: since.parse().map_err(|_| bad("invalid time"))?,
                run: run.to_string(),
                who: text(who)?,
                reason: text(reason)?,
            });
        }
        Ok(record)
    }

    /// The record as the host keeps it.
    pub fn text(&self) -> String {
        let mut out = String::from(HEADER);
        out.push('\n');
        for entry in self.entries.values() {
            let _ = writeln!(out, "{}", entry.line());
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// The entries that ask for something other than the configuration's own.
    pub fn active(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values().filter(|e| e.setting.active())
    }

    pub fn get(&self, key: &Key) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// The state lbctl set for a server, if it set one.
    pub fn state_of(&self, engine: Engine, backend: &str, server: &str) -> Option<&Entry> {
        self.get(&(
            engine,
            backend.to_string(),
            server.to_string(),
            Attribute::State,
        ))
    }

    /// The weight lbctl set for a server, if it set one.
    pub fn weight_of(&self, engine: Engine, backend: &str, server: &str) -> Option<&Entry> {
        self.get(&(
            engine,
            backend.to_string(),
            server.to_string(),
            Attribute::Weight,
        ))
    }

    /// Puts `entry` in, replacing the one with its key.
    pub fn insert(&mut self, entry: Entry) {
        self.entries.insert(entry.key(), entry);
    }

    /// Keeps `entry` only if it is newer than the one with its key.
    pub fn merge_entry(&mut self, entry: &Entry) {
        match self.entries.get(&entry.key()) {
            Some(have) if !entry.newer_than(have) => {}
            _ => self.insert(entry.clone()),
        }
    }

    /// The tier's record: for each key, the newest entry any of `records` holds.
    pub fn merge<'a>(records: impl IntoIterator<Item = &'a Record>) -> Record {
        let mut merged = Record::default();
        for record in records {
            for entry in record.entries() {
                merged.merge_entry(entry);
            }
        }
        merged
    }

    /// Drops the entries `keep` refuses (servers no longer in the configuration).
    pub fn retain(&mut self, mut keep: impl FnMut(&Entry) -> bool) {
        self.entries.retain(|_, e| keep(e));
    }
}

/// The largest weight HAProxy takes.
pub const MAX_WEIGHT: u32 = 256;

/// Backend and server names as lbctl validates them: safe as one word in a runtime API
/// command and in the record.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(backend: &str, setting: Setting, since: u64, run: &str) -> Entry {
        Entry {
            engine: Engine::Haproxy,
            backend: backend.into(),
            server: "k8s-worker-2".into(),
            setting,
            worker: "k8s-worker-2".into(),
            since,
            run: run.into(),
            who: "root@ops 1".into(),
            reason: String::new(),
        }
    }

    #[test]
    fn a_record_reads_back_what_it_wrote() {
        let mut record = Record::default();
        record.insert(entry("mysql", Setting::State(AdminState::Drain), 10, "a1"));
        record.insert(entry("mysql", Setting::Weight(Some(7)), 11, "a2"));
        record.insert(entry("redis", Setting::Weight(None), 12, "a3"));
        let text = record.text();
        assert!(text.starts_with(HEADER), "{text}");
        assert!(
            text.contains("haproxy mysql k8s-worker-2 state drain 10 a1 azhzLXdvcmtlci0y "),
            "{text}"
        );
        assert!(
            text.contains("haproxy redis k8s-worker-2 weight - 12 a3"),
            "{text}"
        );
        assert_eq!(Record::parse(&text).unwrap(), record);
        assert_eq!(Record::parse("").unwrap(), Record::default());
        assert_eq!(record.active().count(), 2);
    }

    #[test]
    fn the_newest_entry_of_every_load_balancer_wins() {
        let mut lb1 = Record::default();
        lb1.insert(entry("mysql", Setting::State(AdminState::Drain), 10, "a1"));
        lb1.insert(entry("redis", Setting::State(AdminState::Maint), 10, "a1"));
        let mut lb3 = Record::default();
        // lb3 missed the drain, but saw a later ready of redis that lb1 missed
        lb3.insert(entry("redis", Setting::State(AdminState::Ready), 20, "b2"));
        let merged = Record::merge([&lb1, &lb3]);
        let state = |b: &str| merged.state_of(Engine::Haproxy, b, "k8s-worker-2").unwrap();
        assert_eq!(state("mysql").setting, Setting::State(AdminState::Drain));
        assert_eq!(state("redis").setting, Setting::State(AdminState::Ready));
        assert_eq!(Record::merge([&lb3, &lb1]), merged);
    }

    #[test]
    fn what_lbctl_would_never_write_is_refused() {
        let bad = [
            "# something else\n",
            "# lbctl admin state 1\nhaproxy mysql w state drain 1 a\n",
            "# lbctl admin state 1\nhaproxy my;sql w state drain 1 a - - -\n",
            "# lbctl admin state 1\nhaproxy mysql w state off 1 a - - -\n",
            "# lbctl admin state 1\nhaproxy mysql w weight 300 1 a - - -\n",
            "# lbctl admin state 1\nlvs mysql w state drain 1 a - - -\n",
            "# lbctl admin state 1\nhaproxy mysql w state drain 1 a/b - - -\n",
        ];
        for text in bad {
            assert!(Record::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn commands_use_haproxys_words() {
        assert_eq!(
            Setting::State(AdminState::Maint).command("redis", "w1"),
            "set server redis/w1 state maint"
        );
        assert_eq!(
            Setting::Weight(None).command("redis", "w1"),
            "set server redis/w1 weight 100%"
        );
    }

    /// `install_record` run by `sh` in `dir`: its exit status and what it printed.
    fn install(dir: &std::path::Path, record: &str, field: &str) -> (bool, String) {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{SCRIPT}\ninstall_record \"$1\" \"$2\""))
            .args(["sh", record, field])
            .current_dir(dir)
            .output()
            .expect("sh");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    #[test]
    fn the_record_is_installed_whole_and_never_through_a_link() {
        let dir = std::env::temp_dir().join(format!("lbctl-record-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut record = Record::default();
        record.insert(entry("mysql", Setting::State(AdminState::Drain), 10, "r1"));
        let field = base64::encode(record.text().as_bytes());

        // into a directory it makes
        assert_eq!(
            install(&dir, "state/admin-state", &field),
            (true, String::new())
        );
        let written = std::fs::read_to_string(dir.join("state/admin-state")).unwrap();
        assert_eq!(Record::parse(&written).unwrap(), record);

        // an empty field is not a record: the old one stays
        let (ok, why) = install(&dir, "state/admin-state", "");
        assert!(!ok && why.contains("did not arrive whole"), "{why}");
        assert_eq!(
            std::fs::read_to_string(dir.join("state/admin-state")).unwrap(),
            written
        );

        // a link planted at the record's name is replaced, its target left alone
        std::fs::write(dir.join("target"), "not lbctl's").unwrap();
        std::os::unix::fs::symlink(dir.join("target"), dir.join("linked")).unwrap();
        assert_eq!(install(&dir, "linked", &field), (true, String::new()));
        assert_eq!(
            std::fs::read_to_string(dir.join("target")).unwrap(),
            "not lbctl's"
        );
        assert!(
            !std::fs::symlink_metadata(dir.join("linked"))
                .unwrap()
                .is_symlink()
        );
        assert!(!dir.join("linked.lbctl-new").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
