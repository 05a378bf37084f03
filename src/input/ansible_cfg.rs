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
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use std::sync::Arc;

use crate::{
    input::InputError,
    input::vault::VaultId,
    source::{Diagnostic, Loc, Node, Value, VarMap},
};

#[derive(Debug, Clone, Default)]
pub struct AnsibleCfg {
    /// The file read, if any.
    pub path: Option<PathBuf>,
    /// The `[section]`s the file has (`DEFAULT` is not one: it gives every section defaults).
    sections: BTreeSet<String>,
    /// `[section] key` (key lowercased): the value, and the line it starts on.
    values: BTreeMap<(String, String), (String, usize)>,
    /// What Ansible warns about when it looks for the file, said the same way.
    pub warnings: Vec<String>,
}

/// One setting's value, and where it came from: a line of the file, or its environment
/// variable.
struct Setting {
    value: String,
    line: Option<usize>,
}

/// A path setting, resolved: from the file, relative to its directory.
struct PathSetting {
    value: PathBuf,
    line: Option<usize>,
}

impl Setting {
    /// The value as Ansible uses a string setting: from the file, one pair of matching quotes
    /// around it is removed (`remote_user = "ops"` is `ops`); from the environment, as given.
    fn text(self) -> Setting {
        let value = match self.line {
            Some(_) => unquote(&self.value).to_string(),
            None => self.value,
        };
        Setting { value, ..self }
    }
}

impl AnsibleCfg {
    /// The configuration Ansible would use from the current directory.
    pub fn load() -> Result<AnsibleCfg, InputError> {
        let (found, warnings) = find();
        let mut cfg = match found {
            Some(path)
                if !matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("cfg" | "ini")
                ) =>
            {
                return Err(InputError::ConfigType { path });
            }
            Some(path) => {
                let text = match crate::source::read_file(&path) {
                    Ok(bytes) => {
                        decode(bytes, &path).map_err(|problems| InputError::ConfigEncoding {
                            path: path.clone(),
                            problems,
                        })?
                    }
                    Err(source) => {
                        return Err(InputError::ReadConfig {
                            path,
                            source: source.into(),
                        });
                    }
                };
                AnsibleCfg::parse(&text, Some(path.clone()))
                    .map_err(|problems| InputError::ConfigSyntax { path, problems })?
            }
            None => AnsibleCfg::default(),
        };
        cfg.warnings = warnings;
        cfg.refuse_hash_merge()?;
        Ok(cfg)
    }

    /// `hash_behaviour = merge` (or `ANSIBLE_HASH_BEHAVIOUR=merge`) is refused: lbctl replaces a
    /// variable whole, and would render something else than Ansible then does.
    fn refuse_hash_merge(&self) -> Result<(), InputError> {
        const ENV: &str = "ANSIBLE_HASH_BEHAVIOUR";
        let Some(s) = self.get(ENV, "defaults", "hash_behaviour") else {
            return Ok(());
        };
        if !s.value.trim().eq_ignore_ascii_case("merge") {
            return Ok(());
        }
        let place = match (s.line, &self.path) {
            (Some(line), Some(path)) => format!("{}:{line}", path.display()),
            (Some(line), None) => format!("ansible.cfg:{line}"),
            (None, _) => format!("${ENV}"),
        };
        Err(InputError::HashMerge { place })
    }

    /// Reads the file as Python's `configparser` (strict, `;` inline comments) reads it for
    /// Ansible; the lines it refuses (and so Ansible refuses the whole file) are the error.
    pub fn parse(text: &str, path: Option<PathBuf>) -> Result<AnsibleCfg, Vec<Diagnostic>> {
        let origin: Arc<str> = Arc::from(
            path.as_ref()
                .map_or("ansible.cfg".to_string(), |p| p.display().to_string()),
        );
        let problem = |line: usize, key: &str, message: String, hint: &str| {
            Diagnostic::new(&Loc::new(&origin, line), key, message).hint(hint)
        };
        let mut sections = BTreeSet::new();
        // Each value as one text, its lines joined as they come: a list of its lines cost 15
        // times the file (a 32 MB value of 8 million short lines took 494 MiB).
        let mut lines: BTreeMap<(String, String), (String, usize)> = BTreeMap::new();
        let mut problems = Vec::new();
        let mut section: Option<String> = None;
        let mut option: Option<(String, String)> = None;
        let mut indent_level = 0;
        for (n, raw) in text.lines().enumerate() {
            let n = n + 1;
            let full_line_comment = raw.trim().starts_with(['#', ';']);
            let comment = if full_line_comment {
                Some(0)
            } else {
                inline_comment(raw)
            };
            let value = raw[..comment.unwrap_or(raw.len())].trim();
            if value.is_empty() {
                // A blank line inside a value is part of it (trailing ones are dropped).
                if comment.is_none()
                    && let Some(slot) = &option
                    && let Some((v, _)) = lines.get_mut(slot)
                {
                    v.push('\n');
                }
                continue;
            }
            let indent = raw.chars().take_while(|c| c.is_whitespace()).count();
            if section.is_some() && option.is_some() && indent > indent_level {
                if let Some(slot) = &option
                    && let Some((v, _)) = lines.get_mut(slot)
                {
                    v.push('\n');
                    v.push_str(value);
                }
                continue;
            }
            indent_level = indent;
            if let Some(name) = section_header(value) {
                if name != "DEFAULT" && !sections.insert(name.to_string()) {
                    problems.push(problem(
                        n,
                        "",
                        format!("section [{name}] already exists"),
                        "merge the two sections into one: a section is written once",
                    ));
                    return Err(problems);
                }
                section = Some(name.to_string());
                option = None;
                continue;
            }
            let Some(current) = &section else {
                problems.push(problem(
                    n,
                    "",
                    format!("{value:?} is before any [section] header"),
                    "settings go under a section, such as [defaults] or [ssh_connection]",
                ));
                return Err(problems);
            };
            let Some(at) = value.find(['=', ':']) else {
                problems.push(problem(
                    n,
                    "",
                    format!("{value:?} is neither a [section] nor `key = value`"),
                    "write `key = value`, indent a line that continues the value above, or start a comment with `#`",
                ));
                continue;
            };
            let key = value[..at].trim_end().to_lowercase();
            if key.is_empty() {
                problems.push(problem(
                    n,
                    "",
                    format!("{value:?} has no key before its `{}`", &value[at..=at]),
                    "write `key = value`",
                ));
            }
            let slot = (current.clone(), key);
            if lines.contains_key(&slot) {
                problems.push(problem(
                    n,
                    &slot.1,
                    format!("already set in [{}]", slot.0),
                    "keep one of the two lines: a key is set once in a section",
                ));
                return Err(problems);
            }
            lines.insert(slot.clone(), (value[at + 1..].trim().to_string(), n));
            option = Some(slot);
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let values = lines
            .into_iter()
            .map(|(slot, (v, line))| (slot, (v.trim_end().to_string(), line)))
            .collect();
        Ok(AnsibleCfg {
            path,
            sections,
            values,
            warnings: Vec::new(),
        })
    }

    /// A setting: its environment variable first, then `[section] key`, then `[DEFAULT] key`
    /// (for a section the file has). An empty value is no value.
    fn get(&self, env: &str, section: &str, key: &str) -> Option<Setting> {
        let from_env = std::env::var(env)
            .ok()
            .map(|value| Setting { value, line: None });
        let from_file = || {
            if !self.sections.contains(section) {
                return None;
            }
            let key = key.to_string();
            self.values
                .get(&(section.to_string(), key.clone()))
                .or_else(|| self.values.get(&("DEFAULT".to_string(), key)))
                .map(|(value, line)| Setting {
                    value: value.clone(),
                    line: Some(*line),
                })
        };
        from_env.or_else(from_file).filter(|s| !s.value.is_empty())
    }

    /// A path setting, relative to the file's directory (from the environment: as given).
    fn path(&self, env: &str, section: &str, key: &str) -> Option<PathSetting> {
        let s = self.get(env, section, key)?;
        let value = match s.line {
            Some(_) => self.resolve(&s.value),
            None => expand_home(&s.value),
        };
        Some(PathSetting {
            value,
            line: s.line,
        })
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
        let Some(setting) = self.get("ANSIBLE_INVENTORY", "defaults", "inventory") else {
            return Vec::new();
        };
        setting
            .value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| match setting.line {
                Some(_) => self.resolve(s),
                None => expand_home(s),
            })
            .collect()
    }

    /// The vault ids Ansible would use with these command-line options: the configured
    /// identity list first (its files relative to the working directory), then `--vault-id`s, then password files (`--vault-password-file`,
    /// then the configured one), then a prompt if asked.
    pub fn vault_ids(&self, cli_ids: &[String], cli_files: &[PathBuf], ask: bool) -> Vec<VaultId> {
        let mut ids: Vec<VaultId> = self
            .get(
                "ANSIBLE_VAULT_IDENTITY_LIST",
                "defaults",
                "vault_identity_list",
            )
            .map(|list| {
                list.value
                    .split(',')
                    .map(|s| unquote(s.trim()))
                    .filter(|s| !s.is_empty())
                    // A list setting, not a path one: Ansible reads a relative file in it from
                    // the working directory, not from the configuration file's.
                    .map(VaultId::parse)
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
            ids.push(VaultId::file(
                crate::input::vault::DEFAULT_LABEL,
                file.value,
            ));
        }
        if ask {
            ids.push(VaultId::parse("prompt"));
        }
        ids
    }

    /// `[defaults] remote_user` / `ANSIBLE_REMOTE_USER`.
    pub fn remote_user(&self) -> Option<String> {
        self.remote_user_setting().map(|s| s.value)
    }

    fn remote_user_setting(&self) -> Option<Setting> {
        self.get("ANSIBLE_REMOTE_USER", "defaults", "remote_user")
            .map(Setting::text)
    }

    /// `[defaults] private_key_file` / `ANSIBLE_PRIVATE_KEY_FILE`.
    pub fn private_key_file(&self) -> Option<PathBuf> {
        self.private_key_setting().map(|s| PathBuf::from(s.value))
    }

    fn private_key_setting(&self) -> Option<Setting> {
        self.path("ANSIBLE_PRIVATE_KEY_FILE", "defaults", "private_key_file")
            .map(|s| Setting {
                value: s.value.display().to_string(),
                line: s.line,
            })
    }

    /// `[privilege_escalation] become` / `ANSIBLE_BECOME`.
    pub fn become_root(&self) -> Option<bool> {
        self.become_setting().and_then(|s| boolean(&s.value))
    }

    fn become_setting(&self) -> Option<Setting> {
        self.get("ANSIBLE_BECOME", "privilege_escalation", "become")
    }

    /// `[defaults] host_key_checking` / `ANSIBLE_HOST_KEY_CHECKING`.
    pub fn host_key_checking(&self) -> Option<bool> {
        self.host_key_checking_setting()
            .and_then(|s| boolean(&s.value))
    }

    fn host_key_checking_setting(&self) -> Option<Setting> {
        self.get("ANSIBLE_HOST_KEY_CHECKING", "defaults", "host_key_checking")
    }

    /// `[ssh_connection] ssh_args` / `ANSIBLE_SSH_ARGS`.
    pub fn ssh_args(&self) -> Option<String> {
        self.ssh_args_setting().map(|s| s.value)
    }

    fn ssh_args_setting(&self) -> Option<Setting> {
        self.get("ANSIBLE_SSH_ARGS", "ssh_connection", "ssh_args")
            .map(Setting::text)
    }

    /// `[defaults] ansible_managed`, what templates' `{{ ansible_managed }}` says.
    pub fn ansible_managed(&self) -> String {
        self.get("", "defaults", "ansible_managed")
            .map(Setting::text)
            .map_or_else(|| "Ansible managed".into(), |s| s.value)
    }
}

impl AnsibleCfg {
    /// The connection settings as variables of the lowest precedence, under the names lbctl
    /// reads (any inventory variable for them wins, as in Ansible): `remote_user`,
    /// `remote_port`, `private_key_file`, `host_key_checking`, `become` and `ssh_args`. Each
    /// is located at its line of the file, or at its environment variable.
    pub fn connection_vars(&self) -> VarMap {
        let file: Arc<str> = Arc::from(
            self.path
                .as_ref()
                .map_or("ansible.cfg".to_string(), |p| p.display().to_string()),
        );
        let at = |s: &Setting, env: &str| match s.line {
            Some(line) => Loc::new(&file, line),
            None => Loc::new(&Arc::from(format!("${env}")), 0),
        };
        let text = |s: &Setting, env: &str, value: String| {
            Arc::new(Node::new(Value::Str(Arc::from(value)), at(s, env)))
        };
        let mut vars = VarMap::new();
        if let Some(s) = self.remote_user_setting() {
            let v = text(&s, "ANSIBLE_REMOTE_USER", s.value.clone());
            vars.insert("ansible_user".into(), v);
        }
        if let Some(s) = self.get("ANSIBLE_REMOTE_PORT", "defaults", "remote_port") {
            let v = text(&s, "ANSIBLE_REMOTE_PORT", s.value.clone());
            vars.insert("ansible_port".into(), v);
        }
        if let Some(s) = self.private_key_setting() {
            let v = text(&s, "ANSIBLE_PRIVATE_KEY_FILE", s.value.clone());
            vars.insert("ansible_ssh_private_key_file".into(), v);
        }
        let flags = [
            (
                self.host_key_checking_setting(),
                "ANSIBLE_HOST_KEY_CHECKING",
                "ansible_host_key_checking",
            ),
            (self.become_setting(), "ANSIBLE_BECOME", "ansible_become"),
        ];
        for (setting, env, name) in flags {
            if let Some(s) = setting
                && let Some(b) = boolean(&s.value)
            {
                let v = Arc::new(Node::new(Value::Bool(b), at(&s, env)));
                vars.insert(name.into(), v);
            }
        }
        if let Some(s) = self.ssh_args_setting() {
            let v = text(&s, "ANSIBLE_SSH_ARGS", s.value.replace('\n', " "));
            vars.insert("ansible_ssh_args".into(), v);
        }
        vars
    }
}

/// The file's text. Ansible reads a file that is not all UTF-8 (its other bytes escaped), so a
/// comment saved in Latin-1 (`# Configuración`) changes nothing: such a comment line is read
/// as an empty comment. lbctl refused the whole file ("not UTF-8 text"), with no line. A
/// line that sets something, in bytes that are not UTF-8, is an error at its line.
fn decode(bytes: Vec<u8>, path: &Path) -> Result<String, Vec<Diagnostic>> {
    let bytes = match String::from_utf8(bytes) {
        Ok(text) => return Ok(text),
        Err(e) => e.into_bytes(),
    };
    let origin: Arc<str> = Arc::from(path.display().to_string());
    let mut text = String::with_capacity(bytes.len());
    let mut problems = Vec::new();
    for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if n > 0 {
            text.push('\n');
        }
        match std::str::from_utf8(line) {
            Ok(line) => text.push_str(line),
            Err(_) if line.trim_ascii_start().starts_with(b"#") => text.push('#'),
            Err(_) if line.trim_ascii_start().starts_with(b";") => text.push(';'),
            Err(_) => problems.push(
                Diagnostic::new(&Loc::new(&origin, n + 1), "", "this line is not UTF-8 text")
                    .hint("save the file as UTF-8"),
            ),
        }
    }
    if problems.is_empty() {
        Ok(text)
    } else {
        Err(problems)
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

/// Where an inline comment starts: the first `;` at the start of the line or after
/// whitespace (`configparser`'s `inline_comment_prefixes=(';',)`, as Ansible sets it).
fn inline_comment(line: &str) -> Option<usize> {
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        if c == ';' && prev_space {
            return Some(i);
        }
        prev_space = c.is_whitespace();
    }
    None
}

/// A `[section]` header as `configparser` matches it (`\[(?P<header>.+)\]` from the line's
/// start): the name is everything up to the last `]`, spaces included.
fn section_header(value: &str) -> Option<&str> {
    let rest = value.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    (end > 0).then(|| &rest[..end])
}

/// Ansible's `unquote`: one pair of matching quotes around the whole value removed, unless
/// the closing one is escaped.
fn unquote(value: &str) -> &str {
    let b = value.as_bytes();
    let quoted = b.len() > 1
        && matches!(b[0], b'"' | b'\'')
        && b[b.len() - 1] == b[0]
        && b[b.len() - 2] != b'\\';
    if quoted {
        &value[1..value.len() - 1]
    } else {
        value
    }
}

/// A path setting as Ansible's `unfrackpath` reads it: environment variables expanded
/// (`$HOME/.ssh/id`, `${KEYS}/lb`), then `~`.
fn expand_home(path: &str) -> PathBuf {
    let path = super::expand::expand_vars(
        path,
        |name| Ok::<_, std::convert::Infallible>(std::env::var(name).ok()),
        |_| Ok(()),
    )
    .unwrap_or_else(|never| match never {});
    let home = std::env::var_os("HOME");
    match (path.as_str(), path.strip_prefix("~/"), home) {
        ("~", _, Some(home)) => PathBuf::from(home),
        (_, Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Whether `path` exists and this user may read it: Ansible passes over a file it may not read.
fn readable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a NUL-terminated path that outlives the call; access(2) only reads it.
    unsafe { libc::access(c.as_ptr(), libc::R_OK) == 0 }
}

/// The file Ansible would read, and the warning it gives on the way: an `ansible.cfg` in a
/// world-writable working directory is ignored (anyone could have put it there).
fn find() -> (Option<PathBuf>, Vec<String>) {
    let mut candidates = Vec::new();
    let mut warnings = Vec::new();
    let from_env = std::env::var_os("ANSIBLE_CONFIG").map(|env| {
        let p = expand_home(&env.to_string_lossy());
        if p.is_dir() { p.join("ansible.cfg") } else { p }
    });
    candidates.extend(from_env.clone());
    let mut skipped = None;
    if let Ok(cwd) = std::env::current_dir() {
        use std::os::unix::fs::PermissionsExt;
        let world_writable = std::fs::metadata(&cwd)
            .map(|m| m.permissions().mode() & 0o002 != 0)
            .unwrap_or(true);
        let here = cwd.join("ansible.cfg");
        if !world_writable {
            candidates.push(here);
        } else if here.exists() {
            skipped = Some(cwd);
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".ansible.cfg"));
    }
    candidates.push(PathBuf::from("/etc/ansible/ansible.cfg"));
    let found = candidates.into_iter().find(|p| readable(p));
    if let Some(cwd) = skipped
        && (from_env.is_none() || from_env != found)
    {
        warnings.push(format!(
            "lbctl (as Ansible) is being run in a world writable directory ({}), ignoring its ansible.cfg; make the directory writable only by its owner (chmod o-w) to use it",
            cwd.display()
        ));
    }
    (found, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sections_comments_and_relative_paths() {
        let cfg = AnsibleCfg::parse(
            "# top\n[defaults]\nInventory = hosts.ini, ./more ; inline\nremote_user: ops\nvault_password_file = secrets/pass\nvault_identity_list = dev@dev-pass, ci@/ci/pass\n\n[privilege_escalation]\nbecome=True\n[ssh_connection]\nssh_args = -o ControlMaster=auto\n  -o Port=22\n",
            Some(PathBuf::from("/repo/ansible.cfg")),
        )
        .unwrap();
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
                // from the working directory, as Ansible reads a list setting
                ("dev", "File(\"dev-pass\")".to_string()),
                ("ci", "File(\"/ci/pass\")".to_string()),
                ("prod", "File(\"/p\")".to_string()),
                ("default", "File(\"cli-pass\")".to_string()),
                ("default", "File(\"/repo/secrets/pass\")".to_string()),
            ]
        );
        assert_eq!(cfg.ansible_managed(), "Ansible managed");
    }

    /// As Python's configparser: quotes around a string setting go, `[DEFAULT]` fills in for
    /// a section the file has, blank lines inside a value stay, section names keep their
    /// spaces.
    #[test]
    fn reads_quotes_defaults_and_continuations_as_configparser() {
        let cfg = AnsibleCfg::parse(
            "[DEFAULT]\nremote_user = 'ops'\n[defaults]\nansible_managed = \"managed by lbctl\"  ; note\n[ssh_connection]\nssh_args = -C\n\n   -o A=b\n\n[ privilege_escalation ]\nbecome = yes\n",
            None,
        )
        .unwrap();
        assert_eq!(cfg.remote_user().as_deref(), Some("ops"));
        assert_eq!(cfg.ansible_managed(), "managed by lbctl");
        assert_eq!(cfg.ssh_args().as_deref(), Some("-C\n\n-o A=b"));
        assert_eq!(
            cfg.become_root(),
            None,
            "the section is ` privilege_escalation `"
        );
        assert_eq!(unquote("\"a\\\""), "\"a\\\"");
        assert_eq!(unquote("'a\""), "'a\"");
        assert_eq!(unquote("\"\""), "");
    }

    #[test]
    fn a_comment_not_in_utf8_is_read_as_ansible_reads_it() {
        let path = Path::new("/repo/ansible.cfg");
        let latin1 = b"# Configuraci\xf3n\n[defaults]\n  ; \xe9t\xe9\nremote_user = ops\n".to_vec();
        let cfg = AnsibleCfg::parse(&decode(latin1, path).unwrap(), None).unwrap();
        assert_eq!(cfg.remote_user().as_deref(), Some("ops"));
        let setting = b"[defaults]\nremote_user = op\xe9\n".to_vec();
        let problems = decode(setting, path).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            (problems[0].file.as_str(), problems[0].line),
            ("/repo/ansible.cfg", 2)
        );
    }

    /// The lines configparser refuses, each located, with the first fatal one last.
    #[test]
    fn refuses_what_configparser_refuses() {
        let lines = |text: &str| -> Vec<(usize, String)> {
            AnsibleCfg::parse(text, Some(PathBuf::from("/r/ansible.cfg")))
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|d| (d.line, d.message))
                .collect()
        };
        assert_eq!(
            lines("# c\nremote_user = x\n"),
            [(
                2,
                "\"remote_user = x\" is before any [section] header".to_string()
            )]
        );
        assert_eq!(
            lines("[defaults]\nno equals here\nok = 1\n= 2\n"),
            [
                (
                    2,
                    "\"no equals here\" is neither a [section] nor `key = value`".to_string()
                ),
                (4, "\"= 2\" has no key before its `=`".to_string()),
            ]
        );
        assert_eq!(
            lines("[defaults]\nRemote_User = a\nremote_user: b\n"),
            [(3, "already set in [defaults]".to_string())]
        );
        assert_eq!(
            lines("[defaults]\n[ssh_connection]\n[defaults]\n"),
            [(3, "section [defaults] already exists".to_string())]
        );
        assert_eq!(
            lines("[defaults\nx = 1\n"),
            [(
                1,
                "\"[defaults\" is before any [section] header".to_string()
            )]
        );
        assert!(lines("[DEFAULT]\n[DEFAULT]\n; c\n[a]\nk = v ;c\n  more\n").is_empty());
    }

    /// Paths expand `$VARS` and `~` as Ansible's `unfrackpath`; unset ones stay as written.
    #[test]
    fn paths_expand_environment_variables() {
        let home = std::env::var("HOME").unwrap_or_default();
        let cfg = AnsibleCfg::parse(
            "[defaults]\nprivate_key_file = $HOME/.ssh/id_x\ninventory = ${HOME}/inv, $LBCTL_SURELY_UNSET/x, ~, a$\n",
            Some(PathBuf::from("/repo/ansible.cfg")),
        )
        .unwrap();
        assert_eq!(
            cfg.private_key_file(),
            Some(PathBuf::from(format!("{home}/.ssh/id_x")))
        );
        assert_eq!(
            cfg.inventory(),
            [
                PathBuf::from(format!("{home}/inv")),
                PathBuf::from("/repo/$LBCTL_SURELY_UNSET/x"),
                PathBuf::from(&home),
                PathBuf::from("/repo/a$"),
            ]
        );
    }
}
