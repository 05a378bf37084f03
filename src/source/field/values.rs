//! Scalar values: strings, whole numbers and ports, booleans as Ansible spells them, and one
//! of a fixed set of words.

use std::fmt;

use super::shape::suggest;
use crate::source::{Diagnostic, Diagnostics, Node, Value};

pub fn string(
    node: &Node,
    path: &(impl fmt::Display + ?Sized),
    diags: &mut Diagnostics,
) -> Option<String> {
    match &node.value {
        Value::Str(_) | Value::Int(_) | Value::Float(_) => node.as_text(),
        _ => {
            diags.push(
                Diagnostic::new(
                    &node.loc,
                    path.to_string(),
                    format!("expected a string, found {}", node.kind()),
                )
                .hint("write one text value here (in quotes where YAML would read it as something else: key: \"yes\")"),
            );
            None
        }
    }
}

/// An integer in `min..=max`; numeric strings are accepted, as Ansible's `-e k=v` gives strings.
pub fn int(
    node: &Node,
    path: &(impl fmt::Display + ?Sized),
    min: i64,
    max: i64,
    diags: &mut Diagnostics,
) -> Option<i64> {
    let n = match &node.value {
        Value::Int(i) => Some(*i),
        Value::Str(s) => s.trim().parse().ok(),
        // 4096.0, as a template's division gives it (`{{ 8192 / 2 }}`): the whole number
        #[allow(clippy::cast_possible_truncation)]
        Value::Float(x) if x.fract() == 0.0 && x.abs() < 1e15 => Some(*x as i64),
        _ => None,
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Some(n),
        Some(n) => {
            diags.push(
                Diagnostic::new(&node.loc, path.to_string(), format!("{n} is out of range"))
                    .hint(format!("use a whole number from {min} to {max}")),
            );
            None
        }
        None => {
            let message = match &node.value {
                // whole numbers past i64 (every range here is far below 1e15)
                Value::Str(s) if is_whole_number(s.trim()) => {
                    format!("{} is out of range", s.trim())
                }
                Value::Float(x) if x.is_finite() && x.fract() == 0.0 => {
                    format!("{x:.0} is out of range")
                }
                _ => format!("expected a whole number, found {}", describe(node)),
            };
            diags.push(
                Diagnostic::new(&node.loc, path.to_string(), message)
                    .hint(format!("use a whole number from {min} to {max}")),
            );
            None
        }
    }
}

/// Decimal digits, with a sign or not.
fn is_whole_number(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

pub fn port(
    node: &Node,
    path: &(impl fmt::Display + ?Sized),
    diags: &mut Diagnostics,
) -> Option<u16> {
    int(node, path, 1, 65535, diags).map(|p| p as u16)
}

/// A boolean, accepting the spellings Ansible accepts (`yes`, `on`, `True`, ...).
pub fn boolean(
    node: &Node,
    path: &(impl fmt::Display + ?Sized),
    diags: &mut Diagnostics,
) -> Option<bool> {
    let b = match &node.value {
        Value::Bool(b) => Some(*b),
        Value::Str(s) => match s.to_ascii_lowercase().as_str() {
            "yes" | "true" | "on" | "y" | "1" => Some(true),
            "no" | "false" | "off" | "n" | "0" => Some(false),
            _ => None,
        },
        Value::Int(1) => Some(true),
        Value::Int(0) => Some(false),
        _ => None,
    };
    if b.is_none() {
        diags.push(
            Diagnostic::new(
                &node.loc,
                path.to_string(),
                format!("expected true or false, found {}", describe(node)),
            )
            .hint("write true or false"),
        );
    }
    b
}

pub fn one_of(
    node: &Node,
    path: &str,
    allowed: &[&str],
    what: &str,
    diags: &mut Diagnostics,
) -> Option<String> {
    let text = node.as_text().unwrap_or_default();
    if allowed.contains(&text.as_str()) {
        return Some(text);
    }
    let d = Diagnostic::new(&node.loc, path, format!("unknown {what} {}", quote(&text)));
    diags.push(match suggest(&text, allowed.iter().copied()) {
        Some(s) => d.hint(format!(
            "did you mean `{s}`? (one of: {})",
            allowed.join(", ")
        )),
        None => d.hint(format!("use one of: {}", allowed.join(", "))),
    });
    None
}

fn describe(node: &Node) -> String {
    if let Value::Float(x) = node.value {
        return format!("the number {x:?}");
    }
    match node.as_text() {
        Some(t) => quote(&t),
        None => node.kind().to_string(),
    }
}

/// Shows a user's value with invisible characters escaped, so a stray newline is visible.
pub fn quote(s: &str) -> String {
    format!("{s:?}")
}
