//! Ansible's path filters that read the machine lbctl runs on, as Ansible's read its
//! controller: `expanduser` (`$HOME`, else the password database), `expandvars` (the
//! environment), `realpath` (the working directory and the symbolic links on the way, each
//! read with `lstat` and `readlink`; nothing is ever opened or written) and `relpath` (the
//! working directory). Python's `os.path` functions of the same names, on text.

use std::collections::HashMap;

use minijinja::{Error, State, Value};

use super::paths::{failure, join_onto, normalized, path_text};

/// The most nested symbolic links `realpath` follows (Python stops at its recursion limit).
const MAX_LINK_DEPTH: usize = 200;

/// The most symbolic links `realpath` reads for one path.
const MAX_LINKS: usize = 4096;

/// `expanduser`: a leading `~` made the home directory (`$HOME`, or the password
/// database's when it is unset), `~name` the home of the user `name`; a user the database
/// does not know leaves the path as it is.
pub(super) fn expanduser(value: Value) -> Result<String, Error> {
    let path = path_text(&value, "expanduser")?;
    let Some(after) = path.strip_prefix('~') else {
        return Ok(path.to_string());
    };
    let (user, rest) = after.split_at(after.find('/').unwrap_or(after.len()));
    let home = match (user, std::env::var_os("HOME")) {
        ("", Some(home)) => Some(utf8(home, "expanduser", "$HOME")?),
        ("", None) => passwd_home(None)?,
        (user, _) => passwd_home(Some(user))?,
    };
    Ok(match home {
        None => path.to_string(),
        Some(home) => {
            let expanded = format!("{}{rest}", home.trim_end_matches('/'));
            if expanded.is_empty() {
                "/".into()
            } else {
                expanded
            }
        }
    })
}

/// `expandvars`: each `$name` (ASCII letters, digits, `_`) and `${anything}` replaced by
/// the environment variable of that name; unset ones are left as written.
pub(super) fn expandvars(state: &State, value: Value) -> Result<String, Error> {
    let path = path_text(&value, "expandvars")?;
    let room = super::super::methods::room_left(state);
    let value = |name: &str| match name {
        // no environment variable's name holds these
        name if name.contains(['=', '\0']) => Ok(None),
        name => std::env::var_os(name)
            .map(|v| utf8(v, "expandvars", &format!("${name}")))
            .transpose(),
    };
    let grown = |so_far: &str| {
        if so_far.len() as u64 > room {
            Err(failure(format!(
                "expandvars: the expanded text would be longer than this template may still make ({room} bytes)"
            )))
        } else {
            Ok(())
        }
    };
    crate::input::expand::expand_vars(path, value, grown)
}

/// `realpath`: the absolute path with every symbolic link on the way replaced by what it
/// points to, `.`, `..` and doubled slashes resolved; parts that do not exist are kept as
/// written, and a loop of links leaves the rest of the path unresolved, as in Python.
pub(super) fn realpath(value: Value) -> Result<String, Error> {
    let path = path_text(&value, "realpath")?;
    if path.contains('\0') {
        return Err(failure("realpath: lstat: embedded null byte".into()));
    }
    let mut links = Links {
        seen: HashMap::new(),
        read: 0,
        path,
    };
    let (resolved, _) = links.join_real(String::new(), path, 0)?;
    absolute(&resolved, "realpath")
}

/// `relpath(start='.')`: the path relative to `start`, both made absolute from the working
/// directory first.
pub(super) fn relpath(value: Value, start: Option<Value>) -> Result<String, Error> {
    super::defined(&value)?;
    if value.as_str() == Some("") || value.is_none() {
        return Err(failure("relpath: no path specified".into()));
    }
    let path = path_text(&value, "relpath")?;
    let start = match &start {
        Some(s) if !s.is_none() => path_text(s, "relpath")?,
        _ => ".",
    };
    let (start, path) = (absolute(start, "relpath")?, absolute(path, "relpath")?);
    let parts = |p: &str| -> Vec<String> {
        p.split('/')
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect()
    };
    let (from, to) = (parts(&start), parts(&path));
    let shared = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut rel = vec!["..".to_string(); from.len() - shared];
    rel.extend_from_slice(&to[shared..]);
    Ok(if rel.is_empty() {
        ".".into()
    } else {
        rel.join("/")
    })
}

/// `os.path.abspath`: the path after the working directory (when relative), normalised.
fn absolute(path: &str, filter: &str) -> Result<String, Error> {
    if path.starts_with('/') {
        return Ok(normalized(path));
    }
    let cwd = std::env::current_dir()
        .map_err(|e| failure(format!("{filter}: cannot read the working directory: {e}")))?;
    let mut joined = utf8(cwd.into_os_string(), filter, "the working directory")?;
    join_onto(&mut joined, path);
    Ok(normalized(&joined))
}

/// `text` as UTF-8, or an error naming `what`.
fn utf8(text: std::ffi::OsString, filter: &str, what: &str) -> Result<String, Error> {
    text.into_string()
        .map_err(|t| failure(format!("{filter}: {what} is not UTF-8 ({t:?})")))
}

/// The symbolic links one `realpath` has resolved, as Python's `_joinrealpath` keeps them:
/// each link's resolved path, or `None` while it is being resolved (met again, a loop).
struct Links<'a> {
    seen: HashMap<String, Option<String>>,
    read: usize,
    /// The path asked for, for errors.
    path: &'a str,
}

impl Links<'_> {
    /// `path` with the parts of `rest` added one by one, each link among them resolved;
    /// `false` with it when a loop of links stopped the resolution.
    fn join_real(
        &mut self,
        mut path: String,
        mut rest: &str,
        depth: usize,
    ) -> Result<(String, bool), Error> {
        if depth > MAX_LINK_DEPTH {
            return Err(failure(format!(
                "realpath: `{}` goes through more than {MAX_LINK_DEPTH} nested symbolic links",
                self.path
            )));
        }
        if let Some(relative) = rest.strip_prefix('/') {
            rest = relative;
            path = "/".into();
        }
        while !rest.is_empty() {
            let (name, after) = rest.split_once('/').unwrap_or((rest, ""));
            rest = after;
            match name {
                "" | "." => continue,
                ".." => {
                    path = parent(path);
                    continue;
                }
                _ => {}
            }
            let mut next = path.clone();
            join_onto(&mut next, name);
            let is_link =
                std::fs::symlink_metadata(&next).is_ok_and(|m| m.file_type().is_symlink());
            if !is_link {
                path = next;
                continue;
            }
            match self.seen.get(&next) {
                Some(Some(resolved)) => {
                    path = resolved.clone();
                    continue;
                }
                Some(None) => {
                    join_onto(&mut next, rest);
                    return Ok((next, false));
                }
                None => {}
            }
            self.read += 1;
            if self.read > MAX_LINKS {
                return Err(failure(format!(
                    "realpath: `{}` goes through more than {MAX_LINKS} symbolic links",
                    self.path
                )));
            }
            let target = std::fs::read_link(&next).map_err(|e| {
                failure(format!(
                    "realpath: cannot read the symbolic link {next}: {e}"
                ))
            })?;
            let target = utf8(
                target.into_os_string(),
                "realpath",
                &format!("the target of the symbolic link {next}"),
            )?;
            self.seen.insert(next.clone(), None);
            let (resolved, ok) = self.join_real(path, &target, depth + 1)?;
            if !ok {
                let mut unresolved = resolved;
                join_onto(&mut unresolved, rest);
                return Ok((unresolved, false));
            }
            self.seen.insert(next, Some(resolved.clone()));
            path = resolved;
        }
        Ok((path, true))
    }
}

/// Where `..` leads from `path` while resolving links: its parent (`os.path.split`), a `..`
/// more where the path is itself made of `..`, `..` from nothing.
fn parent(path: String) -> String {
    if path.is_empty() {
        return "..".into();
    }
    let cut = path.rfind('/').map_or(0, |at| at + 1);
    let (head, name) = path.split_at(cut);
    let trimmed = head.trim_end_matches('/');
    let mut head = if trimmed.is_empty() {
        head.to_string()
    } else {
        trimmed.to_string()
    };
    if name == ".." {
        join_onto(&mut head, "../..");
    }
    head
}

/// The home directory the password database gives `user` (the current user for `None`), or
/// `None` where it knows no such user.
fn passwd_home(user: Option<&str>) -> Result<Option<String>, Error> {
    let name = match user.map(std::ffi::CString::new).transpose() {
        Ok(name) => name,
        Err(_) => {
            return Err(failure(
                "expanduser: embedded null character in the user's name".into(),
            ));
        }
    };
    let mut buffer = vec![0u8; 1024];
    loop {
        // SAFETY: the entry and result are written by the call only, into `buffer`, whose
        // length is given; nothing is read from them unless the call found an entry.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let status = unsafe {
            match &name {
                Some(name) => libc::getpwnam_r(
                    name.as_ptr(),
                    &mut entry,
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                    &mut found,
                ),
                None => libc::getpwuid_r(
                    libc::getuid(),
                    &mut entry,
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                    &mut found,
                ),
            }
        };
        if status == libc::ERANGE && buffer.len() < 1 << 20 {
            buffer.resize(buffer.len() * 4, 0);
            continue;
        }
        if found.is_null() || entry.pw_dir.is_null() {
            return Ok(None);
        }
        // SAFETY: pw_dir points at a NUL-terminated text inside `buffer`.
        let dir = unsafe { std::ffi::CStr::from_ptr(entry.pw_dir) };
        return dir.to_str().map(|d| Some(d.to_string())).map_err(|_| {
            failure("expanduser: the home directory in the password database is not UTF-8".into())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{refusal, rendered};

    /// Each template, and what ansible-core 2.19.14 printed for it (`ansible -m debug`); the
    /// differential case templated-paths-times-yaml-documents compares many more.
    #[test]
    fn path_filters_of_the_machine_are_ansible_s() {
        for (template, ansible) in [
            ("{{ 'a~' | expanduser }}", "a~"),
            (
                "{{ '~lbctl-no-such-user/x' | expanduser }}",
                "~lbctl-no-such-user/x",
            ),
            ("{{ '~root' | expanduser }}", "/root"),
            (
                "{{ '$LBCTL_NO_SUCH_VAR/${LBCTL_NO_SUCH_VAR}/${}/$/a$$b/${x' | expandvars }}",
                "$LBCTL_NO_SUCH_VAR/${LBCTL_NO_SUCH_VAR}/${}/$/a$$b/${x",
            ),
            ("{{ '/lbctl-no-such-dir/../a/./b//' | realpath }}", "/a/b"),
            ("{{ '//x' | realpath }}", "/x"),
            (
                "{{ ['/a/b/c', '/a', '/x/y'] | map('relpath', '/a/b') | list }}",
                "['c', '..', '../../x/y']",
            ),
            ("{{ '/a/b' | relpath(start='/a/b') }}", "."),
        ] {
            assert_eq!(rendered(template), ansible, "{template}");
        }
        for (template, ansible) in [
            (
                "{{ 1 | expanduser }}",
                "expected str, bytes or os.PathLike object, not int",
            ),
            (
                "{{ none | realpath }}",
                "expected str, bytes or os.PathLike object, not NoneType",
            ),
            (
                "{{ 5 | expandvars }}",
                "expected str, bytes or os.PathLike object, not int",
            ),
            ("{{ '' | relpath }}", "no path specified"),
            (
                "{{ 'a' | relpath(1) }}",
                "expected str, bytes or os.PathLike object, not int",
            ),
            (
                "{{ [] | commonpath }}",
                "commonpath() arg is an empty sequence",
            ),
            (
                "{{ ['/a', 'b'] | commonpath }}",
                "Can't mix absolute and relative paths",
            ),
            (
                "{{ 'x' | commonpath }}",
                "|commonpath expects sequence, got <class 'str'> instead.",
            ),
            (
                "{{ [1] | commonpath }}",
                "expected str, bytes or os.PathLike object, not int",
            ),
            (
                "{{ 1 | win_basename }}",
                "expected str, bytes or os.PathLike object, not int",
            ),
            (
                "{{ 'a: [' | from_yaml_all }}",
                "from_yaml_all: invalid YAML",
            ),
            // each document has anchors of its own, as in PyYAML
            ("{{ '--- &a x\n--- *a' | from_yaml_all }}", "unknown anchor"),
        ] {
            let e = refusal(template);
            assert!(e.contains(ansible), "{template}: {e}");
        }
    }

    /// A symbolic link that leads back to itself stops the resolution where it is, as in
    /// Python; each link is read once.
    #[test]
    fn realpath_reads_links_and_stops_at_a_loop() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        std::fs::create_dir_all(dir.path().join("real/b")).unwrap();
        std::os::unix::fs::symlink("real/b", dir.path().join("to-b")).unwrap();
        std::os::unix::fs::symlink("loop", dir.path().join("loop")).unwrap();
        std::os::unix::fs::symlink("../to-b/../../loop", dir.path().join("real/back")).unwrap();
        for (path, want) in [
            ("to-b/c", format!("{root}/real/b/c")),
            ("to-b/..", format!("{root}/real")),
            ("loop/x/../y", format!("{root}/loop/y")),
            ("real/back/z", format!("{root}/loop/z")),
        ] {
            let template = format!("{{{{ '{root}/{path}' | realpath }}}}");
            assert_eq!(rendered(&template), want, "{path}");
        }
    }
}
