//! Ansible inventories: INI or YAML files, or a directory of them with `group_vars/` and
//! `host_vars/`. Only structure and variables are read here; what the variables mean is the
//! spec's business.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Arc,
};

use crate::{
    source::diagnostic::{Diagnostic, Diagnostics},
    source::node::{self, Loc, Node, Value},
};

/// Variables of one scope (a group, a host, a vars file), by name, each remembering its origin.
/// Values are shared: resolving a host's variables copies pointers, not whole backend lists.
pub type VarMap = BTreeMap<String, Arc<Node>>;

#[derive(Debug, Default)]
pub struct Group {
    pub hosts: BTreeSet<String>,
    pub children: BTreeSet<String>,
    /// Variables written in the inventory file itself (`[g:vars]`, `vars:`).
    pub vars: VarMap,
    /// Variables from `group_vars/<name>`.
    pub file_vars: VarMap,
}

#[derive(Debug, Default)]
pub struct Host {
    /// Where the host was first declared, for errors about the host as a whole.
    pub loc: Option<Loc>,
    /// Variables on the host's inventory line or under `hosts:`.
    pub vars: VarMap,
    /// Variables from `host_vars/<name>`.
    pub file_vars: VarMap,
}

#[derive(Debug, Default)]
pub struct Inventory {
    /// Directory holding the inventory: templates and `group_vars/` are looked up here.
    pub dir: PathBuf,
    pub groups: BTreeMap<String, Group>,
    pub hosts: BTreeMap<String, Host>,
}

impl Inventory {
    /// Loads an inventory file or directory, reporting every problem found.
    pub fn load(path: &Path) -> Result<Inventory, Vec<Diagnostic>> {
        let mut inv = Inventory::default();
        let mut diags = Diagnostics::default();
        let files = inventory_files(path).map_err(|d| vec![d])?;
        inv.dir = if path.is_dir() {
            path.to_path_buf()
        } else {
            path.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        for file in &files {
            let text = match std::fs::read_to_string(file) {
                Ok(t) => t,
                Err(e) => {
                    diags.push(file_error(file, format!("cannot read inventory: {e}")));
                    continue;
                }
            };
            let name: Arc<str> = Arc::from(file.display().to_string());
            if is_yaml_name(file) || looks_like_yaml(&text) {
                match node::parse_str(&text, &name) {
                    Ok(root) => inv.add_yaml(&root, &mut diags),
                    Err(d) => diags.push(d),
                }
            } else {
                inv.add_ini(&text, &name, &mut diags);
            }
        }
        inv.groups.entry("all".into()).or_default();
        inv.groups.entry("ungrouped".into()).or_default();
        inv.check_children(&mut diags);
        inv.load_var_dirs(&mut diags);
        if diags.is_empty() {
            Ok(inv)
        } else {
            Err(diags.into_vec())
        }
    }

    /// Every host of `group`, its children included, sorted by inventory name.
    pub fn hosts_of(&self, group: &str) -> Vec<String> {
        let mut out = BTreeSet::new();
        let mut seen = BTreeSet::new();
        self.collect_hosts(group, &mut out, &mut seen);
        out.into_iter().collect()
    }

    fn collect_hosts(&self, group: &str, out: &mut BTreeSet<String>, seen: &mut BTreeSet<String>) {
        if !seen.insert(group.to_string()) {
            return;
        }
        if group == "all" {
            out.extend(self.hosts.keys().cloned());
            return;
        }
        if let Some(g) = self.groups.get(group) {
            out.extend(g.hosts.iter().cloned());
            for child in &g.children {
                self.collect_hosts(child, out, seen);
            }
        }
    }

    /// Groups a host belongs to (directly or through children), ordered as Ansible applies
    /// their variables: parents before children, then by name.
    pub fn groups_of(&self, host: &str) -> Vec<String> {
        let mut found = BTreeSet::new();
        let mut stack: Vec<String> = self
            .groups
            .iter()
            .filter(|(n, g)| *n != "all" && g.hosts.contains(host))
            .map(|(n, _)| n.clone())
            .collect();
        while let Some(group) = stack.pop() {
            if group == "all" || !found.insert(group.clone()) {
                continue;
            }
            stack.extend(
                self.groups
                    .iter()
                    .filter(|(_, p)| p.children.contains(&group))
                    .map(|(n, _)| n.clone()),
            );
        }
        let mut ordered: Vec<(usize, String)> = found
            .into_iter()
            .map(|g| (self.depth(&g, &mut BTreeSet::new()), g))
            .collect();
        ordered.sort();
        ordered.into_iter().map(|(_, g)| g).collect()
    }

    fn depth(&self, group: &str, seen: &mut BTreeSet<String>) -> usize {
        if !seen.insert(group.to_string()) {
            return 1;
        }
        let parents: Vec<&String> = self
            .groups
            .iter()
            .filter(|(_, g)| g.children.contains(group))
            .map(|(n, _)| n)
            .collect();
        1 + parents
            .into_iter()
            .map(|p| self.depth(p, seen))
            .max()
            .unwrap_or(0)
    }

    fn host_mut(&mut self, name: &str, loc: &Loc) -> &mut Host {
        let host = self.hosts.entry(name.to_string()).or_default();
        host.loc.get_or_insert(*loc);
        host
    }

    fn add_ini(&mut self, text: &str, file: &Arc<str>, diags: &mut Diagnostics) {
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

    fn add_yaml(&mut self, root: &Node, diags: &mut Diagnostics) {
        let Value::Map(groups) = &root.value else {
            diags.push(
                Diagnostic::new(
                    &root.loc,
                    "",
                    "a YAML inventory must be a mapping of groups",
                )
                .hint("start with `all:` and put hosts under `hosts:` or `children:`"),
            );
            return;
        };
        for (name, loc, body) in groups {
            self.add_yaml_group(name, loc, body, diags);
        }
    }

    fn add_yaml_group(&mut self, name: &str, loc: &Loc, body: &Node, diags: &mut Diagnostics) {
        if let Err(d) = check_group_name(name, loc) {
            diags.push(d);
            return;
        }
        self.groups.entry(name.to_string()).or_default();
        let entries = match &body.value {
            Value::Null => return,
            Value::Map(entries) => entries,
            _ => {
                diags.push(Diagnostic::new(
                    &body.loc,
                    name,
                    format!("a group must be a mapping, found {}", body.kind()),
                ));
                return;
            }
        };
        for (key, key_loc, value) in entries {
            match &**key {
                "hosts" => {
                    let Value::Map(hosts) = &value.value else {
                        if value.value != Value::Null {
                            diags.push(Diagnostic::new(
                                key_loc,
                                format!("{name}.hosts"),
                                "hosts must be a mapping of host names",
                            ));
                        }
                        continue;
                    };
                    for (pattern, hloc, hvars) in hosts {
                        let names = match expand_host_pattern(pattern) {
                            Ok(n) => n,
                            Err(msg) => {
                                diags.push(Diagnostic::new(hloc, &**pattern, msg));
                                continue;
                            }
                        };
                        let vars =
                            match map_entries(hvars.clone(), &format!("{name}.hosts.{pattern}")) {
                                Ok(v) => v,
                                Err(d) => {
                                    diags.push(d);
                                    continue;
                                }
                            };
                        for host in names {
                            self.host_mut(&host, hloc).vars.extend(vars.clone());
                            self.groups
                                .entry(name.to_string())
                                .or_default()
                                .hosts
                                .insert(host);
                        }
                    }
                }
                "vars" => match map_entries(value.clone(), &format!("{name}.vars")) {
                    Ok(vars) => self
                        .groups
                        .entry(name.to_string())
                        .or_default()
                        .vars
                        .extend(vars),
                    Err(d) => diags.push(d),
                },
                "children" => {
                    let Value::Map(children) = &value.value else {
                        if value.value != Value::Null {
                            diags.push(Diagnostic::new(
                                key_loc,
                                format!("{name}.children"),
                                "children must be a mapping of group names",
                            ));
                        }
                        continue;
                    };
                    for (child, cloc, cbody) in children {
                        self.groups
                            .entry(name.to_string())
                            .or_default()
                            .children
                            .insert(child.to_string());
                        self.add_yaml_group(child, cloc, cbody, diags);
                    }
                }
                other => diags.push(
                    Diagnostic::new(key_loc, format!("{name}.{other}"), "unknown key in a group")
                        .hint("a group holds only `hosts:`, `vars:` and `children:`"),
                ),
            }
        }
    }

    fn check_children(&self, diags: &mut Diagnostics) {
        for name in self.groups.keys() {
            if self.has_cycle(name, &mut BTreeSet::new()) {
                diags.push(Diagnostic::new(
                    &Loc::new(&Arc::from("inventory"), 0),
                    name,
                    format!("group `{name}` is its own descendant through `children`"),
                ));
            }
        }
    }

    fn has_cycle(&self, group: &str, path: &mut BTreeSet<String>) -> bool {
        if !path.insert(group.to_string()) {
            return true;
        }
        let cyclic = self
            .groups
            .get(group)
            .is_some_and(|g| g.children.iter().any(|c| self.has_cycle(c, path)));
        path.remove(group);
        cyclic
    }

    /// Reads `group_vars/` and `host_vars/` next to the inventory.
    fn load_var_dirs(&mut self, diags: &mut Diagnostics) {
        let group_names: Vec<String> = self.groups.keys().cloned().collect();
        for name in group_names {
            let vars = read_vars_for(&self.dir.join("group_vars"), &name, diags);
            self.groups.entry(name).or_default().file_vars = vars;
        }
        let host_names: Vec<String> = self.hosts.keys().cloned().collect();
        for name in host_names {
            let vars = read_vars_for(&self.dir.join("host_vars"), &name, diags);
            self.hosts.entry(name).or_default().file_vars = vars;
        }
    }
}

fn file_error(path: &Path, message: String) -> Diagnostic {
    Diagnostic::new(
        &Loc::new(&Arc::from(path.display().to_string()), 0),
        "",
        message,
    )
}

/// The inventory files making up `path`: the file itself, or a directory's inventory files.
fn inventory_files(path: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(file_error(path, "inventory not found".into()).hint(
            "pass an inventory file or directory with -i, e.g. `lbctl -i inventory/example validate`",
        ));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| file_error(path, format!("cannot read inventory directory: {e}")))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name == "hosts" || name.ends_with(".ini") || (is_yaml_name(p) && !name.starts_with('.'))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(
            file_error(path, "no inventory file in this directory".into())
                .hint("add a `hosts` (INI) or `hosts.yml` file listing the load balancers"),
        );
    }
    Ok(files)
}

fn is_yaml_name(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yml" | "yaml" | "json")
    )
}

fn looks_like_yaml(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .is_some_and(|l| l == "---" || (l.ends_with(':') && !l.starts_with('[')))
}

/// Reads `dir/NAME`, `dir/NAME.yml|.yaml|.json` and the YAML files inside `dir/NAME/`.
fn read_vars_for(dir: &Path, name: &str, diags: &mut Diagnostics) -> VarMap {
    let mut vars = VarMap::new();
    let mut files: Vec<PathBuf> = ["", ".yml", ".yaml", ".json"]
        .iter()
        .map(|ext| dir.join(format!("{name}{ext}")))
        .filter(|p| p.is_file())
        .collect();
    let folder = dir.join(name);
    if folder.is_dir()
        && let Ok(entries) = std::fs::read_dir(&folder)
    {
        let mut inner: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && (is_yaml_name(p) || p.extension().is_none()))
            .collect();
        inner.sort();
        files.extend(inner);
    }
    for file in files {
        match node::load_file(&file).and_then(|n| map_entries(n, "")) {
            Ok(v) => vars.extend(v),
            Err(d) => diags.push(d),
        }
    }
    vars
}

/// The entries of a mapping node as a `VarMap`; null counts as empty.
pub fn map_entries(node: Node, what: &str) -> Result<VarMap, Diagnostic> {
    match node.value {
        Value::Null => Ok(VarMap::new()),
        Value::Map(entries) => Ok(entries
            .into_iter()
            .map(|(k, _, v)| (k.to_string(), Arc::new(v)))
            .collect()),
        _ => Err(Diagnostic::new(
            &node.loc,
            what,
            format!("expected a mapping of variables, found {}", node.kind()),
        )
        .hint("variables are written `name: value`, one per line")),
    }
}

fn check_group_name(name: &str, loc: &Loc) -> Result<(), Diagnostic> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Diagnostic::new(loc, name, "invalid group name")
            .hint("group names use letters, digits, `_` and `-` only"))
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

/// Expands `worker[1:3]`, `db[01:10:2]`, `node-[a:c].lan` into host names.
pub fn expand_host_pattern(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('[') else {
        return check_host_name(pattern).map(|()| vec![pattern.to_string()]);
    };
    let close = pattern[open..]
        .find(']')
        .map(|i| open + i)
        .ok_or_else(|| format!("range in `{pattern}` is not closed"))?;
    let (head, range, tail) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    let parts: Vec<&str> = range.split(':').collect();
    let (start, end, step) = match parts.as_slice() {
        [a, b] => (*a, *b, "1"),
        [a, b, s] => (*a, *b, *s),
        _ => {
            return Err(format!(
                "range `[{range}]` must be [start:end] or [start:end:step]"
            ));
        }
    };
    let step: usize = step
        .parse()
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| format!("range step `{step}` must be a positive integer"))?;
    let mut items = Vec::new();
    if let (Ok(a), Ok(b)) = (start.parse::<u64>(), end.parse::<u64>()) {
        if a > b {
            return Err(format!("range `[{range}]` ends before it starts"));
        }
        if b - a > 100_000 {
            return Err(format!("range `[{range}]` is too large"));
        }
        let width = if start.len() > 1 && start.starts_with('0') {
            start.len()
        } else {
            0
        };
        let mut i = a;
        while i <= b {
            items.push(format!("{i:0width$}"));
            i += step as u64;
        }
    } else if let ([a], [b]) = (start.as_bytes(), end.as_bytes()) {
        if !a.is_ascii_alphabetic() || !b.is_ascii_alphabetic() || a > b {
            return Err(format!(
                "range `[{range}]` must go from a letter to a later letter"
            ));
        }
        items.extend((*a..=*b).step_by(step).map(|c| (c as char).to_string()));
    } else {
        return Err(format!(
            "range `[{range}]` must use numbers or single letters"
        ));
    }
    let mut out = Vec::new();
    for item in items {
        // The tail may hold another range.
        for rest in expand_host_pattern(&format!("{item}{tail}"))? {
            out.push(format!("{head}{rest}"));
        }
    }
    for name in &out {
        check_host_name(name)?;
    }
    Ok(out)
}

fn check_host_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid host name (letters, digits, `.`, `-`, `_` only)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_expand_like_ansible() {
        assert_eq!(
            expand_host_pattern("worker[1:3]").unwrap(),
            ["worker1", "worker2", "worker3"]
        );
        assert_eq!(
            expand_host_pattern("db[08:10]").unwrap(),
            ["db08", "db09", "db10"]
        );
        assert_eq!(
            expand_host_pattern("n[a:c].lan").unwrap(),
            ["na.lan", "nb.lan", "nc.lan"]
        );
        assert_eq!(expand_host_pattern("x[1:5:2]").unwrap(), ["x1", "x3", "x5"]);
        assert!(expand_host_pattern("x[3:1]").is_err());
        assert!(expand_host_pattern("x[1:3").is_err());
    }

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lbctl-inv-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn ini_groups_children_vars_and_var_dirs() {
        let d = tempdir("ini");
        write(
            &d,
            "hosts",
            "[haproxy_servers]\nlb[1:2] ansible_user=ops\n\n[workers]\nw1 ansible_host=10.0.0.1 ansible_port=2222 # comment\n\n[k8s:children]\nworkers\n\n[k8s:vars]\nzone=eu\n",
        );
        write(&d, "group_vars/all.yml", "a: 1\n");
        write(&d, "group_vars/haproxy_servers/main.yml", "b: 2\n");
        write(&d, "host_vars/lb1.yaml", "c: 3\n");
        let inv = Inventory::load(&d).unwrap();
        assert_eq!(inv.hosts_of("haproxy_servers"), ["lb1", "lb2"]);
        assert_eq!(inv.hosts_of("k8s"), ["w1"]);
        assert_eq!(inv.hosts_of("all").len(), 3);
        assert_eq!(inv.hosts["w1"].vars["ansible_port"].value, Value::Int(2222));
        assert_eq!(inv.groups_of("w1"), ["k8s", "workers"]);
        assert!(inv.groups["all"].file_vars.contains_key("a"));
        assert!(inv.groups["haproxy_servers"].file_vars.contains_key("b"));
        assert_eq!(inv.hosts["lb1"].file_vars["c"].loc.line, 1);
    }

    #[test]
    fn yaml_inventory() {
        let d = tempdir("yaml");
        write(
            &d,
            "hosts.yml",
            "all:\n  vars:\n    x: 1\n  children:\n    haproxy_servers:\n      hosts:\n        lb1:\n          ansible_host: 10.0.0.11\n        lb2:\n",
        );
        let inv = Inventory::load(&d).unwrap();
        assert_eq!(inv.hosts_of("haproxy_servers"), ["lb1", "lb2"]);
        assert_eq!(inv.hosts["lb1"].vars["ansible_host"].loc.line, 8);
        assert!(inv.groups["all"].vars.contains_key("x"));
    }

    #[test]
    fn bad_ini_lines_are_all_reported() {
        let d = tempdir("bad");
        write(&d, "hosts", "[lbs\nlb1 junk\n[x:weird]\n");
        let errs = Inventory::load(&d).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert_eq!(errs[1].line, 2);
    }
}
