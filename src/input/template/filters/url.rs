//! Ansible's filters on URLs: `urlsplit` (Python's `urllib.parse.urlsplit`, as a mapping of its
//! parts or one part) and `urldecode` (`urllib.parse.unquote_plus`).

use minijinja::{Error, ErrorKind, Value};

use super::types::python_type_name;

fn failure(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

/// The parts of a URL `urlsplit` gives, in the order Ansible lists them (alphabetical).
const PARTS: [&str; 9] = [
    "fragment", "hostname", "netloc", "password", "path", "port", "query", "scheme", "username",
];

/// Characters that Unicode's NFKC normalization turns into one of `/?#@:` (`℀` is `a/c`):
/// Python refuses a network location holding one, as it would read as another host.
const NFKC_DELIMITERS: &[char] = &[
    '\u{2047}', '\u{2048}', '\u{2049}', '\u{2100}', '\u{2101}', '\u{2105}', '\u{2106}', '\u{2a74}',
    '\u{fe13}', '\u{fe16}', '\u{fe55}', '\u{fe56}', '\u{fe5f}', '\u{fe6b}', '\u{ff03}', '\u{ff0f}',
    '\u{ff1a}', '\u{ff1f}', '\u{ff20}',
];

/// A URL cut into Python's five parts.
struct Split {
    scheme: String,
    netloc: String,
    path: String,
    query: String,
    fragment: String,
}

/// `urllib.parse.urlsplit(url)`: leading control characters and spaces dropped, tabs and line
/// breaks removed, then `scheme:`, `//netloc`, `#fragment` and `?query` taken off in turn.
fn split(url: &str) -> Result<Split, Error> {
    let mut url: String = url
        .trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .collect();
    let mut scheme = String::new();
    if let Some(colon) = url.find(':')
        && colon > 0
        && url.as_bytes()[0].is_ascii_alphabetic()
        && url[..colon]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        scheme = url[..colon].to_ascii_lowercase();
        url = url[colon + 1..].to_string();
    }
    let mut netloc = String::new();
    if let Some(rest) = url.strip_prefix("//") {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        netloc = rest[..end].to_string();
        url = rest[end..].to_string();
        if netloc.contains('[') != netloc.contains(']') {
            return Err(failure("urlsplit: Invalid IPv6 URL".into()));
        }
        if let Some((_, after)) = netloc.split_once('[') {
            let host = after.split_once(']').map_or(after, |(h, _)| h);
            check_bracketed_host(host)?;
        }
    }
    let mut fragment = String::new();
    if let Some((before, after)) = url.split_once('#') {
        fragment = after.to_string();
        url = before.to_string();
    }
    let mut query = String::new();
    if let Some((before, after)) = url.split_once('?') {
        query = after.to_string();
        url = before.to_string();
    }
    if netloc.contains(NFKC_DELIMITERS) {
        return Err(failure(format!(
            "urlsplit: netloc '{netloc}' contains invalid characters under NFKC normalization"
        )));
    }
    Ok(Split {
        scheme,
        netloc,
        path: url,
        query,
        fragment,
    })
}

/// What may stand in `[...]`: an IPv6 address (with a `%zone`), or `v` and a future version.
fn check_bracketed_host(host: &str) -> Result<(), Error> {
    if let Some(future) = host.strip_prefix('v') {
        let (version, rest) = future.split_once('.').unwrap_or((future, ""));
        let valid = !version.is_empty()
            && version.bytes().all(|b| b.is_ascii_hexdigit())
            && !rest.is_empty();
        return match valid {
            true => Ok(()),
            false => Err(failure("urlsplit: IPvFuture address is invalid".into())),
        };
    }
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err(failure(
            "urlsplit: An IPv4 address cannot be in brackets".into(),
        ));
    }
    let (address, zone) = match host.split_once('%') {
        Some((a, zone)) => (a, Some(zone)),
        None => (host, None),
    };
    let zone_valid = zone.is_none_or(|z| !z.is_empty() && !z.contains('%'));
    if zone_valid && address.parse::<std::net::Ipv6Addr>().is_ok() {
        return Ok(());
    }
    Err(failure(format!(
        "urlsplit: {} does not appear to be an IPv4 or IPv6 address",
        super::python_repr(&Value::from(host))
    )))
}

impl Split {
    /// The part named, as Python's `SplitResult` gives it: `hostname` lowercased (`None`
    /// without one), `port` an int (`None` without one), `username` and `password` `None`
    /// without a `user@`, `password` also without `user:`.
    fn part(&self, name: &str) -> Result<Value, Error> {
        let (userinfo, hostinfo) = match self.netloc.rsplit_once('@') {
            Some((user, host)) => (Some(user), host),
            None => (None, self.netloc.as_str()),
        };
        let (host, port) = match hostinfo.split_once('[') {
            Some((_, bracketed)) => {
                let (host, after) = bracketed.split_once(']').unwrap_or((bracketed, ""));
                (host, after.split_once(':').map_or("", |(_, p)| p))
            }
            None => hostinfo.split_once(':').unwrap_or((hostinfo, "")),
        };
        let text = |s: &str| Value::from(s);
        Ok(match name {
            "scheme" => text(&self.scheme),
            "netloc" => text(&self.netloc),
            "path" => text(&self.path),
            "query" => text(&self.query),
            "fragment" => text(&self.fragment),
            "username" => userinfo.map_or(Value::from(()), |u| {
                text(u.split_once(':').map_or(u, |(name, _)| name))
            }),
            "password" => userinfo
                .and_then(|u| u.split_once(':'))
                .map_or(Value::from(()), |(_, password)| text(password)),
            "hostname" if host.is_empty() => Value::from(()),
            "hostname" => {
                let (address, zone) = host
                    .split_once('%')
                    .map_or((host, None), |(a, z)| (a, Some(z)));
                match zone {
                    Some(zone) => text(&format!("{}%{zone}", address.to_lowercase())),
                    None => text(&address.to_lowercase()),
                }
            }
            "port" if port.is_empty() => Value::from(()),
            "port" => {
                if !port.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(failure(format!(
                        "urlsplit: Port could not be cast to integer value as {}",
                        super::python_repr(&Value::from(port))
                    )));
                }
                match port.trim_start_matches('0').parse::<u32>() {
                    Ok(n) if n <= 65535 => Value::from(n),
                    _ if port.bytes().all(|b| b == b'0') => Value::from(0),
                    _ => return Err(failure("urlsplit: Port out of range 0-65535".into())),
                }
            }
            _ => Value::UNDEFINED,
        })
    }
}

/// `urlsplit(query='')`: the URL's parts as a mapping (`fragment`, `hostname`, `netloc`,
/// `password`, `path`, `port`, `query`, `scheme`, `username`), or the one `query` names.
/// Every part is worked out either way, so a bad port fails both, as in Ansible.
pub(super) fn urlsplit(
    value: Value,
    query: Option<Value>,
    alias: Option<String>,
) -> Result<Value, Error> {
    super::defined(&value)?;
    let Some(url) = value.as_str() else {
        return Err(failure(format!(
            "urlsplit: the URL must be text, not {}",
            python_type_name(&value)
        )));
    };
    let split = split(url)?;
    let mut parts = Vec::with_capacity(PARTS.len());
    for name in PARTS {
        parts.push((Value::from(name), split.part(name)?));
    }
    let Some(query) = query.filter(|q| q.is_true()) else {
        return Ok(super::ordered_map(parts));
    };
    match parts.into_iter().find(|(name, _)| *name == query) {
        Some((_, part)) => Ok(part),
        None => Err(failure(format!(
            "{}: unknown URL component: {}",
            alias.as_deref().unwrap_or("urlsplit"),
            super::python_str(&query)
        ))),
    }
}

/// `urldecode`: Python's `unquote_plus`: `+` is a space, and each run of `%XX` escapes is
/// UTF-8 (bytes that are not read as U+FFFD); a `%` without two hex digits stays as it is.
pub(super) fn urldecode(value: Value) -> Result<String, Error> {
    super::defined(&value)?;
    let Some(text) = value.as_str() else {
        return Err(failure(format!(
            "urldecode: '{}' object has no attribute 'replace'",
            python_type_name(&value)
        )));
    };
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{refusal, rendered};

    const EXAMPLE: &str =
        "'http://user:password@www.acme.com:9000/dir/index.html?query=term#fragment'";

    /// Each template, and what ansible-core 2.19.14 printed for it (`ansible -m debug`).
    #[test]
    fn urlsplit_is_ansible_s() {
        for (url, part, ansible) in [
            (
                EXAMPLE,
                "",
                "{'fragment': 'fragment', 'hostname': 'www.acme.com', 'netloc': 'user:password@www.acme.com:9000', 'password': 'password', 'path': '/dir/index.html', 'port': 9000, 'query': 'query=term', 'scheme': 'http', 'username': 'user'}",
            ),
            (EXAMPLE, "('port') | type_debug", "int"),
            (EXAMPLE, " | type_debug", "dict"),
            (
                "'http://www.acme.com/'",
                "",
                "{'fragment': '', 'hostname': 'www.acme.com', 'netloc': 'www.acme.com', 'password': None, 'path': '/', 'port': None, 'query': '', 'scheme': 'http', 'username': None}",
            ),
            (
                "'https://[2001:db8::1]:8443/x'",
                "",
                "{'fragment': '', 'hostname': '2001:db8::1', 'netloc': '[2001:db8::1]:8443', 'password': None, 'path': '/x', 'port': 8443, 'query': '', 'scheme': 'https', 'username': None}",
            ),
            ("'https://[2001:DB8::1]/x'", "('hostname')", "2001:db8::1"),
            (
                "'https://WWW.Example.COM/x'",
                "('hostname')",
                "www.example.com",
            ),
            (
                "'https://WWW.Example.COM/x'",
                "('netloc')",
                "WWW.Example.COM",
            ),
            ("'https://h:65535/'", "('port')", "65535"),
            ("'https://h:/'", "('port') | type_debug", "NoneType"),
            ("'https://h:01/'", "('port')", "1"),
            ("'http://h:0080'", "('port')", "80"),
            ("'https://[v1.x]/'", "('hostname')", "v1.x"),
            ("'https://[::1]x/'", "('hostname')", "::1"),
            ("'http://[FE80::1%Eth0]/'", "('hostname')", "fe80::1%Eth0"),
            (
                "'//host/path'",
                "",
                "{'fragment': '', 'hostname': 'host', 'netloc': 'host', 'password': None, 'path': '/path', 'port': None, 'query': '', 'scheme': '', 'username': None}",
            ),
            (
                "'host:8080'",
                "",
                "{'fragment': '', 'hostname': None, 'netloc': '', 'password': None, 'path': '8080', 'port': None, 'query': '', 'scheme': 'host', 'username': None}",
            ),
            ("'10.0.0.1:80'", "('path')", "10.0.0.1:80"),
            ("'/just/a/path?x=1'", "('query')", "x=1"),
            ("'mailto:a@b.c'", "('path')", "a@b.c"),
            ("'HTTP://X/'", "('scheme')", "http"),
            ("'1http://x/'", "('scheme')", ""),
            ("'h+t.t-p://x/'", "('scheme')", "h+t.t-p"),
            ("'http://u:@h'", "('password') | type_debug", "str"),
            ("'http://u@h'", "('password') | type_debug", "NoneType"),
            ("'http://:p@h'", "('username') | type_debug", "str"),
            (
                "'http://a@b@h:1'",
                "",
                "{'fragment': '', 'hostname': 'h', 'netloc': 'a@b@h:1', 'password': None, 'path': '', 'port': 1, 'query': '', 'scheme': 'http', 'username': 'a@b'}",
            ),
            ("'http://h#f?q'", "('fragment')", "f?q"),
            ("'http://h?q#f#g'", "('fragment')", "f#g"),
            (
                "''",
                "",
                "{'fragment': '', 'hostname': None, 'netloc': '', 'password': None, 'path': '', 'port': None, 'query': '', 'scheme': '', 'username': None}",
            ),
            ("'  http://h/ '", "('path')", "/ "),
            (
                "'http://h'",
                "('')",
                "{'fragment': '', 'hostname': 'h', 'netloc': 'h', 'password': None, 'path': '', 'port': None, 'query': '', 'scheme': 'http', 'username': None}",
            ),
            ("'http://h'", "(query='path')", ""),
            ("'http://héllo/'", "('hostname')", "héllo"),
            ("'http://HÉ/'", "('hostname')", "hé"),
            ("'http://[::1]'", "('netloc')", "[::1]"),
        ] {
            let template = format!("{{{{ {url} | urlsplit{part} }}}}");
            assert_eq!(rendered(&template), ansible, "{template}");
        }
        for (template, ansible) in [
            (
                "{{ 'https://h:abc/' | urlsplit('hostname') }}",
                "Port could not be cast to integer value as 'abc'",
            ),
            (
                "{{ 'https://h:99999/' | urlsplit('port') }}",
                "Port out of range 0-65535",
            ),
            (
                "{{ 'https://h:-1/' | urlsplit('port') }}",
                "Port could not be cast to integer value as '-1'",
            ),
            (
                "{{ 'https://h:+1/' | urlsplit('port') }}",
                "Port could not be cast to integer value as '+1'",
            ),
            (
                "{{ 'https://h:١/' | urlsplit('port') }}",
                "Port could not be cast to integer value as '١'",
            ),
            ("{{ 'https://[::1/' | urlsplit }}", "Invalid IPv6 URL"),
            ("{{ 'https://::1]/' | urlsplit }}", "Invalid IPv6 URL"),
            (
                "{{ 'https://[zz]/' | urlsplit }}",
                "'zz' does not appear to be an IPv4 or IPv6 address",
            ),
            (
                "{{ 'http://[::1%]/' | urlsplit }}",
                "'::1%' does not appear to be an IPv4 or IPv6 address",
            ),
            (
                "{{ 'http://[1.2.3.4]/' | urlsplit }}",
                "An IPv4 address cannot be in brackets",
            ),
            (
                "{{ 'http://[v1]/' | urlsplit }}",
                "IPvFuture address is invalid",
            ),
            (
                "{{ 'http://h' | urlsplit('nope') }}",
                "urlsplit: unknown URL component: nope",
            ),
            (
                "{{ 'http://h' | urlsplit('geturl') }}",
                "urlsplit: unknown URL component: geturl",
            ),
            (
                "{{ 'http://h' | urlsplit(1) }}",
                "urlsplit: unknown URL component: 1",
            ),
            (
                "{{ 'http://h' | urlsplit('nope', 'myalias') }}",
                "myalias: unknown URL component: nope",
            ),
            (
                "{{ 'http://h\u{2100}/' | urlsplit }}",
                "netloc 'h\u{2100}' contains invalid characters under NFKC normalization",
            ),
            (
                "{{ 123 | urlsplit }}",
                "urlsplit: the URL must be text, not int",
            ),
        ] {
            let e = refusal(template);
            assert!(e.contains(ansible), "{template}: {e}");
        }
    }

    /// Each template, and what ansible-core 2.19.14 printed for it (`ansible -m debug`).
    #[test]
    fn urldecode_is_ansible_s() {
        for (template, ansible) in [
            ("{{ 'a%20b+c%2Bd' | urldecode }}", "a b c+d"),
            ("{{ '%E2%82%AC%zz%4' | urldecode }}", "€%zz%4"),
            ("{{ '%C3%28x' | urldecode }}", "\u{fffd}(x"),
        ] {
            assert_eq!(rendered(template), ansible, "{template}");
        }
        for (template, ansible) in [
            (
                "{{ 123 | urldecode }}",
                "'int' object has no attribute 'replace'",
            ),
            (
                "{{ none | urldecode }}",
                "'NoneType' object has no attribute 'replace'",
            ),
        ] {
            let e = refusal(template);
            assert!(e.contains(ansible), "{template}: {e}");
        }
    }
}
