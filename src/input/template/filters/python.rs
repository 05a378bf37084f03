//! Values as Python prints and reads them, and the filters that convert them: `string`,
//! `bool`, `int`, `ternary`, `mandatory`.

use minijinja::{Error, ErrorKind, Value, value::ValueKind};

/// A value as Python's `str()` prints it: `True`, `None`, `['a', 1]`, `{'k': 'v'}`.
pub fn python_str(value: &Value) -> String {
    match value.kind() {
        ValueKind::String => value.as_str().unwrap_or_default().to_string(),
        _ => python_repr(value),
    }
}

/// How deep a value may nest to be printed: Python's own limit (`repr` of a list nested a
/// thousand deep is a `RecursionError`) is about here too. Deeper, a printer writes `...`;
/// the filters that print refuse it first ([`printable`]).
pub(crate) const MAX_PRINT_DEPTH: usize = 500;

/// An undefined value given to a filter that needs one is an error, as in Ansible (`{{ pass
/// | string }}` with `pass` undefined would otherwise print `None`).
pub(super) fn defined(value: &Value) -> Result<(), Error> {
    if value.is_undefined() {
        let message = match super::super::error::last_missing() {
            Some(name) => format!("`{name}` is undefined"),
            None => "the value given to the filter is undefined".into(),
        };
        return Err(Error::new(ErrorKind::UndefinedError, message));
    }
    Ok(())
}

/// Defined, and nested at most [`MAX_PRINT_DEPTH`] deep: what may be printed. Walked without
/// recursion, so a value built a million levels deep is an error, not a stack overflow.
pub(crate) fn printable(value: &Value) -> Result<(), Error> {
    defined(value)?;
    let mut stack = vec![(value.clone(), 0usize)];
    while let Some((v, depth)) = stack.pop() {
        if !matches!(
            v.kind(),
            ValueKind::Seq | ValueKind::Iterable | ValueKind::Map
        ) {
            continue;
        }
        if depth >= MAX_PRINT_DEPTH {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "the value nests more than {MAX_PRINT_DEPTH} levels deep, too deep to print"
                ),
            ));
        }
        let Ok(items) = v.try_iter() else { continue };
        let is_map = v.kind() == ValueKind::Map;
        for item in items {
            let child = if is_map {
                v.get_item(&item).unwrap_or_default()
            } else {
                item
            };
            stack.push((child, depth + 1));
        }
    }
    Ok(())
}

pub(crate) fn python_repr(value: &Value) -> String {
    python_repr_at(value, 0)
}

fn python_repr_at(value: &Value, depth: usize) -> String {
    if depth > MAX_PRINT_DEPTH {
        return "...".into();
    }
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
                .map(|it| it.map(|v| python_repr_at(&v, depth + 1)).collect())
                .unwrap_or_default();
            format!("[{}]", items.join(", "))
        }
        ValueKind::Map => {
            let items: Vec<String> = value
                .try_iter()
                .map(|it| {
                    it.map(|k| {
                        let v = value.get_item(&k).unwrap_or_default();
                        format!(
                            "{}: {}",
                            python_repr_at(&k, depth + 1),
                            python_repr_at(&v, depth + 1)
                        )
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
pub(super) fn to_bool(value: Value) -> bool {
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
pub(super) fn to_int(value: Value, default: Option<i64>, base: Option<u32>) -> i64 {
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

pub(super) fn ternary(value: Value, yes: Value, no: Value, none: Option<Value>) -> Value {
    match (value.is_none(), none) {
        (true, Some(n)) => n,
        _ if value.is_true() => yes,
        _ => no,
    }
}

pub(super) fn mandatory(value: Value, msg: Option<String>) -> Result<Value, Error> {
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            msg.unwrap_or_else(|| "a mandatory variable is not defined".into()),
        ));
    }
    Ok(value)
}
