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
    limits::{self, MAX_ALIAS_NODES, MAX_DEPTH, MAX_NODES},
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

/// A value and where it was written. Trees are at most [`MAX_DEPTH`] deep: the parser
/// refuses deeper input, so the code walking a tree (conversions, serialisation, drop) may
/// recurse.
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
    builder.finish()
}

/// A collection being read: its items so far, where it started, its anchor, and how many
/// values it holds and how deep it is (both counting itself once it is complete).
struct Frame {
    items: Items,
    loc: Loc,
    anchor: usize,
    nodes: usize,
    height: usize,
}

/// The keys of a mapping with more than a few of them, so that finding a repeated key stays
/// linear in the mapping's size.
type KeyIndex = Option<HashSet<Arc<str>, ShortStrings>>;

/// Keys compared one by one below this many; indexed from there on.
const INDEXED_KEYS: usize = 8;

enum Items {
    Seq(Vec<Node>),
    /// Entries so far, and a key waiting for its value.
    Map(Vec<Entry>, Option<(Arc<str>, Loc)>, KeyIndex),
}

/// A complete anchored value, with its size and depth, so an alias is measured before it is
/// copied.
struct Anchored {
    node: Node,
    nodes: usize,
    height: usize,
}

struct Builder<'f> {
    file: &'f Arc<str>,
    file_name: FileName,
    /// Every string scalar and key read so far, so that repeated ones are stored once.
    strings: HashSet<Arc<str>, ShortStrings>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    /// Values built so far, aliases' copies included.
    nodes: usize,
    /// Values copied by aliases so far.
    alias_nodes: usize,
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
            nodes: 0,
            alias_nodes: 0,
            root: None,
            error: None,
            documents: 0,
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

    /// Records the first problem; reading stops there.
    fn fail(&mut self, d: Diagnostic) {
        if self.error.is_none() {
            self.error = Some(d);
        }
    }

    /// Where the reader is, as a key path (`haproxy_tcp_backends[2].servers`), for errors
    /// found before the tree exists; cut short past a couple of hundred characters.
    fn path(&self) -> String {
        const MAX: usize = 200;
        let mut path = String::new();
        for frame in &self.stack {
            if path.len() > MAX {
                path.push_str("...");
                break;
            }
            match &frame.items {
                Items::Seq(items) => path.push_str(&format!("[{}]", items.len())),
                Items::Map(entries, pending, _) => {
                    let key = pending
                        .as_ref()
                        .map(|(k, _)| k)
                        .or_else(|| entries.last().map(|(k, _, _)| k));
                    if let Some(key) = key {
                        if !path.is_empty() {
                            path.push('.');
                        }
                        path.extend(key.chars().take(MAX));
                    }
                }
            }
        }
        path
    }

    /// Counts `n` more values; false (with the error recorded) past [`MAX_NODES`].
    fn count(&mut self, n: usize, loc: &Loc) -> bool {
        if self.nodes + n > MAX_NODES {
            self.fail(
                Diagnostic::new(
                    loc,
                    self.path(),
                    format!("the file holds more than {MAX_NODES} values, more than lbctl reads"),
                )
                .hint("split the file, or check that it is the file you meant: 20,000 backends take about 1.7 million"),
            );
            return false;
        }
        self.nodes += n;
        true
    }

    /// Places a complete value in its parent, or as the root.
    fn complete(&mut self, node: Node, anchor: usize, nodes: usize, height: usize) {
        if anchor > 0 {
            self.anchors.insert(
                anchor,
                Anchored {
                    node: node.clone(),
                    nodes,
                    height,
                },
            );
        }
        let Some(parent) = self.stack.last_mut() else {
            if self.root.is_none() {
                self.root = Some(node);
            }
            return;
        };
        parent.nodes += nodes;
        parent.height = parent.height.max(height + 1);
        match &mut parent.items {
            Items::Seq(items) => items.push(node),
            Items::Map(entries, pending, index) => match pending.take() {
                Some((key, key_loc)) => {
                    let repeated = match index {
                        Some(keys) => !keys.insert(Arc::clone(&key)),
                        None if entries.len() < INDEXED_KEYS => {
                            entries.iter().any(|(k, _, _)| *k == key)
                        }
                        None => {
                            let mut keys = HashSet::with_hasher(ShortStrings::default());
                            keys.extend(entries.iter().map(|(k, _, _)| Arc::clone(k)));
                            let repeated = !keys.insert(Arc::clone(&key));
                            *index = Some(keys);
                            repeated
                        }
                    };
                    if repeated {
                        let message = format!("key `{key}` appears twice in this mapping");
                        *pending = Some((key, key_loc));
                        let d = Diagnostic::new(&key_loc, self.path(), message)
                            .hint("remove one of them; YAML keeps only one");
                        self.fail(d);
                        return;
                    }
                    entries.push((key, key_loc, node));
                }
                None => match node.value {
                    // Already shared when it was read.
                    Value::Str(ref key) => *pending = Some((Arc::clone(key), node.loc)),
                    _ => match node.as_text() {
                        Some(key) => *pending = Some((shared(&mut self.strings, &key), node.loc)),
                        None => {
                            let d = Diagnostic::new(
                                &node.loc,
                                self.path(),
                                format!("mapping keys must be plain scalars, not {}", node.kind()),
                            )
                            .hint("write the key as a name, e.g. `name: value`");
                            self.fail(d);
                        }
                    },
                },
            },
        }
    }

    fn start(&mut self, items: Items, loc: Loc, anchor: usize) {
        if self.stack.len() >= MAX_DEPTH {
            self.fail(
                Diagnostic::new(
                    &loc,
                    self.path(),
                    format!("lists and mappings are nested more than {MAX_DEPTH} levels deep here"),
                )
                .hint("lbctl's variables nest a few levels; check the indentation and brackets above this line"),
            );
            return;
        }
        if self.count(1, &loc) {
            self.stack.push(Frame {
                items,
                loc,
                anchor,
                nodes: 1,
                height: 1,
            });
        }
    }

    fn alias(&mut self, id: usize, loc: Loc) {
        let Some((nodes, height)) = self.anchors.get(&id).map(|a| (a.nodes, a.height)) else {
            self.fail(
                Diagnostic::new(&loc, self.path(), "alias to an unknown anchor")
                    .hint("define the anchor (`&name`) before the alias (`*name`) that repeats it"),
            );
            return;
        };
        if self.stack.len() + height > MAX_DEPTH {
            self.fail(
                Diagnostic::new(
                    &loc,
                    self.path(),
                    format!(
                        "this alias nests lists and mappings more than {MAX_DEPTH} levels deep"
                    ),
                )
                .hint("lbctl's variables nest a few levels; check what the anchor holds"),
            );
            return;
        }
        if self.alias_nodes + nodes > MAX_ALIAS_NODES {
            self.fail(
                Diagnostic::new(
                    &loc,
                    self.path(),
                    format!(
                        "the aliases in this file would copy more than {MAX_ALIAS_NODES} values (this one copies {nodes})"
                    ),
                )
                .hint("aliases that repeat other aliases grow exponentially; write the values out, or share fewer of them"),
            );
            return;
        }
        if !self.count(nodes, &loc) {
            return;
        }
        self.alias_nodes += nodes;
        let node = self.anchors[&id].node.clone();
        self.complete(node, 0, nodes, height);
    }
}

impl<'input> SpannedEventReceiver<'input> for Builder<'_> {
    fn on_event(&mut self, ev: Event<'input>, span: Span) {
        if self.error.is_some() {
            return;
        }
        let loc = Loc {
            file: self.file_name,
            line: line_number(span.start.line()),
        };
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                if !self.count(1, &loc) {
                    return;
                }
                let typed = match &tag {
                    None if style == ScalarStyle::Plain => plain_scalar(&text),
                    None => None,
                    Some(tag) => match tagged_scalar(tag, &text) {
                        Ok(v) => v,
                        Err(e) => {
                            let d = Diagnostic::new(&loc, self.path(), e.to_string())
                                .hint("remove the tag, or give it a value of its type");
                            self.fail(d);
                            None
                        }
                    },
                };
                let value = typed.unwrap_or_else(|| Value::Str(shared(&mut self.strings, &text)));
                self.complete(Node::new(value, loc), anchor, 1, 0);
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
            Event::SequenceStart(anchor, _) => self.start(Items::Seq(Vec::new()), loc, anchor),
            Event::MappingStart(anchor, _) => {
                self.start(Items::Map(Vec::new(), None, None), loc, anchor)
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return;
                };
                let value = match frame.items {
                    Items::Seq(items) => Value::Seq(items.into_boxed_slice()),
                    Items::Map(entries, _, _) => match merge_keys(entries) {
                        Ok(entries) => Value::Map(entries.into_boxed_slice()),
                        Err(d) => {
                            self.fail(d);
                            return;
                        }
                    },
                };
                self.complete(
                    Node::new(value, frame.loc),
                    frame.anchor,
                    frame.nodes,
                    frame.height,
                );
            }
            Event::Alias(id) => self.alias(id, loc),
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

/// A hash for the short strings of one vars file, eight bytes at a time: hashing every
/// scalar with SipHash was a tenth of reading a 20,000-backend file. Its starting state is
/// random per process, so a file cannot be crafted in advance to put its strings in one
/// bucket and make reading it quadratic.
#[derive(Clone, Copy)]
struct ShortStrings(u64);

impl Default for ShortStrings {
    fn default() -> Self {
        static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        ShortStrings(*SEED.get_or_init(|| {
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
        }))
    }
}

impl BuildHasher for ShortStrings {
    type Hasher = ShortStringHasher;

    fn build_hasher(&self) -> ShortStringHasher {
        ShortStringHasher(self.0)
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

/// Why a tagged scalar does not read as its tag says.
#[derive(Debug, thiserror::Error)]
enum TagError {
    #[error("`{text}` is not a valid !!{tag}")]
    Invalid { text: String, tag: String },
    #[error("this !!binary value is not valid base64")]
    Base64,
    #[error("this !!binary value is not UTF-8 text, which lbctl can use")]
    NotUtf8,
}

/// A scalar with an explicit tag: YAML's own (`!!str`, `!!int`, `!!binary`, ...) and
/// Ansible's `!vault` and `!unsafe`. `Ok(None)` keeps it as a string.
fn tagged_scalar(tag: &saphyr_parser::Tag, text: &str) -> Result<Option<Value>, TagError> {
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
                .ok_or_else(|| TagError::Invalid {
                    text: text.to_string(),
                    tag: tag.suffix.clone(),
                }),
            "binary" => {
                let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
                let bytes = crate::source::base64::decode(&compact).ok_or(TagError::Base64)?;
                String::from_utf8(bytes)
                    .map(|s| Some(Value::Str(Arc::from(s))))
                    .map_err(|_| TagError::NotUtf8)
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
    let mut merged_keys = HashSet::with_hasher(ShortStrings::default());
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
                if merged_keys.insert(Arc::clone(&item.0)) {
                    merged.push(item);
                }
            }
        }
    }
    let mut own_keys = HashSet::with_hasher(ShortStrings::default());
    own_keys.extend(own.iter().map(|(k, _, _)| Arc::clone(k)));
    merged.retain(|(k, _, _)| !own_keys.contains(k));
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
