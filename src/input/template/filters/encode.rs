//! Values written as text: `to_json`, `to_nice_json`, `to_yaml`, `to_nice_yaml` (as Python's
//! `json` and PyYAML write them), and `b64decode`; and read back from it: `from_json`,
//! `from_yaml` (as Ansible reads YAML: YAML 1.1's scalars, mappings in their order).

use std::fmt::Write as _;

use minijinja::{
    Error, ErrorKind, Value,
    value::{Kwargs, ValueKind},
};

use crate::source::base64;

/// How Python's `json.dumps` is asked to write: `to_json`'s and `to_nice_json`'s keyword
/// arguments `indent`, `sort_keys`, `ensure_ascii` and `separators`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct JsonStyle {
    /// Spaces per level, one item a line; `None` writes one line.
    indent: Option<usize>,
    sort_keys: bool,
    /// Non-ASCII characters escaped (`\u00e9`).
    ensure_ascii: bool,
    /// Between items, and between a key and its value; `None`: `json.dumps`'s own (`", "`,
    /// or `","` with an indent; `": "`).
    separators: Option<(String, String)>,
}

impl JsonStyle {
    /// `to_json`: `json.dumps`'s defaults.
    pub(super) const COMPACT: JsonStyle = JsonStyle {
        indent: None,
        sort_keys: false,
        ensure_ascii: true,
        separators: None,
    };

    /// `to_nice_json`: four spaces a level, keys sorted.
    pub(super) const NICE: JsonStyle = JsonStyle {
        indent: Some(4),
        sort_keys: true,
        ensure_ascii: true,
        separators: None,
    };

    /// This style with the filter's keyword arguments applied; any other is an error, as
    /// in Python.
    pub(super) fn with(mut self, kw: &Kwargs) -> Result<JsonStyle, Error> {
        if kw.has("indent") {
            self.indent = kw.get::<Option<usize>>("indent")?;
        }
        if let Some(sort) = kw.get::<Option<bool>>("sort_keys")? {
            self.sort_keys = sort;
        }
        if let Some(ascii) = kw.get::<Option<bool>>("ensure_ascii")? {
            self.ensure_ascii = ascii;
        }
        if let Some(pair) = kw.get::<Option<Vec<String>>>("separators")? {
            let [item, key] = <[String; 2]>::try_from(pair).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    "separators must be an (item_separator, key_separator) pair",
                )
            })?;
            self.separators = Some((item, key));
        }
        // Ansible's own, about vault values, which lbctl has decrypted before any template
        for ansible in ["vault_to_text", "preprocess_unsafe"] {
            let _: Option<Value> = kw.get(ansible)?;
        }
        kw.assert_all_used()?;
        Ok(self)
    }

    /// `to_nice_json`'s: Ansible drops a `separators` argument there.
    pub(super) fn nice_with(kw: &Kwargs) -> Result<JsonStyle, Error> {
        Ok(JsonStyle {
            separators: None,
            ..JsonStyle::NICE.with(kw)?
        })
    }

    fn item_separator(&self) -> &str {
        match (&self.separators, self.indent) {
            (Some((item, _)), _) => item,
            (None, Some(_)) => ",",
            (None, None) => ", ",
        }
    }

    fn key_separator(&self) -> &str {
        self.separators.as_ref().map_or(": ", |(_, key)| key)
    }
}

/// JSON as Python's `json.dumps` writes it in `style`.
pub(super) fn json(value: &Value, style: &JsonStyle) -> String {
    let mut out = String::new();
    write_json(value, style, 0, &mut out);
    out
}

fn write_json(value: &Value, style: &JsonStyle, depth: usize, out: &mut String) {
    if depth > super::python::MAX_PRINT_DEPTH {
        out.push_str("null");
        return;
    }
    let newline = |out: &mut String, level: usize| {
        if let Some(width) = style.indent {
            out.push('\n');
            out.push_str(&" ".repeat(width * level));
        }
    };
    let (items, map) = match value.kind() {
        ValueKind::None | ValueKind::Undefined => return out.push_str("null"),
        ValueKind::Bool => return out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number if !value.is_integer() => {
            let x = f64::try_from(value.clone()).unwrap_or(f64::NAN);
            // Python's json writes a float as its repr, and infinity and NaN as JavaScript's
            let text = match super::python::float_repr(x).as_str() {
                "inf" => "Infinity".to_string(),
                "-inf" => "-Infinity".to_string(),
                "nan" => "NaN".to_string(),
                repr => repr.to_string(),
            };
            return out.push_str(&text);
        }
        ValueKind::Number => return out.push_str(&value.to_string()),
        ValueKind::String => {
            return write_json_string(value.as_str().unwrap_or_default(), style, out);
        }
        ValueKind::Map => {
            let mut keys: Vec<Value> = value.try_iter().map(|i| i.collect()).unwrap_or_default();
            if style.sort_keys {
                keys.sort_by_key(|k| k.to_string());
            }
            (keys, true)
        }
        ValueKind::Seq | ValueKind::Iterable => (
            value.try_iter().map(|i| i.collect()).unwrap_or_default(),
            false,
        ),
        _ => {
            let text = super::datetime::iso_format_of(value).unwrap_or_else(|| value.to_string());
            return write_json_string(&text, style, out);
        }
    };
    let (open, close) = if map { ('{', '}') } else { ('[', ']') };
    out.push(open);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(style.item_separator());
        }
        newline(out, depth + 1);
        if map {
            write_json_string(&item.to_string(), style, out);
            out.push_str(style.key_separator());
            let v = value.get_item(item).unwrap_or_default();
            write_json(&v, style, depth + 1, out);
        } else {
            write_json(item, style, depth + 1, out);
        }
    }
    if !items.is_empty() {
        newline(out, depth);
    }
    out.push(close);
}

/// A JSON string as Python writes it: its short escapes, `\u00XX` for other control
/// characters, and (`ensure_ascii`) for every character past `~`, in UTF-16 units.
fn write_json_string(text: &str, style: &JsonStyle, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (style.ensure_ascii && c > '~') => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// YAML in block style, for `to_yaml` / `to_nice_yaml` (scalars as JSON, which YAML reads).
pub(super) fn to_yaml(value: Value, kw: Kwargs) -> Result<String, Error> {
    let indent: usize = kw.get::<Option<usize>>("indent")?.unwrap_or(4);
    let _: Option<Value> = kw.get("default_flow_style")?;
    let _: Option<Value> = kw.get("width")?;
    let _: Option<Value> = kw.get("sort_keys")?;
    kw.assert_all_used()?;
    super::python::printable(&value)?;
    let mut out = String::new();
    write_yaml(&value, 0, indent, &mut out);
    Ok(out)
}

pub(super) fn write_yaml(value: &Value, level: usize, step: usize, out: &mut String) {
    let pad = " ".repeat(level);
    match value.kind() {
        ValueKind::Map => {
            let keys: Vec<Value> = value.try_iter().map(|i| i.collect()).unwrap_or_default();
            if keys.is_empty() {
                out.push_str("{}\n");
            }
            for k in keys {
                let v = value.get_item(&k).unwrap_or_default();
                let _ = write!(out, "{pad}{}:", yaml_scalar(&Value::from(k.to_string())));
                yaml_child(&v, level, step, out);
            }
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter().map(|i| i.collect()).unwrap_or_default();
            if items.is_empty() {
                out.push_str("[]\n");
            }
            for v in items {
                let _ = write!(out, "{pad}-");
                yaml_child(&v, level, step, out);
            }
        }
        _ => {
            out.push_str(&yaml_scalar(value));
            out.push('\n');
        }
    }
}

pub(super) fn yaml_child(v: &Value, level: usize, step: usize, out: &mut String) {
    let nested = matches!(
        v.kind(),
        ValueKind::Map | ValueKind::Seq | ValueKind::Iterable
    ) && v.len().unwrap_or(0) > 0;
    if nested {
        out.push('\n');
        write_yaml(v, level + step, step, out);
    } else {
        out.push(' ');
        write_yaml(v, level, step, out);
    }
}

pub(super) fn yaml_scalar(value: &Value) -> String {
    match value.kind() {
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default();
            let plain = !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
                && !s.starts_with(['-', '.'])
                && crate::source::parse_str(s, &std::sync::Arc::from(""))
                    .is_ok_and(|n| matches!(n.value, crate::source::Value::Str(_)));
            if plain {
                s.to_string()
            } else {
                json(value, &JsonStyle::COMPACT)
            }
        }
        _ => json(value, &JsonStyle::COMPACT),
    }
}

/// `from_json`: Python's `json.loads` of the text (`None` gives `None`).
pub(super) fn from_json(text: Value) -> Result<Value, Error> {
    if text.is_none() {
        return Ok(text);
    }
    let Some(text) = text.as_str() else {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("from_json: expected JSON text, found {}", text.kind()),
        ));
    };
    serde_json::from_str::<Value>(text)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("from_json: {e}")))
}

/// `from_yaml`: the text's YAML as Ansible's loader reads it (a vars file's typing, its
/// bounds), `None` for a document with nothing in it. Anything but text is given back as it
/// is, as Ansible's filter does.
pub(super) fn from_yaml(text: Value) -> Result<Value, Error> {
    let Some(source) = text.as_str() else {
        return Ok(text);
    };
    let empty = source.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..."
    });
    if empty {
        return Ok(Value::from(()));
    }
    let node = crate::source::parse_str(source, &std::sync::Arc::from("from_yaml"))
        .map_err(|d| yaml_error("from_yaml", &d))?;
    plain(&node)
}

/// `from_yaml_all`: every document of the text (`---` starts each), a list of what
/// `from_yaml` makes of each one; `None` is an empty list, anything else but text is given
/// back as it is.
pub(super) fn from_yaml_all(text: Value) -> Result<Value, Error> {
    super::defined(&text)?;
    if text.is_none() {
        return Ok(Value::from(Vec::<Value>::new()));
    }
    let Some(source) = text.as_str() else {
        return Ok(text);
    };
    let documents = crate::source::parse_documents(source, &std::sync::Arc::from("from_yaml_all"))
        .map_err(|d| yaml_error("from_yaml_all", &d))?;
    let values: Result<Vec<Value>, Error> = documents.iter().map(plain).collect();
    Ok(Value::from(values?))
}

/// Why `filter` could not read its text as YAML.
fn yaml_error(filter: &str, d: &crate::source::Diagnostic) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("{filter}: {}", d.message),
    )
}

/// A YAML tree as template values; a template in it stays text, as Ansible leaves what a
/// filter returns unevaluated.
fn plain(node: &crate::source::Node) -> Result<Value, Error> {
    use crate::source::Value as V;
    Ok(match &node.value {
        V::Null => Value::from(()),
        V::Bool(b) => Value::from(*b),
        V::Int(i) => Value::from(*i),
        V::Float(x) => Value::from(*x),
        V::Str(s) | V::Unsafe(s) => Value::from(s.as_ref()),
        V::Seq(items) => Value::from(items.iter().map(plain).collect::<Result<Vec<_>, _>>()?),
        V::Map(entries) => super::ordered_map(
            entries
                .iter()
                .map(|(k, _, v)| Ok((Value::from(k.as_ref()), plain(v)?)))
                .collect::<Result<Vec<_>, Error>>()?,
        ),
        V::Vault(_) => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "from_yaml: a vault value in text is not decrypted here: put it in a vars file",
            ));
        }
    })
}

pub(super) fn b64decode(text: String) -> Result<String, Error> {
    let bytes = base64::decode(text.trim())
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "b64decode: not valid base64"))?;
    String::from_utf8(bytes)
        .map_err(|_| Error::new(ErrorKind::InvalidOperation, "b64decode: not UTF-8 text"))
}
