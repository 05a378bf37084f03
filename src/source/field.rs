//! Reading typed values out of positioned vars, recording a located diagnostic for every
//! problem instead of stopping at the first.

use std::{fmt, net::IpAddr};

use crate::{
    source::{Diagnostic, Diagnostics},
    source::{Entry, Node, Value},
};

/// The entries of a mapping whose keys must all be in `allowed`; unknown keys are reported
/// with the closest allowed key as a suggestion.
pub fn mapping<'a>(
    node: &'a Node,
    path: &(impl fmt::Display + ?Sized),
    allowed: &[&str],
    diags: &mut Diagnostics,
) -> Option<&'a [Entry]> {
    let Value::Map(entries) = &node.value else {
        diags.push(Diagnostic::new(
            &node.loc,
            path.to_string(),
            format!("expected a mapping, found {}", node.kind()),
        ));
        return None;
    };
    for (key, loc, _) in entries {
        if !allowed.contains(&&**key) && !template_reads(key) {
            let d = Diagnostic::new(loc, join(path, key), format!("unknown key `{key}`"));
            diags.push(match suggest(key, allowed.iter().copied()) {
                Some(s) => d.hint(format!("did you mean `{s}`?")),
                None => d.hint(format!("allowed keys here: {}", allowed.join(", "))),
            });
        }
    }
    Some(entries)
}

thread_local! {
    /// Names the user's own templates mention, while they are in force ([`with_template_keys`]).
    static TEMPLATE_KEYS: std::cell::RefCell<std::collections::BTreeSet<String>> =
        const { std::cell::RefCell::new(std::collections::BTreeSet::new()) };
}

/// Runs `f` (a validation) with `keys` allowed wherever lbctl checks key names: a key the
/// user's own template reads (`server.maxconn`) is theirs, not a typo of lbctl's.
pub fn with_template_keys<T>(keys: std::collections::BTreeSet<String>, f: impl FnOnce() -> T) -> T {
    let previous = TEMPLATE_KEYS.with(|k| std::mem::replace(&mut *k.borrow_mut(), keys));
    let out = f();
    TEMPLATE_KEYS.with(|k| *k.borrow_mut() = previous);
    out
}

/// Whether the user's own templates read `key`.
pub fn template_reads(key: &str) -> bool {
    TEMPLATE_KEYS.with(|k| k.borrow().contains(key))
}

/// The names a Jinja2 template mentions inside `{{ }}` and `{% %}`: identifiers, and the text
/// of string literals (`server['maxconn']`).
pub fn template_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(open) = rest.find(['{']) {
        let after = &rest[open + 1..];
        let close = match after.chars().next() {
            Some('{') => "}}",
            Some('%') => "%}",
            _ => {
                rest = after;
                continue;
            }
        };
        let Some(end) = after.find(close) else { break };
        let block = &after[1..end];
        let mut chars = block.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '\'' || c == '"' {
                let body: String = chars
                    .by_ref()
                    .map(|(_, c)| c)
                    .take_while(|x| *x != c)
                    .collect();
                names.insert(body);
            } else if c.is_ascii_alphabetic() || c == '_' {
                let mut j = i + c.len_utf8();
                while let Some((k, d)) = chars.peek().copied() {
                    if d.is_ascii_alphanumeric() || d == '_' {
                        j = k + d.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                names.insert(block[i..j].to_string());
            }
        }
        rest = &after[end + close.len()..];
    }
    names
}

/// The value of `key` among a mapping's entries (as returned by [`mapping`]).
pub fn entry<'a>(entries: &'a [Entry], key: &str) -> Option<&'a Node> {
    entries
        .iter()
        .find(|(k, _, _)| **k == *key)
        .map(|(_, _, v)| v)
}

/// The closest candidate to a misspelt key, if one is close enough to be a likely typo.
pub fn suggest<'a>(key: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::damerau_levenshtein(key, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 5))
        .min()
        .map(|(_, c)| c)
}

/// The items of a list of `what` (e.g. "backends"); null is an empty list, anything else is
/// reported and read as empty.
pub fn list<'a>(node: &'a Node, path: &str, what: &str, diags: &mut Diagnostics) -> &'a [Node] {
    match &node.value {
        Value::Null => &[],
        Value::Seq(items) => items,
        _ => {
            diags.push(
                Diagnostic::new(
                    &node.loc,
                    path,
                    format!("expected a list of {what}, found {}", node.kind()),
                )
                .hint(format!(
                    "each {} is a list item starting with `- name:`",
                    what.trim_end_matches('s')
                )),
            );
            &[]
        }
    }
}

pub fn join(path: &(impl fmt::Display + ?Sized), key: &str) -> String {
    Key(path, key).to_string()
}

/// `path.key` (`key` alone under the root), spelled out only when a diagnostic names it:
/// a 20,000-backend file has about a million values, and almost all of them are fine.
pub struct Key<'a, P: ?Sized>(pub &'a P, pub &'a str);

impl<P: fmt::Display + ?Sized> fmt::Display for Key<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.0.to_string();
        if path.is_empty() {
            f.write_str(self.1)
        } else {
            write!(f, "{path}.{}", self.1)
        }
    }
}

/// `path[index]`, spelled out only when a diagnostic names it.
pub struct Index<'a, P: ?Sized>(pub &'a P, pub usize);

impl<P: fmt::Display + ?Sized> fmt::Display for Index<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]", self.0, self.1)
    }
}

pub fn string(
    node: &Node,
    path: &(impl fmt::Display + ?Sized),
    diags: &mut Diagnostics,
) -> Option<String> {
    match &node.value {
        Value::Str(_) | Value::Int(_) | Value::Float(_) => node.as_text(),
        _ => {
            diags.push(Diagnostic::new(
                &node.loc,
                path.to_string(),
                format!("expected a string, found {}", node.kind()),
            ));
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
            diags.push(
                Diagnostic::new(
                    &node.loc,
                    path.to_string(),
                    format!("expected a whole number, found {}", describe(node)),
                )
                .hint(format!("use a whole number from {min} to {max}")),
            );
            None
        }
    }
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

/// A name that ends up in a config file: it must not be able to carry a directive with it.
pub fn identifier(
    node: &Node,
    path: &(impl fmt::Display + ?Sized),
    diags: &mut Diagnostics,
) -> Option<String> {
    let text = string(node, path, diags)?;
    if is_identifier(&text) {
        Some(text)
    } else {
        diags.push(
            Diagnostic::new(&node.loc, path.to_string(), format!("{} is not a safe name", quote(&text)))
                .hint("names use letters, digits, `-`, `_` and `.`, start with a letter or digit, at most 64 characters"),
        );
        None
    }
}

pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// An IP address or DNS host name.
pub fn address(
    node: &Node,
    path: &(impl fmt::Display + ?Sized),
    diags: &mut Diagnostics,
) -> Option<String> {
    let text = string(node, path, diags)?;
    if text.parse::<IpAddr>().is_ok() || is_hostname(&text) {
        Some(text)
    } else {
        diags.push(
            Diagnostic::new(
                &node.loc,
                path.to_string(),
                format!("{} is not an IP address or host name", quote(&text)),
            )
            .hint("write an IPv4/IPv6 address such as 192.168.1.11, or a DNS name"),
        );
        None
    }
}

pub fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && !s.chars().all(|c| c.is_ascii_digit() || c == '.')
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// A TLS server name or HTTP host as clients send it: a DNS name, or `*.` and a DNS name for
/// every name under it. Lowercased: both are matched case-insensitively.
pub fn server_name(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<String> {
    let text = string(node, path, diags)?;
    if is_server_name(&text) {
        Some(text.to_ascii_lowercase())
    } else {
        diags.push(
            Diagnostic::new(
                &node.loc,
                path,
                format!("{} is not a host name", quote(&text)),
            )
            .hint("write a DNS name such as vault.example.com, or *.example.com for every name under example.com"),
        );
        None
    }
}

pub fn is_server_name(s: &str) -> bool {
    is_hostname(s.strip_prefix("*.").unwrap_or(s))
}

/// One value or a list of them, as Ansible users write either (`sni: a.example.com` or
/// `sni: [a.example.com, b.example.com]`); an empty list is reported.
pub fn one_or_many<'a>(
    node: &'a Node,
    path: &str,
    diags: &mut Diagnostics,
) -> Vec<(String, &'a Node)> {
    match &node.value {
        Value::Seq(items) => {
            if items.is_empty() {
                diags.push(
                    Diagnostic::new(&node.loc, path, "empty list")
                        .hint("give at least one value, or remove the key"),
                );
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| (format!("{path}[{i}]"), item))
                .collect()
        }
        _ => vec![(path.to_string(), node)],
    }
}

/// An address with an optional prefix length, as keepalived's `virtual_ipaddress` takes it.
pub fn cidr(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<String> {
    let text = node.as_text().unwrap_or_default();
    let (ip, prefix) = text.split_once('/').unwrap_or((&text, ""));
    let ok = match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => prefix.is_empty() || prefix.parse::<u8>().is_ok_and(|p| p <= 32),
        Ok(IpAddr::V6(_)) => prefix.is_empty() || prefix.parse::<u8>().is_ok_and(|p| p <= 128),
        Err(_) => false,
    };
    if ok {
        Some(text)
    } else {
        diags.push(
            Diagnostic::new(
                &node.loc,
                path,
                format!(
                    "{} is not an IP address with optional /prefix",
                    quote(&text)
                ),
            )
            .hint("write e.g. 192.168.1.100/24"),
        );
        None
    }
}

/// A value that is written into a config as one word: no whitespace, quotes, `#` or backslash.
pub fn word(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<String> {
    let text = string(node, path, diags)?;
    let ok = !text.is_empty()
        && text.chars().all(|c| {
            c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '#' | '\\' | '{' | '}' | ';')
        });
    if ok {
        Some(text)
    } else {
        diags.push(
            Diagnostic::new(
                &node.loc,
                path,
                "value contains a character that cannot be written safely into a config",
            )
            .hint(
                "use printable characters without spaces, quotes, `#`, `;`, braces or backslashes",
            ),
        );
        None
    }
}

/// An absolute path that is safe to write into configs and shell commands.
pub fn abs_path(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<String> {
    let text = string(node, path, diags)?;
    let ok = text.starts_with('/')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '@' | '+'));
    if ok {
        Some(text)
    } else {
        diags.push(
            Diagnostic::new(
                &node.loc,
                path,
                format!("{} is not a plain absolute path", quote(&text)),
            )
            .hint("use an absolute path of letters, digits and `/-_.@+`"),
        );
        None
    }
}

fn describe(node: &Node) -> String {
    match node.as_text() {
        Some(t) => quote(&t),
        None => node.kind().to_string(),
    }
}

/// Shows a user's value with invisible characters escaped, so a stray newline is visible.
pub fn quote(s: &str) -> String {
    format!("{s:?}")
}

/// The value of a key that must be present; a missing key is reported at its parent's line.
pub fn required<'a>(
    parent: &Node,
    value: Option<&'a Node>,
    path: &(impl fmt::Display + ?Sized),
    key: &str,
    diags: &mut Diagnostics,
) -> Option<&'a Node> {
    if value.is_none() {
        diags.push(
            Diagnostic::new(
                &parent.loc,
                join(path, key),
                format!("missing required key `{key}`"),
            )
            .hint(format!("add `{key}:` to this entry")),
        );
    }
    value
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

/// `*` or an IP address: where a frontend listens.
pub fn bind_address(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<String> {
    let text = node.as_text().unwrap_or_default();
    if text == "*" || text.parse::<std::net::IpAddr>().is_ok() {
        Some(text)
    } else {
        diags.push(
            Diagnostic::new(
                &node.loc,
                path,
                format!("{} is not a bind address", quote(&text)),
            )
            .hint("use `*` for every address, or an IP address"),
        );
        None
    }
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

    #[test]
    fn identifiers_cannot_carry_directives() {
        assert!(is_identifier("k8s-worker-1"));
        assert!(!is_identifier("mysql\n    server evil 1.2.3.4:1"));
        assert!(!is_identifier("a b"));
        assert!(!is_identifier("a#b"));
        assert!(!is_identifier("-x"));
    }

    #[test]
    fn suggestions() {
        let keys = ["check_interval", "check", "rise", "fall"];
        assert_eq!(suggest("chek", keys.iter().copied()), Some("check"));
        assert_eq!(
            suggest("check_intervall", keys.iter().copied()),
            Some("check_interval")
        );
        assert_eq!(suggest("zzzzzz", keys.iter().copied()), None);
    }

    #[test]
    fn hostnames() {
        assert!(is_hostname("k8s-worker-1.lan"));
        assert!(!is_hostname("300.1.1.1"));
        assert!(!is_hostname("bad_name"));
    }
}
