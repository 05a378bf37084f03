//! `ansible.cfg` and the `ANSIBLE_*` variables that override it, for the settings that change
//! what lbctl reads or how it connects: the inventory, Vault passwords, the SSH user, key,
//! arguments and host-key checking, `become`, and `ansible_managed`.
//!
//! Found as Ansible finds it, first one wins: `$ANSIBLE_CONFIG` (a file, or a directory holding
//! `ansible.cfg`), `./ansible.cfg` (unless the directory is world-writable, which Ansible
//! refuses), `~/.ansible.cfg`, `/etc/ansible/ansible.cfg`. Read as Python's `configparser`
//! reads it: `[section]`s of `key = value` (or `key: value`), keys case-insensitive, whole-line
//! comments with `#` or `;`, inline comments after ` ;`, indented lines continuing a value.
//! Relative paths are relative to the file's directory.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use std::sync::Arc;

use crate::{
    input::InputError,
    input::vault::VaultId,
    source::{Loc, Node, Value, VarMap},
};

#[derive(Debug, Clone, Default)]
pub struct AnsibleCfg {
    /// The file read, if any.
    pub path: Option<PathBuf>,
    values: BTreeMap<(String, String), String>,
}

impl AnsibleCfg {
    /// The configuration Ansible would use from the current directory.
    pub fn load() -> Result<AnsibleCfg, InputError> {
        match find() {
            Some(path) => {
                let text = match crate::source::read_file(&path).and_then(|bytes| {
                    String::from_utf8(bytes).map_err(|_| {
                        std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text")
                    })
                }) {
                    Ok(text) => text,
                    Err(source) => {
                        return Err(InputError::ReadConfig {
                            path,
                            source: source.into(),
                        });
                    }
                };
                Ok(AnsibleCfg::parse(&text, Some(path)))
            }
            None => Ok(AnsibleCfg::default()),
        }
    }

    pub fn parse(text: &str, path: Option<PathBuf>) -> AnsibleCfg {
        let mut values = BTreeMap::new();
        let mut section = String::new();
        let mut last: Option<(String, String)> = None;
        for raw in text.lines() {
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if raw.starts_with([' ', '\t'])
                && let Some(key) = &last
                && let Some(v) = values.get_mut(key)
            {
                let v: &mut String = v;
                v.push('\n');
                v.push_str(strip_inline_comment(trimmed));
                continue;
            }
            if let Some(name) = trimmed.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                section = name.trim().to_string();
                last = None;
                continue;
            }
            let split = trimmed.find(['=', ':']);
            let Some(at) = split else { continue };
            let key = trimmed[..at].trim().to_ascii_lowercase();
            let value = strip_inline_comment(trimmed[at + 1..].trim()).to_string();
            let slot = (section.clone(), key);
            values.insert(slot.clone(), value);
            last = Some(slot);
        }
        AnsibleCfg { path, values }
    }

    /// A setting: its environment variable first, then `[section] key`.
    fn get(&self, env: &str, section: &str, key: &str) -> Option<String> {
        std::env::var(env)
            .ok()
            .or_else(|| {
                self.values
                    .get(&(section.to_string(), key.to_string()))
                    .cloned()
            })
            .filter(|v| !v.is_empty())
    }

    /// A path setting, relative to the file's directory (from the environment: as given).
    fn path(&self, env: &str, section: &str, key: &str) -> Option<PathBuf> {
        if let Ok(v) = std::env::var(env)
            && !v.is_empty()
        {
            return Some(expand_home(&v));
        }
        let v = self.get("", section, key)?;
        Some(self.resolve(&v))
    }

    fn resolve(&self, value: &str) -> PathBuf {
        let p = expand_home(value);
        match (&self.path, p.is_absolute()) {
            (Some(cfg), false) => cfg.parent().unwrap_or(Path::new(".")).join(p),
            _ => p,
        }
    }

    /// `[defaults] inventory` / `ANSIBLE_INVENTORY`: comma-separated sources.
    pub fn inventory(&self) -> Vec<PathBuf> {
        let from_env = std::env::var("ANSIBLE_INVENTORY")
            .ok()
            .filter(|v| !v.is_empty());
        let (text, relative) = match from_env {
            Some(v) => (v, false),
            None => match self.get("", "defaults", "inventory") {
                Some(v) => (v, true),
                None => return Vec::new(),
            },
        };
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                if relative {
                    self.resolve(s)
                } else {
                    expand_home(s)
                }
            })
            .collect()
    }

    /// The vault ids Ansible would use with these command-line options: the configured
    /// identity list first, then `--vault-id`s, then password files (`--vault-password-file`,
    /// then the configured one), then a prompt if asked.
    pub fn vault_ids(&self, cli_ids: &[String], cli_files: &[PathBuf], ask: bool) -> Vec<VaultId> {
        let mut ids: Vec<VaultId> = self
            .get(
                "ANSIBLE_VAULT_IDENTITY_LIST",
                "defaults",
                "vault_identity_list",
            )
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        let mut id = VaultId::parse(s);
                        if let crate::input::vault::PasswordSource::File(p) = &id.source {
                            id.source = crate::input::vault::PasswordSource::File(
                                self.resolve(&p.to_string_lossy()),
                            );
                        }
                        id
                    })
                    .collect()
            })
            .unwrap_or_default();
        ids.extend(cli_ids.iter().map(|s| VaultId::parse(s)));
        ids.extend(
            cli_files
                .iter()
                .map(|f| VaultId::file(crate::input::vault::DEFAULT_LABEL, f.clone())),
        );
        if let Some(file) = self.path(
            "ANSIBLE_VAULT_PASSWORD_FILE",
            "defaults",
            "vault_password_file",
        ) {
            ids.push(VaultId::file(crate::input::vault::DEFAULT_LABEL, file));
        }
        if ask {
            ids.push(VaultId::parse("prompt"));
        }
        ids
    }

    /// `[defaults] remote_user` / `ANSIBLE_REMOTE_USER`.
    pub fn remote_user(&self) -> Option<String> {
        self.get("ANSIBLE_REMOTE_USER", "defaults", "remote_user")
    }

    /// `[defaults] private_key_file` / `ANSIBLE_PRIVATE_KEY_FILE`.
    pub fn private_key_file(&self) -> Option<PathBuf> {
        self.path("ANSIBLE_PRIVATE_KEY_FILE", "defaults", "private_key_file")
    }

    /// `[privilege_escalation] become` / `ANSIBLE_BECOME`.
    pub fn become_root(&self) -> Option<bool> {
        self.get("ANSIBLE_BECOME", "privilege_escalation", "become")
            .and_then(|v| boolean(&v))
    }

    /// `[defaults] host_key_checking` / `ANSIBLE_HOST_KEY_CHECKING`.
    pub fn host_key_checking(&self) -> Option<bool> {
        self.get("ANSIBLE_HOST_KEY_CHECKING", "defaults", "host_key_checking")
            .and_then(|v| boolean(&v))
    }

    /// `[ssh_connection] ssh_args` / `ANSIBLE_SSH_ARGS`.
    pub fn ssh_args(&self) -> Option<String> {
        self.get("ANSIBLE_SSH_ARGS", "ssh_connection", "ssh_args")
    }

    /// `[defaults] ansible_managed`, what templates' `{{ ansible_managed }}` says.
    pub fn ansible_managed(&self) -> String {
        self.get("", "defaults", "ansible_managed")
            .unwrap_or_else(|| "Ansible managed".into())
    }
}

impl AnsibleCfg {
    /// The connection settings as variables of the lowest precedence, under the names lbctl
    /// reads (any inventory variable for them wins, as in Ansible): `remote_user`,
    /// `remote_port`, `private_key_file`, `host_key_checking`, `become` and `ssh_args`.
    pub fn connection_vars(&self) -> VarMap {
        let origin: Arc<str> = Arc::from(
            self.path
                .as_ref()
                .map_or("ansible.cfg".to_string(), |p| p.display().to_string()),
        );
        let loc = Loc::new(&origin, 0);
        let text = |s: String| Arc::new(Node::new(Value::Str(Arc::from(s)), loc));
        let flag = |b: bool| Arc::new(Node::new(Value::Bool(b), loc));
        let mut vars = VarMap::new();
        if let Some(v) = self.remote_user() {
            vars.insert("ansible_user".into(), text(v));
        }
        if let Some(v) = self.get("ANSIBLE_REMOTE_PORT", "defaults", "remote_port") {
            vars.insert("ansible_port".into(), text(v));
        }
        if let Some(v) = self.private_key_file() {
            vars.insert(
                "ansible_ssh_private_key_file".into(),
                text(v.display().to_string()),
            );
        }
        if let Some(v) = self.host_key_checking() {
            vars.insert("ansible_host_key_checking".into(), flag(v));
        }
        if let Some(v) = self.become_root() {
            vars.insert("ansible_become".into(), flag(v));
        }
        if let Some(v) = self.ssh_args() {
            vars.insert("ansible_ssh_args".into(), text(v.replace('\n', " ")));
        }
        vars
    }
}

/// Ansible's boolean spellings for configuration values.
pub fn boolean(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" | "on" | "1" | "true" | "t" => Some(true),
        "n" | "no" | "off" | "0" | "false" | "f" => Some(false),
        _ => None,
    }
}

fn strip_inline_comment(value: &str) -> &str {
    let mut prev_space = false;
    for (i, c) in value.char_indices() {
        if c == ';' && prev_space {
            return value[..i].trim_end();
        }
        prev_space = c.is_whitespace();
    }
    value
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

fn find() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(env) = std::env::var_os("ANSIBLE_CONFIG") {
        let p = expand_home(&env.to_string_lossy());
        candidates.push(if p.is_dir() { p.join("ansible.cfg") } else { p });
    }
    if let Ok(cwd) = std::env::current_dir() {
        use std::os::unix::fs::PermissionsExt;
        let world_writable = std::fs::metadata(&cwd)
            .map(|m| m.permissions().mode() & 0o002 != 0)
            .unwrap_or(true);
        if !world_writable {
            candidates.push(cwd.join("ansible.cfg"));
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".ansible.cfg"));
    }
    candidates.push(PathBuf::from("/etc/ansible/ansible.cfg"));
    candidates.into_iter().find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sections_comments_and_relative_paths() {
        let cfg = AnsibleCfg::parse(
            "# top\n[defaults]\nInventory = hosts.ini, ./more ; inline\nremote_user: ops\nvault_password_file = secrets/pass\n\n[privilege_escalation]\nbecome=True\n[ssh_connection]\nssh_args = -o ControlMaster=auto\n  -o Port=22\n",
            Some(PathBuf::from("/repo/ansible.cfg")),
        );
        assert_eq!(
            cfg.inventory(),
            [
                PathBuf::from("/repo/hosts.ini"),
                PathBuf::from("/repo/./more")
            ]
        );
        assert_eq!(cfg.remote_user().as_deref(), Some("ops"));
        assert_eq!(cfg.become_root(), Some(true));
        assert_eq!(
            cfg.ssh_args().as_deref(),
            Some("-o ControlMaster=auto\n-o Port=22")
        );
        let ids = cfg.vault_ids(&["prod@/p".into()], &[PathBuf::from("cli-pass")], false);
        let labels: Vec<(&str, String)> = ids
            .iter()
            .map(|i| (i.label.as_str(), format!("{:?}", i.source)))
            .collect();
        assert_eq!(
            labels,
            [
                ("prod", "File(\"/p\")".to_string()),
                ("default", "File(\"cli-pass\")".to_string()),
                ("default", "File(\"/repo/secrets/pass\")".to_string()),
            ]
        );
        assert_eq!(cfg.ansible_managed(), "Ansible managed");
    }
}
