//! INI inventories: `[group]`, `[group:vars]` and `[group:children]` sections, hosts with
//! `key=value` variables, read as Ansible's INI plugin reads them: a host line is split as a
//! POSIX shell would (`shlex`, quotes join, `#` starts a comment), `host:port` sets
//! `ansible_port`, a `:vars` line is `key=everything after the =`, and every value is typed
//! with Python's `literal_eval` (`python_literal`).

use std::{collections::HashSet, sync::Arc};

use super::{Inventory, check_group_name, host_pattern::expand_host_pattern, python_literal};
use crate::{
    source::{Diagnostic, Diagnostics},
    source::{Loc, Node, Value, VarMap},
};

impl Inventory {
    /// Reads an INI file; `known` says whether a group is already in the inventory (from an
    /// earlier source), which a `:children` or `:vars` section may name without declaring it.
    pub(super) fn add_ini(
        &mut self,
        text: &str,
        file: &Arc<str>,
        known: &dyn Fn(&str) -> bool,
        diags: &mut Diagnostics,
    ) {
        #[derive(Clone, Copy)]
        enum Section {
            Hosts,
            Vars,
            Children,
        }
        let mut group = "ungrouped".to_string();
        let mut section = Section::Hosts;
        // Groups this file declares ([g] or [g:children]); the groups it names without
        // declaring them (a child, a :vars section), with where and for which parent.
        let mut declared: HashSet<String> = ["all", "ungrouped"].map(String::from).into();
        let mut named: Vec<(String, Loc, Option<String>)> = Vec::new();
        for (idx, raw) in python_lines(text).enumerate() {
            let loc = Loc::new(file, idx + 1);
            let line = raw.trim();
            if line.is_empty() || line.starts_with(['#', ';']) {
                continue;
            }
            // `[2001:db8::1]:2222 ...` is a host (an IPv6 address with a port), not a section:
            // Ansible takes a line for a section only when it ends with `]`
            let address_with_port = line
                .split_whitespace()
                .next()
                .and_then(|word| word.strip_prefix('[')?.rsplit_once("]:"))
                .is_some_and(|(_, port)| {
                    !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
                });
            if let Some(header) = strip_trailing_comment(line)
                .strip_prefix('[')
                .filter(|_| !address_with_port)
            {
                let line = strip_trailing_comment(line);
                let Some(header) = header.strip_suffix(']') else {
                    diags.push(
                        Diagnostic::new(&loc, "", format!("section header `{line}` is not closed"))
                            .hint("write it as [group], [group:vars] or [group:children]"),
                    );
                    continue;
                };
                let (name, kind) = header.split_once(':').unwrap_or((header, ""));
                section = match kind {
                    "" => Section::Hosts,
                    "vars" => Section::Vars,
                    "children" => Section::Children,
                    other => {
                        diags.push(
                            Diagnostic::new(&loc, name, format!("unknown section kind `:{other}`"))
                                .hint("use [group], [group:vars] or [group:children]"),
                        );
                        continue;
                    }
                };
                if let Err(d) = check_group_name(name, &loc) {
                    diags.push(d);
                    continue;
                }
                group = name.to_string();
                match section {
                    Section::Vars => named.push((group.clone(), loc, None)),
                    Section::Hosts | Section::Children => {
                        declared.insert(group.clone());
                    }
                }
                self.group_mut(&group);
                continue;
            }
            match section {
                Section::Hosts => {
                    let words = match shlex_split(line) {
                        Ok(w) => w,
                        Err(msg) => {
                            diags.push(
                                Diagnostic::new(&loc, "", msg)
                                    .hint("close the quote, or escape it with a backslash"),
                            );
                            continue;
                        }
                    };
                    let mut words = words.into_iter();
                    let Some(pattern) = words.next() else {
                        continue;
                    };
                    let (pattern, port) = split_port(&pattern);
                    let names = match expand_host_pattern(pattern) {
                        Ok(n) => n,
                        Err(e) => {
                            diags.push(
                                Diagnostic::new(&loc, pattern, e.to_string())
                                    .hint("ranges look like web[1:3] or db[01:10]"),
                            );
                            continue;
                        }
                    };
                    let mut vars = VarMap::new();
                    if let Some(port) = port {
                        vars.insert(
                            "ansible_port".into(),
                            Arc::new(Node::new(Value::Int(port), loc)),
                        );
                    }
                    for word in words {
                        match word.split_once('=') {
                            Some((k, v)) => {
                                vars.insert(k.to_string(), Arc::new(ini_value(v, &loc)));
                            }
                            None => diags.push(
                                Diagnostic::new(
                                    &loc,
                                    &word,
                                    "expected key=value after the host name",
                                )
                                .hint("host variables are written `host key=value key2=value2`"),
                            ),
                        }
                    }
                    for name in names {
                        let host = self.host_mut(&name, &loc);
                        host.vars.extend(vars.clone());
                        self.group_mut(&group).add_host(name);
                    }
                }
                Section::Vars => match line.split_once('=') {
                    Some((k, v)) => {
                        let g = self.group_mut(&group);
                        g.vars
                            .insert(k.trim().to_string(), Arc::new(ini_value(v.trim(), &loc)));
                    }
                    None => diags.push(
                        Diagnostic::new(&loc, line, "expected key=value in a :vars section")
                            .hint("write `name=value`"),
                    ),
                },
                Section::Children => {
                    let line = strip_trailing_comment(line);
                    if let Err(d) = check_group_name(line, &loc) {
                        diags.push(d);
                        continue;
                    }
                    named.push((line.to_string(), loc, Some(group.clone())));
                    self.group_mut(line);
                    self.group_mut(&group).add_child(line.to_string(), loc);
                }
            }
        }
        // As Ansible's INI plugin, which refuses the file: a group must be declared somewhere
        // ([g] or [g:children]) to be a child or to have :vars. The first reference is shown.
        let mut reported = HashSet::new();
        for (name, loc, parent) in named {
            if declared.contains(&name) || known(&name) || !reported.insert(name.clone()) {
                continue;
            }
            let message = match &parent {
                Some(parent) => format!(
                    "[{parent}:children] names group `{name}`, which this inventory never declares"
                ),
                None => format!(
                    "[{name}:vars] is for group `{name}`, which this inventory never declares"
                ),
            };
            diags.push(
                Diagnostic::new(&loc, &name, message).hint(format!(
                    "declare it with a [{name}] section (empty is fine) or a [{name}:children] section; Ansible refuses the file otherwise"
                )),
            );
        }
    }
}

/// The lines of `text` as Python's `str.splitlines` gives them to Ansible's INI plugin: broken
/// at `\n`, `\r\n` and a lone `\r` (a file saved with old Mac line ends read as one line
/// before), and at the other breaks Python knows (`\v`, `\f`, `\x1c`-`\x1e`, U+0085,
/// U+2028, U+2029); a break at the very end starts no line.
fn python_lines(text: &str) -> impl Iterator<Item = &str> {
    let is_break = |c: char| {
        matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        )
    };
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let Some(at) = rest.find(is_break) else {
            return Some(std::mem::take(&mut rest));
        };
        let line = &rest[..at];
        let brk = if rest[at..].starts_with("\r\n") {
            2
        } else {
            rest[at..].chars().next().map_or(1, char::len_utf8)
        };
        rest = &rest[at + brk..];
        Some(line)
    })
}

/// A section header or child group name with its trailing `# comment` removed.
fn strip_trailing_comment(line: &str) -> &str {
    match line.find('#') {
        Some(i) => line[..i].trim_end(),
        None => line,
    }
}

/// `host:port` (or `[address]:port`) as Ansible's address parser splits it; a name with
/// other colons (an IPv6 address) has no port.
pub(super) fn split_port(pattern: &str) -> (&str, Option<i64>) {
    let Some((head, port)) = pattern.rsplit_once(':') else {
        return (pattern, None);
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return (pattern, None);
    }
    if let Some(inner) = head.strip_prefix('[').and_then(|h| h.strip_suffix(']'))
        && inner.contains(':')
    {
        return (inner, port.parse().ok());
    }
    // Colons inside a range (`web[1:3]`) are not the port's.
    let mut depth = 0i32;
    for c in head.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => return (pattern, None),
            _ => {}
        }
    }
    (head, port.parse().ok())
}

/// Splits a host line as Python's `shlex.split(line, comments=True)`: whitespace separates
/// words, single quotes keep everything, double quotes keep all but `\"`, `\\` escapes, a
/// backslash outside quotes escapes the next character, and `#` outside quotes ends the line.
fn shlex_split(line: &str) -> Result<Vec<String>, &'static str> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '#' => break,
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err("a single quote is not closed"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => cur.push(e),
                            Some(e) => {
                                cur.push('\\');
                                cur.push(e);
                            }
                            None => return Err("a double quote is not closed"),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err("a double quote is not closed"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(e) = chars.next() {
                    cur.push(e);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// An INI value, typed as Python's `literal_eval` reads it, else the text itself.
fn ini_value(raw: &str, loc: &Loc) -> Node {
    python_literal::literal(raw, loc).unwrap_or_else(|| Node::new(Value::Str(raw.into()), *loc))
}
