//! The tree built from saphyr-parser's events, one at a time: every node with the line it
//! starts on, anchors and aliases, merge keys, duplicate keys refused, and the bounds on
//! depth, size and alias expansion checked as it goes.

use std::{
    collections::{HashMap, HashSet},
    hash::{BuildHasher, Hasher},
    sync::Arc,
};

use saphyr_parser::{Event, ScalarStyle, Span, SpannedEventReceiver};

use super::{
    diagnostic::Diagnostic,
    limits::{MAX_ALIAS_NODES, MAX_DEPTH, MAX_NODES},
    loc::{FileName, Loc, line_number},
};

use super::node::{Entry, Node, Value};
use super::scalar::{plain_scalar, tagged_scalar};

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

pub(super) struct Builder<'f> {
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
    pub(super) error: Option<Diagnostic>,
    /// Documents started so far: Ansible refuses a file with more than one.
    documents: usize,
    /// Every document's value so far, when all are read (`from_yaml_all`); `None` when a
    /// second document is an error.
    every_document: Option<Vec<Node>>,
}

impl<'f> Builder<'f> {
    pub(super) fn new(file: &'f Arc<str>) -> Self {
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
            every_document: None,
        }
    }

    /// A builder that reads every document of a stream, each with anchors of its own.
    pub(super) fn every_document(file: &'f Arc<str>) -> Self {
        Builder {
            every_document: Some(Vec::new()),
            ..Builder::new(file)
        }
    }

    /// Each document's value, in order (none for a stream without documents).
    pub(super) fn finish_documents(self) -> Result<Vec<Node>, Diagnostic> {
        match self.error {
            Some(d) => Err(d),
            None => Ok(self.every_document.unwrap_or_default()),
        }
    }

    pub(super) fn finish(self) -> Result<Node, Diagnostic> {
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
    pub(super) fn path(&self) -> String {
        self.path_to(self.stack.len())
    }

    /// The path of the mapping being read, without the key it last read: for a problem with
    /// a key of its own (one written twice, one that is a list).
    fn mapping_path(&self) -> String {
        self.path_to(self.stack.len().saturating_sub(1))
    }

    /// The path through the first `frames` lists and mappings being read.
    fn path_to(&self, frames: usize) -> String {
        const MAX: usize = 200;
        let mut path = String::new();
        for frame in self.stack.iter().take(frames) {
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
                        let mut path = self.mapping_path();
                        if !path.is_empty() {
                            path.push('.');
                        }
                        path.extend(key.chars().take(200));
                        let d = Diagnostic::new(&key_loc, path, message)
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
                                self.mapping_path(),
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

    /// `!vault` on a list or mapping: Ansible refuses the file (the tag requires a string
    /// value); lbctl read it as an untagged list or mapping, and used it as plain data.
    fn refuse_vault_tag(&mut self, tag: Option<&saphyr_parser::Tag>, what: &str, loc: &Loc) {
        let Some(tag) = tag.filter(|t| t.handle == "!") else {
            return;
        };
        if matches!(tag.suffix.as_str(), "vault" | "vault-encrypted") {
            self.fail(
                Diagnostic::new(
                    loc,
                    self.path(),
                    format!("the !{} tag requires a string value, not a {what}", tag.suffix),
                )
                .hint("an inline vault is the text `ansible-vault encrypt_string` prints, after `!vault |`"),
            );
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
            Event::DocumentStart(_) if self.every_document.is_some() => self.anchors.clear(),
            Event::DocumentEnd => {
                if let Some(documents) = &mut self.every_document {
                    let value = self.root.take();
                    documents.push(value.unwrap_or_else(|| Node::new(Value::Null, loc)));
                }
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
            Event::SequenceStart(anchor, tag) => {
                self.refuse_vault_tag(tag.as_deref(), "list", &loc);
                self.start(Items::Seq(Vec::new()), loc, anchor)
            }
            Event::MappingStart(anchor, tag) => {
                self.refuse_vault_tag(tag.as_deref(), "mapping", &loc);
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
            Event::Nothing | Event::StreamStart | Event::StreamEnd => {}
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
