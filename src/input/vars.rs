//! Variable precedence, as Ansible orders it: role defaults, inventory group vars, `group_vars/`,
//! inventory host vars, `host_vars/`, then `-e` extra vars. The highest scope replaces a variable
//! whole (Ansible's default `hash_behaviour = replace`).

use std::{path::Path, sync::Arc};

use crate::{
    input::inventory::{Inventory, VarsFile},
    input::{InputError, vault::Keyring},
    source::Diagnostic,
    source::{Loc, Node, Value, parse_str, read_text},
    source::{VarMap, map_entries},
};

/// Where the role defaults live, relative to the project directory (the seed's layout).
pub const ROLE_DEFAULTS: &str = "roles/haproxy/defaults/main.yaml";

/// The variable sources that are not part of the inventory, and the run's vault passwords.
#[derive(Debug, Default)]
pub struct Sources {
    /// `ansible.cfg`'s connection settings, below everything else.
    pub config: VarMap,
    pub defaults: VarMap,
    pub extra: VarMap,
    pub keyring: Arc<Keyring>,
}

impl Sources {
    /// Loads the role defaults under `project_dir` (absent file: no defaults) and parses every
    /// `-e` argument, reporting all problems.
    pub fn load(
        project_dir: &Path,
        extra_args: &[String],
        keyring: Arc<Keyring>,
    ) -> Result<Sources, Vec<Diagnostic>> {
        let mut errors = Vec::new();
        let mut sources = Sources {
            keyring,
            ..Sources::default()
        };
        let defaults = [ROLE_DEFAULTS, "roles/haproxy/defaults/main.yml"]
            .iter()
            .map(|rel| project_dir.join(rel))
            .find(|p| p.is_file());
        if let Some(path) = defaults {
            match load_vars_file(&path, &sources.keyring) {
                Ok(vars) => sources.defaults = vars,
                Err(d) => errors.push(d),
            }
        }
        for arg in extra_args {
            match parse_extra(arg, &sources.keyring) {
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

/// A vars file given by path (role defaults, `-e @file`), decrypted if it is a vault.
fn load_vars_file(path: &Path, keyring: &Keyring) -> Result<VarMap, Diagnostic> {
    map_entries(vars_file_node(path, keyring)?, "")
}

/// A vars file's document, decrypted if it is a vault; no document at all (an empty file,
/// comments, `---`) is `null`.
fn vars_file_node(path: &Path, keyring: &Keyring) -> Result<Node, Diagnostic> {
    let name: Arc<str> = Arc::from(path.display().to_string());
    let text = read_text(path)?;
    if crate::input::vault::is_vault(&text) {
        return decrypt_vars_node(path, &text, keyring);
    }
    no_document_is_null(&text, parse_str(&text, &name)?)
}

/// `node`, or `null` where `text` holds no YAML document (the reader gives an empty mapping
/// for one, which a vars file may be, but `-e @FILE` may not).
fn no_document_is_null(text: &str, node: Node) -> Result<Node, Diagnostic> {
    let blank = text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#') || line == "---" || line == "..."
    });
    Ok(if blank {
        Node::new(Value::Null, node.loc)
    } else {
        node
    })
}

/// The variables of a whole-file vault; every string in it is remembered as a secret.
pub fn decrypt_vars_file(path: &Path, text: &str, keyring: &Keyring) -> Result<VarMap, Diagnostic> {
    map_entries(decrypt_vars_node(path, text, keyring)?, "")
}

/// The document of a whole-file vault; every string in it is remembered as a secret.
fn decrypt_vars_node(path: &Path, text: &str, keyring: &Keyring) -> Result<Node, Diagnostic> {
    let name: Arc<str> = Arc::from(path.display().to_string());
    let plain = keyring
        .decrypt(text)
        .map_err(|e| vault_error(&Loc::new(&name, 0), "", &e))?;
    let plain = std::str::from_utf8(&plain).map_err(|_| {
        Diagnostic::new(
            &Loc::new(&name, 0),
            "",
            "the decrypted vault is not UTF-8 text",
        )
        .hint(format!(
            "a vaulted vars file holds YAML: `ansible-vault view {}` shows what it holds; \
             re-encrypt it from a UTF-8 file",
            path.display()
        ))
    })?;
    let node = parse_str(plain, &name)?;
    remember_strings(&node, keyring);
    no_document_is_null(plain, node)
}

fn remember_strings(node: &Node, keyring: &Keyring) {
    match &node.value {
        Value::Str(s) => keyring.remember(s),
        Value::Seq(items) => items.iter().for_each(|n| remember_strings(n, keyring)),
        Value::Map(entries) => entries
            .iter()
            .for_each(|(_, _, n)| remember_strings(n, keyring)),
        _ => {}
    }
}

/// Whether a value holds an inline vault anywhere.
pub fn has_vault(node: &Node) -> bool {
    match &node.value {
        Value::Vault(_) => true,
        Value::Seq(items) => items.iter().any(has_vault),
        Value::Map(entries) => entries.iter().any(|(_, _, n)| has_vault(n)),
        _ => false,
    }
}

/// The value with every inline vault in it decrypted (and remembered as a secret); `key`
/// names the variable in errors.
pub fn reveal(node: &Node, key: &str, keyring: &Keyring) -> Result<Node, Diagnostic> {
    let value = match &node.value {
        Value::Vault(envelope) => Value::Str(Arc::from(
            keyring
                .decrypt_text(envelope)
                .map_err(|e| vault_error(&node.loc, key, &e))?,
        )),
        Value::Seq(items) => Value::Seq(
            items
                .iter()
                .map(|n| reveal(n, key, keyring))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .map(|(k, l, n)| Ok((Arc::clone(k), *l, reveal(n, key, keyring)?)))
                .collect::<Result<_, Diagnostic>>()?,
        ),
        other => other.clone(),
    };
    Ok(Node::new(value, node.loc))
}

/// A vault that cannot be read, as a located error naming the file (and key).
pub fn vault_error(loc: &Loc, key: &str, e: &InputError) -> Diagnostic {
    let d = Diagnostic::new(loc, key, format!("cannot decrypt: {e}"));
    match e.hint() {
        Some(hint) => d.hint(hint),
        None => d,
    }
}

/// One `-e` argument: `@file.yaml`, an inline YAML/JSON mapping, or `key=value key2=value2`
/// (split as Ansible splits it: quotes keep spaces together and are removed around a value).
fn parse_extra(arg: &str, keyring: &Keyring) -> Result<VarMap, Diagnostic> {
    let cli: Arc<str> = Arc::from("command line (-e)");
    if let Some(path) = arg.strip_prefix('@') {
        if path.is_empty() {
            return Err(
                Diagnostic::new(&Loc::new(&cli, 0), "@", "-e @ names no file")
                    .hint("write -e @vars.yaml, the file's path right after the @"),
            );
        }
        // An empty file (or only comments, or `---`) is no mapping: Ansible refuses it ("could
        // not be made into a dictionary"), where an empty role defaults file is fine.
        let node = vars_file_node(Path::new(path), keyring)?;
        if node.value == Value::Null {
            return Err(Diagnostic::new(
                &Loc::new(&Arc::from(path), 0),
                "",
                "the file holds no variables (it is empty, or only comments): -e @FILE needs a \
                 mapping",
            )
            .hint("write the variables as `name: value` lines, or leave out this -e: Ansible refuses such a file too"));
        }
        return map_entries(node, "");
    }
    let trimmed = arg.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let node = parse_str(arg, &cli)?;
        return map_entries(node, "");
    }
    let mut vars = VarMap::new();
    let Some(pairs) = split_args(arg) else {
        return Err(Diagnostic::new(
            &Loc::new(&cli, 0),
            arg,
            "unbalanced quotes or `{{ }}`/`{% %}` block: Ansible refuses to split it too",
        )
        .hint("close every quote and block, e.g. -e 'key=\"a value\"'"));
    };
    for pair in pairs {
        let Some(eq) = pair
            .char_indices()
            .find(|&(i, c)| c == '=' && i > 0 && !pair[..i].ends_with('\\'))
            .map(|(i, _)| i)
        else {
            return Err(
                Diagnostic::new(&Loc::new(&cli, 0), &pair, "expected key=value")
                    .hint("use -e key=value, -e 'key=\"a value\"', -e @vars.yaml or -e '{\"key\": \"value\"}'"),
            );
        };
        let value = unquote(pair[eq + 1..].trim());
        vars.insert(
            pair[..eq].trim().to_string(),
            Arc::new(Node::new(Value::Str(value.into()), Loc::new(&cli, 0))),
        );
    }
    Ok(vars)
}

/// Splits on whitespace outside quotes and outside `{{ }}` / `{% %}`, keeping the quotes;
/// `None` when a quote or a block is left open, which Ansible refuses.
fn split_args(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == q {
                    quote = None;
                }
                continue;
            }
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '{' && matches!(chars.peek(), Some('{' | '%')) => depth += 1,
            None if matches!(c, '}' | '%') && chars.peek() == Some(&'}') && depth > 0 => depth -= 1,
            None if c.is_whitespace() && depth == 0 => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
                continue;
            }
            None => {}
        }
        cur.push(c);
    }
    if quote.is_some() || depth > 0 {
        return None;
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    Some(words)
}

/// The text inside matching outer quotes, as Ansible's `unquote`.
fn unquote(text: &str) -> &str {
    for q in ['"', '\''] {
        if text.len() >= 2 && text.starts_with(q) && text.ends_with(q) {
            return &text[1..text.len() - 1];
        }
    }
    text
}

/// The variables of one vars file, decrypting a vault file when it is one.
fn file_vars<'a>(
    files: &'a [VarsFile],
    keyring: &'a Keyring,
) -> impl Iterator<Item = Result<VarMap, Diagnostic>> + 'a {
    files.iter().map(move |f| match f {
        VarsFile::Plain(vars) => Ok(vars.clone()),
        VarsFile::Vault { path, text } => decrypt_vars_file(path, text, keyring),
    })
}

/// Every variable visible to `host`, each the winner of its precedence contest. Vault files in
/// the host's scope are decrypted here, and only here: those of other hosts and groups never
/// are. Inline `!vault` values stay encrypted until something reads them.
pub fn resolve_vars(
    inv: &Inventory,
    host: &str,
    sources: &Sources,
) -> Result<VarMap, Vec<Diagnostic>> {
    let groups = inv.groups_of(host);
    let mut errors = Vec::new();
    let mut vars = sources.config.clone();
    vars.extend(sources.defaults.clone());
    let layers = std::iter::once("all").chain(groups.iter().map(String::as_str));
    let mut add = |vars: &mut VarMap, files: &[VarsFile]| {
        for f in file_vars(files, &sources.keyring) {
            match f {
                Ok(v) => vars.extend(v),
                Err(d) => errors.push(d),
            }
        }
    };
    // Ansible's default `precedence`: all_inventory, groups_inventory, all_plugins_inventory,
    // groups_plugins_inventory (the inventory files' group variables, then group_vars/).
    for g in layers.clone() {
        if let Some(group) = inv.groups.get(g) {
            vars.extend(group.vars.clone());
        }
    }
    for g in layers {
        if let Some(group) = inv.groups.get(g) {
            add(&mut vars, &group.file_vars);
        }
    }
    if let Some(h) = inv.hosts.get(host) {
        vars.extend(h.vars.clone());
        add(&mut vars, &h.file_vars);
    }
    vars.extend(sources.extra.clone());
    if errors.is_empty() {
        Ok(vars)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_vars_forms() {
        let keys = Keyring::default();
        let kv = parse_extra("a=1 b=two", &keys).unwrap();
        assert_eq!(kv["b"].value, Value::Str("two".into()));
        let inline = parse_extra("{\"x\": [1, 2]}", &keys).unwrap();
        assert!(matches!(inline["x"].value, Value::Seq(_)));
        assert!(parse_extra("novalue", &keys).is_err());
        let missing = parse_extra("@/nonexistent/vars.yml", &keys).unwrap_err();
        assert!(missing.message.contains("cannot read"), "{missing}");
        // Ansible: "could not be made into a dictionary"
        let d = std::env::temp_dir().join(format!("lbctl-extra-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        for (file, text) in [
            ("empty.yml", ""),
            ("comment.yml", "# none\n"),
            ("dashes.yml", "---\n"),
        ] {
            std::fs::write(d.join(file), text).unwrap();
            let e = parse_extra(&format!("@{}", d.join(file).display()), &keys).unwrap_err();
            assert!(e.message.contains("holds no variables"), "{file}: {e}");
        }
        std::fs::write(d.join("braces.yml"), "{}\n").unwrap();
        assert!(
            parse_extra(&format!("@{}", d.join("braces.yml").display()), &keys)
                .unwrap()
                .is_empty()
        );
        let _ = std::fs::remove_dir_all(&d);
        let quoted = parse_extra(r#"k="a b" j='{{ x }} y' m=1=2 e=\\= z=''"#, &keys).unwrap();
        for open in [r#"a="b"#, "x='unterminated y=2", "t={{ x", "q=it's"] {
            let e = parse_extra(open, &keys).unwrap_err();
            assert!(e.message.contains("unbalanced"), "{open}: {e}");
        }
        let text = |k: &str| quoted[k].as_text().unwrap();
        assert_eq!(text("k"), "a b");
        assert_eq!(text("j"), "{{ x }} y");
        assert_eq!(text("m"), "1=2");
        assert_eq!(text("z"), "");
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
        let inv = Inventory::load(std::slice::from_ref(&d)).unwrap();
        let mut sources = Sources::default();
        sources.defaults.insert(
            "v_default".into(),
            Arc::new(Node::new(Value::Int(1), Loc::new(&Arc::from("d"), 1))),
        );
        sources.extra = parse_extra("v_extra=e v_group=extra", &Keyring::default()).unwrap();
        let vars = resolve_vars(&inv, "lb1", &sources).unwrap();
        let text = |k: &str| vars[k].as_text().unwrap();
        assert_eq!(text("v_default"), "1");
        assert_eq!(text("v_all"), "all");
        assert_eq!(text("v_group"), "extra");
        assert_eq!(text("v_host_line"), "hostvars");
    }
}
