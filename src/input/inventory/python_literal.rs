//! INI values typed as Ansible's INI plugin types them: with Python's `ast.literal_eval`, so
//! `5` is an integer, `True` a boolean, `['a', 'b']` a list and `{'k': 1}` a mapping, while
//! `true`, `051`, `yes` or `a b` stay the text they are. Complex numbers and anything else
//! `literal_eval` refuses stay text too.

use std::sync::Arc;

use crate::source::{Loc, Node, Value};

/// The value `text` reads as, or `None` when Python would not read it as a literal.
pub fn literal(text: &str, loc: &Loc) -> Option<Node> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
        loc: *loc,
        depth: 0,
    };
    p.skip_space();
    let value = p.value()?;
    p.skip_space();
    if p.peek() == Some(b',') {
        return p.bare_tuple(value);
    }
    (p.i == p.s.len()).then_some(value)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    loc: Loc,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// Whitespace, line continuations and comments (Python ignores them between tokens).
    fn skip_space(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => self.i += 1,
                b'\\' if self.s.get(self.i + 1) == Some(&b'\n') => self.i += 2,
                b'#' => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.i += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn node(&self, value: Value) -> Node {
        Node::new(value, self.loc)
    }

    fn value(&mut self) -> Option<Node> {
        self.depth += 1;
        if self.depth > 64 {
            return None;
        }
        let out = self.value_inner();
        self.depth -= 1;
        out
    }

    fn value_inner(&mut self) -> Option<Node> {
        match self.peek()? {
            b'[' => self.sequence(b']'),
            b'(' => self.parenthesised(),
            b'{' => self.braces(),
            b'+' | b'-' => {
                let negative = self.peek() == Some(b'-');
                self.i += 1;
                self.skip_space();
                match self.number()?.value {
                    Value::Int(n) if negative => Some(self.node(Value::Int(n.checked_neg()?))),
                    Value::Float(x) if negative => Some(self.node(Value::Float(-x))),
                    v => Some(self.node(v)),
                }
            }
            b'0'..=b'9' => self.number(),
            b'.' if self.s[self.i..].starts_with(b"...") => {
                self.i += 3;
                Some(self.node(Value::Str(Arc::from("..."))))
            }
            b'.' => self.number(),
            _ => {
                if let Some(s) = self.strings() {
                    return Some(s);
                }
                let word = self.word();
                let value = match word {
                    "True" => Value::Bool(true),
                    "False" => Value::Bool(false),
                    "None" => Value::Null,
                    _ => return None,
                };
                Some(self.node(value))
            }
        }
    }

    fn word(&mut self) -> &str {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or("")
    }

    /// `[a, b]` or `(a, b)`: a trailing comma is allowed.
    fn sequence(&mut self, close: u8) -> Option<Node> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.skip_space();
            if self.peek()? == close {
                self.i += 1;
                break;
            }
            items.push(self.value()?);
            self.skip_space();
            match self.peek()? {
                b',' => self.i += 1,
                c if c == close => {
                    self.i += 1;
                    break;
                }
                _ => return None,
            }
        }
        Some(self.node(Value::Seq(items.into_boxed_slice())))
    }

    /// The rest of a tuple written without parentheses, after its `first` item: `80,443`,
    /// `1,` (Python reads the whole text as one expression), read as a list as Ansible
    /// converts tuples. Ends the text.
    fn bare_tuple(&mut self, first: Node) -> Option<Node> {
        let mut items = vec![first];
        while self.peek() == Some(b',') {
            self.i += 1;
            self.skip_space();
            if self.i == self.s.len() {
                break;
            }
            items.push(self.value()?);
            self.skip_space();
        }
        (self.i == self.s.len()).then(|| self.node(Value::Seq(items.into_boxed_slice())))
    }

    /// `(x)` is x; `(x,)` and `(x, y)` are tuples, read as lists as Ansible converts them.
    fn parenthesised(&mut self) -> Option<Node> {
        let start = self.i;
        self.i += 1;
        self.skip_space();
        if self.peek()? == b')' {
            self.i += 1;
            return Some(self.node(Value::Seq(Box::new([]))));
        }
        let first = self.value()?;
        self.skip_space();
        if self.peek()? == b')' {
            self.i += 1;
            return Some(first);
        }
        self.i = start;
        self.sequence(b')')
    }

    /// `{k: v, ...}` (a mapping; keys must read as text) or `{a, b}` (a set, read as a list).
    fn braces(&mut self) -> Option<Node> {
        self.i += 1;
        self.skip_space();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(self.node(Value::Map(Box::new([]))));
        }
        let first = self.value()?;
        self.skip_space();
        if self.peek()? != b':' {
            let mut items = vec![first];
            loop {
                self.skip_space();
                match self.peek()? {
                    b'}' => {
                        self.i += 1;
                        break;
                    }
                    b',' => {
                        self.i += 1;
                        self.skip_space();
                        if self.peek()? == b'}' {
                            continue;
                        }
                        items.push(self.value()?);
                    }
                    _ => return None,
                }
            }
            return Some(self.node(Value::Seq(items.into_boxed_slice())));
        }
        let mut entries: Vec<(Arc<str>, Loc, Node)> = Vec::new();
        let mut key = first;
        loop {
            self.skip_space();
            if self.peek()? != b':' {
                return None;
            }
            self.i += 1;
            self.skip_space();
            let value = self.value()?;
            let name: Arc<str> = Arc::from(key.as_text()?);
            entries.retain(|(k, _, _)| *k != name);
            entries.push((name, self.loc, value));
            self.skip_space();
            match self.peek()? {
                b'}' => {
                    self.i += 1;
                    break;
                }
                b',' => {
                    self.i += 1;
                    self.skip_space();
                    if self.peek()? == b'}' {
                        self.i += 1;
                        break;
                    }
                    key = self.value()?;
                }
                _ => return None,
            }
        }
        Some(self.node(Value::Map(entries.into_boxed_slice())))
    }

    /// Python's integer and float literals (`0x1F`, `0o17`, `0b1`, `1_000`, `1.5e3`, `.5`);
    /// `051` is a syntax error in Python 3, and an imaginary `2j` is not kept as a number.
    fn number(&mut self) -> Option<Node> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.'))
            || (matches!(self.peek(), Some(b'+' | b'-'))
                && matches!(self.s.get(self.i - 1), Some(b'e' | b'E'))
                && !self.s[start..self.i].starts_with(b"0x")
                && !self.s[start..self.i].starts_with(b"0X"))
        {
            self.i += 1;
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        if text.contains("__") || text.ends_with('_') || text.ends_with(['j', 'J']) {
            return None;
        }
        let clean = text.replace('_', "");
        let lower = clean.to_ascii_lowercase();
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
            if let Some(digits) = lower.strip_prefix(prefix) {
                if digits.is_empty() {
                    return None;
                }
                let n = i64::from_str_radix(digits, radix).ok()?;
                return Some(self.node(Value::Int(n)));
            }
        }
        let is_float = lower.contains(['.', 'e']);
        if !is_float {
            if lower.len() > 1 && lower.starts_with('0') && lower.bytes().any(|b| b != b'0') {
                return None;
            }
            if !lower.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            return match lower.parse::<i64>() {
                Ok(n) => Some(self.node(Value::Int(n))),
                // Python's integers have no limit: keep the digits.
                Err(_) => Some(self.node(Value::Str(Arc::from(lower.trim_start_matches('0'))))),
            };
        }
        if !lower
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'+' | b'-'))
        {
            return None;
        }
        let x: f64 = lower.parse().ok()?;
        Some(self.node(Value::Float(x)))
    }

    /// One or more adjacent string literals (Python joins them), with their prefixes.
    fn strings(&mut self) -> Option<Node> {
        let mut out = String::new();
        let mut any = false;
        loop {
            let save = self.i;
            match self.string() {
                Some(s) => {
                    out.push_str(&s);
                    any = true;
                    self.skip_space();
                }
                None => {
                    self.i = save;
                    break;
                }
            }
        }
        any.then(|| self.node(Value::Str(Arc::from(out))))
    }

    fn string(&mut self) -> Option<String> {
        let start = self.i;
        let mut raw = false;
        while let Some(c) = self.peek() {
            match c.to_ascii_lowercase() {
                b'r' => raw = true,
                b'b' | b'u' => {}
                _ => break,
            }
            self.i += 1;
            if self.i - start > 2 {
                return None;
            }
        }
        let quote = self.peek().filter(|c| matches!(c, b'\'' | b'"'))?;
        let triple = self.s[self.i..].starts_with(&[quote; 3]);
        self.i += if triple { 3 } else { 1 };
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = self.peek()?;
            if c == quote && (!triple || self.s[self.i..].starts_with(&[quote; 3])) {
                self.i += if triple { 3 } else { 1 };
                break;
            }
            if c == b'\n' && !triple {
                return None;
            }
            self.i += 1;
            if c != b'\\' {
                out.push(c);
                continue;
            }
            let e = self.peek()?;
            self.i += 1;
            if raw {
                out.extend([b'\\', e]);
                continue;
            }
            let push_char = |ch: char, out: &mut Vec<u8>| {
                let mut buf = [0; 4];
                out.extend(ch.encode_utf8(&mut buf).as_bytes());
            };
            match e {
                b'\n' => {}
                b'\\' | b'\'' | b'"' => out.push(e),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'a' => out.push(7),
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'v' => out.push(11),
                b'0'..=b'7' => {
                    let mut n = u32::from(e - b'0');
                    for _ in 0..2 {
                        match self.peek() {
                            Some(d @ b'0'..=b'7') => {
                                n = n * 8 + u32::from(d - b'0');
                                self.i += 1;
                            }
                            _ => break,
                        }
                    }
                    push_char(char::from_u32(n)?, &mut out);
                }
                b'x' | b'u' | b'U' => {
                    let len = match e {
                        b'x' => 2,
                        b'u' => 4,
                        _ => 8,
                    };
                    let hex = std::str::from_utf8(self.s.get(self.i..self.i + len)?).ok()?;
                    let n = u32::from_str_radix(hex, 16).ok()?;
                    self.i += len;
                    push_char(char::from_u32(n)?, &mut out);
                }
                other => out.extend([b'\\', other]),
            }
        }
        String::from_utf8(out).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Option<serde_json::Value> {
        let loc = Loc::new(&Arc::from("hosts"), 1);
        literal(text, &loc).map(|n| n.to_json())
    }

    #[test]
    fn reads_what_literal_eval_reads() {
        use serde_json::json;
        assert_eq!(read("5"), Some(json!(5)));
        assert_eq!(read("-5"), Some(json!(-5)));
        assert_eq!(read("0x1F"), Some(json!(31)));
        assert_eq!(read("1_000"), Some(json!(1000)));
        assert_eq!(read("2.5"), Some(json!(2.5)));
        assert_eq!(read("1e3"), Some(json!(1000.0)));
        assert_eq!(read("True"), Some(json!(true)));
        assert_eq!(read("None"), Some(json!(null)));
        assert_eq!(read("'a b'"), Some(json!("a b")));
        assert_eq!(read("'a' \"b\""), Some(json!("ab")));
        assert_eq!(read(r"'\x41\n'"), Some(json!("A\n")));
        assert_eq!(read(r"r'\n'"), Some(json!("\\n")));
        assert_eq!(
            read("['10.0.0.1/24','10.0.0.2/24']"),
            Some(json!(["10.0.0.1/24", "10.0.0.2/24"]))
        );
        assert_eq!(read("(1,)"), Some(json!([1])));
        assert_eq!(read("(1)"), Some(json!(1)));
        assert_eq!(
            read("{'a': [1, {'b': None}],}"),
            Some(json!({"a": [1, {"b": null}]}))
        );
        assert_eq!(read("5 # a comment"), Some(json!(5)));
        // a tuple without parentheses, as in `ports=30306,30307`
        assert_eq!(read("30306,30307"), Some(json!([30306, 30307])));
        assert_eq!(read("80, 443"), Some(json!([80, 443])));
        assert_eq!(read("1,"), Some(json!([1])));
        assert_eq!(read("'a', [2, 3]"), Some(json!(["a", [2, 3]])));
        assert_eq!(read("..."), Some(json!("...")));
    }

    #[test]
    fn leaves_what_literal_eval_refuses() {
        for text in [
            "true",
            "yes",
            "051",
            "a b",
            "eu # comment",
            "10.0.0.1",
            "1+2",
            "--5",
            "2j",
            "[1,",
            "f'x'",
            "x=1",
            "1__0",
            "{[1]: 2}",
            "",
            ",",
            "1,,2",
            "1, 2 3",
            "a,b",
            "10.0.0.1,10.0.0.2",
        ] {
            assert_eq!(read(text), None, "{text}");
        }
    }
}
