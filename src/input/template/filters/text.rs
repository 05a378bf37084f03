//! Ansible's filters on paths and on text that goes into commands and patterns: `basename`
//! and `dirname` (Python's `os.path`), `quote` (`shlex.quote`), `regex_escape` (`re.escape`,
//! or a POSIX basic expression's escaping).

use minijinja::{Error, ErrorKind, Value};

/// `os.path.basename`: what follows the last `/`.
pub(super) fn basename(path: String) -> String {
    match path.rfind('/') {
        Some(at) => path[at + 1..].to_string(),
        None => path,
    }
}

/// `os.path.dirname`: what precedes the last `/`, without its trailing slashes unless it is
/// made of nothing else (`/x` gives `/`, `//x` gives `//`).
pub(super) fn dirname(path: String) -> String {
    let head = match path.rfind('/') {
        Some(at) => &path[..=at],
        None => return String::new(),
    };
    if head.bytes().all(|b| b == b'/') {
        head.to_string()
    } else {
        head.trim_end_matches('/').to_string()
    }
}

/// `shlex.quote`: the text as one shell word, quoted only when it needs it. `None` is quoted
/// as empty text, as Ansible's `quote` does.
pub(super) fn quote(value: Value) -> String {
    let text = if value.is_none() || value.is_undefined() {
        String::new()
    } else {
        super::python_str(&value)
    };
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if text.is_empty() {
        "''".into()
    } else if text.chars().all(safe) {
        text
    } else {
        format!("'{}'", text.replace('\'', "'\"'\"'"))
    }
}

/// `regex_escape(re_type='python')`: Python's `re.escape` (a backslash before each of its
/// special characters and whitespace), or with `'posix_basic'` before `[ ] . ^ * $`.
pub(super) fn regex_escape(text: Value, re_type: Option<String>) -> Result<String, Error> {
    let text = super::python_str(&text);
    let special: &str = match re_type.as_deref().unwrap_or("python") {
        "python" => "()[]{}?*+-|^$\\.&~# \t\n\r\u{b}\u{c}",
        "posix_basic" => "].[^*$",
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "regex_escape: regex type '{other}' is not supported (python or posix_basic)"
                ),
            ));
        }
    };
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if special.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use minijinja::Value;

    use super::*;

    #[test]
    fn paths_as_os_path_splits_them() {
        for (path, base, dir) in [
            ("/etc/ssl/x.pem", "x.pem", "/etc/ssl"),
            ("x.pem", "x.pem", ""),
            ("/x", "x", "/"),
            ("//x", "x", "//"),
            ("a//b", "b", "a"),
            ("/etc/ssl/", "", "/etc/ssl"),
            ("", "", ""),
        ] {
            assert_eq!(basename(path.into()), base, "basename {path}");
            assert_eq!(dirname(path.into()), dir, "dirname {path}");
        }
    }

    #[test]
    fn quote_as_shlex_quotes() {
        for (text, want) in [
            ("plain-word_1.2:/x@%+=,", "plain-word_1.2:/x@%+=,"),
            ("", "''"),
            ("a b", "'a b'"),
            ("it's", "'it'\"'\"'s'"),
            ("é", "'é'"),
        ] {
            assert_eq!(quote(Value::from(text)), want, "{text}");
        }
        assert_eq!(quote(Value::from(())), "''");
        assert_eq!(quote(Value::from(3)), "3");
    }

    #[test]
    fn regex_escape_as_re_escape() {
        let python = |s: &str| regex_escape(Value::from(s), None).unwrap();
        assert_eq!(python("10.0.0.1"), "10\\.0\\.0\\.1");
        assert_eq!(python("a-b (c)*"), "a\\-b\\ \\(c\\)\\*");
        assert_eq!(python("k8s_worker"), "k8s_worker");
        assert_eq!(
            regex_escape(Value::from("a.b[c]-d"), Some("posix_basic".into())).unwrap(),
            "a\\.b\\[c\\]-d"
        );
        assert!(regex_escape(Value::from("x"), Some("posix_extended".into())).is_err());
    }
}
