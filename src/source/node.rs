//! YAML values that remember where they came from, so every later error can point at a line.

use std::{
    collections::{HashMap, HashSet},
    hash::{BuildHasher, Hasher},
    path::Path,
    sync::Arc,
};

use saphyr_parser::{Event, Parser, ScalarStyle, Span, SpannedEventReceiver};

use super::{
    diagnostic::Diagnostic,
    loc::{FileName, Loc, line_number},
    plain_yaml,
};

/// A mapping entry: the key, where the key was written, and the value.
pub type Entry = (Arc<str>, Loc, Node);

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Strings and keys are shared: equal scalars of one file are stored once.
    Str(Arc<str>),
    Seq(Box<[Node]>),
    /// Keys keep their own location: "unknown key" errors point at the key's line.
    Map(Box<[Entry]>),
    /// An inline Ansible Vault value (`!vault |`): the envelope, decrypted only when read.
    Vault(Arc<str>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub loc: Loc,
}

impl Node {
    pub fn new(value: Value, loc: Loc) -> Self {
        Node { value, loc }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _, _)| **k == *key)
                .map(|(_, _, v)| v),
            _ => None,
        }
    }

    /// A scalar as text, the way Ansible would interpolate it.
    pub fn as_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(x) => Some(x.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null | Value::Seq(_) | Value::Map(_) | Value::Vault(_) => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
            Value::Vault(_) => "a vault-encrypted value",
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(x) => serde_json::Number::from_f64(*x).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.to_string()),
            // Never the ciphertext: a value is decrypted before anything shows it.
            Value::Vault(_) => J::Null,
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, _, v)| (k.to_string(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// Reads a YAML file into a positioned tree. An empty file is an empty mapping.
pub fn load_file(path: &Path) -> Result<Node, Diagnostic> {
    let display: Arc<str> = Arc::from(path.display().to_string());
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostic::new(&Loc::new(&display, 0), "", format!("cannot read file: {e}"))
    })?;
    parse_str(&text, &display)
}

/// Parses YAML text; `file` is the name errors will show.
///
/// The tree is built straight from the parser's events: no intermediate document, and every
/// node keeps the line it starts on. Plain block YAML (what big vars files are) is read by
/// [`plain_yaml`], everything else by saphyr-parser.
pub fn parse_str(text: &str, file: &Arc<str>) -> Result<Node, Diagnostic> {
    parse_plain(text, file).unwrap_or_else(|| parse_full(text, file))
}

/// The tree of `text` if [`plain_yaml`] can read it.
pub(crate) fn parse_plain(text: &str, file: &Arc<str>) -> Option<Result<Node, Diagnostic>> {
    let mut builder = Builder::new(file);
    plain_yaml::parse(text, &mut builder)?;
    Some(builder.finish())
}

/// The tree of `text` as saphyr-parser reads it.
pub(crate) fn parse_full(text: &str, file: &Arc<str>) -> Result<Node, Diagnostic> {
    let mut builder = Builder::new(file);
    Parser::new_from_str(text)
        .load(&mut builder, true)
        .map_err(|e| {
            Diagnostic::new(
                &Loc::new(file, e.marker().line()),
                "",
                format!("invalid YAML: {}", e.info()),
            )
            .hint("check indentation and quoting on this line and the one above")
        })?;
    builder.finish()
}

enum Frame {
    Seq(Vec<Node>, Loc, usize),
    /// Entries so far, and a key waiting for its value.
    Map(Vec<Entry>, Option<(Arc<str>, Loc)>, Loc, usize),
}

struct Builder<'f> {
    file: &'f Arc<str>,
    file_name: FileName,
    /// Every string scalar and key read so far, so that repeated ones are stored once.
    strings: HashSet<Arc<str>, ShortStrings>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    error: Option<Diagnostic>,
    /// Documents started so far: Ansible refuses a file with more than one.
    documents: usize,
}

impl<'f> Builder<'f> {
    fn new(file: &'f Arc<str>) -> Self {
        Builder {
            file,
            file_name: FileName::intern(file),
            strings: HashSet::default(),
            stack: Vec::new(),
            anchors: HashMap::new(),
            root: None,
            error: None,
            documents: 0,
        }
    }

    /// Records the first problem; the rest of the file is still read, and dropped.
    fn fail(&mut self, d: Diagnostic) {
        if self.error.is_none() {
            self.error = Some(d);
        }
    }

    fn finish(self) -> Result<Node, Diagnostic> {
        if let Some(d) = self.error {
            return Err(d);
        }
        Ok(self
            .root
            .unwrap_or_else(|| Node::new(Value::Map(Box::new([])), Loc::new(self.file, 1))))
    }

    fn complete(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                if self.root.is_none() {
                    self.root = Some(node);
                }
            }
            Some(Frame::Seq(items, _, _)) => items.push(node),
            Some(Frame::Map(entries, pending, _, _)) => match pending.take() {
                Some((key, key_loc)) => {
                    if entries.iter().any(|(k, _, _)| *k == key) && self.error.is_none() {
                        self.error = Some(
                            Diagnostic::new(
                                &key_loc,
                                &*key,
                                format!("key `{key}` appears twice in this mapping"),
                            )
                            .hint("remove one of them; YAML keeps only one"),
                        );
                    }
                    entries.push((key, key_loc, node));
                }
                None => match node.value {
                    // Already shared when it was read.
                    Value::Str(ref key) => *pending = Some((Arc::clone(key), node.loc)),
                    _ => match node.as_text() {
                        Some(key) => *pending = Some((shared(&mut self.strings, &key), node.loc)),
                        None => {
                            if self.error.is_none() {
                                self.error = Some(Diagnostic::new(
                                    &node.loc,
                                    "",
                                    "mapping keys must be plain scalars",
                                ));
                            }
                            *pending = Some((Arc::from(""), node.loc));
                        }
                    },
                },
            },
        }
    }
}

impl<'input> SpannedEventReceiver<'input> for Builder<'_> {
    fn on_event(&mut self, ev: Event<'input>, span: Span) {
        let loc = Loc {
            file: self.file_name,
            line: line_number(span.start.line()),
        };
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let typed = match &tag {
                    None if style == ScalarStyle::Plain => plain_scalar(&text),
                    None => None,
                    Some(tag) => match tagged_scalar(tag, &text) {
                        Ok(v) => v,
                        Err(message) => {
                            self.fail(Diagnostic::new(&loc, "", message));
                            None
                        }
                    },
                };
                let value = typed.unwrap_or_else(|| Value::Str(shared(&mut self.strings, &text)));
                self.complete(Node::new(value, loc), anchor);
            }
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    self.fail(
                        Diagnostic::new(&loc, "", "a second YAML document starts here")
                            .hint("Ansible reads one document per file: remove the `---` line, or move what follows into its own file"),
                    );
                }
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(Vec::new(), loc, anchor)),
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map(Vec::new(), None, loc, anchor))
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq(items, loc, anchor)) => {
                        (Node::new(Value::Seq(items.into_boxed_slice()), loc), anchor)
                    }
                    Some(Frame::Map(entries, _, loc, anchor)) => {
                        let entries = match merge_keys(entries) {
                            Ok(entries) => entries,
                            Err(d) => {
                                self.fail(d);
                                Vec::new()
                            }
                        };
                        (
                            Node::new(Value::Map(entries.into_boxed_slice()), loc),
                            anchor,
                        )
                    }
                    None => return,
                };
                self.complete(node, anchor);
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(node) => {
                    let node = node.clone();
                    self.complete(node, 0);
                }
                None => {
                    if self.error.is_none() {
                        self.error = Some(Diagnostic::new(&loc, "", "alias to an unknown anchor"));
                    }
                }
            },
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

/// `text`, stored once however often it is read.
fn shared(strings: &mut HashSet<Arc<str>, ShortStrings>, text: &str) -> Arc<str> {
    if let Some(s) = strings.get(text) {
        return Arc::clone(s);
    }
    let s: Arc<str> = Arc::from(text);
    strings.insert(Arc::clone(&s));
    s
}

/// A hash for the short strings of one vars file, eight bytes at a time. SipHash's defence
/// against crafted collisions buys nothing against the user's own files, and hashing every
/// scalar with it was a tenth of reading a 20,000-backend file.
#[derive(Default, Clone, Copy)]
struct ShortStrings;

impl BuildHasher for ShortStrings {
    type Hasher = ShortStringHasher;

    fn build_hasher(&self) -> ShortStringHasher {
        ShortStringHasher(0)
    }
}

struct ShortStringHasher(u64);

impl ShortStringHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0xf135_7aea_2e62_a9c5);
    }
}

impl Hasher for ShortStringHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, byte: u8) {
        self.add(u64::from(byte));
    }

    /// The multiplication carries every input bit only upwards; the table picks buckets by
    /// the low bits, so bring the high ones down.
    fn finish(&self) -> u64 {
        self.0.rotate_left(26)
    }
}

/// An unquoted scalar resolved as PyYAML's YAML 1.1 resolver (Ansible's) does; `None` for a
/// string. `yes`/`no`/`on`/`off` are booleans, `051` is octal, `1_000` and `1:30` (base 60)
/// are integers, and a float needs a dot (`1e3` is a string).
fn plain_scalar(text: &str) -> Option<Value> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => {
            return Some(Value::Bool(true));
        }
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
            return Some(Value::Bool(false));
        }
        _ => {}
    }
    let first = text.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    yaml11_int(text)
        .map(Value::Int)
        .or_else(|| yaml11_float(text).map(Value::Float))
}

/// PyYAML's int: `[-+]?0b[01_]+`, `[-+]?0[0-7_]+` (octal), `[-+]?(0|[1-9][0-9_]*)`,
/// `[-+]?0x[0-9a-fA-F_]+`, `[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+` (base 60).
fn yaml11_int(text: &str) -> Option<i64> {
    let (negative, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let digits = |s: &str, radix: u32| {
        !s.is_empty()
            && s.chars().all(|c| c == '_' || c.is_digit(radix))
            && s.chars().any(|c| c != '_')
    };
    let parse = |s: &str, radix: u32| i64::from_str_radix(&s.replace('_', ""), radix).ok();
    let value = if let Some(bin) = body.strip_prefix("0b") {
        digits(bin, 2).then(|| parse(bin, 2))??
    } else if let Some(hex) = body.strip_prefix("0x") {
        digits(hex, 16).then(|| parse(hex, 16))??
    } else if body == "0" {
        0
    } else if let Some(oct) = body.strip_prefix('0') {
        digits(oct, 8).then(|| parse(oct, 8))??
    } else if body.contains(':') {
        let mut parts = body.split(':');
        let head = parts.next()?;
        if !digits(head, 10) || head.starts_with('0') {
            return None;
        }
        let mut n = parse(head, 10)?;
        for part in parts {
            if part.is_empty() || part.len() > 2 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let sixty: i64 = part.parse().ok()?;
            if sixty > 59 {
                return None;
            }
            n = n.checked_mul(60)?.checked_add(sixty)?;
        }
        n
    } else if body.starts_with(|c: char| c.is_ascii_digit()) && digits(body, 10) {
        parse(body, 10)?
    } else {
        return None;
    };
    Some(if negative { -value } else { value })
}

/// PyYAML's float: digits with a dot (and an exponent with a sign), base 60 with a dot,
/// `.inf` and `.nan`.
fn yaml11_float(text: &str) -> Option<f64> {
    let (negative, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let sign = if negative { -1.0 } else { 1.0 };
    match body {
        ".inf" | ".Inf" | ".INF" => return Some(sign * f64::INFINITY),
        ".nan" | ".NaN" | ".NAN" if body.len() == text.len() => return Some(f64::NAN),
        _ => {}
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    if let Some(exp) = exponent {
        let digits = exp.strip_prefix(['-', '+'])?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    let (whole, fraction) = mantissa.split_once('.')?;
    if !fraction.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return None;
    }
    let whole_value = if whole.contains(':') {
        let mut parts = whole.split(':');
        let head = parts.next()?;
        if head.is_empty() || !head.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
            return None;
        }
        let mut n: f64 = head.replace('_', "").parse().ok()?;
        for part in parts {
            if part.is_empty() || part.len() > 2 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            n = n * 60.0 + part.parse::<f64>().ok()?;
        }
        if exponent.is_some() {
            return None;
        }
        let frac: f64 = format!("0.{}", fraction.replace('_', "")).parse().ok()?;
        return Some(sign * (n + frac));
    } else {
        let digits = whole.as_bytes().first().is_some_and(u8::is_ascii_digit)
            && whole.bytes().all(|b| b.is_ascii_digit() || b == b'_');
        if !whole.is_empty() && !digits {
            return None;
        }
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        whole
    };
    let plain = format!(
        "{}.{}{}",
        if whole_value.is_empty() {
            "0"
        } else {
            whole_value
        },
        fraction,
        exponent.map(|e| format!("e{e}")).unwrap_or_default()
    )
    .replace('_', "");
    plain.parse::<f64>().ok().map(|x| sign * x)
}

/// A scalar with an explicit tag: YAML's own (`!!str`, `!!int`, `!!binary`, ...) and
/// Ansible's `!vault` and `!unsafe`. `Ok(None)` keeps it as a string.
fn tagged_scalar(tag: &saphyr_parser::Tag, text: &str) -> Result<Option<Value>, String> {
    if tag.is_yaml_core_schema() {
        return match tag.suffix.as_str() {
            "str" => Ok(None),
            "null" => Ok(Some(Value::Null)),
            "bool" | "int" | "float" => plain_scalar(text)
                .filter(|v| {
                    matches!(
                        (tag.suffix.as_str(), v),
                        ("bool", Value::Bool(_))
                            | ("int", Value::Int(_))
                            | ("float", Value::Float(_))
                    ) || (tag.suffix == "float" && matches!(v, Value::Int(_)))
                })
                .map(|v| match v {
                    Value::Int(i) if tag.suffix == "float" => Value::Float(i as f64),
                    v => v,
                })
                .map(Some)
                .ok_or_else(|| format!("`{text}` is not a valid !!{}", tag.suffix)),
            "binary" => {
                let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
                let bytes = crate::source::base64::decode(&compact)
                    .ok_or_else(|| "this !!binary value is not valid base64".to_string())?;
                String::from_utf8(bytes)
                    .map(|s| Some(Value::Str(Arc::from(s))))
                    .map_err(|_| {
                        "this !!binary value is not UTF-8 text, which lbctl can use".into()
                    })
            }
            _ => Ok(None),
        };
    }
    match (tag.handle.as_str(), tag.suffix.as_str()) {
        ("!", "vault" | "vault-encrypted") => Ok(Some(Value::Vault(Arc::from(text.trim())))),
        _ => Ok(None),
    }
}

/// Applies YAML's merge key: `<<: *base` (or a list of them) adds the entries the mapping
/// does not set itself, as PyYAML does (merged entries first, earlier sources winning).
fn merge_keys(entries: Vec<Entry>) -> Result<Vec<Entry>, Diagnostic> {
    if !entries.iter().any(|(k, _, _)| &**k == "<<") {
        return Ok(entries);
    }
    let mut merged: Vec<Entry> = Vec::new();
    let mut own: Vec<Entry> = Vec::new();
    for (key, loc, value) in entries {
        if &*key != "<<" {
            own.push((key, loc, value));
            continue;
        }
        let sources: Vec<Node> = match value.value {
            Value::Map(_) => vec![value],
            Value::Seq(items) => items.into_vec(),
            _ => Vec::new(),
        };
        if sources.is_empty() || sources.iter().any(|s| !matches!(s.value, Value::Map(_))) {
            return Err(Diagnostic::new(
                &loc,
                "<<",
                "the merge key `<<` needs a mapping or a list of mappings",
            )
            .hint("write `<<: *anchor` or `<<: [*one, *two]` with anchors on mappings"));
        }
        for source in sources {
            let Value::Map(items) = source.value else {
                continue;
            };
            for item in items.into_vec() {
                if !merged.iter().any(|(k, _, _)| *k == item.0) {
                    merged.push(item);
                }
            }
        }
    }
    merged.retain(|(k, _, _)| !own.iter().any(|(o, _, _)| o == k));
    merged.extend(own);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let two = parse_str("a: 1\n---\nb: 2\n", &file).unwrap_err();
        assert_eq!(two.line, 2, "{two}");
        assert!(parse_str("---\na: 1\n", &file).is_ok());
    }
}
