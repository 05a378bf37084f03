//! Marks on nginx's stream upstream servers, as `templates/nginx-marks.sh` puts them on the
//! host: nginx has no runtime API, so a UDP server lbctl takes out of rotation is marked `down`
//! (or given a `weight=N` of its own) in the file, and nginx reloaded. The template tags every
//! upstream server line with `# lbctl:BACKEND/SERVER`; a marked line carries its marks before
//! the `;` and again after the tag, so the line as rendered can always be recovered: `plan`
//! compares that with what it renders, and lists the marks as runtime state, not as a file
//! change. The shell functions live among the templates because lbctl's UDP health watcher
//! (a rendered script) includes them too: one implementation of the marks.

use std::collections::BTreeMap;

use crate::remote::admin_record::{AdminState, Engine, Record, Setting};

/// What ends every tagged line's configuration, before the tag's key.
pub const TAG: &str = "; # lbctl:";

/// The shell functions (`record_marks`, `mark_servers`, `file_marks`).
pub(crate) const SCRIPT: &str = include_str!("../../templates/nginx-marks.sh");

/// One tagged line split: what comes before the tag (marks removed), the key, the marks.
fn split(line: &str) -> Option<(&str, &str, &str)> {
    let at = line.find(TAG)?;
    let (head, tail) = (&line[..at], &line[at + TAG.len()..]);
    let (key, marks) = match tail.find(' ') {
        Some(space) => (&tail[..space], &tail[space..]),
        None => (tail, ""),
    };
    let head = if marks.is_empty() {
        head
    } else {
        head.strip_suffix(marks).unwrap_or(head)
    };
    Some((head, key, marks.trim_start()))
}

/// The file as lbctl rendered it: every tagged line without its marks.
pub fn strip(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for piece in text.split_inclusive('\n') {
        let (line, end) = match piece.strip_suffix('\n') {
            Some(line) => (line, "\n"),
            None => (piece, ""),
        };
        match split(line) {
            Some((head, key, _)) => {
                out.push_str(head);
                out.push_str(TAG);
                out.push_str(key);
            }
            None => out.push_str(line),
        }
        out.push_str(end);
    }
    out
}

/// The file with every tagged line carrying the marks `marks` gives it (by `BACKEND/SERVER`),
/// and no others: what `mark_servers` writes on the host.
pub fn mark(text: &str, marks: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    for piece in text.split_inclusive('\n') {
        let (line, end) = match piece.strip_suffix('\n') {
            Some(line) => (line, "\n"),
            None => (piece, ""),
        };
        match split(line) {
            Some((head, key, _)) => {
                let new = marks
                    .get(key)
                    .filter(|m| !m.is_empty())
                    .map(|m| format!(" {m}"))
                    .unwrap_or_default();
                out.push_str(head);
                out.push_str(&new);
                out.push_str(TAG);
                out.push_str(key);
                out.push_str(&new);
            }
            None => out.push_str(line),
        }
        out.push_str(end);
    }
    out
}

/// The marks the file's tagged lines carry, by `BACKEND/SERVER`.
pub fn marks_in(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(split)
        .filter(|(_, _, marks)| !marks.is_empty())
        .map(|(_, key, marks)| (key.to_string(), marks.to_string()))
        .collect()
}

/// The marks lbctl's record asks for, as `record_marks` computes them on the host: a drained
/// or maintained server is `down` (nginx cannot drain), a weight of its own is `weight=N`,
/// and a weight of 0 is `down` (nginx takes at least 1).
pub fn marks_of(record: &Record) -> BTreeMap<String, String> {
    let mut down = BTreeMap::new();
    let mut weight = BTreeMap::new();
    for e in record.entries().filter(|e| e.engine == Engine::Nginx) {
        let key = format!("{}/{}", e.backend, e.server);
        match e.setting {
            Setting::State(AdminState::Drain | AdminState::Maint) | Setting::Weight(Some(0)) => {
                down.insert(key, "down".to_string());
            }
            Setting::Weight(Some(w)) => {
                weight.insert(key, format!("weight={w}"));
            }
            _ => {}
        }
    }
    for (key, mark) in weight {
        down.entry(key).or_insert(mark);
    }
    down
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::admin_record::Entry;

    const RENDERED: &str = "stream {\n    upstream udp_wireguard {\n        server 10.0.0.1:31820 max_fails=1 fail_timeout=10s; # lbctl:wireguard/w1\n        server 10.0.0.2:31820 weight=2 max_fails=1 fail_timeout=10s; # lbctl:wireguard/w2\n        server 10.0.0.3:31820 max_fails=1 fail_timeout=10s; # lbctl:wireguard/w3\n    }\n}\n";

    fn record() -> Record {
        let mut record = Record::default();
        let entry = |server: &str, setting| Entry {
            engine: Engine::Nginx,
            backend: "wireguard".into(),
            server: server.into(),
            setting,
            worker: server.into(),
            since: 1,
            run: "a".into(),
            who: String::new(),
            reason: String::new(),
        };
        record.insert(entry("w1", Setting::State(AdminState::Drain)));
        record.insert(entry("w1", Setting::Weight(Some(5))));
        record.insert(entry("w2", Setting::Weight(Some(5))));
        record.insert(entry("w3", Setting::State(AdminState::Ready)));
        record
    }

    /// Runs the shell functions as the host does.
    fn sh(script: &str, files: &[(&str, &str)]) -> String {
        let dir = std::env::temp_dir().join(format!(
            "lbctl-nginx-marks-{}-{}",
            std::process::id(),
            script.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, content) in files {
            std::fs::write(dir.join(name), content).unwrap();
        }
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{SCRIPT}\n{script}"))
            .current_dir(&dir)
            .output()
            .expect("sh");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn the_host_marks_what_the_record_asks_for_and_lbctl_reads_it_back() {
        let record = record();
        let wanted = marks_of(&record);
        assert_eq!(wanted["wireguard/w1"], "down");
        assert_eq!(wanted["wireguard/w2"], "weight=5");
        assert!(!wanted.contains_key("wireguard/w3"));

        let marks = sh(
            "record_marks record | sort",
            &[("record", record.text().as_str())],
        );
        let from_host: BTreeMap<String, String> = marks
            .lines()
            .map(|l| {
                let (k, v) = l.split_once(' ').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect();
        assert_eq!(from_host, wanted, "record_marks and marks_of agree");

        let marked = sh(
            "mark_servers marks conf",
            &[("marks", marks.as_str()), ("conf", RENDERED)],
        );
        assert!(
            marked.contains(
                "server 10.0.0.1:31820 max_fails=1 fail_timeout=10s down; # lbctl:wireguard/w1 down\n"
            ),
            "{marked}"
        );
        assert!(
            marked.contains(
                "weight=2 max_fails=1 fail_timeout=10s weight=5; # lbctl:wireguard/w2 weight=5\n"
            ),
            "{marked}"
        );
        assert_eq!(marks_in(&marked), wanted);
        assert_eq!(strip(&marked), RENDERED);
        assert_eq!(
            mark(RENDERED, &wanted),
            marked,
            "lbctl marks as the host does"
        );
        assert_eq!(mark(&marked, &BTreeMap::new()), RENDERED);

        // Marking again with other marks replaces the old ones; with none, it is as rendered.
        let remarked = sh(
            "mark_servers marks conf",
            &[("marks", "wireguard/w3 down\n"), ("conf", marked.as_str())],
        );
        assert_eq!(
            marks_in(&remarked),
            BTreeMap::from([("wireguard/w3".to_string(), "down".to_string())])
        );
        let cleared = sh(
            "mark_servers /dev/null conf",
            &[("conf", remarked.as_str())],
        );
        assert_eq!(cleared, RENDERED);
        assert_eq!(
            sh("file_marks conf", &[("conf", marked.as_str())])
                .lines()
                .count(),
            2
        );
    }

    #[test]
    fn lines_without_a_tag_are_left_alone() {
        let text = "server 10.0.0.9:53 down;\nno newline at the end";
        assert_eq!(strip(text), text);
        assert!(marks_in(text).is_empty());
    }
}
