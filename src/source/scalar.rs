//! Scalars typed as YAML 1.1 and Ansible read them: plain `yes`/`no`, `0x1f`, `1_000`,
//! `.inf`, and explicit tags (`!!int`, `!!binary`, `!vault`, ...).

use std::sync::Arc;

use super::node::Value;

/// An unquoted scalar resolved as PyYAML's YAML 1.1 resolver (Ansible's) does; `None` for a
/// string. `yes`/`no`/`on`/`off` are booleans, `051` is octal, `1_000` and `1:30` (base 60)
/// are integers, and a float needs a dot (`1e3` is a string).
pub(super) fn plain_scalar(text: &str) -> Option<Value> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => {
            return Some(Value::Bool(true));
        }
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
            return Some(Value::Bool(false));
        }
        _ => {}
    }
    let first = text.as_bytes()[0];
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    yaml11_int(text)
        .map(Value::Int)
        .or_else(|| yaml11_float(text).map(Value::Float))
}

/// PyYAML's int: `[-+]?0b[01_]+`, `[-+]?0[0-7_]+` (octal), `[-+]?(0|[1-9][0-9_]*)`,
/// `[-+]?0x[0-9a-fA-F_]+`, `[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+` (base 60).
fn yaml11_int(text: &str) -> Option<i64> {
    let (negative, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let digits = |s: &str, radix: u32| {
        !s.is_empty()
            && s.chars().all(|c| c == '_' || c.is_digit(radix))
            && s.chars().any(|c| c != '_')
    };
    let parse = |s: &str, radix: u32| i64::from_str_radix(&s.replace('_', ""), radix).ok();
    let value = if let Some(bin) = body.strip_prefix("0b") {
        digits(bin, 2).then(|| parse(bin, 2))??
    } else if let Some(hex) = body.strip_prefix("0x") {
        digits(hex, 16).then(|| parse(hex, 16))??
    } else if body == "0" {
        0
    } else if let Some(oct) = body.strip_prefix('0') {
        digits(oct, 8).then(|| parse(oct, 8))??
    } else if body.contains(':') {
        let mut parts = body.split(':');
        let head = parts.next()?;
        if !digits(head, 10) || head.starts_with('0') {
            return None;
        }
        let mut n = parse(head, 10)?;
        for part in parts {
            if part.is_empty() || part.len() > 2 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let sixty: i64 = part.parse().ok()?;
            if sixty > 59 {
                return None;
            }
            n = n.checked_mul(60)?.checked_add(sixty)?;
        }
        n
    } else if body.starts_with(|c: char| c.is_ascii_digit()) && digits(body, 10) {
        parse(body, 10)?
    } else {
        return None;
    };
    Some(if negative { -value } else { value })
}

/// PyYAML's float: digits with a dot (and an exponent with a sign), base 60 with a dot,
/// `.inf` and `.nan`.
fn yaml11_float(text: &str) -> Option<f64> {
    let (negative, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let sign = if negative { -1.0 } else { 1.0 };
    match body {
        ".inf" | ".Inf" | ".INF" => return Some(sign * f64::INFINITY),
        ".nan" | ".NaN" | ".NAN" if body.len() == text.len() => return Some(f64::NAN),
        _ => {}
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    if let Some(exp) = exponent {
        let digits = exp.strip_prefix(['-', '+'])?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    let (whole, fraction) = mantissa.split_once('.')?;
    if !fraction.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return None;
    }
    let whole_value = if whole.contains(':') {
        let mut parts = whole.split(':');
        let head = parts.next()?;
        if head.is_empty() || !head.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
            return None;
        }
        let mut n: f64 = head.replace('_', "").parse().ok()?;
        for part in parts {
            if part.is_empty() || part.len() > 2 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            n = n * 60.0 + part.parse::<f64>().ok()?;
        }
        if exponent.is_some() {
            return None;
        }
        let frac: f64 = format!("0.{}", fraction.replace('_', "")).parse().ok()?;
        return Some(sign * (n + frac));
    } else {
        let digits = whole.as_bytes().first().is_some_and(u8::is_ascii_digit)
            && whole.bytes().all(|b| b.is_ascii_digit() || b == b'_');
        if !whole.is_empty() && !digits {
            return None;
        }
        if whole.is_empty() && fraction.is_empty() {
            return None;
        }
        whole
    };
    let plain = format!(
        "{}.{}{}",
        if whole_value.is_empty() {
            "0"
        } else {
            whole_value
        },
        fraction,
        exponent.map(|e| format!("e{e}")).unwrap_or_default()
    )
    .replace('_', "");
    plain.parse::<f64>().ok().map(|x| sign * x)
}

/// Why a tagged scalar does not read as its tag says.
#[derive(Debug, thiserror::Error)]
pub(super) enum TagError {
    #[error("`{text}` is not a valid !!{tag}")]
    Invalid { text: String, tag: String },
    #[error("this !!binary value is not valid base64")]
    Base64,
    #[error("this !!binary value is not UTF-8 text, which lbctl can use")]
    NotUtf8,
}

/// A scalar with an explicit tag: YAML's own (`!!str`, `!!int`, `!!binary`, ...) and
/// Ansible's `!vault` and `!unsafe`. `Ok(None)` keeps it as a string.
pub(super) fn tagged_scalar(
    tag: &saphyr_parser::Tag,
    text: &str,
) -> Result<Option<Value>, TagError> {
    if tag.is_yaml_core_schema() {
        return match tag.suffix.as_str() {
            "str" => Ok(None),
            "null" => Ok(Some(Value::Null)),
            "bool" | "int" | "float" => plain_scalar(text)
                .filter(|v| {
                    matches!(
                        (tag.suffix.as_str(), v),
                        ("bool", Value::Bool(_))
                            | ("int", Value::Int(_))
                            | ("float", Value::Float(_))
                    ) || (tag.suffix == "float" && matches!(v, Value::Int(_)))
                })
                .map(|v| match v {
                    Value::Int(i) if tag.suffix == "float" => Value::Float(i as f64),
                    v => v,
                })
                .map(Some)
                .ok_or_else(|| TagError::Invalid {
                    text: text.to_string(),
                    tag: tag.suffix.clone(),
                }),
            "binary" => {
                let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
                let bytes = crate::source::base64::decode(&compact).ok_or(TagError::Base64)?;
                String::from_utf8(bytes)
                    .map(|s| Some(Value::Str(Arc::from(s))))
                    .map_err(|_| TagError::NotUtf8)
            }
            _ => Ok(None),
        };
    }
    match (tag.handle.as_str(), tag.suffix.as_str()) {
        ("!", "vault" | "vault-encrypted") => Ok(Some(Value::Vault(Arc::from(text.trim())))),
        ("!", "unsafe") => Ok(Some(Value::Unsafe(Arc::from(text)))),
        _ => Ok(None),
    }
}
