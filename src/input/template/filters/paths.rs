//! Ansible's filters on POSIX paths that need no file system: `splitext`, `path_join`,
//! `normpath` and `commonpath` (Python's `os.path.splitext`, `os.path.join`,
//! `os.path.normpath` and `os.path.commonpath`).

use minijinja::{Error, ErrorKind, Value, value::ValueKind};

use super::types::python_type_name;

pub(super) fn failure(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

/// The text of a path, or Python's TypeError for anything else (after `filter`'s name).
pub(super) fn path_text<'a>(value: &'a Value, filter: &str) -> Result<&'a str, Error> {
    super::defined(value)?;
    value.as_str().ok_or_else(|| {
        failure(format!(
            "{filter}: expected str, bytes or os.PathLike object, not {}",
            python_type_name(value)
        ))
    })
}

/// `splitext`: the path and its extension, a tuple (`('/etc/haproxy/haproxy', '.cfg')`). The
/// extension is the last `.` of the last part on, unless that part has only dots before it
/// (`.bashrc` has none).
pub(super) fn splitext(value: Value) -> Result<Value, Error> {
    let path = path_text(&value, "splitext")?;
    let name_start = path.rfind('/').map_or(0, |at| at + 1);
    let cut = match path[name_start..].rfind('.') {
        Some(dot)
            if path[name_start..name_start + dot]
                .bytes()
                .any(|b| b != b'.') =>
        {
            name_start + dot
        }
        _ => path.len(),
    };
    Ok(Value::from((&path[..cut], &path[cut..])))
}

/// `path_join`: `os.path.join` of a list's paths (a text is itself): each joined with a `/`
/// unless the path so far ends with one; an absolute path starts over.
pub(super) fn path_join(value: Value) -> Result<String, Error> {
    super::defined(&value)?;
    if let Some(text) = value.as_str() {
        return Ok(text.to_string());
    }
    if !matches!(value.kind(), ValueKind::Seq | ValueKind::Iterable) {
        return Err(failure(format!(
            "|path_join expects string or sequence, got <class '{}'> instead.",
            python_type_name(&value)
        )));
    }
    let mut parts = value.try_iter()?;
    let Some(first) = parts.next() else {
        return Err(failure(
            "path_join: join() missing 1 required positional argument: 'a'".into(),
        ));
    };
    let mut path = path_text(&first, "path_join")?.to_string();
    for part in parts {
        let Some(part) = part.as_str() else {
            return Err(failure(format!(
                "path_join: join() argument must be str, bytes, or os.PathLike object, not '{}'",
                python_type_name(&part)
            )));
        };
        join_onto(&mut path, part);
    }
    Ok(path)
}

/// `os.path.join(path, part)` in place: `part` after a `/` unless `path` ends with one or is
/// empty; an absolute `part` starts over.
pub(super) fn join_onto(path: &mut String, part: &str) {
    if part.starts_with('/') {
        path.clear();
    } else if !path.is_empty() && !path.ends_with('/') {
        path.push('/');
    }
    path.push_str(part);
}

/// `normpath`: `.` parts and doubled slashes dropped, `..` taking its parent away where it
/// can; exactly two leading slashes stay two, as POSIX leaves their meaning open.
pub(super) fn normpath(value: Value) -> Result<String, Error> {
    path_text(&value, "normpath").map(normalized)
}

/// `os.path.normpath` of a text (see [`normpath`]).
pub(super) fn normalized(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let slashes = match path.bytes().take_while(|&b| b == b'/').count() {
        0 => 0,
        2 => 2,
        _ => 1,
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if slashes > 0 && parts.is_empty() => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    let joined = format!("{}{}", "/".repeat(slashes), parts.join("/"));
    if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

/// `commonpath`: the longest path that every path of the list starts with, part by part
/// (`.` parts and empty ones skipped, nothing normalised otherwise); absolute and relative
/// paths do not mix.
pub(super) fn commonpath(value: Value) -> Result<String, Error> {
    super::defined(&value)?;
    if value.as_str().is_some() || !matches!(value.kind(), ValueKind::Seq | ValueKind::Iterable) {
        return Err(failure(format!(
            "|commonpath expects sequence, got <class '{}'> instead.",
            python_type_name(&value)
        )));
    }
    let paths: Vec<Value> = value.try_iter()?.collect();
    let texts = paths
        .iter()
        .map(|p| path_text(p, "commonpath"))
        .collect::<Result<Vec<&str>, Error>>()?;
    let Some(first) = texts.first() else {
        return Err(failure(
            "commonpath: commonpath() arg is an empty sequence".into(),
        ));
    };
    let absolute = first.starts_with('/');
    if texts.iter().any(|t| t.starts_with('/') != absolute) {
        return Err(failure(
            "commonpath: Can't mix absolute and relative paths".into(),
        ));
    }
    let split: Vec<Vec<&str>> = texts
        .iter()
        .map(|t| {
            t.split('/')
                .filter(|p| !p.is_empty() && *p != ".")
                .collect()
        })
        .collect();
    // the least and the greatest (as Python orders lists of texts) share what all share
    let (least, greatest) = (split.iter().min(), split.iter().max());
    let common: Vec<&str> = match (least, greatest) {
        (Some(a), Some(b)) => a
            .iter()
            .zip(b)
            .take_while(|(x, y)| x == y)
            .map(|(x, _)| *x)
            .collect(),
        _ => Vec::new(),
    };
    Ok(format!(
        "{}{}",
        if absolute { "/" } else { "" },
        common.join("/")
    ))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{refusal, rendered};

    /// Each template, and what ansible-core 2.19.14 printed for it (`ansible -m debug`).
    #[test]
    fn path_filters_are_ansible_s() {
        for (template, ansible) in [
            (
                "{{ '/etc/haproxy/haproxy.cfg' | splitext }}",
                "['/etc/haproxy/haproxy', '.cfg']",
            ),
            ("{{ 'x.y' | splitext | type_debug }}", "tuple"),
            (
                "{{ 'archive.tar.gz' | splitext }}",
                "['archive.tar', '.gz']",
            ),
            ("{{ '.bashrc' | splitext }}", "['.bashrc', '']"),
            ("{{ '..x' | splitext }}", "['..x', '']"),
            ("{{ 'a/.b.c' | splitext }}", "['a/.b', '.c']"),
            ("{{ 'a.b/c' | splitext }}", "['a.b/c', '']"),
            ("{{ 'noext' | splitext }}", "['noext', '']"),
            ("{{ 'trailing.' | splitext }}", "['trailing', '.']"),
            ("{{ '' | splitext }}", "['', '']"),
            ("{{ '...' | splitext }}", "['...', '']"),
            ("{{ '/a/b/..c.d' | splitext }}", "['/a/b/..c', '.d']"),
            ("{{ 'a.b' | splitext | first }}", "a"),
            ("{{ 'a.b' | splitext | last }}", ".b"),
            ("{{ 'a.b' | splitext | string }}", "('a', '.b')"),
            ("{{ 'a.b' | splitext | to_json }}", "[\"a\", \".b\"]"),
            (
                "{{ ['/etc', 'haproxy', 'haproxy.cfg'] | path_join }}",
                "/etc/haproxy/haproxy.cfg",
            ),
            ("{{ ['etc', '/abs', 'x'] | path_join }}", "/abs/x"),
            ("{{ ['a/', 'b'] | path_join }}", "a/b"),
            ("{{ ['', 'b'] | path_join }}", "b"),
            ("{{ ['a', ''] | path_join }}", "a/"),
            ("{{ '/etc/x' | path_join }}", "/etc/x"),
            ("{{ ('a', 'b') | path_join }}", "a/b"),
            ("{{ 'a//b/./c/../d/' | normpath }}", "a/b/d"),
            ("{{ '' | normpath }}", "."),
            ("{{ '//a' | normpath }}", "//a"),
            ("{{ '///a' | normpath }}", "/a"),
            ("{{ '../../a' | normpath }}", "../../a"),
            ("{{ '/../a' | normpath }}", "/a"),
            ("{{ '.' | normpath }}", "."),
            ("{{ 'a/..' | normpath }}", "."),
        ] {
            assert_eq!(rendered(template), ansible, "{template}");
        }
        for (template, ansible) in [
            (
                "{{ 123 | splitext }}",
                "expected str, bytes or os.PathLike object, not int",
            ),
            (
                "{{ none | splitext }}",
                "expected str, bytes or os.PathLike object, not NoneType",
            ),
            (
                "{{ [] | path_join }}",
                "join() missing 1 required positional argument: 'a'",
            ),
            (
                "{{ ['a', 1] | path_join }}",
                "join() argument must be str, bytes, or os.PathLike object, not 'int'",
            ),
            (
                "{{ [1] | path_join }}",
                "expected str, bytes or os.PathLike object, not int",
            ),
            (
                "{{ none | path_join }}",
                "|path_join expects string or sequence, got <class 'NoneType'> instead.",
            ),
            (
                "{{ 1 | normpath }}",
                "expected str, bytes or os.PathLike object, not int",
            ),
        ] {
            let e = refusal(template);
            assert!(e.contains(ansible), "{template}: {e}");
        }
    }
}
