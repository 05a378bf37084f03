//! What can go wrong reading the inputs besides located problems (which are diagnostics).

use std::{path::PathBuf, sync::Arc};

/// The input layer's error: a host pattern that does not expand, a configuration file that
/// cannot be read, a `--limit` that selects nothing sensible, or a vault that cannot be
/// opened. `Display` is the user's message (for a vault, the caller adds the file and key);
/// [`InputError::hint`] says what to do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum InputError {
    // Host patterns (`web[01:20].example.com`).
    #[error("range in `{pattern}` is not closed")]
    NotClosed { pattern: String },
    #[error("range `[{range}]` must be [start:end] or [start:end:step]")]
    Shape { range: String },
    #[error("range step `{step}` must be a positive integer")]
    Step { step: String },
    #[error("range `[{range}]` ends before it starts")]
    Backwards { range: String },
    #[error("range `[{range}]` is too large")]
    TooLarge { range: String },
    #[error("range `[{range}]` must go from a letter to a later letter")]
    Letters { range: String },
    #[error("range `[{range}]` must use numbers or single letters")]
    Kind { range: String },
    #[error("`{pattern}` expands to more than {max} host names")]
    TooMany { pattern: String, max: usize },
    #[error(
        "{name:?} is not a valid host name: use letters, digits, `.`, `-`, `_` and `:`, starting with a letter, a digit, `_` or `:`, at most 253 characters"
    )]
    HostName { name: String },

    // ansible.cfg
    #[error(
        "{place}: hash_behaviour = merge: lbctl resolves variables as Ansible's default `replace` does (a mapping set in a higher scope replaces a lower scope's whole), so what it would render differs from what Ansible renders with `merge`; nothing was changed"
    )]
    HashMerge { place: String },
    #[error("cannot read {}: {source}", path.display())]
    ReadConfig {
        path: PathBuf,
        source: Arc<std::io::Error>,
    },

    #[error("{} is not an INI file (.cfg or .ini), so Ansible cannot read it as its configuration", path.display())]
    ConfigType { path: PathBuf },
    #[error("{}: {} that Ansible refuses too; nothing was changed", path.display(), if .problems.len() == 1 { "a line" } else { "lines" })]
    ConfigSyntax {
        path: PathBuf,
        problems: Vec<crate::source::Diagnostic>,
    },
    #[error("{}: {} in bytes that are not UTF-8, which lbctl cannot use; nothing was changed", path.display(), if .problems.len() == 1 { "a setting is" } else { "settings are" })]
    ConfigEncoding {
        path: PathBuf,
        problems: Vec<crate::source::Diagnostic>,
    },

    // --limit
    #[error("--limit {pattern}: {message}")]
    Limit { pattern: String, message: String },
    #[error("--limit @{path}: {message}")]
    LimitFile { path: String, message: String },
    #[error("--limit {pattern}: no host matched the subscripted pattern `{term}`")]
    LimitSubscript { pattern: String, term: String },

    // Ansible Vault
    #[error("this is an Ansible Vault, and no vault password was given")]
    NoVaultPassword,
    #[error("no vault password given decrypts this vault (tried {tried})")]
    WrongVaultPassword { tried: String },
    #[error("not a valid Ansible Vault: {why}")]
    VaultFormat { why: String },
    #[error("cannot ask for the vault password: {message}")]
    VaultPrompt { message: String },
    #[error("the vault password for {id} is empty")]
    EmptyVaultPassword { id: String },
    #[error("cannot read the vault password file {}: {message}", path.display())]
    VaultPasswordFile { path: PathBuf, message: String },
    #[error("the vault password file {} is a directory", path.display())]
    VaultPasswordDirectory { path: PathBuf },
    #[error(
        "cannot run the vault password script {}: {message} (remove its executable bit if it is a plain password file)",
        path.display()
    )]
    VaultScriptStart { path: PathBuf, message: String },
    #[error("the vault password script {} failed ({status})", path.display())]
    VaultScriptFailed { path: PathBuf, status: String },
}

impl InputError {
    /// What to do about it, for the user's `hint:`, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        use InputError::*;
        let hint = match self {
            Limit { .. } => {
                "patterns are host names, groups, globs (lb*), ~regex, group[0] or group[1:2], combined with `,` or `:`, `&` (and) and `!` (not)"
            }
            LimitFile { .. } => "@FILE names a file holding one host pattern a line",
            LimitSubscript { .. } => {
                "subscripts count a group's hosts from 0 (in inventory order); [-1] is the last"
            }
            NoVaultPassword => {
                "pass --vault-password-file FILE, --vault-id LABEL@FILE or --ask-vault-pass, or set ANSIBLE_VAULT_PASSWORD_FILE"
            }
            WrongVaultPassword { .. } => {
                "check the password (or the vault id) this vault was encrypted with: `ansible-vault view` with the same password shows it"
            }
            VaultFormat { .. } => {
                "re-create it with `ansible-vault encrypt` or `ansible-vault encrypt_string`"
            }
            VaultPrompt { .. } => {
                "-J (--ask-vault-pass) asks on a terminal; without one, give the password in a file: --vault-password-file FILE, --vault-id LABEL@FILE or ANSIBLE_VAULT_PASSWORD_FILE"
            }
            EmptyVaultPassword { .. }
            | VaultPasswordFile { .. }
            | VaultPasswordDirectory { .. }
            | VaultScriptStart { .. }
            | VaultScriptFailed { .. } => "fix the vault password source",
            NotClosed { .. }
            | Shape { .. }
            | Step { .. }
            | Backwards { .. }
            | TooLarge { .. }
            | Letters { .. }
            | Kind { .. }
            | TooMany { .. }
            | HostName { .. }
            | ReadConfig { .. } => return None,
            HashMerge { .. } => {
                "remove the setting (Ansible deprecates `merge` too), and merge the mappings you mean to merge with the `combine` filter: `{{ defaults_map | combine(site_map, recursive=true) }}`"
            }
            ConfigType { .. } => {
                "point ANSIBLE_CONFIG at an ansible.cfg (or the directory holding one); Ansible reads only .cfg and .ini files"
            }
            ConfigEncoding { .. } => {
                "Ansible reads such bytes escaped; save ansible.cfg as UTF-8 (a comment in another encoding is fine)"
            }
            ConfigSyntax { .. } => {
                "ansible.cfg is read as Python's configparser reads it: `[section]` headers, `key = value` lines, each key once a section, comments starting with `#` or `;`"
            }
        };
        Some(hint.to_string())
    }
}
