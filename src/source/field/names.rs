//! What is written into a config as a name, an address, a host or server name, a CIDR, a
//! path or a word: checked so that it cannot carry a directive with it.

use std::{fmt, net::IpAddr};

use super::values::{quote, string};
use crate::source::{Diagnostic, Diagnostics, Node};

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
    if is_word(&text) {
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

/// Whether `s` can be written into a config as one word (see [`word`]).
pub fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '#' | '\\' | '{' | '}' | ';')
        })
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
    fn identifiers_cannot_carry_directives() {
        assert!(is_identifier("k8s-worker-1"));
        assert!(!is_identifier("mysql\n    server evil 1.2.3.4:1"));
        assert!(!is_identifier("a b"));
        assert!(!is_identifier("a#b"));
        assert!(!is_identifier("-x"));
    }

    #[test]
    fn hostnames() {
        assert!(is_hostname("k8s-worker-1.lan"));
        assert!(!is_hostname("300.1.1.1"));
        assert!(!is_hostname("bad_name"));
    }
}
