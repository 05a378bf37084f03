//! Ansible's own tests: `version` (and `version_compare`: `haproxy_version is version('2.4',
//! '>=')`, loose or strict versions as Ansible compares them), `subset`, `superset`,
//! `contains`, `any`, `all`, `truthy` and `falsy`, also under their `ansible.builtin.` names.

use std::cmp::Ordering;

use minijinja::{
    Environment, Error, ErrorKind, Value,
    value::{Kwargs, ValueKind},
};

use super::python::{defined, python_str};

pub(super) fn register(env: &mut Environment<'static>) {
    for name in ["version", "version_compare"] {
        for full in [name.to_string(), format!("ansible.builtin.{name}")] {
            env.add_test(full, version);
        }
    }
    type Sets = fn(&[Value], &[Value]) -> bool;
    let sets: [(&[&str], Sets); 2] = [
        (&["subset", "issubset"], |a, b| within(a, b)),
        (&["superset", "issuperset"], |a, b| within(b, a)),
    ];
    for (names, test) in sets {
        for name in names {
            for full in [name.to_string(), format!("ansible.builtin.{name}")] {
                env.add_test(full, move |a: Value, b: Value| {
                    Ok::<_, Error>(test(&items(&a)?, &items(&b)?))
                });
            }
        }
    }
    for full in ["contains", "ansible.builtin.contains"] {
        env.add_test(full, |seq: Value, value: Value| {
            defined(&seq)?;
            Ok::<_, Error>(items(&seq)?.contains(&value))
        });
    }
    for (name, every) in [("any", false), ("all", true)] {
        for full in [name.to_string(), format!("ansible.builtin.{name}")] {
            env.add_test(full, move |value: Value| {
                let items = items(&value)?;
                Ok::<_, Error>(if every {
                    items.iter().all(Value::is_true)
                } else {
                    items.iter().any(Value::is_true)
                })
            });
        }
    }
    for (name, truth) in [("truthy", true), ("falsy", false)] {
        for full in [name.to_string(), format!("ansible.builtin.{name}")] {
            env.add_test(
                full,
                move |value: Value, convert: Option<bool>, kw: Kwargs| {
                    let convert = super::positional_or_keyword(convert, &kw, "convert_bool")?;
                    kw.assert_all_used()?;
                    defined(&value)?;
                    Ok::<_, Error>(truthy(&value, convert.unwrap_or(false)) == truth)
                },
            );
        }
    }
}

/// Whether every item of `a` is in `b` (Python's `set(a) <= set(b)`), looked up by hash.
fn within(a: &[Value], b: &[Value]) -> bool {
    let b = super::lists::set_of(b);
    a.iter().all(|x| b.contains(x))
}

/// Python's `bool(value)`, after Ansible's `boolean()` when `convert` (`'no'`, `'off'` are
/// false then).
fn truthy(value: &Value, convert: bool) -> bool {
    if convert {
        let text = value.as_str().map(|t| t.trim().to_lowercase());
        match text.as_deref() {
            Some("y" | "yes" | "on" | "1" | "true" | "t") => return true,
            Some("n" | "no" | "off" | "0" | "false" | "f") => return false,
            _ => {}
        }
    }
    value.is_true()
}

/// The items of a list (a text's characters, a mapping's keys), as Python's `set()` and `in`
/// see them.
fn items(value: &Value) -> Result<Vec<Value>, Error> {
    defined(value)?;
    super::lists::items_of(value)
        .ok_or_else(|| invalid(format!("'{}' object is not iterable", type_name(value))))
}

/// `value is version(other, operator='eq', strict=None, version_type=None)`.
fn version(
    value: Value,
    other: Value,
    operator: Option<String>,
    strict: Option<bool>,
    kw: Kwargs,
) -> Result<bool, Error> {
    let operator = super::positional_or_keyword(operator, &kw, "operator")?;
    let strict = super::positional_or_keyword(strict, &kw, "strict")?;
    let kind: Option<String> = kw.get("version_type")?;
    kw.assert_all_used()?;
    defined(&value)?;
    defined(&other)?;
    if strict.is_some() && kind.is_some() {
        return Err(invalid(
            "Cannot specify both 'strict' and 'version_type'".into(),
        ));
    }
    if !value.is_true() {
        return Err(invalid("Input version value cannot be empty".into()));
    }
    if !other.is_true() {
        return Err(invalid(
            "Version parameter to compare against cannot be empty".into(),
        ));
    }
    let scheme = match (strict, kind.as_deref()) {
        (Some(true), _) => Scheme::Strict,
        (Some(false), _) | (None, None | Some("loose")) => Scheme::Loose,
        (None, Some("strict")) => Scheme::Strict,
        (None, Some("semver" | "semantic")) => Scheme::Semantic,
        (None, Some("pep440")) => {
            return Err(invalid(
                "version_type 'pep440' is not supported by lbctl ('loose', the default, 'strict' and 'semver' are)".into(),
            ));
        }
        (None, Some(other)) => {
            return Err(invalid(format!(
                "Invalid version type ({other}). Must be one of 'loose', 'strict', 'semver', 'semantic', 'pep440'"
            )));
        }
    };
    let operator = operator.unwrap_or_else(|| "eq".into());
    let wanted: &[Ordering] = match operator.as_str() {
        "==" | "=" | "eq" => &[Ordering::Equal],
        "<" | "lt" => &[Ordering::Less],
        "<=" | "le" => &[Ordering::Less, Ordering::Equal],
        ">" | "gt" => &[Ordering::Greater],
        ">=" | "ge" => &[Ordering::Greater, Ordering::Equal],
        "!=" | "<>" | "ne" => &[Ordering::Less, Ordering::Greater],
        _ => {
            return Err(invalid(format!(
                "Invalid operator type ({operator}). Must be one of '==', '=', 'eq', '<', 'lt', '<=', 'le', '>', 'gt', '>=', 'ge', '!=', '<>', 'ne'"
            )));
        }
    };
    let (a, b) = (python_str(&value), python_str(&other));
    let order = match scheme {
        Scheme::Loose => loose_cmp(&loose_version(&a), &loose_version(&b))?,
        Scheme::Strict => strict_version(&a)?.cmp(&strict_version(&b)?),
        Scheme::Semantic => semantic_version(&a)?.cmp(&semantic_version(&b)?),
    };
    Ok(wanted.contains(&order))
}

/// How versions are read and compared (`version_type`).
enum Scheme {
    Loose,
    Strict,
    Semantic,
}

/// A part of a loose version: a number or a text.
#[derive(Debug, PartialEq, Eq)]
enum Part {
    /// Digits, without leading zeros (compared by length, then digit by digit).
    Number(String),
    Text(String),
}

/// Ansible's `LooseVersion`: the runs of digits, of lowercase letters and of anything else, dots
/// left out; runs of digits are numbers.
fn loose_version(text: &str) -> Vec<Part> {
    #[derive(PartialEq, Clone, Copy)]
    enum Run {
        Digits,
        Letters,
        Other,
    }
    let run_of = |c: char| match c {
        '0'..='9' => Some(Run::Digits),
        'a'..='z' => Some(Run::Letters),
        '.' => None,
        _ => Some(Run::Other),
    };
    let mut parts = Vec::new();
    let mut current: Option<(Run, String)> = None;
    for c in text.chars() {
        let run = run_of(c);
        match (&mut current, run) {
            (Some((kind, text)), Some(run)) if *kind == run => text.push(c),
            _ => {
                parts.extend(current.take().map(|(_, text)| part(text)));
                current = run.map(|run| (run, c.to_string()));
            }
        }
    }
    parts.extend(current.map(|(_, text)| part(text)));
    parts
}

fn part(text: String) -> Part {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let trimmed = text.trim_start_matches('0');
        Part::Number(if trimmed.is_empty() { "0" } else { trimmed }.to_string())
    } else {
        Part::Text(text)
    }
}

/// Python's comparison of two loose versions' lists: a number and a text cannot be compared.
fn loose_cmp(a: &[Part], b: &[Part]) -> Result<Ordering, Error> {
    for (x, y) in a.iter().zip(b) {
        let order = match (x, y) {
            (Part::Number(x), Part::Number(y)) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
            (Part::Text(x), Part::Text(y)) => x.cmp(y),
            (x, y) => {
                let name = |p: &Part| match p {
                    Part::Number(_) => "int",
                    Part::Text(_) => "str",
                };
                return Err(invalid(format!(
                    "Version comparison failed: '<' not supported between instances of '{}' and '{}'",
                    name(x),
                    name(y)
                )));
            }
        };
        if order != Ordering::Equal {
            return Ok(order);
        }
    }
    Ok(a.len().cmp(&b.len()))
}

/// Ansible's `StrictVersion`: `MAJOR.MINOR[.PATCH][{a|b}N]`; a pre-release comes before its
/// release.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Strict {
    release: [u128; 3],
    /// `None` sorts after every pre-release.
    pre: PreRelease,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PreRelease {
    Of(char, u128),
    None,
}

fn strict_version(text: &str) -> Result<Strict, Error> {
    let bad = || {
        invalid(format!(
            "Version comparison failed: invalid version number '{text}'"
        ))
    };
    let number = |digits: &str| -> Result<u128, Error> {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        digits.parse().map_err(|_| bad())
    };
    let (release, pre) = match text.find(['a', 'b']) {
        Some(at) => (&text[..at], Some((&text[at..at + 1], &text[at + 1..]))),
        None => (text, None),
    };
    let numbers: Vec<&str> = release.split('.').collect();
    let release = match numbers[..] {
        [major, minor] => [number(major)?, number(minor)?, 0],
        [major, minor, patch] => [number(major)?, number(minor)?, number(patch)?],
        _ => return Err(bad()),
    };
    let pre = match pre {
        None => PreRelease::None,
        Some((letter, n)) => PreRelease::Of(letter.chars().next().unwrap_or('a'), number(n)?),
    };
    Ok(Strict { release, pre })
}

/// Ansible's `SemanticVersion` (Semantic Versioning 2.0.0): `MAJOR.MINOR.PATCH`, then a
/// pre-release (`-rc.1`, before its release) and build metadata (`+build.5`, ignored).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Semantic {
    core: [Number; 3],
    /// A release sorts after its pre-releases.
    released: bool,
    pre: Vec<Identifier>,
}

/// Digits without leading zeros, compared by length, then digit by digit.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Number(usize, String);

/// A pre-release identifier: numbers sort before texts.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Identifier {
    Numeric(Number),
    Alpha(String),
}

fn semantic_version(text: &str) -> Result<Semantic, Error> {
    let bad = || {
        invalid(format!(
            "Version comparison failed: invalid semantic version '{text}'"
        ))
    };
    let number = |digits: &str| {
        let valid = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        valid.then(|| Number(digits.len(), digits.to_string()))
    };
    let word_chars = |word: &str| {
        !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let (version, build) = match text.split_once('+') {
        Some((version, build)) => (version, Some(build)),
        None => (text, None),
    };
    if build.is_some_and(|build| !build.split('.').all(word_chars)) {
        return Err(bad());
    }
    let (core, pre) = match version.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (version, None),
    };
    let core: Vec<Number> = core
        .split('.')
        .map(number)
        .collect::<Option<_>>()
        .ok_or_else(bad)?;
    let core: [Number; 3] = core.try_into().map_err(|_| bad())?;
    let mut identifiers = Vec::new();
    for word in pre
        .map(|p| p.split('.').collect::<Vec<_>>())
        .unwrap_or_default()
    {
        if !word_chars(word) {
            return Err(bad());
        }
        identifiers.push(if word.bytes().all(|b| b.is_ascii_digit()) {
            Identifier::Numeric(number(word).ok_or_else(bad)?)
        } else {
            Identifier::Alpha(word.to_string())
        });
    }
    Ok(Semantic {
        core,
        released: identifiers.is_empty(),
        pre: identifiers,
    })
}

fn type_name(value: &Value) -> &'static str {
    match value.kind() {
        ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number if value.is_integer() => "int",
        ValueKind::Number => "float",
        _ => "object",
    }
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}
