//! INI inventories: `[group]`, `[group:vars]` and `[group:children]` sections, hosts with
//! `key=value` variables typed as Ansible types them.

use std::sync::Arc;

use super::{Inventory, check_group_name, host_pattern::expand_host_pattern};
use crate::{
    source::{Diagnostic, Diagnostics},
    source::{Loc, Node, Value, VarMap},
};

impl Inventory {
    pub(super) fn add_ini(&mut self, text: &str, file: &Arc<str>, diags: &mut Diagnostics) {
        #[derive(Clone, Copy)]
        enum Section {
            Hosts,
            Vars,
            Children,
        }
        let mut group = "ungrouped".to_string();
        let mut section = Section::Hosts;
        for (idx, raw) in text.lines().enumerate() {
            let loc = Loc::new(file, idx + 1);
            let line = strip_ini_comment(raw).trim();
            if line.is_empty() {
                continue;
            }
            if let Some(header) = line.strip_prefix('[') {
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
                self.groups.entry(group.clone()).or_default();
                continue;
            }
            match section {
                Section::Hosts => {
                    let mut words = split_ini_words(line).into_iter();
                    let pattern = words.next().unwrap_or_default();
                    let names = match expand_host_pattern(&pattern) {
                        Ok(n) => n,
                        Err(msg) => {
                            diags.push(
                                Diagnostic::new(&loc, &pattern, msg)
                                    .hint("ranges look like web[1:3] or db[01:10]"),
                            );
                            continue;
                        }
                    };
                    let mut vars = VarMap::new();
                    for word in words {
                        match word.split_once('=') {
                            Some((k, v)) => {
                                vars.insert(k.to_string(), Arc::new(ini_value(v, &loc, true)));
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
                        self.groups
                            .entry(group.clone())
                            .or_default()
                            .hosts
                            .insert(name);
                    }
                }
                Section::Vars => match line.split_once('=') {
                    Some((k, v)) => {
                        let g = self.groups.entry(group.clone()).or_default();
                        g.vars.insert(
                            k.trim().to_string(),
                            Arc::new(ini_value(v.trim(), &loc, false)),
                        );
                    }
                    None => diags.push(
                        Diagnostic::new(&loc, line, "expected key=value in a :vars section")
                            .hint("write `name=value`"),
                    ),
                },
                Section::Children => {
                    if let Err(d) = check_group_name(line, &loc) {
                        diags.push(d);
                        continue;
                    }
                    self.groups.entry(line.to_string()).or_default();
                    let g = self.groups.entry(group.clone()).or_default();
                    g.children.insert(line.to_string());
                }
            }
        }
    }
}

fn strip_ini_comment(line: &str) -> &str {
    let trimmed = line.trim_start();
    if trimmed.starts_with('#') || trimmed.starts_with(';') {
        return "";
    }
    // An inline comment starts at " #" outside quotes.
    let mut quote: Option<char> = None;
    let mut prev_space = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '#' && prev_space => return &line[..i],
            None => {}
        }
        prev_space = c.is_whitespace();
    }
    line
}

/// Splits a host line on whitespace, keeping quoted values (`k='a b'`) together.
fn split_ini_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => {
                quote = None;
                cur.push(c);
            }
            Some(_) => cur.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                cur.push(c);
            }
            None if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            None => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// An INI value: quotes removed; on host lines, integers and booleans are typed, as Ansible does.
fn ini_value(raw: &str, loc: &Loc, typed: bool) -> Node {
    let unquoted = raw
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| raw.strip_prefix('"').and_then(|s| s.strip_suffix('"')));
    let value = match unquoted {
        Some(s) => Value::Str(s.into()),
        None if typed => match raw {
            "True" | "true" => Value::Bool(true),
            "False" | "false" => Value::Bool(false),
            _ => raw
                .parse::<i64>()
                .map_or_else(|_| Value::Str(raw.into()), Value::Int),
        },
        None => Value::Str(raw.into()),
    };
    Node::new(value, *loc)
}
