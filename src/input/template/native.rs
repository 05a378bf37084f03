//! One template string evaluated as ansible-core 2.19 evaluates a variable's value.
//!
//! The result is native: a template whose output is exactly one `{{ }}` result is that
//! result's value (`"{{ 8080 }}"` is the number 8080, `"{{ servers }}"` a list); more than one
//! piece of output is their text joined (`"{{ vip }}/24"`); no output at all is `None`.
//! `None` results drop out before counting (`"{{ none }}x"` is `x`). Like Ansible, a single
//! trailing newline of the template is not output, and the newlines the template ends with
//! are put back on a text result; backslashes in the string literals of `{{ }}` expressions
//! are literal (`regex_replace('(\d+)', '\1')` written in YAML's double quotes works).

use std::{borrow::Cow, io};

use minijinja::{Error, ErrorKind, Value, value::ValueKind};

use super::{
    env::shared,
    scope::{MAX_RESULT_DEPTH, is_inventory},
};
use crate::source::{MAX_FILE_BYTES, MAX_NODES};

/// The most text one variable's value may hold, as an input file may: each variable is its
/// own render, with its own fuel, so without this a chain of variables that each double the
/// last (`x2: "{{ x1 }}{{ x1 }}"`) would grow without end.
const MAX_VALUE_BYTES: usize = MAX_FILE_BYTES as usize;

/// The most items (list items, keys and values) one variable's value may hold, as an
/// inventory may.
const MAX_VALUE_ITEMS: usize = MAX_NODES;

/// The name variable templates are compiled under: the formatter keeps their results.
pub(super) const NAME: &str = "<variable>";

/// The results of one variable template's `{{ }}` blocks.
#[derive(Debug, Default)]
pub(super) struct Nodes {
    first: Option<Value>,
    count: usize,
    /// Bytes those results wrote: all of the output when there is nothing else.
    text_len: usize,
}

impl Nodes {
    pub(super) fn push(&mut self, value: &Value, text_len: usize) {
        if self.first.is_none() {
            self.first = Some(value.clone());
        }
        self.count += 1;
        self.text_len += text_len;
    }
}

/// Whether Ansible treats `text` as a template: it holds the start of a Jinja2 block.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

/// Evaluates `source` in `ctx`, with Ansible's native result.
pub(super) fn render(source: &str, ctx: Value) -> Result<Value, Error> {
    let body = source
        .strip_suffix("\r\n")
        .or_else(|| source.strip_suffix('\n'))
        .or_else(|| source.strip_suffix('\r'))
        .unwrap_or(source);
    let body = escape_backslashes(body);
    super::mutable::check_chains(&body).map_err(|(_, e)| e)?;
    let body = super::mutable::prepare(&body);
    let template = shared().template_from_named_str(NAME, &body)?;
    let mut output = Capped(Vec::new());
    let captured = template.render_captured_to(ctx, &mut output);
    if output.0.len() > MAX_VALUE_BYTES {
        return Err(too_big(format!(
            "more than {} MiB of text",
            MAX_VALUE_BYTES >> 20
        )));
    }
    let captured = captured?;
    let output = String::from_utf8(output.0)
        .map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))?;
    let value = match captured.state().get_extension::<Nodes>() {
        Some(Nodes {
            first: Some(value),
            count: 1,
            text_len,
        }) if *text_len == output.len() => {
            let mut room = Room {
                items: MAX_VALUE_ITEMS,
                bytes: MAX_VALUE_BYTES,
            };
            measure(value, 0, &mut room)?;
            value.clone()
        }
        None if output.is_empty() => Value::from(()),
        _ => Value::from(output),
    };
    Ok(match value.as_str() {
        Some(text) if value.kind() == minijinja::value::ValueKind::String => {
            let missing = trailing_newlines(source).saturating_sub(trailing_newlines(text));
            if missing == 0 {
                value
            } else {
                Value::from(format!("{text}{}", "\n".repeat(missing)))
            }
        }
        _ => value,
    })
}

/// Renders one of the user's own config templates, its output held to the bound a variable's
/// value is: the fuel bounds the steps, not how much each step writes (`{{ x * 10 }}` in a
/// loop, a `{% filter %}` block repeated).
pub fn render_file(template: &minijinja::Template, ctx: &Value) -> Result<String, Error> {
    let mut output = Capped(Vec::new());
    let rendered = template.render_captured_to(ctx, &mut output);
    if output.0.len() > MAX_VALUE_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "the rendered file would be more than {} MiB, as no configuration is \
                 (does a loop repeat more than it should?)",
                MAX_VALUE_BYTES >> 20
            ),
        ));
    }
    rendered?;
    String::from_utf8(output.0).map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))
}

/// A template's output, refused past [`MAX_VALUE_BYTES`] as it is written (the one byte more
/// it keeps tells the render it ran out of room).
struct Capped(Vec<u8>);

impl io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.0.len() + buf.len() > MAX_VALUE_BYTES {
            self.0.resize(MAX_VALUE_BYTES + 1, 0);
            return Err(io::Error::other("the value is too big"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What is left of a value's room.
struct Room {
    items: usize,
    bytes: usize,
}

/// Refuses a value that holds more than [`MAX_VALUE_ITEMS`] items or [`MAX_VALUE_BYTES`] of
/// text, or nests deeper than [`MAX_RESULT_DEPTH`]: a list doubled variable by variable
/// (`x2: "{{ x1 + x1 }}"`). The inventory's own values were bounded as they were read.
fn measure(value: &Value, depth: usize, room: &mut Room) -> Result<(), Error> {
    match value.kind() {
        ValueKind::String => {
            let len = value.as_str().map_or(0, str::len);
            room.bytes = room.bytes.checked_sub(len).ok_or_else(|| {
                too_big(format!("more than {} MiB of text", MAX_VALUE_BYTES >> 20))
            })?;
        }
        ValueKind::Seq | ValueKind::Map | ValueKind::Iterable if !is_inventory(value) => {
            if depth >= MAX_RESULT_DEPTH {
                return Err(too_big(format!(
                    "nested deeper than {MAX_RESULT_DEPTH} levels"
                )));
            }
            let is_map = value.kind() == ValueKind::Map;
            for item in value.try_iter()? {
                room.items = room
                    .items
                    .checked_sub(1 + usize::from(is_map))
                    .ok_or_else(|| too_big(format!("more than {MAX_VALUE_ITEMS} items")))?;
                if is_map {
                    measure(&value.get_item(&item)?, depth + 1, room)?;
                }
                measure(&item, depth + 1, room)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn too_big(what: String) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!(
            "the value would be {what}: a variable's value may hold at most {} MiB of text \
             and {MAX_VALUE_ITEMS} items (do variables double the one before?)",
            MAX_VALUE_BYTES >> 20
        ),
    )
}

fn trailing_newlines(text: &str) -> usize {
    text.bytes().rev().take_while(|b| *b == b'\n').count()
}

/// The template with the backslashes of every string literal inside `{{ }}` made literal, as
/// Ansible's lexer does before Jinja2 reads escapes: the value was already unescaped once, by
/// YAML. Statements (`{% %}`), comments and `{% raw %}` blocks are left as they are.
fn escape_backslashes(source: &str) -> Cow<'_, str> {
    if !source.contains('\\') {
        return Cow::Borrowed(source);
    }
    let mut out = String::with_capacity(source.len() + 8);
    let mut rest = source;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let (copied, tail) = if let Some(after) = rest.strip_prefix("{{") {
            let (expr, tail) = escape_expression(after);
            out.push_str("{{");
            out.push_str(&expr);
            (0, tail)
        } else if rest.starts_with("{#") {
            let end = rest.find("#}").map_or(rest.len(), |i| i + 2);
            (end, "")
        } else if rest.starts_with("{%") {
            let end = statement_end(rest);
            let tag = rest[2..end.saturating_sub(2).max(2)]
                .trim_matches(|c: char| c == '-' || c == '+' || c == '%');
            if tag.trim() == "raw" {
                (raw_end(rest, end), "")
            } else {
                (end, "")
            }
        } else {
            (1, "")
        };
        if copied > 0 {
            out.push_str(&rest[..copied]);
            rest = &rest[copied..];
        } else {
            rest = tail;
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// An expression's text up to and including its `}}`, each string literal rewritten so that
/// its backslashes are literal; and the text after it.
fn escape_expression(text: &str) -> (String, &str) {
    let mut out = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '}' if text[i..].starts_with("}}") => {
                out.push_str("}}");
                return (out, &text[i + 2..]);
            }
            '\'' | '"' => {
                // Jinja2's string token: a backslash escapes the next character.
                let mut inner = String::new();
                let mut closed = false;
                while let Some((_, d)) = chars.next() {
                    if d == '\\' {
                        inner.push('\\');
                        if let Some((_, e)) = chars.next() {
                            inner.push(e);
                        }
                    } else if d == c {
                        closed = true;
                        break;
                    } else {
                        inner.push(d);
                    }
                }
                out.push(c);
                for d in inner.chars() {
                    if d == '\\' || d == c {
                        out.push('\\');
                    }
                    out.push(d);
                }
                if closed {
                    out.push(c);
                }
            }
            c => out.push(c),
        }
    }
    (out, "")
}

/// The end (exclusive) of the `{% %}` statement `text` starts with, quotes respected.
fn statement_end(text: &str) -> usize {
    let mut quote = None;
    let bytes = text.as_bytes();
    let mut i = 2;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(_) if b == b'\\' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if b == b'%' && bytes.get(i + 1) == Some(&b'}') => return i + 2,
            None => {}
        }
        i += 1;
    }
    text.len()
}

/// The end of the `{% endraw %}` closing a raw block whose opening tag ends at `from`.
fn raw_end(text: &str, from: usize) -> usize {
    let mut at = from;
    while let Some(i) = text[at..].find("{%") {
        let start = at + i;
        let end = statement_end(&text[start..]) + start;
        let tag = text[start + 2..end.saturating_sub(2).max(start + 2)]
            .trim_matches(|c: char| c == '-' || c == '+' || c == '%');
        if tag.trim() == "endraw" {
            return end;
        }
        at = end;
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(source: &str) -> Value {
        let ctx = minijinja::context! { n => 5, s => "5", l => vec![1, 2], none => () };
        render(source, ctx).unwrap()
    }

    fn json(v: &Value) -> String {
        serde_json::to_string(v).unwrap()
    }

    /// Each case is what ansible-core 2.19.14 gives for the same template (checked with
    /// `ansible-playbook` and a debug task).
    #[test]
    fn results_are_native_as_in_ansible() {
        let cases = [
            ("{{ n }}", "5"),
            ("{{ s }}", "\"5\""),
            ("{{ n + 1 }}", "6"),
            ("{{ n }}{{ n }}", "\"55\""),
            (" {{ n }}", "\" 5\""),
            ("{{ [1, 2] }}", "[1,2]"),
            ("{{ '[1, 2]' }}", "\"[1, 2]\""),
            ("x{{ [1, 2] }}", "\"x[1, 2]\""),
            ("{{ n }}/24", "\"5/24\""),
            ("{{ none }}", "null"),
            ("{{ none }}x", "\"x\""),
            ("{{ '1' }}{{ '2' }}", "\"12\""),
            ("{% if n > 1 %}big{% endif %}", "\"big\""),
            ("{% if true %}{{ n }}{% endif %}", "5"),
            ("{% if false %}x{% endif %}", "null"),
            ("{{ n }}\n", "5"),
            ("{{ 'a' }}\n", "\"a\\n\""),
            ("  {{ n }}  ", "\"  5  \""),
            ("{# c #}{{ n }}", "5"),
            ("{{ n > 1 }}", "true"),
            ("{{ '' }}", "\"\""),
            ("{{ true }}x", "\"Truex\""),
            ("{{ {'a': 1} }}x", "\"{'a': 1}x\""),
            ("{{ 10 / 4 }}", "2.5"),
        ];
        for (source, want) in cases {
            assert_eq!(json(&eval(source)), want, "{source}");
        }
    }

    #[test]
    fn backslashes_in_expression_strings_are_literal() {
        assert_eq!(eval(r"{{ 'a\d' }}").as_str(), Some(r"a\d"));
        assert_eq!(json(&eval(r"{{ '\n' | length }}")), "2");
        assert_eq!(
            eval(r"{{ 'web-01' | regex_replace('-(\d+)', '_\1') }}").as_str(),
            Some("web_01")
        );
        assert_eq!(eval(r"{{ 'it\'s' }}").as_str(), Some(r"it\'s"));
        assert_eq!(
            eval(r"{% set x = 'a\\b' %}{{ x }} \q").as_str(),
            Some(r"a\b \q")
        );
        assert_eq!(
            eval(r"{% raw %}{{ '\d' }}{% endraw %}").as_str(),
            Some(r"{{ '\d' }}")
        );
    }
}
