//! Which files make up an inventory, read as Ansible's inventory manager reads them, and the
//! `group_vars/` and `host_vars/` beside each source.
//!
//! A directory is walked recursively in name order, skipping what Ansible skips: dot files,
//! `group_vars`, `host_vars`, `vars_plugins`, and names ending in `~`, `.orig`, `.cfg`,
//! `.retry`, `.pyc`, `.pyo`, `.swp`, `.bak`, `.rpm`, `.md`, `.txt` or `.rst`. Each file is
//! tried as Ansible's plugins would: YAML first when its name ends in `.yml`, `.yaml` or
//! `.json` or has no extension, then INI. A file neither reads is skipped with a warning
//! inside a directory (as Ansible does), and is an error when given by itself.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::Arc,
};

use super::{Inventory, VarsFile};
use crate::{
    input::vault,
    source::{Diagnostic, Diagnostics},
    source::{Loc, Value, map_entries, parse_str, read_text},
};

/// Extensions Ansible's `inventory_ignore_extensions` skips in an inventory directory.
const IGNORED_ENDINGS: &[&str] = &[
    "~", ".orig", ".cfg", ".retry", ".pyc", ".pyo", ".swp", ".bak", ".rpm", ".md", ".txt", ".rst",
];

/// What Ansible reads as YAML (or JSON) first.
const YAML_EXTENSIONS: &[&str] = &["yml", "yaml", "json"];

impl Inventory {
    /// Reads one `-i` source (a file or a directory) into the inventory.
    pub(super) fn add_source(&mut self, path: &Path, diags: &mut Diagnostics) {
        if path.is_dir() {
            let mut files = Vec::new();
            if let Err(d) = walk(path, &mut files) {
                diags.push(d);
                return;
            }
            for file in files {
                self.add_file(&file, true, diags);
            }
        } else if path.is_file() {
            self.add_file(path, false, diags);
        } else if path.to_string_lossy().contains(',') {
            diags.push(file_error(path, "inventory not found".into()).hint(
                "a host list (`-i lb1,lb2,`) puts its hosts in no group, and lbctl needs its load balancers in one: write an inventory file with a [haproxy_servers] section",
            ));
        } else {
            diags.push(file_error(path, "inventory not found".into()).hint(
                "pass an inventory file or directory with -i, e.g. `lbctl -i inventory/example validate`",
            ));
        }
    }

    fn add_file(&mut self, file: &Path, in_directory: bool, diags: &mut Diagnostics) {
        let name: Arc<str> = Arc::from(file.display().to_string());
        let text = match read_text(file) {
            Ok(t) => t,
            Err(d) => {
                diags.push(d);
                return;
            }
        };
        let ext = file.extension().and_then(|e| e.to_str());
        if ext == Some("toml") {
            diags.push(unsupported(file, "a TOML inventory"));
            return;
        }
        if text.starts_with("#!") && is_executable(file) {
            diags.push(unsupported(file, "an inventory script"));
            return;
        }
        let mut yaml_error = None;
        if ext.is_none_or(|e| YAML_EXTENSIONS.contains(&e)) {
            match parse_str(&text, &name) {
                Ok(root) if root.get("plugin").is_some() => {
                    diags.push(unsupported(file, "an inventory plugin configuration"));
                    return;
                }
                Ok(root) if matches!(root.value, Value::Map(ref m) if !m.is_empty()) => {
                    let mut part = Inventory::default();
                    let mut found = Diagnostics::default();
                    part.add_yaml(&root, &mut found);
                    if found.is_empty() {
                        self.merge(part);
                        return;
                    }
                    yaml_error = Some((found, part));
                }
                Ok(_) => {}
                Err(d) => yaml_error = Some((Diagnostics::from(vec![d]), Inventory::default())),
            }
        }
        let mut part = Inventory::default();
        let mut found = Diagnostics::default();
        part.add_ini(
            &text,
            &name,
            &|group| self.groups.contains_key(group),
            &mut found,
        );
        if found.is_empty() {
            self.merge(part);
            return;
        }
        // Neither plugin read it: the errors of the one the file looks made for, and what it
        // read of the file.
        let (errors, part) = match (yaml_error, ext) {
            (Some(y), Some(e)) if YAML_EXTENSIONS.contains(&e) => y,
            _ => (found, part),
        };
        if in_directory {
            // Skipped, as Ansible does. Should that leave no inventory, the run fails on these
            // errors, and what was read of the file is kept for checking its hosts' variables.
            for d in errors.into_vec() {
                self.skipped_errors.push(d.clone());
                self.warnings.push(d.hint(
                    "Ansible skips an inventory file it cannot read, with a warning; so does lbctl",
                ));
            }
            self.skipped_parts.push(part);
        } else {
            // The run fails on these errors; the lines that were read are kept, so that the
            // variables of their hosts are checked in the same run.
            self.merge(part);
            diags.extend(errors);
        }
    }

    /// Adds another file's groups, hosts and variables; later files win, as in Ansible.
    pub(super) fn merge(&mut self, other: Inventory) {
        let mut groups = other.groups;
        for name in other.group_order {
            let Some(group) = groups.remove(&name) else {
                continue;
            };
            let mine = self.group_mut(&name);
            group.host_order.into_iter().for_each(|h| mine.add_host(h));
            for child in group.child_order {
                if let Some(loc) = group.child_locs.get(&child) {
                    mine.add_child(child, *loc);
                }
            }
            mine.vars.extend(group.vars);
        }
        for (name, host) in other.hosts {
            let mine = self.hosts.entry(name).or_default();
            if mine.loc.is_none() {
                mine.loc = host.loc;
            }
            mine.vars.extend(host.vars);
        }
        let known: HashSet<String> = self.order.iter().cloned().collect();
        for name in other.order {
            if !known.contains(&name) {
                self.order.push(name);
            }
        }
    }

    /// Reads `group_vars/` and `host_vars/` beside every source, in source order.
    pub(super) fn load_var_dirs(&mut self, sources: &[PathBuf], diags: &mut Diagnostics) {
        let mut bases: Vec<PathBuf> = Vec::new();
        let mut seen: Vec<PathBuf> = Vec::new();
        for s in sources {
            let base = if s.is_dir() {
                s.clone()
            } else {
                s.parent().map(Path::to_path_buf).unwrap_or_default()
            };
            // Two sources in one directory share its variable directories; messages keep
            // the path as the user gave it.
            let real = std::fs::canonicalize(&base).unwrap_or_else(|_| base.clone());
            if !seen.contains(&real) {
                seen.push(real);
                bases.push(base);
            }
        }
        for base in &bases {
            let dir = base.join("group_vars");
            let present = entry_names(&dir);
            for (name, group) in self.groups.iter_mut() {
                group
                    .file_vars
                    .extend(vars_files(&dir, &present, name, diags));
            }
            let dir = base.join("host_vars");
            let present = entry_names(&dir);
            for (name, host) in self.hosts.iter_mut() {
                host.file_vars
                    .extend(vars_files(&dir, &present, name, diags));
            }
        }
    }
}

fn unsupported(file: &Path, what: &str) -> Diagnostic {
    file_error(file, format!("this is {what}, which lbctl does not run")).hint(format!(
        "export what it produces once, and use that file as the inventory: `ansible-inventory -i {} --list -y > inventory.yml`",
        file.display()
    ))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

/// Whether `dir` (a directory, or a symlink to one) was already read in this walk: each is
/// read once, so that symlinks back up the tree (`ln -s . loop`) neither repeat its files nor
/// multiply the walk (two such links in one directory doubled it at every level, forty deep).
fn seen_before(dir: &Path, seen: &mut HashSet<(u64, u64)>) -> bool {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(dir) {
        Ok(m) => !seen.insert((m.dev(), m.ino())),
        Err(_) => true,
    }
}

/// The files of an inventory directory, recursively, in the order Ansible reads them.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Diagnostic> {
    walk_once(dir, out, &mut HashSet::new())
}

fn walk_once(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    seen: &mut HashSet<(u64, u64)>,
) -> Result<(), Diagnostic> {
    if seen_before(dir, seen) {
        return Ok(());
    }
    // Names as the system gives them (bytes, sorted as Ansible sorts them): one that is not
    // UTF-8, made text, named no file, so the file was passed over without a word.
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(dir)
        .map_err(|e| file_error(dir, format!("cannot read inventory directory: {e}")))?
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        let text = name.to_string_lossy();
        let ignored = text.starts_with('.')
            || matches!(text.as_ref(), "group_vars" | "host_vars" | "vars_plugins")
            || IGNORED_ENDINGS.iter().any(|e| text.ends_with(e));
        if ignored {
            continue;
        }
        let path = dir.join(&name);
        if path.is_dir() {
            walk_once(&path, out, seen)?;
        } else if path.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

pub(super) fn file_error(path: &Path, message: String) -> Diagnostic {
    Diagnostic::new(
        &Loc::new(&Arc::from(path.display().to_string()), 0),
        "",
        message,
    )
}

/// The vars files of `name` in `dir`, as Ansible's host_group_vars plugin finds them: the
/// first of `NAME`, `NAME.yml`, `NAME.yaml`, `NAME.json` that exists; when it is a
/// directory, every file in it and its sub-directories (in name order; dot files, names
/// ending in `~`, other extensions and sub-directories with an extension are skipped).
fn vars_files(
    dir: &Path,
    present: &HashSet<String>,
    name: &str,
    diags: &mut Diagnostics,
) -> Vec<VarsFile> {
    let found = ["", ".yml", ".yaml", ".json"]
        .iter()
        .map(|ext| format!("{name}{ext}"))
        .filter(|entry| present.contains(entry))
        .map(|entry| dir.join(entry))
        .find_map(|p| std::fs::metadata(&p).ok().map(|m| (p, m.is_dir())));
    let Some((found, is_dir)) = found else {
        return Vec::new();
    };
    let mut files = Vec::new();
    if is_dir {
        dir_vars_files(&found, &mut files, &mut HashSet::new());
    } else if found.is_file() {
        files.push(found);
    } else {
        // a FIFO would block the read until something writes to it, a device may never end
        diags.push(
            file_error(
                &found,
                "is not a regular file: lbctl reads vars from files".into(),
            )
            .hint("replace it with a YAML file, or remove it"),
        );
    }
    files
        .into_iter()
        .filter_map(|file| match read_vars_file(&file) {
            Ok(f) => Some(f),
            Err(d) => {
                diags.push(d);
                None
            }
        })
        .collect()
}

/// The names in `dir` (none when it does not exist), listed once: looking each host's files
/// up by name costs four `stat`s per host, most of them for files that are not there.
fn entry_names(dir: &Path) -> HashSet<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn dir_vars_files(dir: &Path, out: &mut Vec<PathBuf>, seen: &mut HashSet<(u64, u64)>) {
    if seen_before(dir, seen) {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<std::ffi::OsString> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        let text = name.to_string_lossy();
        if text.starts_with('.') || text.ends_with('~') {
            continue;
        }
        let path = dir.join(&name);
        let ext = path.extension().map(|e| e.to_string_lossy());
        if path.is_dir() && ext.is_none() {
            dir_vars_files(&path, out, seen);
        } else if path.is_file() && ext.is_none_or(|e| YAML_EXTENSIONS.contains(&e.as_ref())) {
            out.push(path);
        }
    }
}

/// One vars file: its variables, or, for a vault, the text to decrypt when a host needs it.
fn read_vars_file(path: &Path) -> Result<VarsFile, Diagnostic> {
    let text = read_text(path)?;
    if vault::is_vault(&text) {
        return Ok(VarsFile::Vault {
            path: path.to_path_buf(),
            text: Arc::from(text),
        });
    }
    let name: Arc<str> = Arc::from(path.display().to_string());
    parse_str(&text, &name)
        .and_then(|n| map_entries(n, ""))
        .map(VarsFile::Plain)
}
