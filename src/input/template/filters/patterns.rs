//! Python's regular expressions as Ansible's filters and tests use them: `regex_replace`,
//! `regex_search`, `regex_findall`, and the tests `match`, `search` and `regex`.

use std::fmt::Write as _;

use minijinja::{Error, ErrorKind, Value, value::Kwargs};

pub(super) fn python_regex(pattern: &str, kw: &Kwargs) -> Result<regex::Regex, Error> {
    let ignorecase = kw.get::<Option<bool>>("ignorecase")?.unwrap_or(false);
    let multiline = kw.get::<Option<bool>>("multiline")?.unwrap_or(false);
    regex::RegexBuilder::new(pattern)
        .case_insensitive(ignorecase)
        .multi_line(multiline)
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("bad regular expression: {e}"),
            )
        })
}

/// Python's `re.sub` replacement syntax (`\1`, `\g<1>`, `\g<name>`) in the regex crate's.
pub(super) fn python_replacement(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    let mut n = String::new();
                    while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                        n.push(*d);
                        chars.next();
                    }
                    let _ = write!(out, "${{{n}}}");
                }
                Some('g') => {
                    chars.next();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        let name: String = chars.by_ref().take_while(|c| *c != '>').collect();
                        let _ = write!(out, "${{{name}}}");
                    } else {
                        out.push_str("\\g");
                    }
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

pub(super) fn regex_replace(
    value: String,
    pattern: String,
    replacement: Option<String>,
    kw: Kwargs,
) -> Result<String, Error> {
    let re = python_regex(&pattern, &kw)?;
    let _: Option<i64> = kw.get("count")?;
    kw.assert_all_used()?;
    let replacement = python_replacement(replacement.as_deref().unwrap_or(""));
    Ok(re.replace_all(&value, replacement.as_str()).into_owned())
}

pub(super) fn regex_search(
    value: String,
    pattern: String,
    groups: minijinja::value::Rest<String>,
    kw: Kwargs,
) -> Result<Value, Error> {
    let re = python_regex(&pattern, &kw)?;
    kw.assert_all_used()?;
    let Some(caps) = re.captures(&value) else {
        return Ok(Value::from(()));
    };
    if groups.is_empty() {
        return Ok(Value::from(caps.get(0).map_or("", |m| m.as_str())));
    }
    let picked: Vec<Value> = groups
        .iter()
        .map(|g| {
            let g = g.trim_start_matches('\\');
            let m = match g.parse::<usize>() {
                Ok(i) => caps.get(i),
                Err(_) => caps.name(g.trim_start_matches("g<").trim_end_matches('>')),
            };
            m.map_or(Value::from(()), |m| Value::from(m.as_str()))
        })
        .collect();
    Ok(Value::from(picked))
}

pub(super) fn regex_findall(value: String, pattern: String, kw: Kwargs) -> Result<Value, Error> {
    let re = python_regex(&pattern, &kw)?;
    kw.assert_all_used()?;
    let found: Vec<Value> = re
        .captures_iter(&value)
        .map(|c| match c.len() {
            1 => Value::from(c.get(0).map_or("", |m| m.as_str())),
            2 => Value::from(c.get(1).map_or("", |m| m.as_str())),
            _ => Value::from(
                (1..c.len())
                    .map(|i| Value::from(c.get(i).map_or("", |m| m.as_str())))
                    .collect::<Vec<_>>(),
            ),
        })
        .collect();
    Ok(Value::from(found))
}

#[derive(Clone, Copy)]
pub(super) enum Find {
    Start,
    Anywhere,
}

pub(super) fn regex_test(
    value: &str,
    pattern: &str,
    kw: &Kwargs,
    how: Find,
) -> Result<bool, Error> {
    let re = python_regex(pattern, kw)?;
    let _: Option<String> = kw.get("match_type")?;
    kw.assert_all_used()?;
    Ok(match how {
        Find::Start => {
            re.find(value).is_some_and(|m| m.start() == 0) || {
                // A later match can still start at 0 when the leftmost one does not.
                regex::Regex::new(&format!("^(?:{pattern})")).is_ok_and(|r| r.is_match(value))
            }
        }
        Find::Anywhere => re.is_match(value),
    })
}
