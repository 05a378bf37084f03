//! Ansible Vault: decrypting AES256 vault files and inline `!vault` values (formats 1.1 and
//! 1.2, the latter naming a vault id), with the passwords Ansible would use.
//!
//! The format, as Ansible writes it: a header `$ANSIBLE_VAULT;1.1;AES256` (1.2 adds `;LABEL`),
//! then lines of hex which decode to three lines of hex: a salt, an HMAC and the ciphertext.
//! PBKDF2-HMAC-SHA256 (10,000 rounds) turns the password and salt into 80 bytes: the AES-256
//! key, the HMAC-SHA256 key and the CTR mode's initial counter. The HMAC of the ciphertext is
//! checked first, so a wrong password is told apart from a damaged file; the plaintext is
//! PKCS#7-padded to whole 16-byte blocks. Every primitive comes from RustCrypto.
//!
//! Passwords are read only when a vault is first decrypted: a run that needs no secret never
//! prompts, runs a password script or opens a password file.

use std::{
    collections::{BTreeSet, HashMap},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Arc, Mutex, OnceLock, PoisonError},
};

use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use super::InputError;

/// What every vault starts with.
pub const HEADER: &str = "$ANSIBLE_VAULT";

/// The label Ansible gives a password without one (`--vault-password-file`, `--ask-vault-pass`).
pub const DEFAULT_LABEL: &str = "default";

const ROUNDS: u32 = 10_000;

/// Where one vault password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// A file holding the password, or an executable that prints it (as Ansible runs it).
    File(PathBuf),
    /// Asked on the terminal.
    Prompt,
}

/// A vault id: a label and where its password comes from (`--vault-id LABEL@SOURCE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultId {
    pub label: String,
    pub source: PasswordSource,
}

impl VaultId {
    /// Reads `--vault-id` as Ansible does: `LABEL@SOURCE` or `SOURCE`, where `prompt` asks on
    /// the terminal and anything else is a password file or script.
    pub fn parse(arg: &str) -> VaultId {
        // `@FILE`: the default label, as Ansible reads it
        let (label, source) = match arg.split_once('@') {
            Some(("", source)) => (DEFAULT_LABEL, source),
            Some((label, source)) => (label, source),
            None => (DEFAULT_LABEL, arg),
        };
        let source = if source == "prompt" || source == "prompt_ask_vault_pass" {
            PasswordSource::Prompt
        } else {
            PasswordSource::File(expand_home(source))
        };
        VaultId {
            label: label.to_string(),
            source,
        }
    }

    pub fn file(label: &str, path: PathBuf) -> VaultId {
        VaultId {
            label: label.to_string(),
            source: PasswordSource::File(path),
        }
    }

    fn describe(&self) -> String {
        match &self.source {
            PasswordSource::File(p) => format!("{} ({})", self.label, p.display()),
            PasswordSource::Prompt => format!("{} (prompt)", self.label),
        }
    }
}

/// A password read from its source, with its label.
type Password = (String, Vec<u8>);

/// The vault passwords of one run, read on first use, and every value decrypted with them (so
/// that plans and logs can hide them).
#[derive(Debug, Default)]
pub struct Keyring {
    ids: Vec<VaultId>,
    passwords: OnceLock<Result<Vec<Password>, InputError>>,
    /// Plaintexts by envelope: a value shared by many hosts is decrypted once.
    decrypted: Mutex<HashMap<String, Arc<[u8]>>>,
    revealed: Mutex<BTreeSet<String>>,
}

impl Keyring {
    pub fn new(ids: Vec<VaultId>) -> Keyring {
        Keyring {
            ids,
            ..Keyring::default()
        }
    }

    /// Whether any password source was given.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Decrypts a vault (a whole file's text, or an inline value's), trying the passwords
    /// whose label the vault names first, then the others, as Ansible does.
    pub fn decrypt(&self, envelope: &str) -> Result<Arc<[u8]>, InputError> {
        let envelope = envelope.trim();
        let cached = self
            .decrypted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(envelope)
            .cloned();
        if let Some(plain) = cached {
            return Ok(plain);
        }
        let parsed = Envelope::parse(envelope)?;
        if self.ids.is_empty() {
            return Err(InputError::NoVaultPassword);
        }
        let passwords = self
            .passwords
            .get_or_init(|| self.ids.iter().map(read_password).collect())
            .as_ref()
            .map_err(Clone::clone)?;
        let mut order: Vec<&Password> = passwords
            .iter()
            .filter(|(label, _)| Some(label.as_str()) == parsed.label.as_deref())
            .collect();
        order.extend(
            passwords
                .iter()
                .filter(|(label, _)| Some(label.as_str()) != parsed.label.as_deref()),
        );
        for (_, password) in order {
            if let Some(plain) = parsed.open(password)? {
                let plain: Arc<[u8]> = Arc::from(plain);
                self.decrypted
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(envelope.to_string(), Arc::clone(&plain));
                return Ok(plain);
            }
        }
        let tried: Vec<String> = self.ids.iter().map(VaultId::describe).collect();
        Err(InputError::WrongVaultPassword {
            tried: tried.join(", "),
        })
    }

    /// Decrypts an inline value to text and remembers it as a secret.
    pub fn decrypt_text(&self, envelope: &str) -> Result<String, InputError> {
        let plain = self.decrypt(envelope)?;
        let text = String::from_utf8(plain.to_vec()).map_err(|_| InputError::VaultFormat {
            why: "the decrypted value is not UTF-8 text".into(),
        })?;
        self.remember(&text);
        Ok(text)
    }

    /// Marks a value that came out of a vault: plans and logs never show it.
    pub fn remember(&self, value: &str) {
        if !value.is_empty() {
            self.revealed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(value.to_string());
        }
    }

    /// Whether `value` came out of a vault.
    pub fn is_secret(&self, value: &str) -> bool {
        self.revealed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(value)
    }

    /// Every value decrypted so far.
    pub fn revealed(&self) -> Vec<String> {
        self.revealed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }
}

/// Whether `text` is a vault (Ansible checks the first bytes only).
pub fn is_vault(text: &str) -> bool {
    text.trim_start().starts_with(HEADER)
}

/// A parsed vault: its label (1.2) and the three parts of its payload.
struct Envelope {
    label: Option<String>,
    salt: Vec<u8>,
    hmac: Vec<u8>,
    ciphertext: Vec<u8>,
}

impl Envelope {
    fn parse(text: &str) -> Result<Envelope, InputError> {
        let mut lines = text.lines();
        let header = lines.next().unwrap_or_default().trim();
        let fields: Vec<&str> = header.split(';').map(str::trim).collect();
        if fields.first() != Some(&HEADER) || fields.len() < 3 {
            return Err(InputError::VaultFormat {
                why: format!("the header `{header}` is not `$ANSIBLE_VAULT;1.1;AES256`"),
            });
        }
        if !matches!(fields[1], "1.1" | "1.2") {
            return Err(InputError::VaultFormat {
                why: format!(
                    "format version {} is not one Ansible writes (1.1, 1.2)",
                    fields[1]
                ),
            });
        }
        if fields[2] != "AES256" {
            return Err(InputError::VaultFormat {
                why: format!("cipher {} is not supported (only AES256 is)", fields[2]),
            });
        }
        let label = fields
            .get(3)
            .filter(|l| !l.is_empty())
            .map(|l| l.to_string());
        let body: String = lines.map(str::trim).collect();
        let payload = hex(body.as_bytes()).ok_or_else(|| InputError::VaultFormat {
            why: "the lines after the header are not hexadecimal".into(),
        })?;
        let mut parts = payload.splitn(3, |b| *b == b'\n');
        let mut next = |what: &str| {
            parts
                .next()
                .and_then(hex)
                .filter(|p| !p.is_empty())
                .ok_or_else(|| InputError::VaultFormat {
                    why: format!("its {what} is missing or damaged"),
                })
        };
        Ok(Envelope {
            label,
            salt: next("salt")?,
            hmac: next("HMAC")?,
            ciphertext: next("ciphertext")?,
        })
    }

    /// The plaintext if `password` is the right one; `None` if it is not.
    fn open(&self, password: &[u8]) -> Result<Option<Vec<u8>>, InputError> {
        let mut derived = [0u8; 80];
        pbkdf2::pbkdf2_hmac::<Sha256>(password, &self.salt, ROUNDS, &mut derived);
        let (key, rest) = derived.split_at(32);
        let (mac_key, iv) = rest.split_at(32);
        let mut mac =
            hmac::Hmac::<Sha256>::new_from_slice(mac_key).expect("HMAC takes a key of any length");
        mac.update(&self.ciphertext);
        if mac.verify_slice(&self.hmac).is_err() {
            return Ok(None);
        }
        let mut data = self.ciphertext.clone();
        let mut cipher = ctr::Ctr128BE::<aes::Aes256>::new_from_slices(key, iv)
            .expect("the derived key and counter have AES-256's lengths");
        cipher.apply_keystream(&mut data);
        let pad = usize::from(*data.last().unwrap_or(&0));
        let padded = (1..=16).contains(&pad)
            && pad <= data.len()
            && data[data.len() - pad..]
                .iter()
                .all(|b| usize::from(*b) == pad);
        if !padded {
            return Err(InputError::VaultFormat {
                why: "the decrypted data has no valid padding".into(),
            });
        }
        data.truncate(data.len() - pad);
        Ok(Some(data))
    }
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

fn hex(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks(2)
        .map(|pair| {
            let digit = |c: u8| (c as char).to_digit(16);
            Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
        })
        .collect()
}

/// Reads one password from its source, as Ansible does: a file's content without surrounding
/// whitespace; an executable's standard output without the line breaks around it (a script named
/// `*-client` is asked for its label with `--vault-id LABEL`); a prompt on the terminal.
fn read_password(id: &VaultId) -> Result<Password, InputError> {
    let password = match &id.source {
        PasswordSource::Prompt => {
            let prompt = if id.label == DEFAULT_LABEL {
                "Vault password: ".to_string()
            } else {
                format!("Vault password ({}): ", id.label)
            };
            rpassword::prompt_password(prompt)
                .map_err(|e| InputError::VaultPrompt {
                    // ENXIO: no controlling terminal (CI, cron, a pipe)
                    message: if e.raw_os_error() == Some(6) {
                        format!("there is no terminal to ask on ({e})")
                    } else {
                        e.to_string()
                    },
                })?
                .into_bytes()
        }
        PasswordSource::File(path) => read_password_file(path, &id.label)?,
    };
    if password.is_empty() {
        return Err(InputError::EmptyVaultPassword { id: id.describe() });
    }
    Ok((id.label.clone(), password))
}

fn read_password_file(path: &Path, label: &str) -> Result<Vec<u8>, InputError> {
    let unreadable = |e: std::io::Error| InputError::VaultPasswordFile {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    if path.as_os_str().is_empty() {
        return Err(InputError::VaultPasswordFile {
            path: path.to_path_buf(),
            message: format!(
                "the vault id `{label}@` names no file (write {label}@FILE or {label}@prompt)"
            ),
        });
    }
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if meta.is_dir() {
        return Err(InputError::VaultPasswordDirectory {
            path: path.to_path_buf(),
        });
    }
    use std::os::unix::fs::PermissionsExt;
    if meta.permissions().mode() & 0o111 != 0 {
        return run_password_script(path, label);
    }
    use std::os::unix::fs::FileTypeExt;
    let text = if meta.file_type().is_fifo() {
        let text = read_fifo(path).map_err(unreadable)?;
        if text.is_empty() {
            return Err(InputError::VaultPasswordFile {
                path: path.to_path_buf(),
                message: "it is a named pipe (FIFO), and nothing wrote to it".into(),
            });
        }
        text
    } else {
        crate::source::read_file(path).map_err(unreadable)?
    };
    Ok(python_strip(&text, |b| b.is_ascii_whitespace() || b == b'\x0b').to_vec())
}

/// A named pipe's content, as a password file (`--vault-password-file <(pass show vault)`
/// is one): read to its end while something writes to it, empty when nothing does.
fn read_fifo(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = crate::source::open_without_waiting(path)?;
    crate::source::read_at_most(file, crate::source::MAX_FILE_BYTES)
}

/// `text` without the leading and trailing bytes `strip` matches, as Python's `bytes.strip`:
/// Ansible strips a password file's ASCII whitespace (vertical tab included, which Rust's
/// `trim_ascii` keeps), and a script's line breaks at both ends.
fn python_strip(text: &[u8], strip: impl Fn(u8) -> bool) -> &[u8] {
    let start = text.iter().position(|b| !strip(*b)).unwrap_or(text.len());
    let end = text
        .iter()
        .rposition(|b| !strip(*b))
        .map_or(start, |i| i + 1);
    &text[start..end]
}

fn run_password_script(path: &Path, label: &str) -> Result<Vec<u8>, InputError> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Run by its path, as Ansible runs it: a bare name (`--vault-password-file pass.sh`) is
    // a file here, never a program found on $PATH.
    let program = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut cmd = Command::new(program);
    if stem.ends_with("-client") {
        cmd.args(["--vault-id", label]);
    }
    // Standard error stays the user's, so a script can ask for something itself.
    let started = |e: std::io::Error| InputError::VaultScriptStart {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut child = cmd
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(started)?;
    // What it prints is read up to a limit: a script that never stops is stopped.
    let printed = child
        .stdout
        .take()
        .map(|out| crate::source::read_at_most(out, crate::source::MAX_FILE_BYTES))
        .unwrap_or_else(|| Ok(Vec::new()));
    if printed.is_err() {
        let _ = child.kill();
    }
    let status = child.wait().map_err(started)?;
    let password = printed.map_err(|e| InputError::VaultPasswordFile {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    if !status.success() {
        return Err(InputError::VaultScriptFailed {
            path: path.to_path_buf(),
            status: status.to_string(),
        });
    }
    Ok(python_strip(&password, |b| matches!(b, b'\r' | b'\n')).to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vaults made by ansible-vault 2.19 (tests/inputs/vault/).
    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/inputs/vault")
            .join(name)
    }

    fn read(name: &str) -> String {
        std::fs::read_to_string(fixture(name)).unwrap()
    }

    /// The `!vault |` block of an `encrypt_string` output, unindented as YAML reads it.
    fn inline(name: &str) -> String {
        read(name)
            .lines()
            .skip(1)
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn keyring(ids: &[(&str, &str)]) -> Keyring {
        Keyring::new(
            ids.iter()
                .map(|(label, file)| VaultId::file(label, fixture(file)))
                .collect(),
        )
    }

    #[test]
    fn decrypts_files_and_inline_values_made_by_ansible_vault() {
        let keys = keyring(&[("default", "password"), ("prod", "prod-password")]);
        let file = keys.decrypt(&read("file-1.1.yml")).unwrap();
        assert_eq!(
            std::str::from_utf8(&file).unwrap(),
            "haproxy_stats_password: \"from the vault\"\nkeepalived_auth_pass: s3cr3t\n"
        );
        let labelled = keys.decrypt(&read("file-1.2.yml")).unwrap();
        assert_eq!(
            std::str::from_utf8(&labelled).unwrap(),
            "vault_db_password: \"prod: päss\"\n"
        );
        assert_eq!(
            keys.decrypt_text(&inline("inline.yml")).unwrap(),
            "inline secret"
        );
        // A whole number of blocks gets a whole block of padding.
        assert_eq!(
            keys.decrypt_text(&inline("inline-1.2.yml")).unwrap(),
            "a\nmulti-line\nvalue with exactly 32 bytes.!!"
        );
        assert_eq!(
            keys.revealed(),
            [
                "a\nmulti-line\nvalue with exactly 32 bytes.!!",
                "inline secret"
            ]
        );
    }

    #[test]
    fn a_wrong_or_missing_password_is_one_clear_error() {
        let wrong = keyring(&[("prod", "prod-password")]);
        match wrong.decrypt(&read("file-1.1.yml")) {
            Err(InputError::WrongVaultPassword { tried }) => {
                assert!(tried.contains("prod ("), "{tried}")
            }
            other => panic!("{other:?}"),
        }
        let none = Keyring::new(Vec::new());
        assert!(matches!(
            none.decrypt(&read("file-1.1.yml")),
            Err(InputError::NoVaultPassword)
        ));
        let missing = Keyring::new(vec![VaultId::parse("/nonexistent/pass")]);
        assert!(matches!(
            missing.decrypt(&read("file-1.1.yml")),
            Err(e @ InputError::VaultPasswordFile { .. }) if e.to_string().contains("/nonexistent/pass")
        ));
    }

    #[test]
    fn damaged_vaults_are_format_errors() {
        let keys = keyring(&[("default", "password")]);
        let text = read("file-1.1.yml");
        let cut = &text[..text.len() / 2];
        assert!(matches!(
            keys.decrypt(cut),
            Err(InputError::VaultFormat { .. })
        ));
        let other_cipher = text.replacen("AES256", "AES", 1);
        assert!(matches!(
            keys.decrypt(&other_cipher),
            Err(InputError::VaultFormat { why }) if why.contains("AES")
        ));
        assert!(matches!(
            keys.decrypt("$ANSIBLE_VAULT;1.1;AES256\nzz\n"),
            Err(InputError::VaultFormat { .. })
        ));
    }

    #[test]
    fn password_scripts_run_as_ansible_runs_them() {
        let dir = std::env::temp_dir().join(format!("lbctl-vault-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = |name: &str, body: &str| {
            use std::os::unix::fs::PermissionsExt;
            let p = dir.join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            p
        };
        let plain = script("pass.sh", "echo lbctl-test-pass");
        let keys = Keyring::new(vec![VaultId::file("default", plain)]);
        assert!(keys.decrypt(&read("file-1.1.yml")).is_ok());
        let client = script(
            "vault-client.sh",
            "[ \"$1 $2\" = '--vault-id prod' ] && echo other-prod-pass",
        );
        let keys = Keyring::new(vec![VaultId::file("prod", client)]);
        assert!(keys.decrypt(&read("file-1.2.yml")).is_ok());
        // Ansible strips line breaks at both ends of what a script prints.
        let blank_first = script("blank-first.sh", "printf '\\n\\r\\nlbctl-test-pass\\r\\n'");
        let keys = Keyring::new(vec![VaultId::file("default", blank_first)]);
        assert!(keys.decrypt(&read("file-1.1.yml")).is_ok());
        let failing = script("fail.sh", "exit 3");
        let keys = Keyring::new(vec![VaultId::file("default", failing)]);
        assert!(matches!(
            keys.decrypt(&read("file-1.1.yml")),
            Err(e @ InputError::VaultScriptFailed { .. }) if e.to_string().contains("fail.sh")
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_password_file_is_stripped_of_what_python_calls_whitespace() {
        let dir = std::env::temp_dir().join(format!("lbctl-vault-ws-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pass");
        // a vertical tab and a form feed are whitespace to Python's bytes.strip
        std::fs::write(&file, b"\x0b\x0c lbctl-test-pass\x0b\t\r\n").unwrap();
        let keys = Keyring::new(vec![VaultId::file("default", file)]);
        assert!(keys.decrypt(&read("file-1.1.yml")).is_ok());
        assert_eq!(python_strip(b"\n\n", |b| b == b'\n'), b"");
        assert_eq!(python_strip(b"\na b\n", |b| b == b'\n'), b"a b");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn vault_ids_parse_as_ansible_reads_them() {
        assert_eq!(
            VaultId::parse("prod@/etc/p"),
            VaultId::file("prod", PathBuf::from("/etc/p"))
        );
        assert_eq!(
            VaultId::parse("pass.txt"),
            VaultId::file("default", PathBuf::from("pass.txt"))
        );
        assert_eq!(VaultId::parse("dev@prompt").source, PasswordSource::Prompt);
        // `@FILE` is the default label's file (lbctl read a file named `@FILE`)
        assert_eq!(
            VaultId::parse("@pass.txt"),
            VaultId::file("default", PathBuf::from("pass.txt"))
        );
        let none = read_password_file(Path::new(""), "prod").unwrap_err();
        assert!(none.to_string().contains("`prod@` names no file"), "{none}");
    }
}
