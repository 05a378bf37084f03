//! Reading YAML text into a tree of `Node`s: plain block YAML (what big vars files are) by
//! `plain_yaml.rs`, everything else by saphyr-parser, both feeding the same builder
//! (`builder.rs`), which types scalars as YAML 1.1 and Ansible do (`scalar.rs`).

use std::{path::Path, sync::Arc};

use saphyr_parser::{Parser, SpannedEventReceiver};

use super::{builder::Builder, diagnostic::Diagnostic, limits, loc::Loc, node::Node, plain_yaml};

/// Reads a YAML file into a positioned tree. An empty file is an empty mapping; a file past
/// [`limits::MAX_FILE_BYTES`] is refused unread.
pub fn load_file(path: &Path) -> Result<Node, Diagnostic> {
    let display: Arc<str> = Arc::from(path.display().to_string());
    let text = limits::read_text(path)?;
    parse_str(&text, &display)
}

/// Parses YAML text; `file` is the name errors will show.
///
/// The tree is built straight from the parser's events: no intermediate document, and every
/// node keeps the line it starts on. Plain block YAML (what big vars files are) is read by
/// [`plain_yaml`], everything else by saphyr-parser. Either way the tree is bounded: at most
/// [`MAX_DEPTH`] levels, [`MAX_NODES`] values, and [`MAX_ALIAS_NODES`] of them copied by
/// aliases, each counted before it is built.
pub fn parse_str(text: &str, file: &Arc<str>) -> Result<Node, Diagnostic> {
    parse_plain(text, file).unwrap_or_else(|| parse_full(text, file))
}

/// The tree of `text` if [`plain_yaml`] can read it.
pub(crate) fn parse_plain(text: &str, file: &Arc<str>) -> Option<Result<Node, Diagnostic>> {
    let mut builder = Builder::new(file);
    plain_yaml::parse(text, &mut builder)?;
    Some(builder.finish())
}

/// The tree of `text` as saphyr-parser reads it: its first document, as Ansible reads a vars
/// file. The events are pulled one at a time (saphyr's own `load` recurses once per level of
/// nesting) and reading stops at the first problem.
pub(crate) fn parse_full(text: &str, file: &Arc<str>) -> Result<Node, Diagnostic> {
    let mut builder = Builder::new(file);
    feed(text, file, &mut builder)?;
    builder.finish()
}

/// Every document of `text` (`a: 1\n---\nb: 2` holds two), each typed and bounded as
/// [`parse_str`] reads one; an empty document is a null, a text of only comments none.
pub fn parse_documents(text: &str, file: &Arc<str>) -> Result<Vec<Node>, Diagnostic> {
    let mut builder = Builder::every_document(file);
    feed(text, file, &mut builder)?;
    builder.finish_documents()
}

/// saphyr-parser's events for `text`, one at a time, into `builder`, until the end or the
/// first problem.
fn feed(text: &str, file: &Arc<str>, builder: &mut Builder) -> Result<(), Diagnostic> {
    let mut parser = Parser::new_from_str(text);
    while builder.error.is_none() {
        match parser.next_event() {
            None => break,
            Some(Ok((event, span))) => builder.on_event(event, span),
            Some(Err(e)) => {
                return Err(Diagnostic::new(
                    &Loc::new(file, e.marker().line()),
                    builder.path(),
                    format!("invalid YAML: {}", e.info()),
                )
                .hint("check indentation and quoting on this line and the one above"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Value;
    use crate::source::limits::MAX_DEPTH;

    #[test]
    fn keeps_lines_of_keys_and_values() {
        let file: Arc<str> = Arc::from("vars.yml");
        let node = parse_str("a: 1\nb:\n  - x: yes\n", &file).unwrap();
        let Value::Map(entries) = &node.value else {
            panic!("not a map")
        };
        assert_eq!(entries[1].1.line, 2);
        let b = node.get("b").unwrap();
        let Value::Seq(items) = &b.value else {
            panic!("not a seq")
        };
        assert_eq!(items[0].get("x").unwrap().loc.line, 3);
    }

    #[test]
    fn invalid_yaml_names_the_line() {
        let file: Arc<str> = Arc::from("bad.yml");
        let err = parse_str("a: 1\nb: [1, 2\nc: 3\n", &file).unwrap_err();
        assert_eq!(err.file, "bad.yml");
        assert!(err.line >= 2, "{err}");
    }

    #[test]
    fn scalars_anchors_and_duplicates() {
        let file: Arc<str> = Arc::from("v.yml");
        let node = parse_str("a: &x {p: 1}\nb: *x\nc: '5'\nd: 2.5\ne: ~\nf: yes\n", &file).unwrap();
        assert_eq!(
            node.get("b").unwrap().get("p").unwrap().value,
            Value::Int(1)
        );
        assert_eq!(node.get("c").unwrap().value, Value::Str("5".into()));
        assert_eq!(node.get("d").unwrap().value, Value::Float(2.5));
        assert_eq!(node.get("e").unwrap().value, Value::Null);
        assert_eq!(node.get("f").unwrap().value, Value::Bool(true));
        let dup = parse_str("a: 1\nb: 2\na: 3\n", &file).unwrap_err();
        assert_eq!((dup.line, dup.key.as_str()), (3, "a"));
        // A problem with a key is reported at the mapping's path and the key itself, never
        // under the key read before it.
        let dup = parse_str("l:\n  - n: 1\n    p: 2\n    q: 3\n    p: 4\n", &file).unwrap_err();
        assert_eq!((dup.line, dup.key.as_str()), (5, "l[0].p"));
        let complex = parse_str("l:\n  - n: 1\n    ? [a, b]\n    : 2\n", &file).unwrap_err();
        assert_eq!((complex.line, complex.key.as_str()), (3, "l[0]"));
        let complex = parse_str("? {a: 1}\n: 2\n", &file).unwrap_err();
        assert_eq!((complex.line, complex.key.as_str()), (1, ""));
    }

    /// Scalars as PyYAML (Ansible's YAML 1.1 reader) types them.
    #[test]
    fn scalars_read_as_ansible_reads_them() {
        let file: Arc<str> = Arc::from("v.yml");
        let cases: &[(&str, Value)] = &[
            ("051", Value::Int(41)),
            ("09", Value::Str("09".into())),
            ("0x1F", Value::Int(31)),
            ("0b101", Value::Int(5)),
            ("1_000", Value::Int(1000)),
            ("-1:30", Value::Int(-90)),
            ("0o17", Value::Str("0o17".into())),
            ("1e3", Value::Str("1e3".into())),
            ("1.5e+3", Value::Float(1500.0)),
            ("1.", Value::Float(1.0)),
            (".5", Value::Float(0.5)),
            ("1:30.5", Value::Float(90.5)),
            ("off", Value::Bool(false)),
            ("On", Value::Bool(true)),
            ("y", Value::Str("y".into())),
            ("10.0.0.1", Value::Str("10.0.0.1".into())),
            ("!!binary aGVsbG8=", Value::Str("hello".into())),
            ("!!str 5", Value::Str("5".into())),
            ("!!int '7'", Value::Int(7)),
            ("'yes'", Value::Str("yes".into())),
        ];
        for (text, want) in cases {
            let node = parse_str(&format!("k: {text}\n"), &file).unwrap();
            assert_eq!(&node.get("k").unwrap().value, want, "{text}");
        }
        let inf = parse_str("k: -.inf\n", &file).unwrap();
        assert_eq!(inf.get("k").unwrap().value, Value::Float(f64::NEG_INFINITY));
    }

    #[test]
    fn merge_keys_vault_tags_and_documents() {
        let file: Arc<str> = Arc::from("v.yml");
        let node = parse_str(
            "base: &b {check: true, rise: 2}\nother: &o {fall: 3, rise: 9}\ns:\n  <<: [*b, *o]\n  rise: 5\n",
            &file,
        )
        .unwrap();
        let s = node.get("s").unwrap();
        assert_eq!(s.get("check").unwrap().value, Value::Bool(true));
        assert_eq!(s.get("rise").unwrap().value, Value::Int(5));
        assert_eq!(s.get("fall").unwrap().value, Value::Int(3));
        assert!(s.get("<<").is_none());
        let bad = parse_str("s:\n  <<: 5\n", &file).unwrap_err();
        assert!(bad.message.contains("merge key"), "{bad}");
        let vault = parse_str("p: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162\n", &file).unwrap();
        assert_eq!(
            vault.get("p").unwrap().value,
            Value::Vault("$ANSIBLE_VAULT;1.1;AES256\n6162".into())
        );
        // Ansible: "the '!vault' tag requires a string value"
        for text in [
            "a: 1\np: !vault [1]\n",
            "a: 1\np: !vault {a: 1}\n",
            "a: 1\np: !vault-encrypted\n  - x\n",
        ] {
            let refused = parse_str(text, &file).unwrap_err();
            assert_eq!(
                (refused.line, refused.key.as_str()),
                (2, "p"),
                "{text}: {refused}"
            );
            assert!(
                refused.message.contains("requires a string value"),
                "{refused}"
            );
        }
        let two = parse_str("a: 1\n---\nb: 2\n", &file).unwrap_err();
        assert_eq!(two.line, 2, "{two}");
        assert!(parse_str("---\na: 1\n", &file).is_ok());
    }

    /// Parses on a thread with a small stack: reading must not recurse once per level of the
    /// input's nesting.
    fn parse_on_small_stack(text: String) -> Result<Node, Diagnostic> {
        std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || parse_str(&text, &Arc::from("deep.yml")))
            .unwrap()
            .join()
            .unwrap()
    }

    #[test]
    fn deep_nesting_is_a_located_error_not_a_stack_overflow() {
        let cases = [
            ("block list", format!("a:\n{}x\n", "- ".repeat(20_000))),
            (
                "flow list",
                format!("a: {}{}\n", "[".repeat(20_000), "]".repeat(20_000)),
            ),
            (
                "indented mappings",
                (0..2_000)
                    .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
                    .collect(),
            ),
        ];
        for (what, text) in cases {
            let err = parse_on_small_stack(text).unwrap_err();
            assert!(err.line >= 1, "{what}: {err}");
            assert!(err.hint.is_some(), "{what}: {err}");
            assert!(
                err.key.starts_with('a') || err.key.starts_with('k'),
                "{what}: {err}"
            );
        }
        let ok = format!("a:\n{}x\n", "- ".repeat(MAX_DEPTH - 1));
        assert!(parse_on_small_stack(ok).is_ok());
    }

    #[test]
    fn aliases_are_measured_before_they_are_copied() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let row = vec![format!("*a{}", i - 1); 9].join(", ");
            bomb.push_str(&format!("a{i}: &a{i} [{row}]\n"));
        }
        let started = std::time::Instant::now();
        let err = parse_str(&bomb, &Arc::from("bomb.yml")).unwrap_err();
        assert!(err.message.contains("aliases"), "{err}");
        assert_eq!((err.line, err.key.as_str()), (7, "a6[0]"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        let deep_anchor = format!(
            "a: &d {}x{}\nb: [[[[*d]]]]\n",
            "[".repeat(62),
            "]".repeat(62)
        );
        let err = parse_str(&deep_anchor, &Arc::from("v.yml")).unwrap_err();
        assert!(err.message.contains("levels deep"), "{err}");
        let shared = "w: &w [{name: a, port: 1}]\nb: [{servers: *w}, {servers: *w}]\n";
        assert!(parse_str(shared, &Arc::from("v.yml")).is_ok());
        // Repeated keys are found through an index: comparing each key with every earlier one
        // made this mapping (and merging it) take minutes.
        let keys: String = (0..100_000).map(|i| format!("k{i}: 1, ")).collect();
        let wide = format!("a: &a {{{keys}}}\nb: {{<<: *a, k7: 2}}\n");
        let node = parse_str(&wide, &Arc::from("v.yml")).unwrap();
        assert_eq!(
            node.get("b").unwrap().get("k7").unwrap().value,
            Value::Int(2)
        );
        let repeated = format!("a: {{{keys}k99999: 2}}\n");
        let err = parse_str(&repeated, &Arc::from("v.yml")).unwrap_err();
        assert_eq!(err.key, "a.k99999", "{err}");
    }
}
