//! Which files make up an inventory, and the `group_vars/` and `host_vars/` beside it.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use super::Inventory;
use crate::{
    source::{Diagnostic, Diagnostics},
    source::{Loc, VarMap, load_file, map_entries},
};

impl Inventory {
    /// Reads `group_vars/` and `host_vars/` next to the inventory.
    pub(super) fn load_var_dirs(&mut self, diags: &mut Diagnostics) {
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

pub(super) fn file_error(path: &Path, message: String) -> Diagnostic {
    Diagnostic::new(
        &Loc::new(&Arc::from(path.display().to_string()), 0),
        "",
        message,
    )
}

/// The inventory files making up `path`: the file itself, or a directory's inventory files.
pub(super) fn inventory_files(path: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
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

pub(super) fn is_yaml_name(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yml" | "yaml" | "json")
    )
}

pub(super) fn looks_like_yaml(text: &str) -> bool {
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
        match load_file(&file).and_then(|n| map_entries(n, "")) {
            Ok(v) => vars.extend(v),
            Err(d) => diags.push(d),
        }
    }
    vars
}
