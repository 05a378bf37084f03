//! Variable precedence, as Ansible orders it: role defaults, inventory group vars, `group_vars/`,
//! inventory host vars, `host_vars/`, then `-e` extra vars. The highest scope replaces a variable
//! whole (Ansible's default `hash_behaviour = replace`).

use std::{path::Path, sync::Arc};

use crate::{
    input::inventory::Inventory,
    source::Diagnostic,
    source::{Loc, Node, Value, load_file, parse_str},
    source::{VarMap, map_entries},
};

/// Where the role defaults live, relative to the project directory (the seed's layout).
pub const ROLE_DEFAULTS: &str = "roles/haproxy/defaults/main.yaml";

/// The variable sources that are not part of the inventory.
#[derive(Debug, Default)]
pub struct Sources {
    pub defaults: VarMap,
    pub extra: VarMap,
}

impl Sources {
    /// Loads the role defaults under `project_dir` (absent file: no defaults) and parses every
    /// `-e` argument, reporting all problems.
    pub fn load(project_dir: &Path, extra_args: &[String]) -> Result<Sources, Vec<Diagnostic>> {
        let mut errors = Vec::new();
        let mut sources = Sources::default();
        let defaults = [ROLE_DEFAULTS, "roles/haproxy/defaults/main.yml"]
            .iter()
            .map(|rel| project_dir.join(rel))
            .find(|p| p.is_file());
        if let Some(path) = defaults {
            match load_file(&path).and_then(|n| map_entries(n, "")) {
                Ok(vars) => sources.defaults = vars,
                Err(d) => errors.push(d),
            }
        }
        for arg in extra_args {
            match parse_extra(arg) {
                Ok(vars) => sources.extra.extend(vars),
                Err(d) => errors.push(d),
            }
        }
        if errors.is_empty() {
            Ok(sources)
        } else {
            Err(errors)
        }
    }
}

/// One `-e` argument: `@file.yaml`, an inline YAML/JSON mapping, or `key=value key2=value2`.
fn parse_extra(arg: &str) -> Result<VarMap, Diagnostic> {
    let cli: Arc<str> = Arc::from("command line (-e)");
    if let Some(path) = arg.strip_prefix('@') {
        let node = load_file(Path::new(path))?;
        return map_entries(node, "");
    }
    let trimmed = arg.trim_start();
    if trimmed.starts_with('{') {
        let node = parse_str(arg, &cli)?;
        return map_entries(node, "");
    }
    let mut vars = VarMap::new();
    for pair in arg.split_whitespace() {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(
                Diagnostic::new(&Loc::new(&cli, 0), pair, "expected key=value")
                    .hint("use -e key=value, -e @vars.yaml or -e '{\"key\": \"value\"}'"),
            );
        };
        vars.insert(
            k.to_string(),
            Arc::new(Node::new(Value::Str(v.into()), Loc::new(&cli, 0))),
        );
    }
    Ok(vars)
}

/// Every variable visible to `host`, each the winner of its precedence contest.
pub fn resolve_vars(inv: &Inventory, host: &str, sources: &Sources) -> VarMap {
    let groups = inv.groups_of(host);
    let mut vars = sources.defaults.clone();
    let layers = std::iter::once("all").chain(groups.iter().map(String::as_str));
    for g in layers.clone() {
        if let Some(group) = inv.groups.get(g) {
            vars.extend(group.vars.clone());
        }
    }
    for g in layers {
        if let Some(group) = inv.groups.get(g) {
            vars.extend(group.file_vars.clone());
        }
    }
    if let Some(h) = inv.hosts.get(host) {
        vars.extend(h.vars.clone());
        vars.extend(h.file_vars.clone());
    }
    vars.extend(sources.extra.clone());
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_vars_forms() {
        let kv = parse_extra("a=1 b=two").unwrap();
        assert_eq!(kv["b"].value, Value::Str("two".into()));
        let inline = parse_extra("{\"x\": [1, 2]}").unwrap();
        assert!(matches!(inline["x"].value, Value::Seq(_)));
        assert!(parse_extra("novalue").is_err());
        let missing = parse_extra("@/nonexistent/vars.yml").unwrap_err();
        assert!(missing.message.contains("cannot read"), "{missing}");
    }

    #[test]
    fn precedence_follows_ansible() {
        let d = std::env::temp_dir().join(format!("lbctl-vars-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("group_vars")).unwrap();
        std::fs::create_dir_all(d.join("host_vars")).unwrap();
        std::fs::write(
            d.join("hosts"),
            "[lbs]\nlb1 v_host_line=line\n[lbs:vars]\nv_group=inifile\nv_all=ini\n",
        )
        .unwrap();
        std::fs::write(d.join("group_vars/all.yml"), "v_all: all\nv_group: all\n").unwrap();
        std::fs::write(d.join("group_vars/lbs.yml"), "v_group: lbs\n").unwrap();
        std::fs::write(d.join("host_vars/lb1.yml"), "v_host_line: hostvars\n").unwrap();
        let inv = Inventory::load(&d).unwrap();
        let mut sources = Sources::default();
        sources.defaults.insert(
            "v_default".into(),
            Arc::new(Node::new(Value::Int(1), Loc::new(&Arc::from("d"), 1))),
        );
        sources.extra = parse_extra("v_extra=e v_group=extra").unwrap();
        let vars = resolve_vars(&inv, "lb1", &sources);
        let text = |k: &str| vars[k].as_text().unwrap();
        assert_eq!(text("v_default"), "1");
        assert_eq!(text("v_all"), "all");
        assert_eq!(text("v_group"), "extra");
        assert_eq!(text("v_host_line"), "hostvars");
    }
}
