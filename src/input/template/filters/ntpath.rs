//! Ansible's filters on Windows paths, Python's `ntpath` on any machine: `win_splitdrive`,
//! `win_basename` and `win_dirname`. Both `\` and `/` separate parts; a drive is `C:` or a
//! UNC share (`\\server\share`, `\\?\UNC\server\share`).

use minijinja::{Error, Value};

use super::paths::path_text;

fn is_sep(c: char) -> bool {
    c == '\\' || c == '/'
}

/// Where the drive of `path` ends (a byte offset): after `C:`, after a UNC path's share, or
/// at 0 for none.
fn drive_end(path: &str) -> usize {
    let mut chars = path.chars();
    let (Some(first), Some(second)) = (chars.next(), chars.next()) else {
        return 0;
    };
    if is_sep(first) && is_sep(second) {
        let unc = path.len() >= 8
            && path.is_char_boundary(8)
            && path[..8]
                .replace('/', "\\")
                .eq_ignore_ascii_case("\\\\?\\UNC\\");
        let start = if unc { 8 } else { 2 };
        let Some(server) = path[start..].find(is_sep).map(|at| start + at) else {
            return path.len();
        };
        return path[server + 1..]
            .find(is_sep)
            .map_or(path.len(), |at| server + 1 + at);
    }
    if second == ':' {
        return first.len_utf8() + 1;
    }
    0
}

/// `win_splitdrive`: the drive and the rest, a tuple (`('C:', '\\Windows')`).
pub(super) fn win_splitdrive(value: Value) -> Result<Value, Error> {
    let path = path_text(&value, "win_splitdrive")?;
    let (drive, rest) = path.split_at(drive_end(path));
    Ok(Value::from((drive, rest)))
}

/// `ntpath.split`: the drive and the folders before the last separator (their trailing
/// separators dropped, unless made of nothing else), and the last part.
fn split(path: &str) -> (String, &str) {
    let (drive, rest) = path.split_at(drive_end(path));
    let cut = rest.rfind(is_sep).map_or(0, |at| at + 1);
    let (head, tail) = rest.split_at(cut);
    let trimmed = head.trim_end_matches(is_sep);
    let head = if trimmed.is_empty() { head } else { trimmed };
    (format!("{drive}{head}"), tail)
}

/// `win_basename`: the last part of a Windows path.
pub(super) fn win_basename(value: Value) -> Result<String, Error> {
    path_text(&value, "win_basename").map(|p| split(p).1.to_string())
}

/// `win_dirname`: a Windows path without its last part.
pub(super) fn win_dirname(value: Value) -> Result<String, Error> {
    path_text(&value, "win_dirname").map(|p| split(p).0)
}
