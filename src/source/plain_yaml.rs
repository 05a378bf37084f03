//! A fast reader for the plain block YAML that large vars files are written in: indented
//! mappings and `- ` lists of unquoted one-line scalars, with blank and comment lines. It
//! feeds the same events, with the same lines, as saphyr-parser, which took ~0.45 s of a
//! 20,000-backend render on its own; anything outside that subset (quotes, flow style,
//! anchors, tags, block or multi-line scalars, tabs, empty values, non-ASCII text...) makes it
//! give up, and the caller parses the text with saphyr-parser instead.

use std::borrow::Cow;

use saphyr_parser::{Event, Marker, ScalarStyle, Span, SpannedEventReceiver};

use crate::source::limits::MAX_DEPTH;

/// Sends `text`'s events to `receiver`, or returns `None` as soon as `text` leaves the subset
/// (the receiver has then seen part of the events and must be thrown away).
pub fn parse<'a>(text: &'a str, receiver: &mut impl SpannedEventReceiver<'a>) -> Option<()> {
    if !text.is_ascii() || text.contains(['\t', '\r']) {
        return None;
    }
    let mut reader = Reader {
        lines: text.split('\n').enumerate(),
        cur: None,
        receiver,
        depth: 0,
    };
    reader.advance();
    if reader.cur.as_ref().is_some_and(|c| c.text == "---") {
        reader.advance();
    }
    let col = reader.cur.as_ref()?.col;
    let line = reader.cur.as_ref()?.line;
    reader.emit(Event::StreamStart, line);
    reader.emit(Event::DocumentStart(false), line);
    reader.node(col)?;
    if reader.cur.is_some() {
        return None;
    }
    reader.emit(Event::DocumentEnd, line);
    reader.emit(Event::StreamEnd, line);
    Some(())
}

/// The unread part of a content line: `text` starts at column `col` of line `line` (1-based).
struct Cursor<'a> {
    line: usize,
    col: usize,
    text: &'a str,
}

struct Reader<'a, 'r, R> {
    lines: std::iter::Enumerate<std::str::Split<'a, char>>,
    cur: Option<Cursor<'a>>,
    receiver: &'r mut R,
    /// Collections open at the cursor. The reader recurses once per level, so past
    /// [`MAX_DEPTH`] it gives up, and saphyr-parser's reading reports the depth.
    depth: usize,
}

impl<'a, R: SpannedEventReceiver<'a>> Reader<'a, '_, R> {
    /// Moves to the next line with content (not blank, not only a comment).
    fn advance(&mut self) {
        self.cur = self.lines.by_ref().find_map(|(i, raw)| {
            let text = raw.trim_start_matches(' ');
            (!text.trim_end_matches(' ').is_empty() && !text.starts_with('#')).then(|| Cursor {
                line: i + 1,
                col: raw.len() - text.len(),
                text: text.trim_end_matches(' '),
            })
        });
    }

    fn emit(&mut self, event: Event<'a>, line: usize) {
        let mark = Marker::new(0, line, 0);
        self.receiver.on_event(event, Span::new(mark, mark));
    }

    fn scalar(&mut self, text: &'a str, line: usize) {
        self.emit(
            Event::Scalar(Cow::Borrowed(text), ScalarStyle::Plain, 0, None),
            line,
        );
    }

    /// The block node at the cursor, which is at column `col`.
    fn node(&mut self, col: usize) -> Option<()> {
        let text = self.cur.as_ref()?.text;
        if is_item(text) {
            self.sequence(col)
        } else {
            key_split(text)?;
            self.mapping(col)
        }
    }

    /// Enters a collection; `None` past [`MAX_DEPTH`].
    fn enter(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    fn mapping(&mut self, col: usize) -> Option<()> {
        let line = self.cur.as_ref()?.line;
        self.enter()?;
        self.emit(Event::MappingStart(0, None), line);
        while let Some(cur) = &self.cur {
            if cur.col < col {
                break;
            }
            if cur.col > col {
                return None;
            }
            let (line, text) = (cur.line, cur.text);
            let (key, rest) = key_split(text)?;
            self.scalar(key, line);
            let value = strip_comment(rest);
            self.advance();
            if !value.is_empty() {
                self.scalar(plain_value(value)?, line);
                continue;
            }
            match &self.cur {
                Some(next) if next.col > col => self.node(next.col)?,
                Some(next) if next.col == col && is_item(next.text) => self.sequence(col)?,
                // An empty value: saphyr places its null elsewhere than this reader would.
                _ => return None,
            }
        }
        self.emit(Event::MappingEnd, line);
        self.depth -= 1;
        Some(())
    }

    fn sequence(&mut self, col: usize) -> Option<()> {
        let line = self.cur.as_ref()?.line;
        self.enter()?;
        self.emit(Event::SequenceStart(0, None), line);
        while let Some(cur) = &self.cur {
            if cur.col < col || (cur.col == col && !is_item(cur.text)) {
                break;
            }
            if cur.col > col {
                return None;
            }
            let after = &cur.text[2..];
            let item = after.trim_start_matches(' ');
            let item_col = col + 2 + (after.len() - item.len());
            if item.is_empty() || item.starts_with('#') || is_item(item) {
                return None;
            }
            let line = cur.line;
            if key_split(item).is_some() {
                self.cur = Some(Cursor {
                    line,
                    col: item_col,
                    text: item,
                });
                self.mapping(item_col)?;
            } else {
                self.scalar(plain_value(strip_comment(item))?, line);
                self.advance();
            }
        }
        self.emit(Event::SequenceEnd, line);
        self.depth -= 1;
        Some(())
    }
}

/// `- item`: a list entry (a lone `-` is left to saphyr).
fn is_item(text: &str) -> bool {
    text.starts_with("- ")
}

/// `key: rest` or `key:`, with a key of letters, digits and `_-./`.
fn key_split(text: &str) -> Option<(&str, &str)> {
    let end = text.find(':')?;
    let (key, rest) = (&text[..end], &text[end + 1..]);
    let first = *key.as_bytes().first()?;
    let key_ok = key.len() <= 1000
        && (first.is_ascii_alphanumeric() || first == b'_')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./".contains(&b));
    (key_ok && (rest.is_empty() || rest.starts_with(' '))).then_some((key, rest))
}

/// The text before a ` #` comment, without surrounding spaces.
fn strip_comment(text: &str) -> &str {
    let text = text.trim_start_matches(' ');
    if text.starts_with('#') {
        return "";
    }
    match text.find(" #") {
        Some(i) => text[..i].trim_end_matches(' '),
        None => text,
    }
}

/// A one-line plain scalar, or `None` for anything YAML could read another way.
fn plain_value(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let first = *bytes.first()?;
    let starts_ok = first.is_ascii_alphanumeric()
        || b"_./~+(".contains(&first)
        || (first == b'-' && bytes.get(1).is_some_and(|b| *b != b' '));
    let chars_ok = bytes.iter().enumerate().all(|(i, &b)| match b {
        b'#' | b'"' | b'\'' | b'`' | b'[' | b']' | b'{' | b'}' => false,
        b':' => bytes.get(i + 1).is_some_and(|n| *n != b' '),
        _ => b == b' ' || b.is_ascii_graphic(),
    });
    (starts_ok && chars_ok).then_some(text)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::source::parse;

    /// Every text the reader takes must give the tree saphyr-parser gives (values and lines).
    fn same_as_saphyr(text: &str) -> bool {
        let file: Arc<str> = Arc::from("v.yml");
        let fast = parse::parse_plain(text, &file);
        let full = parse::parse_full(text, &file);
        if let Some(fast) = &fast {
            assert_eq!(
                fast.as_ref().map_err(ToString::to_string),
                full.as_ref().map_err(ToString::to_string),
                "{text}"
            );
        }
        fast.is_some()
    }

    #[test]
    fn reads_the_subset_as_saphyr_does() {
        let taken = [
            "a: 1\nb: two\n",
            "# head\n---\nlist:\n  - name: svc0\n    port: 10000\n    servers:\n      - name: w1\n        address: 10.1.0.1\n        check: true\n\n      - name: w2   # second\n        address: fe80::1\n  - name: svc1\n    port: 10001\nafter: x\n",
            "servers:\n- name: w1\n  port: 1\n- name: w2\nnext: 3\n",
            "a:\n  b:\n    c: d e  f\n  g: -5\nh: 1.5\ni: ~\nj: null\nk: a,b:c\n",
            "items:\n  -   x\n  - y # c\n  - 0x1F\n",
            "- a\n- b\n",
            "  a: 1\n  b: 2\n",
            "a: 1\na: 2\n",
            "true: 1\n1.0: x\n",
            "a: x #y\n",
        ];
        for text in taken {
            assert!(same_as_saphyr(text), "not taken: {text}");
        }
        let left = [
            "",
            "# only a comment\n",
            "---\n",
            "a: 'quoted'\n",
            "a: [1, 2]\n",
            "a: &x 1\nb: *x\n",
            "a:\nb: 1\n",
            "a: |\n  text\n",
            "a: one\n  two\n",
            "a: 1\n\tb: 2\n",
            "a: b: c\n",
            "key:value\n",
            "- - a\n",
            "-\n",
            "a: 1\n  b: 2\n",
            "a: 1\nb: [\n",
            "caf\u{e9}: 1\n",
            "a: 1\n...\n",
            "a: 1\n---\nb: 2\n",
        ];
        for text in left {
            assert!(!same_as_saphyr(text), "taken: {text}");
        }
    }
}
