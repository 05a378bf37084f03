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

pub(super) use host_pattern::expand_host_pattern;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Arc,
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
    /// Variables written in the inventory file itself (`[g:vars]`, `vars:`).
    pub vars: VarMap,
    /// The files of `group_vars/<name>`, in the order Ansible applies them.
    pub file_vars: Vec<VarsFile>,
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
    pub groups: BTreeMap<String, Group>,
    pub hosts: BTreeMap<String, Host>,
    /// Host names in the order the inventory declares them (Ansible's order for `groups`).
    pub order: Vec<String>,
    /// Files skipped because no inventory format reads them, as Ansible skips them.
    pub warnings: Vec<Diagnostic>,
}

impl Inventory {
    /// Loads inventory sources (files or directories, as several `-i` give them), reporting
    /// every problem found.
    pub fn load(sources: &[PathBuf]) -> Result<Inventory, Vec<Diagnostic>> {
        let mut inv = Inventory::default();
        let mut diags = Diagnostics::default();
        let first = sources.first().cloned().unwrap_or_default();
        inv.dir = if first.is_dir() {
            first
        } else {
            first.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        for source in sources {
            inv.add_source(source, &mut diags);
        }
        if !diags.is_empty() {
            return Err(diags.into_vec());
        }
        if inv.hosts.is_empty() && inv.groups.is_empty() {
            let place = sources
                .first()
                .map(|p| p.as_path())
                .unwrap_or(Path::new("."));
            let mut found = vec![
                files::file_error(place, "no inventory in these sources".into())
                    .hint("add a `hosts` (INI) or `hosts.yml` file listing the load balancers"),
            ];
            found.extend(std::mem::take(&mut inv.warnings));
            return Err(found);
        }
        inv.groups.entry("all".into()).or_default();
        inv.groups.entry("ungrouped".into()).or_default();
        inv.check_children(&mut diags);
        inv.load_var_dirs(sources, &mut diags);
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
    /// their variables: parents before children, then by `ansible_group_priority`, then by
    /// name.
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
        let mut ordered: Vec<(usize, i64, String)> = found
            .into_iter()
            .map(|g| (self.depth(&g, &mut BTreeSet::new()), self.priority(&g), g))
            .collect();
        ordered.sort();
        ordered.into_iter().map(|(_, _, g)| g).collect()
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
        if !self.hosts.contains_key(name) {
            self.order.push(name.to_string());
        }
        let host = self.hosts.entry(name.to_string()).or_default();
        host.loc.get_or_insert(*loc);
        host
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

    #[test]
    fn bad_ini_lines_are_all_reported() {
        let d = tempdir("bad");
        write(&d, "hosts", "[lbs\nlb1 junk\n[x:weird]\n");
        let errs = Inventory::load(&[d.join("hosts")]).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert_eq!(errs[1].line, 2);
    }
}
