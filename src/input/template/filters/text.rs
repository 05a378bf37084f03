//! Ansible's filters on paths and on text that goes into commands and patterns: `basename`
//! and `dirname` (Python's `os.path`), `quote` (`shlex.quote`), `regex_escape` (`re.escape`,
//! or a POSIX basic expression's escaping); and three of Jinja2's own that minijinja lacks,
//! `center`, `truncate` and `wordcount`.

use minijinja::{Error, ErrorKind, Value, value::Kwargs};

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

/// Jinja2's `center(width=80)`: Python's `str.center`, spaces on both sides.
pub(super) fn center(value: Value, width: Option<i64>, kw: Kwargs) -> Result<String, Error> {
    let width = width.or(kw.get("width")?);
    kw.assert_all_used()?;
    super::super::methods::pad(
        &super::python_str(&value),
        width.unwrap_or(80),
        ' ',
        "center",
    )
}

/// Jinja2's `truncate(length=255, killwords=False, end='...', leeway=5)`, by position or by
/// name (`leeway` by name only): text longer than `length + leeway` characters is cut to `length` with `end`, at the
/// last space before the cut unless `killwords`.
pub(super) fn truncate(
    value: Value,
    length: Option<i64>,
    killwords: Option<bool>,
    end: Option<String>,
    kw: Kwargs,
) -> Result<String, Error> {
    let length = length.or(kw.get("length")?);
    let killwords = killwords.or(kw.get("killwords")?);
    let end = end.or(kw.get("end")?);
    let leeway: Option<i64> = kw.get("leeway")?;
    kw.assert_all_used()?;
    let text = super::python_str(&value);
    let end = end.unwrap_or_else(|| "...".into());
    let end_len = end.chars().count();
    let length = usize::try_from(length.unwrap_or(255)).unwrap_or(0);
    let leeway = usize::try_from(leeway.unwrap_or(5)).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            "truncate: expected leeway >= 0",
        )
    })?;
    if length < end_len {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("truncate: expected length >= {end_len}, got {length}"),
        ));
    }
    if text.chars().count() <= length.saturating_add(leeway) {
        return Ok(text);
    }
    let kept: String = text.chars().take(length - end_len).collect();
    let kept = match (killwords.unwrap_or(false), kept.rfind(' ')) {
        (false, Some(at)) => &kept[..at],
        _ => kept.as_str(),
    };
    Ok(format!("{kept}{end}"))
}

/// Jinja2's `wordcount`: how many runs of Python's word characters (letters, digits of any
/// script, `_`) the value's text has; a value that is not text is counted as Python prints it.
pub(super) fn wordcount(value: Value) -> Result<usize, Error> {
    super::printable(&value)?;
    let text = super::python_str(&value);
    let word = |c: char| c.is_alphanumeric() || c == '_';
    Ok(text
        .split(|c: char| !word(c))
        .filter(|w| !w.is_empty())
        .count())
}

/// Ansible's `comment(style='plain', ...)`: the text as a comment block
/// (`{{ ansible_managed | comment }}` at the top of a configuration), each line after the
/// style's decoration, between a prefix and a postfix line; every part can be given by name
/// (`decoration`, `prefix`, `prefix_count`, `postfix`, `postfix_count`, `beginning`, `end`,
/// `newline`), as Ansible takes them.
pub(super) fn comment(text: Value, style: Option<String>, kw: Kwargs) -> Result<String, Error> {
    super::defined(&text)?;
    let Some(text) = text.as_str() else {
        return Err(invalid(format!("comment: expected text, got {text}")));
    };
    let style = style.or(kw.get("style")?);
    let style = style.as_deref().unwrap_or("plain");
    // (beginning, decoration, end) of each style
    let (beginning, decoration, end) = match style {
        "plain" => ("", "# ", ""),
        "erlang" => ("", "% ", ""),
        "c" => ("", "// ", ""),
        "cblock" => ("/*", " * ", " */"),
        "xml" => ("<!--", " - ", "-->"),
        other => {
            return Err(invalid(format!(
                "Invalid style '{other}'. Available styles: plain, erlang, c, cblock, xml"
            )));
        }
    };
    let given = |name: &str| -> Result<Option<String>, Error> {
        Ok(kw
            .get::<Option<Value>>(name)?
            .map(|v| super::python_str(&v)))
    };
    let count = |name: &str| -> Result<usize, Error> {
        let Some(value) = kw.get::<Option<Value>>(name)? else {
            return Ok(1);
        };
        let number = match value.as_str() {
            Some(text) => text.trim().parse::<i64>().ok(),
            None => value.as_i64(),
        };
        let number = number.ok_or_else(|| {
            invalid(format!(
                "comment: {name} must be a whole number, not {value}"
            ))
        })?;
        Ok(usize::try_from(number).unwrap_or(0))
    };
    // the prefix and postfix lines default to the decoration given, without its spaces
    let prepostfix = given("decoration")?.unwrap_or_else(|| decoration.to_string());
    let newline = given("newline")?.unwrap_or_else(|| "\n".into());
    let beginning = given("beginning")?.unwrap_or_else(|| beginning.into());
    let prefix = given("prefix")?.unwrap_or_else(|| prepostfix.trim_end().into());
    let prefix_count = count("prefix_count")?;
    let decoration = given("decoration")?.unwrap_or_else(|| decoration.into());
    let postfix = given("postfix")?.unwrap_or_else(|| prepostfix.trim_end().into());
    let postfix_count = count("postfix_count")?;
    let end = given("end")?.unwrap_or_else(|| end.into());
    kw.assert_all_used()?;
    let lines = text.matches(newline.as_str()).count() + 1;
    let size = (prefix.len() + newline.len()).saturating_mul(prefix_count)
        + (postfix.len() + newline.len()).saturating_mul(postfix_count)
        + (decoration.len() + newline.len()).saturating_mul(lines)
        + text.len()
        + beginning.len()
        + end.len()
        + 2 * newline.len();
    if size as u64 > crate::source::MAX_FILE_BYTES {
        return Err(invalid(
            "comment: the comment would be longer than 64 MiB".into(),
        ));
    }
    let mut out = String::with_capacity(size);
    if !beginning.is_empty() {
        out.push_str(&beginning);
        out.push_str(&newline);
    }
    if !prefix.is_empty() {
        let line = if prefix == newline {
            newline.clone()
        } else {
            format!("{prefix}{newline}")
        };
        out.push_str(&line.repeat(prefix_count));
    }
    // each line after the decoration; a line with nothing else keeps no trailing spaces
    let decorated = format!(
        "{decoration}{}",
        text.replace(&newline, &format!("{newline}{decoration}"))
    );
    out.push_str(&decorated.replace(
        &format!("{decoration}{newline}"),
        &format!("{}{newline}", decoration.trim_end()),
    ));
    for _ in 0..postfix_count {
        out.push_str(&newline);
        out.push_str(&postfix);
    }
    if !end.is_empty() {
        out.push_str(&newline);
        out.push_str(&end);
    }
    Ok(out)
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
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

    /// What ansible-core 2.19.14 counted (`ansible -m debug`).
    #[test]
    fn wordcount_counts_as_jinja2_counts() {
        for (template, ansible) in [
            ("{{ 'one two  three' | wordcount }}", "3"),
            ("{{ '' | wordcount }}", "0"),
            ("{{ 'foo-bar_baz 1.5 é ñandú 日本語' | wordcount }}", "7"),
            ("{{ 'a,b;c' | wordcount }}", "3"),
            ("{{ 123 | wordcount }}", "1"),
            ("{{ none | wordcount }}", "1"),
            ("{{ ['a b', 'c'] | wordcount }}", "3"),
            ("{{ 'x²' | wordcount }}", "1"),
            ("{{ '½' | wordcount }}", "1"),
            ("{{ '٣' | wordcount }}", "1"),
            ("{{ 'Ⅻ' | wordcount }}", "1"),
        ] {
            assert_eq!(
                super::super::tests::rendered(template),
                ansible,
                "{template}"
            );
        }
        // a value that would print as 300 MB is refused before it is printed
        let e = super::super::tests::refusal("{{ ([1] * 10 ** 8) | wordcount }}");
        assert!(e.contains("would print as more than 64 MiB"), "{e}");
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

    #[test]
    fn center_and_truncate_as_jinja2() {
        let render = |template: &str| {
            let ctx = minijinja::context! { t => "the quick brown fox jumps" };
            super::super::super::environment()
                .render_str(template, ctx)
                .map_err(|e| e.to_string())
        };
        for (template, want) in [
            (
                "[{{ 'ab' | center(5) }}] [{{ 'abcdef' | center(3) }}] [{{ 'a' | center(width=3) }}]",
                "[  ab ] [abcdef] [ a ]",
            ),
            (
                "{{ t | truncate(10) }} {{ t | truncate(10, true) }} {{ t | truncate(22) }}",
                "the... the qui... the quick brown fox jumps",
            ),
            (
                "{{ t | truncate(22, end='!', leeway=0) }} {{ 'abcdefghijklmnopqrstuvwxyz' | truncate(length=10) }}",
                "the quick brown fox! abcdefg...",
            ),
        ] {
            assert_eq!(render(template).as_deref(), Ok(want), "{template}");
        }
        assert!(render("{{ t | truncate(2) }}").is_err());
        assert!(render("{{ t | truncate(5, nosuch=1) }}").is_err());
    }
}
