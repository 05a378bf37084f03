//! Ansible inventories: INI or YAML files, or a directory of them with `group_vars/` and
//! `host_vars/`. Only structure and variables are read here; what the variables mean is the
//! spec's business.
//!
//! [`Inventory::load`] walks every source (`files`), reads each file as YAML (`yaml`) or INI
//! (`ini`) as Ansible's plugins would, expanding host ranges (`host_pattern`) on the way, then
//! checks the groups and reads the variable directories beside each source (`files`).

mod files;
mod host_pattern;
mod ini;
mod python_literal;
mod yaml;

pub use host_pattern::check_host_name;
pub(super) use host_pattern::expand_host_pattern;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
};

use crate::{
    source::{Diagnostic, Diagnostics},
    source::{Loc, Node},
};

/// Variables of one scope (a group, a host, a vars file), by name, each remembering its origin.
/// Values are shared: resolving a host's variables copies pointers, not whole backend lists.
pub type VarMap = BTreeMap<String, Arc<Node>>;

#[derive(Debug, Default)]
pub struct Group {
    pub hosts: BTreeSet<String>,
    pub children: BTreeSet<String>,
    /// `hosts` and `children` in the order the inventory declares them: Ansible's order.
    pub host_order: Vec<String>,
    pub child_order: Vec<String>,
    /// Where each child was first listed under this group.
    pub child_locs: BTreeMap<String, Loc>,
    /// Variables written in the inventory file itself (`[g:vars]`, `vars:`).
    pub vars: VarMap,
    /// The files of `group_vars/<name>`, in the order Ansible applies them.
    pub file_vars: Vec<VarsFile>,
}

impl Group {
    pub(super) fn add_host(&mut self, name: String) {
        if self.hosts.insert(name.clone()) {
            self.host_order.push(name);
        }
    }

    pub(super) fn add_child(&mut self, name: String, loc: Loc) {
        if self.children.insert(name.clone()) {
            self.child_locs.insert(name.clone(), loc);
            self.child_order.push(name);
        }
    }
}

#[derive(Debug, Default)]
pub struct Host {
    /// Where the host was first declared, for errors about the host as a whole.
    pub loc: Option<Loc>,
    /// Variables on the host's inventory line or under `hosts:`.
    pub vars: VarMap,
    /// The files of `host_vars/<name>`, in the order Ansible applies them.
    pub file_vars: Vec<VarsFile>,
}

/// One file of `group_vars/` or `host_vars/`.
#[derive(Debug)]
pub enum VarsFile {
    Plain(VarMap),
    /// A whole-file Ansible Vault, decrypted only when a host that needs it is resolved.
    Vault {
        path: PathBuf,
        text: Arc<str>,
    },
}

#[derive(Debug, Default)]
pub struct Inventory {
    /// Directory holding the (first) inventory source: templates are looked up here.
    pub dir: PathBuf,
    /// The sources as given (`-i`), for problems with the inventory as a whole.
    pub sources: Vec<PathBuf>,
    pub groups: BTreeMap<String, Group>,
    pub hosts: BTreeMap<String, Host>,
    /// Host names in the order the inventory declares them (Ansible's order for `groups`).
    pub order: Vec<String>,
    /// Group names in the order the inventory declares them.
    pub group_order: Vec<String>,
    /// Files skipped because no inventory format reads them, as Ansible skips them.
    pub warnings: Vec<Diagnostic>,
    /// The same problems with their own hints (how to fix the line), and what was read of
    /// those files: the errors, and the hosts whose variables are checked, when skipping them
    /// leaves no inventory at all.
    skipped_errors: Vec<Diagnostic>,
    skipped_parts: Vec<Inventory>,
    /// The group hierarchy indexed for [`Inventory::groups_of`], built on first use (the
    /// inventory no longer changes then).
    graph: OnceLock<Graph>,
}

impl Inventory {
    /// Loads inventory sources (files or directories, as several `-i` give them), reporting
    /// every problem found.
    pub fn load(sources: &[PathBuf]) -> Result<Inventory, Vec<Diagnostic>> {
        let (inv, errors) = Inventory::load_partial(sources);
        if errors.is_empty() {
            Ok(inv)
        } else {
            Err(errors)
        }
    }

    /// Loads what can be read of the inventory sources, and every problem found: a line or
    /// file in error is left out, the rest is kept, so that the variables of the hosts that
    /// were read can be checked in the same run.
    pub fn load_partial(sources: &[PathBuf]) -> (Inventory, Vec<Diagnostic>) {
        let mut inv = Inventory::default();
        let mut diags = Diagnostics::default();
        let first = sources.first().cloned().unwrap_or_default();
        inv.dir = if first.is_dir() {
            first
        } else {
            first.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        inv.sources = sources.to_vec();
        for source in sources {
            inv.add_source(source, &mut diags);
        }
        let parts = std::mem::take(&mut inv.skipped_parts);
        if inv.hosts.is_empty() && inv.groups.is_empty() {
            if diags.is_empty() {
                // Files skipped for their errors are the whole story: saying that no inventory
                // is left as well would be a second error for the same problem. What was read
                // of them is kept, so that their hosts' variables are checked in this run too.
                inv.warnings.clear();
                let skipped = std::mem::take(&mut inv.skipped_errors);
                if skipped.is_empty() {
                    let place = sources
                        .first()
                        .map(|p| p.as_path())
                        .unwrap_or(Path::new("."));
                    diags.push(
                        files::file_error(place, "no inventory in these sources".into()).hint(
                            "add a `hosts` (INI) or `hosts.yml` file listing the load balancers",
                        ),
                    );
                }
                for error in skipped {
                    let hint = match &error.hint {
                        Some(h) => format!(
                            "{h} (a file of an inventory directory that cannot be read is skipped, and that left no host)"
                        ),
                        None => "a file of an inventory directory that cannot be read is skipped, and that left no host: fix this line".into(),
                    };
                    diags.push(error.hint(hint));
                }
                for part in parts {
                    inv.merge(part);
                }
            }
            if inv.hosts.is_empty() && inv.groups.is_empty() {
                return (inv, diags.into_vec());
            }
        }
        inv.group_mut("all");
        inv.group_mut("ungrouped");
        inv.check_children(&mut diags);
        inv.load_var_dirs(sources, &mut diags);
        (inv, diags.into_vec())
    }

    /// Every host of `group`, its children included, sorted by inventory name.
    pub fn hosts_of(&self, group: &str) -> Vec<String> {
        if group == "all" {
            return self.hosts.keys().cloned().collect();
        }
        let mut out = BTreeSet::new();
        let mut seen = BTreeSet::new();
        let mut stack = vec![group];
        while let Some(name) = stack.pop() {
            if !seen.insert(name) {
                continue;
            }
            if let Some(g) = self.groups.get(name) {
                out.extend(g.hosts.iter().cloned());
                stack.extend(g.children.iter().map(String::as_str));
            }
        }
        out.into_iter().collect()
    }

    /// Groups a host belongs to (directly or through children), ordered as Ansible applies
    /// their variables: parents before children, then by `ansible_group_priority`, then by
    /// name. Linear in the host's groups: the parents and depths of every group are worked
    /// out once, on first use.
    pub fn groups_of(&self, host: &str) -> Vec<String> {
        let graph = self.graph.get_or_init(|| Graph::new(self));
        let mut found = BTreeSet::new();
        let mut stack: Vec<&str> = graph
            .memberships
            .get(host)
            .map(|groups| groups.iter().map(String::as_str).collect())
            .unwrap_or_default();
        while let Some(group) = stack.pop() {
            if group == "all" || !found.insert(group) {
                continue;
            }
            if let Some(parents) = graph.parents.get(group) {
                stack.extend(parents.iter().map(String::as_str));
            }
        }
        let mut ordered: Vec<(usize, i64, &str)> = found
            .into_iter()
            .map(|g| {
                (
                    graph.depth.get(g).copied().unwrap_or(1),
                    self.priority(g),
                    g,
                )
            })
            .collect();
        ordered.sort();
        ordered.into_iter().map(|(_, _, g)| g.to_string()).collect()
    }

    /// `ansible_group_priority` as the inventory source sets it (Ansible ignores it in
    /// `group_vars/`): among groups of one depth, higher priorities apply later, and win.
    fn priority(&self, group: &str) -> i64 {
        self.groups
            .get(group)
            .and_then(|g| g.vars.get("ansible_group_priority"))
            .and_then(|n| n.as_text())
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(1)
    }

    /// Every group with its hosts as Ansible's `groups` variable lists them: groups in the
    /// order they were made (`all` and `ungrouped` first), each group's hosts as
    /// [`Inventory::ordered_hosts`] lists them.
    pub fn groups_dict(&self) -> Vec<(String, Vec<String>)> {
        let mut names: Vec<&str> = vec!["all", "ungrouped"];
        names.extend(
            self.group_order
                .iter()
                .map(String::as_str)
                .filter(|g| *g != "all" && *g != "ungrouped"),
        );
        names
            .into_iter()
            .map(|g| (g.to_string(), self.ordered_hosts(g)))
            .collect()
    }

    /// A group's hosts as Ansible's `Group.get_hosts()` lists them: its own in declaration
    /// order, then its children's, generation by generation (Ansible walks a generation below
    /// the first in Python's set order, which it does not define: lbctl takes declaration
    /// order there too). The order of `groups[name]` and of host patterns.
    pub fn ordered_hosts(&self, group: &str) -> Vec<String> {
        let graph = self.graph.get_or_init(|| Graph::new(self));
        let mut walk = vec![group];
        let mut seen_groups: BTreeSet<&str> = BTreeSet::from([group]);
        let mut i = 0;
        while i < walk.len() {
            for child in self.ordered_children(walk[i], graph) {
                if seen_groups.insert(child) {
                    walk.push(child);
                }
            }
            i += 1;
        }
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for g in walk {
            for host in self.own_hosts(g, graph) {
                if seen.insert(host) {
                    out.push(host.to_string());
                }
            }
        }
        out
    }

    /// The direct children of a group in Ansible's order; `all` adopts `ungrouped` first, then
    /// every group without another parent, in the order they were made.
    fn ordered_children<'a>(&'a self, group: &str, graph: &Graph) -> Vec<&'a str> {
        let Some(g) = self.groups.get(group) else {
            return Vec::new();
        };
        if group != "all" {
            return g.child_order.iter().map(String::as_str).collect();
        }
        let orphan = |name: &&String| {
            graph
                .parents
                .get(name.as_str())
                .is_none_or(|parents| parents.iter().all(|p| p == "all"))
        };
        let mut out = vec!["ungrouped"];
        let mut listed = BTreeSet::from(["ungrouped", "all"]);
        for name in g
            .child_order
            .iter()
            .chain(self.group_order.iter().filter(orphan))
        {
            if listed.insert(name.as_str()) {
                out.push(name);
            }
        }
        out
    }

    /// The hosts a group itself holds, in declaration order. `ungrouped` holds the hosts of no
    /// other group (Ansible moves a host out of it once another group has it).
    fn own_hosts<'a>(&'a self, group: &str, graph: &Graph) -> Vec<&'a str> {
        let Some(g) = self.groups.get(group) else {
            return Vec::new();
        };
        if group != "ungrouped" {
            return g.host_order.iter().map(String::as_str).collect();
        }
        let alone = |h: &&String| {
            graph
                .memberships
                .get(h.as_str())
                .is_none_or(|groups| groups.iter().all(|g| g == "ungrouped"))
        };
        let listed = g.host_order.iter().filter(alone);
        let rest = self
            .order
            .iter()
            .filter(|h| !g.hosts.contains(*h))
            .filter(alone);
        listed.chain(rest).map(String::as_str).collect()
    }

    /// The groups `host` is in, sorted, as Ansible's `group_names`: without `all`, and
    /// `ungrouped` only for a host in no other group.
    pub fn group_names(&self, host: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .groups_of(host)
            .into_iter()
            .filter(|g| g != "ungrouped")
            .collect();
        if names.is_empty() && self.hosts.contains_key(host) {
            names.push("ungrouped".into());
        }
        names.sort();
        names
    }

    pub(super) fn group_mut(&mut self, name: &str) -> &mut Group {
        if !self.groups.contains_key(name) {
            self.group_order.push(name.to_string());
        }
        self.groups.entry(name.to_string()).or_default()
    }

    fn host_mut(&mut self, name: &str, loc: &Loc) -> &mut Host {
        if !self.hosts.contains_key(name) {
            self.order.push(name.to_string());
        }
        let host = self.hosts.entry(name.to_string()).or_default();
        host.loc.get_or_insert(*loc);
        host
    }

    /// Every loop of `children` (Ansible refuses an inventory with one: "recursive dependency
    /// loop"), reported once, at the entry that closes it, with the groups it goes through.
    fn check_children(&self, diags: &mut Diagnostics) {
        for component in cyclic_groups(self) {
            let looped = shortest_loop(self, &component);
            let edges: Vec<(&str, &str)> = looped
                .iter()
                .copied()
                .zip(looped.iter().copied().skip(1))
                .collect();
            let loc_of = |(parent, child): (&str, &str)| {
                self.groups
                    .get(parent)
                    .and_then(|g| g.child_locs.get(child))
                    .copied()
            };
            // The entry written last (in file order) is the one that made the loop.
            let closing = edges
                .iter()
                .copied()
                .max_by(|a, b| {
                    let key = |e| loc_of(e).map(|l: Loc| (l.file.to_string(), l.line));
                    key(*a).cmp(&key(*b))
                })
                .unwrap_or((component[0], component[0]));
            let loc = loc_of(closing).unwrap_or_else(|| Loc::new(&Arc::from("inventory"), 0));
            let (parent, child) = closing;
            diags.push(
                Diagnostic::new(
                    &loc,
                    format!("{parent}.children"),
                    format!(
                        "`{child}` under `{parent}` makes a loop of children: {}",
                        loop_text(&looped)
                    ),
                )
                .hint("a group cannot be its own descendant (Ansible refuses it too): remove this entry or another one of the loop"),
            );
        }
    }
}

/// The group hierarchy seen from below: each group's parents and depth, each host's own
/// groups.
#[derive(Debug, Default)]
struct Graph {
    parents: HashMap<String, Vec<String>>,
    /// 1 for a group without parents, else one more than its deepest parent (Ansible applies
    /// shallower groups' variables first).
    depth: HashMap<String, usize>,
    memberships: HashMap<String, Vec<String>>,
}

impl Graph {
    fn new(inv: &Inventory) -> Graph {
        let mut graph = Graph::default();
        for (name, group) in &inv.groups {
            for child in &group.children {
                graph
                    .parents
                    .entry(child.clone())
                    .or_default()
                    .push(name.clone());
            }
            if name != "all" {
                for host in &group.hosts {
                    graph
                        .memberships
                        .entry(host.clone())
                        .or_default()
                        .push(name.clone());
                }
            }
        }
        // Depths in topological order (Kahn): a group is placed once all its parents are.
        // Groups on a cycle never are; the inventory reports them as errors.
        let mut waiting: HashMap<&str, usize> = inv
            .groups
            .keys()
            .map(|g| (g.as_str(), graph.parents.get(g).map_or(0, Vec::len)))
            .collect();
        let mut ready: Vec<&str> = waiting
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(g, _)| *g)
            .collect();
        while let Some(group) = ready.pop() {
            let depth = 1 + graph
                .parents
                .get(group)
                .into_iter()
                .flatten()
                .filter_map(|p| graph.depth.get(p))
                .max()
                .copied()
                .unwrap_or(0);
            graph.depth.insert(group.to_string(), depth);
            for child in inv.groups.get(group).into_iter().flat_map(|g| &g.children) {
                if let Some(n) = waiting.get_mut(child.as_str()) {
                    *n -= 1;
                    if *n == 0 {
                        ready.push(child);
                    }
                }
            }
        }
        graph
    }
}

/// The groups that lie on a cycle of `children`, one list for each set of groups that reach
/// one another, found without recursion (Tarjan's strongly connected components with an
/// explicit stack); each list and the lists in name order.
fn cyclic_groups(inv: &Inventory) -> Vec<Vec<&str>> {
    let names: Vec<&str> = inv.groups.keys().map(String::as_str).collect();
    let index_of: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let children: Vec<Vec<usize>> = names
        .iter()
        .map(|n| {
            inv.groups[*n]
                .children
                .iter()
                .filter_map(|c| index_of.get(c.as_str()).copied())
                .collect()
        })
        .collect();
    const UNSEEN: usize = usize::MAX;
    let mut index = vec![UNSEEN; names.len()];
    let mut low = vec![0; names.len()];
    let mut on_stack = vec![false; names.len()];
    let mut stack = Vec::new();
    let mut cyclic = Vec::new();
    let mut next = 0;
    for root in 0..names.len() {
        if index[root] != UNSEEN {
            continue;
        }
        // (node, position in its children)
        let mut work = vec![(root, 0)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (node, ref mut pos)) = work.last_mut() {
            if let Some(&child) = children[node].get(*pos) {
                *pos += 1;
                if index[child] == UNSEEN {
                    index[child] = next;
                    low[child] = next;
                    next += 1;
                    stack.push(child);
                    on_stack[child] = true;
                    work.push((child, 0));
                } else if on_stack[child] {
                    low[node] = low[node].min(index[child]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[node]);
            }
            if low[node] == index[node] {
                let mut component = Vec::new();
                while let Some(member) = stack.pop() {
                    on_stack[member] = false;
                    component.push(member);
                    if member == node {
                        break;
                    }
                }
                if component.len() > 1 || children[node].contains(&node) {
                    component.sort_unstable();
                    cyclic.push(component);
                }
            }
        }
    }
    cyclic.sort_unstable();
    cyclic
        .into_iter()
        .map(|c| c.into_iter().map(|i| names[i]).collect())
        .collect()
}

/// `a → b → a`; a loop of more than 10 groups with the middle left out.
fn loop_text(looped: &[&str]) -> String {
    if looped.len() <= 10 {
        return looped.join(" → ");
    }
    let (head, tail) = (&looped[..4], &looped[looped.len() - 4..]);
    format!(
        "{} → … ({} more) … → {}",
        head.join(" → "),
        looped.len() - 8,
        tail.join(" → ")
    )
}

/// A shortest loop of `children` from the first group of `component` back to it, staying in
/// the component: `[a, b, a]` (breadth first, so a long chain costs one pass).
fn shortest_loop<'a>(inv: &'a Inventory, component: &[&'a str]) -> Vec<&'a str> {
    let start = component[0];
    let inside: HashSet<&str> = component.iter().copied().collect();
    let mut came_from: HashMap<&str, &str> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(group) = queue.pop_front() {
        let Some(g) = inv.groups.get(group) else {
            continue;
        };
        for child in g.child_order.iter().map(String::as_str) {
            if child == start {
                let mut path = vec![start, group];
                let mut at = group;
                while at != start {
                    at = came_from[at];
                    path.push(at);
                }
                path.reverse();
                return path;
            }
            if inside.contains(child) && !came_from.contains_key(child) {
                came_from.insert(child, group);
                queue.push_back(child);
            }
        }
    }
    vec![start, start]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Value;

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
        let inv = Inventory::load(std::slice::from_ref(&d)).unwrap();
        assert_eq!(inv.hosts_of("haproxy_servers"), ["lb1", "lb2"]);
        assert_eq!(inv.hosts_of("k8s"), ["w1"]);
        assert_eq!(inv.hosts_of("all").len(), 3);
        assert_eq!(inv.hosts["w1"].vars["ansible_port"].value, Value::Int(2222));
        assert_eq!(inv.groups_of("w1"), ["k8s", "workers"]);
        let plain = |files: &[VarsFile], key: &str| {
            files.iter().find_map(|f| match f {
                VarsFile::Plain(v) => v.get(key).map(|n| n.loc.line),
                VarsFile::Vault { .. } => None,
            })
        };
        assert_eq!(plain(&inv.groups["all"].file_vars, "a"), Some(1));
        assert_eq!(
            plain(&inv.groups["haproxy_servers"].file_vars, "b"),
            Some(1)
        );
        assert_eq!(plain(&inv.hosts["lb1"].file_vars, "c"), Some(1));
    }

    #[test]
    fn yaml_inventory() {
        let d = tempdir("yaml");
        write(
            &d,
            "hosts.yml",
            "all:\n  vars:\n    x: 1\n  children:\n    haproxy_servers:\n      hosts:\n        lb1:\n          ansible_host: 10.0.0.11\n        lb2:\n",
        );
        let inv = Inventory::load(std::slice::from_ref(&d)).unwrap();
        assert_eq!(inv.hosts_of("haproxy_servers"), ["lb1", "lb2"]);
        assert_eq!(inv.hosts["lb1"].vars["ansible_host"].loc.line, 8);
        assert!(inv.groups["all"].vars.contains_key("x"));
    }

    /// The `groups` ansible-core 2.19 gives for the same INI file.
    #[test]
    fn groups_list_hosts_in_ansibles_order() {
        let d = tempdir("order");
        write(
            &d,
            "hosts",
            "solo\n[lbs]\nlb2\nlb1\n[workers]\nw2\nw1\n[k8s:children]\nworkers\nmasters\n[masters]\nm1\n[k8s]\nk0\n",
        );
        let inv = Inventory::load(std::slice::from_ref(&d)).unwrap();
        let groups: Vec<(String, Vec<String>)> = inv.groups_dict();
        let want: &[(&str, &[&str])] = &[
            ("all", &["solo", "lb2", "lb1", "k0", "w2", "w1", "m1"]),
            ("ungrouped", &["solo"]),
            ("lbs", &["lb2", "lb1"]),
            ("workers", &["w2", "w1"]),
            ("k8s", &["k0", "w2", "w1", "m1"]),
            ("masters", &["m1"]),
        ];
        let want: Vec<(String, Vec<String>)> = want
            .iter()
            .map(|(g, h)| (g.to_string(), h.iter().map(|h| h.to_string()).collect()))
            .collect();
        assert_eq!(groups, want);
        assert_eq!(inv.group_names("w1"), ["k8s", "workers"]);
        assert_eq!(inv.group_names("solo"), ["ungrouped"]);
    }

    /// Line ends as Python's `splitlines` reads them for Ansible: CR alone (old Mac files),
    /// CRLF and a form feed each end a line, so the numbers count what Ansible counts.
    #[test]
    fn ini_lines_end_where_ansible_ends_them() {
        let d = tempdir("line-ends");
        write(
            &d,
            "hosts",
            "[haproxy_servers]\rlb1 ansible_host=10.0.0.1\r\nlb2\x0c[workers]\rw1 junk\r",
        );
        let errs = Inventory::load(&[d.join("hosts")]).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].line, errs[0].key.as_str()), (5, "junk"));
        write(
            &d,
            "hosts",
            "[haproxy_servers]\rlb1 ansible_host=10.0.0.1\rlb2\r",
        );
        let inv = Inventory::load(&[d.join("hosts")]).unwrap();
        assert_eq!(inv.hosts_of("haproxy_servers"), ["lb1", "lb2"]);
        assert_eq!(inv.hosts["lb1"].loc.map(|l| l.line), Some(2));
    }

    /// A file whose name is not UTF-8 is read, as Ansible reads it (its hosts went missing
    /// without a word), and so is a vars file so named.
    #[test]
    fn files_named_in_bytes_that_are_not_utf8_are_read() {
        use std::os::unix::ffi::OsStrExt;
        let d = tempdir("bytes");
        write(
            &d,
            "hosts",
            "[haproxy_servers]\nlb1 ansible_host=10.0.0.1\n",
        );
        let name = std::ffi::OsStr::from_bytes(b"more-\xff");
        std::fs::write(
            d.join(name),
            "[haproxy_servers]\nlb2 ansible_host=10.0.0.2\n",
        )
        .unwrap();
        std::fs::create_dir_all(d.join("group_vars/haproxy_servers")).unwrap();
        let vars = std::ffi::OsStr::from_bytes(b"v\xe9.yml");
        std::fs::write(d.join("group_vars/haproxy_servers").join(vars), "x: 1\n").unwrap();
        let inv = Inventory::load(std::slice::from_ref(&d)).unwrap();
        assert_eq!(inv.hosts_of("haproxy_servers"), ["lb1", "lb2"]);
        assert_eq!(inv.groups["haproxy_servers"].file_vars.len(), 1);
    }

    #[test]
    fn bad_ini_lines_are_all_reported() {
        let d = tempdir("bad");
        write(&d, "hosts", "[lbs\nlb1 junk\n[x:weird]\n");
        let errs = Inventory::load(&[d.join("hosts")]).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert_eq!(errs[1].line, 2);
    }

    #[test]
    fn deep_and_cyclic_group_hierarchies_are_walked_without_recursion() {
        let d = tempdir("deep");
        let mut text = String::from("[lbs]\nlb1\n");
        for i in 0..20_000 {
            text.push_str(&format!("[g{i}:children]\ng{}\n", i + 1));
        }
        text.push_str("[g20000]\nlb1\n[lbs:children]\ng0\n");
        write(&d, "hosts", &text);
        let inv = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || {
                let inv = Inventory::load(std::slice::from_ref(&d)).unwrap();
                assert_eq!(inv.hosts_of("g0"), ["lb1"]);
                assert_eq!(inv.groups_of("lb1").len(), 20_002);
                inv.groups_of("lb1").first().cloned()
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(inv.as_deref(), Some("lbs"), "parents first");

        let d = tempdir("cycle");
        write(
            &d,
            "hosts",
            "[a:children]\nb\n[b:children]\na\n[top:children]\nleft\nright\n[left:children]\nbottom\n[right:children]\nbottom\n[bottom]\nh1\n",
        );
        let errs = Inventory::load(std::slice::from_ref(&d)).unwrap_err();
        let found: Vec<(&str, usize, &str)> = errs
            .iter()
            .map(|e| (e.key.as_str(), e.line, e.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [(
                "b.children",
                4,
                "`a` under `b` makes a loop of children: a → b → a"
            )],
            "one problem for the loop, at the entry that closes it"
        );
        assert!(errs.iter().all(|e| e.hint.is_some()));

        // A loop 20,001 groups long is one problem too, found without recursion.
        let d = tempdir("long-cycle");
        let mut text = String::from("[lbs]\nlb1\n");
        for i in 0..20_000 {
            text.push_str(&format!("[g{i}:children]\ng{}\n", i + 1));
        }
        text.push_str("[g20000:children]\ng0\n");
        write(&d, "hosts", &text);
        let errs = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || Inventory::load(std::slice::from_ref(&d)).unwrap_err())
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(errs.len(), 1, "{:?}", errs.first());
        assert_eq!(errs[0].key, "g20000.children");
        assert!(
            errs[0]
                .message
                .ends_with("g0 → g1 → g2 → g3 → … (19994 more) … → g19998 → g19999 → g20000 → g0"),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn ansibles_groups_hold_the_hosts_of_every_group() {
        let d = tempdir("groups");
        write(
            &d,
            "hosts",
            "[lbs]\nlb[1:3]\n[web]\nw1\n[k8s:children]\nweb\nlbs\n[all:children]\nk8s\n",
        );
        let inv = Inventory::load(std::slice::from_ref(&d)).unwrap();
        let groups: BTreeMap<String, Vec<String>> = inv.groups_dict().into_iter().collect();
        for name in inv.groups.keys() {
            let mut sorted = groups[name].clone();
            sorted.sort();
            assert_eq!(sorted, inv.hosts_of(name), "{name}");
        }
        assert_eq!(groups["k8s"], ["w1", "lb1", "lb2", "lb3"]);
    }
}
