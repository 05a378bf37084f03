//! Values as Python prints and reads them, and the filters that convert them: `string`,
//! `bool`, `int`, `ternary`, `mandatory`.

use minijinja::{Error, ErrorKind, Value, value::ValueKind};

use crate::source::MAX_FILE_BYTES;

/// A value as Python's `str()` prints it: `True`, `None`, `['a', 1]`, `{'k': 'v'}`.
pub fn python_str(value: &Value) -> String {
    match value.kind() {
        ValueKind::String => value.as_str().unwrap_or_default().to_string(),
        // a `datetime`'s `str()`
        ValueKind::Plain => value.to_string(),
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
    if super::super::chain::lacks_value(value) {
        let message = match super::super::error::last_missing() {
            Some(name) => format!("`{name}` is undefined"),
            None => "the value given to the filter is undefined".into(),
        };
        return Err(Error::new(ErrorKind::UndefinedError, message));
    }
    Ok(())
}

/// Defined throughout, nested at most [`MAX_PRINT_DEPTH`] deep, and printing as at most
/// [`MAX_FILE_BYTES`] of text: what may be printed. Walked without recursion, so a value built
/// a million levels deep is an error, not a stack overflow; and counted before any text is
/// made, so a lazy list of a hundred million items (`[1] * 10 ** 8`) is an error, not gigabytes
/// of memory. Each item counts the bytes it prints as at the least: its separator (`, `), a
/// text's quotes and characters, a number's digits.
pub(crate) fn printable(value: &Value) -> Result<(), Error> {
    let mut bytes: u64 = 0;
    // The containers being walked, each with the map it iterates the keys of (if it does).
    let mut open: Vec<(minijinja::value::ValueIter, Option<Value>)> = Vec::new();
    let mut next = Some(value.clone());
    loop {
        if let Some(v) = next.take() {
            // An undefined item fails as the value would (`{{ [x] }}` with `x` undefined).
            defined(&v)?;
            bytes += match v.kind() {
                ValueKind::String => v.as_str().map_or(0, str::len) as u64 + 2,
                ValueKind::Seq | ValueKind::Iterable | ValueKind::Map => 2,
                _ => 1,
            };
            let container = matches!(
                v.kind(),
                ValueKind::Seq | ValueKind::Iterable | ValueKind::Map
            );
            if container {
                if open.len() >= MAX_PRINT_DEPTH {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!(
                            "the value nests more than {MAX_PRINT_DEPTH} levels deep, too deep \
                             to print"
                        ),
                    ));
                }
                // Each item prints at least a character and its separator: a known length
                // says at once whether they can fit.
                let least = v.len().map_or(0, |n| 3 * n as u64);
                if bytes.saturating_add(least) > MAX_FILE_BYTES {
                    return Err(too_long());
                }
                if let Ok(items) = v.try_iter() {
                    let map = (v.kind() == ValueKind::Map).then_some(v);
                    open.push((items, map));
                }
            }
            if bytes > MAX_FILE_BYTES {
                return Err(too_long());
            }
        }
        let Some((items, map)) = open.last_mut() else {
            return Ok(());
        };
        match items.next() {
            Some(item) => {
                bytes += 2;
                next = Some(match map {
                    Some(map) => {
                        bytes += item.as_str().map_or(1, str::len) as u64 + 2;
                        map.get_item(&item).unwrap_or_default()
                    }
                    None => item,
                });
            }
            None => {
                open.pop();
            }
        }
    }
}

fn too_long() -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!(
            "the value would print as more than {} MiB of text",
            MAX_FILE_BYTES >> 20
        ),
    )
}

pub(crate) fn python_repr(value: &Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, value, 0, Tuples::AsTuples);
    out
}

/// A value as Ansible writes a `{{ }}` result into a template's text: as [`python_str`], but
/// with tuples (`zip`, `subelements`, `(a, b)`) turned into lists first, wherever they are:
/// `{{ (1, 'a') }}` writes `[1, 'a']`, where `{{ (1, 'a') | string }}` writes `(1, 'a')`; and
/// with `omit` items left out (`{{ [1, omit] }}` writes `[1]`).
pub fn printed(value: &Value) -> String {
    match value.kind() {
        ValueKind::String => value.as_str().unwrap_or_default().to_string(),
        ValueKind::Plain => value.to_string(),
        _ => {
            let mut out = String::new();
            write_repr(&mut out, value, 0, Tuples::AsLists);
            out
        }
    }
}

/// How [`write_repr`] writes a tuple (and whether it keeps `omit` items: Python's `repr()`
/// does, a template's output does not).
#[derive(Clone, Copy, PartialEq)]
enum Tuples {
    AsTuples,
    AsLists,
}

/// Writes `value` as Python's `repr()` does into `out`, one text for the whole value (a list of
/// ten million items is one string, not ten million).
fn write_repr(out: &mut String, value: &Value, depth: usize, tuples: Tuples) {
    if depth > MAX_PRINT_DEPTH {
        out.push_str("...");
        return;
    }
    match value.kind() {
        ValueKind::None | ValueKind::Undefined => out.push_str("None"),
        ValueKind::Bool => out.push_str(if value.is_true() { "True" } else { "False" }),
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default();
            let quote = if s.contains('\'') && !s.contains('"') {
                '"'
            } else {
                '\''
            };
            out.push(quote);
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
        }
        ValueKind::Seq | ValueKind::Iterable => {
            // a tuple (`zip`, `subelements`, `d.items()`, `(a, b)`) as Python prints one:
            // `(a, b)`, `(a,)`
            let tuple = tuples == Tuples::AsTuples && value.is_tuple();
            out.push(if tuple { '(' } else { '[' });
            let mut count = 0;
            if let Ok(items) = value.try_iter() {
                for item in items.filter(|item| !finished_omit(item, tuples)) {
                    if count > 0 {
                        out.push_str(", ");
                    }
                    write_repr(out, &item, depth + 1, tuples);
                    count += 1;
                }
            }
            if tuple && count == 1 {
                out.push(',');
            }
            out.push(if tuple { ')' } else { ']' });
        }
        ValueKind::Map => {
            out.push('{');
            if let Ok(keys) = value.try_iter() {
                let mut count = 0;
                for k in keys {
                    let v = value.get_item(&k).unwrap_or_default();
                    if finished_omit(&v, tuples) {
                        continue;
                    }
                    if count > 0 {
                        out.push_str(", ");
                    }
                    count += 1;
                    write_repr(out, &k, depth + 1, tuples);
                    out.push_str(": ");
                    write_repr(out, &v, depth + 1, tuples);
                }
            }
            out.push('}');
        }
        ValueKind::Number if !value.is_integer() => {
            out.push_str(&float_repr(
                f64::try_from(value.clone()).unwrap_or(f64::NAN),
            ));
        }
        _ => match super::datetime::python_repr_of(value) {
            Some(repr) => out.push_str(&repr),
            None => {
                use std::fmt::Write;
                let _ = write!(out, "{value}");
            }
        },
    }
}

/// A float as Python's `repr()` writes it: the fewest digits that read back as the same
/// number, in positional notation from 1e-4 up to below 1e16 (`0.0001`, `1024.0`) and in
/// exponent notation beyond (`1e-05`, `1e+16`, `1.5e+300`); `inf`, `-inf`, `nan`.
pub(crate) fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.into();
    }
    // Rust's `{:e}` gives the same shortest digits as Python's repr: `-1.2345e3`
    let scientific = format!("{:e}", x.abs());
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if x.is_sign_negative() { "-" } else { "" };
    if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        let text = if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            let (whole, fraction) = digits.split_at(point as usize);
            format!("{whole}.{fraction}")
        };
        format!("{sign}{text}")
    } else {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{sign}{first}{rest}e{exponent_sign}{:02}",
            exponent.unsigned_abs()
        )
    }
}

/// Whether `item` of a list or mapping is left out where the value is printed as a
/// template's output (`{{ [1, omit] }}` prints `[1]`); Python's `repr()` keeps it.
fn finished_omit(item: &Value, tuples: Tuples) -> bool {
    tuples == Tuples::AsLists && super::super::omit::is_omit(item)
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

/// Jinja2's `int(default=0, base=10)`: Python's `int(text, base)`, and text that is not a
/// whole number in that base read as a float and cut (`'12' | int(base=2)` is 12); anything
/// else (a base Python refuses, such as 1 or 99, or no number at all) is the default. A
/// number past `i64` stays whole up to `i128` (Python's are unbounded), never cut to `i64`'s
/// largest, which a port or a weight would then report as the value written.
pub(super) fn to_int(value: Value, default: Option<i64>, base: Option<Value>) -> Value {
    let default = Value::from(default.unwrap_or(0));
    match value.kind() {
        ValueKind::Bool => Value::from(i64::from(value.is_true())),
        ValueKind::Number if value.is_integer() => value,
        ValueKind::Number => f64::try_from(value)
            .ok()
            .and_then(float_to_int)
            .unwrap_or(default),
        ValueKind::String => {
            let text = value.as_str().unwrap_or_default();
            // a base that is no whole number is Python's TypeError, caught as its ValueError
            let base = match base {
                None => Some(10),
                Some(b) if b.is_integer() => b.as_i64(),
                Some(_) => None,
            };
            base.and_then(|base| python_int(text, base))
                .map(whole)
                .or_else(|| python_float(text).and_then(float_to_int))
                .unwrap_or(default)
        }
        _ => default,
    }
}

/// A whole number as the smallest integer value that holds it.
fn whole(n: i128) -> Value {
    i64::try_from(n).map_or_else(|_| Value::from(n), Value::from)
}

/// Python's `int(text, base)` (`None`: its ValueError, or a number past `i128`): base 0 reads
/// the base from the prefix (`0x`, `0o`, `0b`, else decimal, where a leading zero is only
/// allowed in zero), bases 2 to 36 read digits in that base, bases 16, 8 and 2 allowing
/// their prefix; one `_` may stand between digits, and after a prefix.
fn python_int(text: &str, base: i64) -> Option<i128> {
    if base != 0 && !(2..=36).contains(&base) {
        return None;
    }
    let text = text.trim();
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let prefixed = match unsigned.as_bytes() {
        [b'0', b'x' | b'X', ..] => Some(16),
        [b'0', b'o' | b'O', ..] => Some(8),
        [b'0', b'b' | b'B', ..] => Some(2),
        _ => None,
    };
    let (base, digits) = match prefixed {
        Some(p) if base == 0 || base == p => {
            (p, unsigned[2..].strip_prefix('_').unwrap_or(&unsigned[2..]))
        }
        _ if base == 0 => {
            if unsigned.starts_with('0') && unsigned.bytes().any(|b| b != b'0' && b != b'_') {
                return None;
            }
            (10, unsigned)
        }
        _ => (base, unsigned),
    };
    let base = u32::try_from(base).ok()?;
    if !underscores_between(digits, u8::is_ascii_alphanumeric) {
        return None;
    }
    let mut n: i128 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let digit = i128::from(c.to_digit(base)?);
        n = n.checked_mul(i128::from(base))?.checked_add(digit)?;
    }
    Some(if negative { -n } else { n })
}

/// Python's `float(text)` (`None`: its ValueError): a decimal number, `inf` or `nan`, one `_`
/// allowed between digits.
pub(super) fn python_float(text: &str) -> Option<f64> {
    let text = text.trim();
    let digits_only = text.trim_start_matches(['+', '-']);
    if !underscores_between(digits_only, u8::is_ascii_digit) {
        return None;
    }
    text.replace('_', "").parse().ok()
}

/// Python's `int(x)` of a float: cut toward zero; infinity and NaN are errors, which Jinja2's
/// `int` turns into the default. Past `i128`, the whole float itself.
fn float_to_int(x: f64) -> Option<Value> {
    const I128_END: f64 = 1.7014118346046923e38; // 2^127
    let cut = x.trunc();
    match cut {
        _ if !x.is_finite() => None,
        #[allow(clippy::cast_possible_truncation)]
        _ if cut.abs() < I128_END => Some(whole(cut as i128)),
        _ => Some(Value::from(cut)),
    }
}

/// Whether `text` is not empty and every `_` in it stands between two `digit`s, as Python's
/// numbers require (an integer's digits may be letters, past base 10; a float's may not).
fn underscores_between(text: &str, digit: fn(&u8) -> bool) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.iter().enumerate().all(|(i, &b)| {
            b != b'_' || (i > 0 && digit(&bytes[i - 1]) && bytes.get(i + 1).is_some_and(digit))
        })
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
