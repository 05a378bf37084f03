//! What Ansible adds to Jinja2, for templates written for Ansible's template module: values
//! printed as Python prints them (`None` as nothing, `True`, `['a', 'b']`), and the filters and
//! tests roles use most (`bool`, `int`, `string`, `ternary`, `mandatory`, `combine`,
//! `dict2items`, `items2dict`, `to_json`, `to_nice_json`, `to_yaml`, `to_nice_yaml`,
//! `regex_replace`, `regex_search`, `regex_findall`, `b64encode`, `b64decode`, `ipaddr`,
//! `ipv4`, `ipv6`, and the tests `match`, `search`, `regex`), also under their
//! `ansible.builtin.` / `ansible.utils.` names.

use std::{fmt::Write as _, net::IpAddr};

use minijinja::{
    Environment, Error, ErrorKind, Value,
    value::{Kwargs, ValueKind},
};

use crate::source::base64;

/// Adds one filter under the name given.
type AddFilter = fn(&mut Environment<'static>, String);

pub fn register(env: &mut Environment<'static>) {
    env.set_formatter(|out, _state, value| {
        let text = match value.kind() {
            ValueKind::None => return Ok(()),
            ValueKind::String => return write_str(out, value.as_str().unwrap_or_default()),
            _ => python_str(value),
        };
        write_str(out, &text)
    });
    let core: &[(&str, AddFilter)] = &[
        ("bool", |e, n| e.add_filter(n, to_bool)),
        ("int", |e, n| e.add_filter(n, to_int)),
        ("string", |e, n| e.add_filter(n, |v: Value| python_str(&v))),
        ("ternary", |e, n| e.add_filter(n, ternary)),
        ("mandatory", |e, n| e.add_filter(n, mandatory)),
        ("combine", |e, n| e.add_filter(n, combine)),
        ("dict2items", |e, n| e.add_filter(n, dict2items)),
        ("items2dict", |e, n| e.add_filter(n, items2dict)),
        ("to_json", |e, n| {
            e.add_filter(n, |v: Value| json(&v, None, false))
        }),
        ("to_nice_json", |e, n| {
            e.add_filter(n, |v: Value| json(&v, Some(0), true))
        }),
        ("to_yaml", |e, n| e.add_filter(n, to_yaml)),
        ("to_nice_yaml", |e, n| e.add_filter(n, to_yaml)),
        ("regex_replace", |e, n| e.add_filter(n, regex_replace)),
        ("regex_search", |e, n| e.add_filter(n, regex_search)),
        ("regex_findall", |e, n| e.add_filter(n, regex_findall)),
        ("b64encode", |e, n| {
            e.add_filter(n, |s: String| base64::encode(s.as_bytes()))
        }),
        ("b64decode", |e, n| e.add_filter(n, b64decode)),
    ];
    for (name, add) in core {
        add(env, name.to_string());
        add(env, format!("ansible.builtin.{name}"));
    }
    for name in ["ipaddr", "ansible.utils.ipaddr", "ansible.netcommon.ipaddr"] {
        env.add_filter(name, |v: Value, q: Option<String>| {
            ipaddr(&v, q.as_deref(), None)
        });
    }
    for (name, family) in [("ipv4", 4), ("ipv6", 6)] {
        for full in [name.to_string(), format!("ansible.utils.{name}")] {
            env.add_filter(full, move |v: Value, q: Option<String>| {
                ipaddr(&v, q.as_deref(), Some(family))
            });
        }
    }
    for (name, how) in [("match", Find::Start), ("search", Find::Anywhere)] {
        for full in [name.to_string(), format!("ansible.builtin.{name}")] {
            env.add_test(full, move |v: String, p: String, kw: Kwargs| {
                regex_test(&v, &p, &kw, how)
            });
        }
    }
    for full in ["regex", "ansible.builtin.regex"] {
        env.add_test(full, |v: String, p: String, kw: Kwargs| {
            let how = match kw.get::<Option<String>>("match_type")?.as_deref() {
                Some("match") => Find::Start,
                _ => Find::Anywhere,
            };
            regex_test(&v, &p, &kw, how)
        });
    }
}

fn write_str(out: &mut minijinja::Output, s: &str) -> Result<(), Error> {
    out.write_str(s)
        .map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()))
}

/// A value as Python's `str()` prints it: `True`, `None`, `['a', 1]`, `{'k': 'v'}`.
pub fn python_str(value: &Value) -> String {
    match value.kind() {
        ValueKind::String => value.as_str().unwrap_or_default().to_string(),
        _ => python_repr(value),
    }
}

fn python_repr(value: &Value) -> String {
    match value.kind() {
        ValueKind::None | ValueKind::Undefined => "None".into(),
        ValueKind::Bool => if value.is_true() { "True" } else { "False" }.into(),
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default();
            let quote = if s.contains('\'') && !s.contains('"') {
                '"'
            } else {
                '\''
            };
            let mut out = String::from(quote);
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    '\r' => out.push_str("\\r"),
                    c if c == quote => {
                        out.push('\\');
                        out.push(c);
                    }
                    c => out.push(c),
                }
            }
            out.push(quote);
            out
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<String> = value
                .try_iter()
                .map(|it| it.map(|v| python_repr(&v)).collect())
                .unwrap_or_default();
            format!("[{}]", items.join(", "))
        }
        ValueKind::Map => {
            let items: Vec<String> = value
                .try_iter()
                .map(|it| {
                    it.map(|k| {
                        let v = value.get_item(&k).unwrap_or_default();
                        format!("{}: {}", python_repr(&k), python_repr(&v))
                    })
                    .collect()
                })
                .unwrap_or_default();
            format!("{{{}}}", items.join(", "))
        }
        _ => value.to_string(),
    }
}

/// Ansible's `bool`: `yes`, `on`, `1`, `true` (any case) and 1 are true; everything else false.
fn to_bool(value: Value) -> bool {
    match value.kind() {
        ValueKind::Bool => value.is_true(),
        ValueKind::String => matches!(
            value
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase()
                .as_str(),
            "yes" | "on" | "1" | "true"
        ),
        ValueKind::Number => value.as_i64() == Some(1),
        _ => false,
    }
}

/// Jinja2's `int(default=0, base=10)`: text that is not a whole number reads as a float and
/// is cut, anything else is the default.
fn to_int(value: Value, default: Option<i64>, base: Option<u32>) -> i64 {
    let default = default.unwrap_or(0);
    match value.kind() {
        ValueKind::Bool => i64::from(value.is_true()),
        ValueKind::Number => value
            .as_i64()
            .or_else(|| f64::try_from(value.clone()).ok().map(|x| x as i64))
            .unwrap_or(default),
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default().trim().replace('_', "");
            let base = base.unwrap_or(10);
            let digits = match base {
                16 => s.trim_start_matches("0x").trim_start_matches("0X"),
                8 => s.trim_start_matches("0o").trim_start_matches("0O"),
                2 => s.trim_start_matches("0b").trim_start_matches("0B"),
                _ => s.as_str(),
            };
            i64::from_str_radix(digits, base)
                .ok()
                .or_else(|| {
                    (base == 10)
                        .then(|| s.parse::<f64>().ok().map(|x| x as i64))
                        .flatten()
                })
                .unwrap_or(default)
        }
        _ => default,
    }
}

fn ternary(value: Value, yes: Value, no: Value, none: Option<Value>) -> Value {
    match (value.is_none(), none) {
        (true, Some(n)) => n,
        _ if value.is_true() => yes,
        _ => no,
    }
}

fn mandatory(value: Value, msg: Option<String>) -> Result<Value, Error> {
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            msg.unwrap_or_else(|| "a mandatory variable is not defined".into()),
        ));
    }
    Ok(value)
}

/// Ansible's `combine`: later mappings win; `recursive=true` merges nested mappings.
fn combine(base: Value, others: minijinja::value::Rest<Value>, kw: Kwargs) -> Result<Value, Error> {
    let recursive: bool = kw.get::<Option<bool>>("recursive")?.unwrap_or(false);
    let _: Option<String> = kw.get("list_merge")?;
    kw.assert_all_used()?;
    let mut out = to_pairs(&base)?;
    for other in others.iter() {
        for (k, v) in to_pairs(other)? {
            match out.iter_mut().find(|(ok, _)| *ok == k) {
                Some((_, existing))
                    if recursive
                        && existing.kind() == ValueKind::Map
                        && v.kind() == ValueKind::Map =>
                {
                    *existing = combine(
                        existing.clone(),
                        minijinja::value::Rest(vec![v]),
                        Kwargs::from_iter([("recursive", Value::from(true))]),
                    )?;
                }
                Some((_, existing)) => *existing = v,
                None => out.push((k, v)),
            }
        }
    }
    Ok(ordered_map(out))
}

/// A mapping that keeps its keys in the order given, as Python's dicts do.
fn ordered_map(pairs: Vec<(Value, Value)>) -> Value {
    Value::from_object(OrderedMap(pairs))
}

#[derive(Debug)]
struct OrderedMap(Vec<(Value, Value)>);

impl minijinja::value::Object for OrderedMap {
    fn repr(self: &std::sync::Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Map
    }

    fn get_value(self: &std::sync::Arc<Self>, key: &Value) -> Option<Value> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    fn enumerate(self: &std::sync::Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Values(self.0.iter().map(|(k, _)| k.clone()).collect())
    }
}

fn to_pairs(value: &Value) -> Result<Vec<(Value, Value)>, Error> {
    if value.kind() != ValueKind::Map {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("combine expects mappings, got {}", value.kind()),
        ));
    }
    Ok(value
        .try_iter()?
        .map(|k| {
            let v = value.get_item(&k).unwrap_or_default();
            (k, v)
        })
        .collect())
}

fn dict2items(value: Value, kw: Kwargs) -> Result<Value, Error> {
    let key: String = kw
        .get::<Option<String>>("key_name")?
        .unwrap_or("key".into());
    let val: String = kw
        .get::<Option<String>>("value_name")?
        .unwrap_or("value".into());
    kw.assert_all_used()?;
    Ok(Value::from(
        to_pairs(&value)?
            .into_iter()
            .map(|(k, v)| {
                ordered_map(vec![
                    (Value::from(key.clone()), k),
                    (Value::from(val.clone()), v),
                ])
            })
            .collect::<Vec<_>>(),
    ))
}

fn items2dict(value: Value, kw: Kwargs) -> Result<Value, Error> {
    let key: String = kw
        .get::<Option<String>>("key_name")?
        .unwrap_or("key".into());
    let val: String = kw
        .get::<Option<String>>("value_name")?
        .unwrap_or("value".into());
    kw.assert_all_used()?;
    let mut out = Vec::new();
    for item in value.try_iter()? {
        out.push((item.get_attr(&key)?, item.get_attr(&val)?));
    }
    Ok(ordered_map(out))
}

/// JSON as Python's `json.dumps` writes it: `", "` and `": "` between items (or one item a
/// line, indented, with `nice`), keys sorted with `nice`, non-ASCII escaped.
fn json(value: &Value, indent: Option<usize>, nice: bool) -> String {
    let mut out = String::new();
    write_json(value, indent, nice, &mut out);
    out
}

fn write_json(value: &Value, indent: Option<usize>, nice: bool, out: &mut String) {
    let newline = |out: &mut String, level: usize| {
        out.push('\n');
        out.push_str(&" ".repeat(4 * level));
    };
    match value.kind() {
        ValueKind::None | ValueKind::Undefined => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => out.push_str(&value.to_string()),
        ValueKind::String => {
            out.push('"');
            for c in value.as_str().unwrap_or_default().chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if (c as u32) < 0x20 || !c.is_ascii() => {
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
        ValueKind::Map => {
            let mut keys: Vec<Value> = value.try_iter().map(|i| i.collect()).unwrap_or_default();
            if nice {
                keys.sort_by_key(|k| k.to_string());
            }
            if keys.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(if indent.is_some() { "," } else { ", " });
                }
                if let Some(level) = indent {
                    newline(out, level + 1);
                }
                write_json(&Value::from(k.to_string()), None, nice, out);
                out.push_str(": ");
                let v = value.get_item(k).unwrap_or_default();
                write_json(&v, indent.map(|l| l + 1), nice, out);
            }
            if let Some(level) = indent {
                newline(out, level);
            }
            out.push('}');
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter().map(|i| i.collect()).unwrap_or_default();
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(if indent.is_some() { "," } else { ", " });
                }
                if let Some(level) = indent {
                    newline(out, level + 1);
                }
                write_json(v, indent.map(|l| l + 1), nice, out);
            }
            if let Some(level) = indent {
                newline(out, level);
            }
            out.push(']');
        }
        _ => write_json(&Value::from(value.to_string()), indent, nice, out),
    }
}

/// YAML in block style, for `to_yaml` / `to_nice_yaml` (scalars as JSON, which YAML reads).
fn to_yaml(value: Value, kw: Kwargs) -> Result<String, Error> {
    let indent: usize = kw.get::<Option<usize>>("indent")?.unwrap_or(4);
    let _: Option<Value> = kw.get("default_flow_style")?;
    let _: Option<Value> = kw.get("width")?;
    let _: Option<Value> = kw.get("sort_keys")?;
    kw.assert_all_used()?;
    let mut out = String::new();
    write_yaml(&value, 0, indent, &mut out);
    Ok(out)
}

fn write_yaml(value: &Value, level: usize, step: usize, out: &mut String) {
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

fn yaml_child(v: &Value, level: usize, step: usize, out: &mut String) {
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

fn yaml_scalar(value: &Value) -> String {
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
                json(value, None, false)
            }
        }
        _ => json(value, None, false),
    }
}

fn python_regex(pattern: &str, kw: &Kwargs) -> Result<regex::Regex, Error> {
    let ignorecase = kw.get::<Option<bool>>("ignorecase")?.unwrap_or(false);
    let multiline = kw.get::<Option<bool>>("multiline")?.unwrap_or(false);
    regex::RegexBuilder::new(pattern)
        .case_insensitive(ignorecase)
        .multi_line(multiline)
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("bad regular expression: {e}"),
            )
        })
}

/// Python's `re.sub` replacement syntax (`\1`, `\g<1>`, `\g<name>`) in the regex crate's.
fn python_replacement(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    let mut n = String::new();
                    while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                        n.push(*d);
                        chars.next();
                    }
                    let _ = write!(out, "${{{n}}}");
                }
                Some('g') => {
                    chars.next();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                        let _ = write!(out, "${{{name}}}");
                    } else {
                        out.push_str("\\g");
                    }
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

fn regex_replace(
    value: String,
    pattern: String,
    replacement: Option<String>,
    kw: Kwargs,
) -> Result<String, Error> {
    let re = python_regex(&pattern, &kw)?;
    let _: Option<i64> = kw.get("count")?;
    kw.assert_all_used()?;
    let replacement = python_replacement(replacement.as_deref().unwrap_or(""));
    Ok(re.replace_all(&value, replacement.as_str()).into_owned())
}

fn regex_search(
    value: String,
    pattern: String,
    groups: minijinja::value::Rest<String>,
    kw: Kwargs,
) -> Result<Value, Error> {
    let re = python_regex(&pattern, &kw)?;
    kw.assert_all_used()?;
    let Some(caps) = re.captures(&value) else {
        return Ok(Value::from(()));
    };
    if groups.is_empty() {
        return Ok(Value::from(caps.get(0).map_or("", |m| m.as_str())));
    }
    let picked: Vec<Value> = groups
        .iter()
        .map(|g| {
            let g = g.trim_start_matches('\\');
            let m = match g.parse::<usize>() {
                Ok(i) => caps.get(i),
                Err(_) => caps.name(g.trim_start_matches("g<").trim_end_matches('>')),
            };
            m.map_or(Value::from(()), |m| Value::from(m.as_str()))
        })
        .collect();
    Ok(Value::from(picked))
}

fn regex_findall(value: String, pattern: String, kw: Kwargs) -> Result<Value, Error> {
    let re = python_regex(&pattern, &kw)?;
    kw.assert_all_used()?;
    let found: Vec<Value> = re
        .captures_iter(&value)
        .map(|c| match c.len() {
            1 => Value::from(c.get(0).map_or("", |m| m.as_str())),
            2 => Value::from(c.get(1).map_or("", |m| m.as_str())),
            _ => Value::from(
                (1..c.len())
                    .map(|i| Value::from(c.get(i).map_or("", |m| m.as_str())))
                    .collect::<Vec<_>>(),
            ),
        })
        .collect();
    Ok(Value::from(found))
}

fn b64decode(text: String) -> Result<String, Error> {
    let bytes = base64::decode(text.trim())
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "b64decode: not valid base64"))?;
    String::from_utf8(bytes)
        .map_err(|_| Error::new(ErrorKind::InvalidOperation, "b64decode: not UTF-8 text"))
}

#[derive(Clone, Copy)]
enum Find {
    Start,
    Anywhere,
}

fn regex_test(value: &str, pattern: &str, kw: &Kwargs, how: Find) -> Result<bool, Error> {
    let re = python_regex(pattern, kw)?;
    let _: Option<String> = kw.get("match_type")?;
    kw.assert_all_used()?;
    Ok(match how {
        Find::Start => {
            re.find(value).is_some_and(|m| m.start() == 0) || {
                // A later match can still start at 0 when the leftmost one does not.
                regex::Regex::new(&format!("^(?:{pattern})")).is_ok_and(|r| r.is_match(value))
            }
        }
        Find::Anywhere => re.is_match(value),
    })
}

/// The `ipaddr` family (ansible.utils): the address if it is one (of `family`), else false;
/// with a query, a part of it: `address`, `prefix`, `netmask`, `network`, `broadcast`,
/// `host` (address/prefix), `net` (network/prefix), `size`, `public`, `private`.
fn ipaddr(value: &Value, query: Option<&str>, family: Option<u8>) -> Value {
    let text = value.to_string();
    let (addr_text, prefix_text) = text.split_once('/').unwrap_or((&text, ""));
    let Ok(addr) = addr_text.parse::<IpAddr>() else {
        return Value::from(false);
    };
    let bits: u32 = if addr.is_ipv4() { 32 } else { 128 };
    if family.is_some_and(|f| (f == 4) != addr.is_ipv4()) {
        return Value::from(false);
    }
    let prefix: u32 = if prefix_text.is_empty() {
        bits
    } else {
        match prefix_text.parse::<u32>() {
            Ok(p) if p <= bits => p,
            _ => return Value::from(false),
        }
    };
    let as_int = match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    let mask: u128 = if prefix == 0 {
        0
    } else {
        (u128::MAX << (128 - prefix)) >> (128 - bits)
    };
    let full: u128 = if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    let to_addr = |n: u128| -> String {
        if addr.is_ipv4() {
            std::net::Ipv4Addr::from(n as u32).to_string()
        } else {
            std::net::Ipv6Addr::from(n).to_string()
        }
    };
    let network = as_int & mask;
    match query.unwrap_or("") {
        "" => Value::from(text.clone()),
        "address" => Value::from(addr.to_string()),
        "prefix" => Value::from(prefix),
        "netmask" => Value::from(to_addr(mask)),
        "network" => Value::from(to_addr(network)),
        "broadcast" => Value::from(to_addr(network | (!mask & full))),
        "host" => Value::from(format!("{addr}/{prefix}")),
        "net" | "subnet" | "cidr" => Value::from(format!("{}/{prefix}", to_addr(network))),
        "size" => Value::from(1u128 << (bits - prefix)),
        "private" => {
            let private = match addr {
                IpAddr::V4(a) => a.is_private(),
                IpAddr::V6(a) => (a.segments()[0] & 0xfe00) == 0xfc00,
            };
            if private {
                Value::from(text.clone())
            } else {
                Value::from(false)
            }
        }
        "public" => {
            let private = match addr {
                IpAddr::V4(a) => a.is_private() || a.is_loopback() || a.is_link_local(),
                IpAddr::V6(a) => (a.segments()[0] & 0xfe00) == 0xfc00 || a.is_loopback(),
            };
            if private {
                Value::from(false)
            } else {
                Value::from(text.clone())
            }
        }
        _ => Value::from(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(template: &str, ctx: Value) -> String {
        let mut env = Environment::new();
        register(&mut env);
        env.render_str(template, ctx).unwrap()
    }

    #[test]
    fn values_print_as_python_prints_them() {
        let ctx = minijinja::context! { n => (), t => true, l => vec!["a", "b"], s => "x" };
        assert_eq!(
            render("[{{ n }}] {{ t }} {{ l }} {{ s }} {{ {'k': 1} }}", ctx),
            "[] True ['a', 'b'] x {'k': 1}"
        );
    }

    #[test]
    fn ansible_filters() {
        let ctx = minijinja::context! {
            vip => "10.0.0.100/24",
            d => minijinja::context! { a => 1, b => minijinja::context! { x => 1 } },
        };
        let cases = [
            (
                "{{ 'no' | bool }} {{ 'Yes' | bool }} {{ 1 | bool }}",
                "False True True",
            ),
            (
                "{{ '3306' | int + 1 }} {{ 'x' | int(7) }} {{ '2.9' | int }}",
                "3307 7 2",
            ),
            (
                "{{ vip | ipaddr('address') }} {{ vip | ansible.utils.ipaddr('prefix') }}",
                "10.0.0.100 24",
            ),
            (
                "{{ vip | ipaddr('network') }} {{ vip | ipaddr('netmask') }} {{ 'x' | ipaddr }}",
                "10.0.0.0 255.255.255.0 False",
            ),
            (
                "{{ vip | ipv6 }} {{ vip | ipaddr('net') }}",
                "False 10.0.0.0/24",
            ),
            ("{{ d | to_json }}", "{\"a\": 1, \"b\": {\"x\": 1}}"),
            (
                "{{ d | combine({'b': {'y': 2}}, recursive=true) | to_json }}",
                "{\"a\": 1, \"b\": {\"x\": 1, \"y\": 2}}",
            ),
            (
                "{{ d | combine({'b': 2}) | dict2items | map(attribute='key') | join(',') }}",
                "a,b",
            ),
            (
                "{{ [{'key': 'k', 'value': 'v'}] | items2dict | to_json }}",
                "{\"k\": \"v\"}",
            ),
            (
                "{{ 'web-01.lan' | regex_replace('^web-(\\\\d+).*$', 'w\\\\1') }}",
                "w01",
            ),
            (
                "{{ 'abc123' | regex_search('[0-9]+') }} {{ 'abc' | regex_search('z') }}",
                "123 ",
            ),
            ("{{ 'hi' | b64encode }} {{ 'aGk=' | b64decode }}", "aGk= hi"),
            (
                "{{ 'lb1' is match('lb') }} {{ 'xlb' is match('lb') }} {{ 'xlb' is search('lb') }}",
                "True False True",
            ),
            (
                "{{ none | ternary('a', 'b', 'n') }} {{ 0 | ternary('a', 'b') }}",
                "n b",
            ),
            (
                "{{ d | to_nice_json }}",
                "{\n    \"a\": 1,\n    \"b\": {\n        \"x\": 1\n    }\n}",
            ),
            ("{{ d | to_nice_yaml }}", "a: 1\nb:\n    x: 1\n"),
        ];
        for (template, want) in cases {
            assert_eq!(render(template, ctx.clone()), want, "{template}");
        }
    }
}
