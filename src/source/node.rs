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
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
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
        .load(&mut builder, false)
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
                let typed = (style == ScalarStyle::Plain && tag.is_none())
                    .then(|| plain_scalar(&text))
                    .flatten();
                let value = typed.unwrap_or_else(|| Value::Str(shared(&mut self.strings, &text)));
                self.complete(Node::new(value, loc), anchor);
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
                    Some(Frame::Map(entries, _, loc, anchor)) => (
                        Node::new(Value::Map(entries.into_boxed_slice()), loc),
                        anchor,
                    ),
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
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd => {}
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

/// YAML 1.2 core schema resolution of an unquoted scalar; `None` for a string.
fn plain_scalar(text: &str) -> Option<Value> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "true" | "True" | "TRUE" => return Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Some(Value::Bool(false)),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.') {
        if let Ok(i) = text.parse::<i64>() {
            return Some(Value::Int(i));
        }
        if let Some(hex) = text.strip_prefix("0x")
            && let Ok(i) = i64::from_str_radix(hex, 16)
        {
            return Some(Value::Int(i));
        }
        if let Some(oct) = text.strip_prefix("0o")
            && let Ok(i) = i64::from_str_radix(oct, 8)
        {
            return Some(Value::Int(i));
        }
        if text.bytes().any(|b| b.is_ascii_digit())
            && let Ok(x) = text.parse::<f64>()
        {
            return Some(Value::Float(x));
        }
    }
    None
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
        assert_eq!(node.get("f").unwrap().value, Value::Str("yes".into()));
        let dup = parse_str("a: 1\nb: 2\na: 3\n", &file).unwrap_err();
        assert_eq!((dup.line, dup.key.as_str()), (3, "a"));
    }
}
