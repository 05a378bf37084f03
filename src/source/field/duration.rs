//! HAProxy's time values (`2s`, `500ms`, `1m`; a bare number is milliseconds), as written
//! and in milliseconds, within what HAProxy can count.

use std::fmt;

use super::values::quote;
use crate::source::{Diagnostic, Diagnostics, Node};

/// An HAProxy time value (`2s`, `500ms`, `1m`, a bare number is milliseconds), in milliseconds.
pub fn duration(
    node: &Node,
    path: &(impl fmt::Display + ?Sized),
    diags: &mut Diagnostics,
) -> Option<Duration> {
    let text = node.as_text().unwrap_or_default();
    match parse_duration(&text) {
        Some(ms) if ms > MAX_TIME_MS => {
            diags.push(
                Diagnostic::new(
                    &node.loc,
                    path.to_string(),
                    format!("{} is longer than HAProxy's longest time value, {MAX_TIME_MS} ms (about 24.8 days)", quote(&text)),
                )
                .hint("use at most 24d (HAProxy keeps its timers in 31 bits of milliseconds)"),
            );
            None
        }
        Some(ms) => Some(Duration { text, ms }),
        None => {
            diags.push(
                Diagnostic::new(
                    &node.loc,
                    path.to_string(),
                    format!("{} is not an HAProxy time value", quote(&text)),
                )
                .hint("use a number with a unit: 500ms, 2s, 1m, 1h (us, ms, s, m, h, d)"),
            );
            None
        }
    }
}

/// A [`duration`] that must not be zero, such as a health check's interval (HAProxy refuses
/// `inter 0`: the check would never run).
pub fn positive_duration(
    node: &Node,
    path: &(impl fmt::Display + ?Sized),
    diags: &mut Diagnostics,
) -> Option<Duration> {
    let d = duration(node, path, diags)?;
    if d.ms == 0 {
        diags.push(
            Diagnostic::new(
                &node.loc,
                path.to_string(),
                format!("{} is zero: the check would never run", quote(&d.text)),
            )
            .hint("use a positive interval, e.g. 2s or 500ms"),
        );
        return None;
    }
    Some(d)
}

/// HAProxy's longest time value: timers are signed 32-bit counts of milliseconds.
pub const MAX_TIME_MS: u64 = i32::MAX as u64;

/// A time value as written (rendered verbatim) and its length in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Duration {
    pub text: String,
    pub ms: u64,
}

/// HAProxy's time value in milliseconds, microseconds rounded up as HAProxy rounds them (so
/// `500us` is 1 ms, not 0); a value too large to count is `u64::MAX`, past every limit.
pub fn parse_duration(text: &str) -> Option<u64> {
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 || digits > 18 {
        return None;
    }
    let n: u64 = text[..digits].parse().ok()?;
    let ms = match &text[digits..] {
        "us" => Some(n.div_ceil(1000)),
        "" | "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => return None,
    };
    Some(ms.unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Some(2000));
        assert_eq!(parse_duration("500"), Some(500));
        assert_eq!(parse_duration("1m"), Some(60_000));
        assert_eq!(parse_duration("2 s"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("2sec"), None);
        assert_eq!(parse_duration("500us"), Some(1));
        assert_eq!(parse_duration("0us"), Some(0));
        assert_eq!(parse_duration("2147483647"), Some(2_147_483_647));
        assert_eq!(parse_duration("999999999999999999d"), Some(u64::MAX));
    }
}
