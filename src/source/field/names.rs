//! What is written into a config as a name, an address, a host or server name, a CIDR, a
//! path or a word: checked so that it cannot carry a directive with it.

use std::{fmt, net::IpAddr};

use super::values::{quote, string};
use crate::source::{Diagnostic, Diagnostics, Loc, Node};

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
    } else if let Some(ip) = legacy_ipv4(&text) {
        diags.push(legacy_ipv4_refused(&node.loc, path, &text, ip));
        None
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

/// Why `text`, which resolvers read as the IPv4 address `ip` ([`legacy_ipv4`]), is refused
/// where an address is expected.
pub fn legacy_ipv4_refused(
    loc: &Loc,
    key: &(impl fmt::Display + ?Sized),
    text: &str,
    ip: std::net::Ipv4Addr,
) -> Diagnostic {
    Diagnostic::new(
        loc,
        key.to_string(),
        format!(
            "{} is an IPv4 address in the old numeric form that resolvers read as {ip}, while whoever reads the configuration may not",
            quote(text)
        ),
    )
    .hint(format!("write it as {ip}: four decimal numbers, without leading zeros"))
}

/// A DNS name: labels of letters, digits and `-`, and not a number the resolver reads as an
/// IPv4 address ([`legacy_ipv4`]: `0x7f.1` is 127.0.0.1 to getaddrinfo, to HAProxy, nginx and
/// ssh, never a name looked up).
pub fn is_hostname(s: &str) -> bool {
    legacy_ipv4(s).is_none()
        && !s.is_empty()
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

/// The IPv4 address the C library's `inet_aton` (and so `getaddrinfo`) reads in `s`, in any
/// of its forms: one to four numbers, each decimal, octal (a leading `0`) or hexadecimal
/// (`0x`), the last filling the bits the others leave (`127.1`, `0x7f000001`, `010.0.0.1`,
/// which is 8.0.0.1). `None` when `s` is no such address.
pub fn legacy_ipv4(s: &str) -> Option<std::net::Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 4 {
        return None;
    }
    let mut numbers = Vec::with_capacity(parts.len());
    for part in &parts {
        let (digits, radix) = match part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            Some(hex) => (hex, 16),
            None if part.len() > 1 && part.starts_with('0') => (&part[1..], 8),
            None => (*part, 10),
        };
        let no_digits = digits.is_empty() && radix == 16;
        if part.is_empty() || no_digits || !digits.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        // more than 32 bits is no address
        let trimmed = digits.trim_start_matches('0');
        if trimmed.len() > 11 {
            return None;
        }
        numbers.push(if trimmed.is_empty() {
            0
        } else {
            u64::from_str_radix(trimmed, radix).ok()?
        });
    }
    let (last, first) = numbers.split_last()?;
    if first.iter().any(|&n| n > 0xff) || *last >= 1u64 << (8 * (4 - first.len())) {
        return None;
    }
    let value = first
        .iter()
        .enumerate()
        .fold(*last, |v, (i, &n)| v | n << (24 - 8 * i));
    Some(std::net::Ipv4Addr::from(u32::try_from(value).ok()?))
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
        // numbers the resolver reads as an IPv4 address, never looks up as a name
        for (written, ip) in [
            ("0x7f.1", "127.0.0.1"),
            ("0x7f000001", "127.0.0.1"),
            ("0X7F.0.0.1", "127.0.0.1"),
            ("010.0.0.1", "8.0.0.1"),
            ("127.1", "127.0.0.1"),
            ("10.0x10.0x1001", "10.16.16.1"),
            ("4294967295", "255.255.255.255"),
        ] {
            assert_eq!(
                legacy_ipv4(written).map(|a| a.to_string()).as_deref(),
                Some(ip),
                "{written}"
            );
            assert!(!is_hostname(written), "{written}");
        }
        // names, or numbers that no address is
        for name in [
            "0xdead.lan",
            "db.0x1g",
            "1.2.3.4.5",
            "4294967296",
            "1.16777216",
            "0x1.2.3.256",
            "09.1",
            "a.1",
        ] {
            assert_eq!(legacy_ipv4(name), None, "{name}");
        }
        assert!(is_hostname("0xdead.lan"));
        assert!(is_hostname("a.1"));
    }
}
