//! Each host's variables as Ansible's templates see them, evaluated when read.

use std::{
    cell::{Cell, RefCell},
    collections::HashMap,
    fmt,
    path::{Component, Path, PathBuf},
    sync::{Arc, Mutex, OnceLock, PoisonError, Weak},
};

use minijinja::{
    Error, ErrorKind, Value,
    value::{Enumerator, Object},
};

use super::{
    chain, env,
    error::{self, TemplateError, describe},
    filters::ordered_map,
    lazy::{self, Lazy},
    native::{self, is_template},
};
use crate::{
    input::{Inventory, Keyring, Sources, resolve_vars},
    source::{Diagnostic, Loc, MAX_DEPTH, Node, Value as V, VarMap},
};

/// How many variable templates may be in evaluation at once, each reading the next: far more
/// than real variables chain, few enough to stop well before the stack ends.
const MAX_NESTING: usize = 100;

/// What evaluation shares in one run: the inventory and other sources, `groups`, `hostvars`,
/// and each host's scope once made (so a variable read through `hostvars` by every load
/// balancer is evaluated once).
pub struct Templar {
    inventory: Arc<Inventory>,
    sources: Arc<Sources>,
    groups: OnceLock<Value>,
    hostvars: Value,
    scopes: Mutex<HashMap<String, Arc<HostScope>>>,
    /// Whether a shared value holds anything to evaluate (a template, a vault, `!unsafe`
    /// text), by address; the value is kept so that its address is not reused.
    plain: Mutex<HashMap<usize, (Arc<Node>, bool)>>,
}

impl Templar {
    pub fn new(inventory: Arc<Inventory>, sources: Arc<Sources>) -> Arc<Templar> {
        Arc::new_cyclic(|me: &Weak<Templar>| Templar {
            inventory,
            sources,
            groups: OnceLock::new(),
            hostvars: Value::from_object(HostVars(me.clone())),
            scopes: Mutex::default(),
            plain: Mutex::default(),
        })
    }

    pub fn inventory(&self) -> &Arc<Inventory> {
        &self.inventory
    }

    pub fn sources(&self) -> &Arc<Sources> {
        &self.sources
    }

    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.sources.keyring
    }

    /// The scope of an inventory host: its variables with Ansible's precedence (the vault
    /// files among them decrypted) and its magic variables.
    pub fn scope(self: &Arc<Self>, host: &str) -> Result<Arc<HostScope>, Vec<Diagnostic>> {
        if let Some(scope) = self.lock_scopes().get(host) {
            return Ok(Arc::clone(scope));
        }
        let vars = resolve_vars(&self.inventory, host, &self.sources)?;
        let group_names = self.inventory.group_names(host);
        let scope = Arc::new(HostScope {
            templar: Arc::downgrade(self),
            name: Value::from(host),
            vars,
            group_names: Value::from(group_names),
            values: Mutex::default(),
        });
        Ok(Arc::clone(
            self.lock_scopes().entry(host.to_string()).or_insert(scope),
        ))
    }

    fn lock_scopes(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<HostScope>>> {
        self.scopes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `groups`: every group's hosts in Ansible's order, made when first read.
    fn groups(&self) -> Value {
        self.groups
            .get_or_init(|| {
                ordered_map(
                    self.inventory
                        .groups_dict()
                        .into_iter()
                        .map(|(g, hosts)| (Value::from(g), Value::from(hosts)))
                        .collect(),
                )
            })
            .clone()
    }

    /// Whether `node` is used as it is: nothing in it to evaluate or decrypt.
    fn is_plain(&self, node: &Arc<Node>) -> bool {
        let key = Arc::as_ptr(node) as usize;
        let mut plain = self.plain.lock().unwrap_or_else(PoisonError::into_inner);
        plain
            .entry(key)
            .or_insert_with(|| (Arc::clone(node), !needs_evaluation(node)))
            .1
    }
}

/// Whether a value holds a template, a vault or `!unsafe` text.
fn needs_evaluation(node: &Node) -> bool {
    match &node.value {
        V::Str(s) => is_template(s),
        V::Vault(_) | V::Unsafe(_) => true,
        V::Seq(items) => items.iter().any(needs_evaluation),
        V::Map(entries) => entries.iter().any(|(_, _, n)| needs_evaluation(n)),
        V::Null | V::Bool(_) | V::Int(_) | V::Float(_) => false,
    }
}

/// One host's variables, and its magic ones (`inventory_hostname`, `group_names`, `groups`,
/// `hostvars`), as templates see them: the root of a variable template's context, and what
/// `hostvars[host]` is.
pub struct HostScope {
    templar: Weak<Templar>,
    name: Value,
    vars: VarMap,
    group_names: Value,
    /// The variables read so far, each evaluated once: a failure too, else a chain of
    /// variables each reading the last twice would evaluate the failing one 2^n times.
    values: Mutex<HashMap<String, Result<Value, Box<TemplateError>>>>,
}

impl fmt::Debug for HostScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostScope")
            .field("host", &self.name())
            .finish_non_exhaustive()
    }
}

/// Ansible's variables about the host itself, which no inventory sets.
const MAGIC: &[&str] = &[
    "inventory_hostname",
    "inventory_hostname_short",
    "group_names",
    "groups",
    "hostvars",
];

/// One variable template in evaluation: the host's scope and the template's node, by address.
type Frame = (usize, usize, String, String, Loc);

thread_local! {
    /// The templates being evaluated on this thread, outermost first.
    static EVALUATING: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
    /// Whether the evaluation on this thread read a value decrypted from a vault.
    static READ_SECRET: Cell<bool> = const { Cell::new(false) };
}

impl HostScope {
    pub fn name(&self) -> &str {
        self.name.as_str().unwrap_or_default()
    }

    /// The variables as written (templates not evaluated, vaults not decrypted).
    pub fn vars(&self) -> &VarMap {
        &self.vars
    }

    fn keyring(&self) -> Option<Arc<Keyring>> {
        self.templar.upgrade().map(|t| Arc::clone(t.keyring()))
    }

    /// A variable as lbctl reads it: templates evaluated (in this host's scope), vaults
    /// decrypted, `!unsafe` text as written; each value keeps the line it was written on (a
    /// template's result, the template's line). A value with nothing to evaluate is returned
    /// as it is, shared.
    pub fn node(self: &Arc<Self>, name: &str) -> Option<Result<Arc<Node>, Box<TemplateError>>> {
        let raw = self.vars.get(name)?;
        let templar = self.templar.upgrade()?;
        if templar.is_plain(raw) {
            return Some(Ok(Arc::clone(raw)));
        }
        let secret = READ_SECRET.with(|r| r.replace(false));
        // a variable that is `omit` as a whole is not set
        let result = self.evaluate_node(name, raw, 0).transpose()?.map(Arc::new);
        if READ_SECRET.with(|r| r.replace(secret || r.get()))
            && let Ok(node) = &result
        {
            remember_strings(node, templar.keyring());
        }
        Some(result)
    }

    /// `node` (part of variable `var`) with everything in it evaluated, the items and keys
    /// that are `omit` left out (`None`: `node` is `omit`).
    pub(super) fn evaluate_node(
        self: &Arc<Self>,
        var: &str,
        node: &Node,
        depth: usize,
    ) -> Result<Option<Node>, Box<TemplateError>> {
        let value = match &node.value {
            V::Str(s) if is_template(s) => {
                let mark = error::missing_mark();
                let value = self.evaluate(var, node, s);
                let missing = error::missing_since(mark);
                let value = value?;
                return lazy::to_node(&value, node.loc, depth, &|message| match (
                    message == lazy::UNDEFINED_RESULT,
                    named(&missing),
                ) {
                    (true, Some(names)) => {
                        let message =
                            format!("{message}; names it read that are undefined: {names}");
                        let mut e = self.error(var, node.loc, Some(s), message, false);
                        e.hint = Some(format!(
                            "define {names} (group_vars/, host_vars/, the inventory or -e) or correct the name, or give a default: `| default(...)`"
                        ));
                        e
                    }
                    _ => self.error(var, node.loc, Some(s), message, false),
                });
            }
            V::Unsafe(s) => V::Str(Arc::clone(s)),
            V::Vault(envelope) => V::Str(Arc::from(self.decrypt(var, node, envelope)?)),
            V::Seq(items) => V::Seq(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, n)| {
                        self.evaluate_node(var, n, depth + 1)
                            .map_err(|e| e.within(&format!("[{i}]")))
                            .transpose()
                    })
                    .collect::<Result<_, _>>()?,
            ),
            V::Map(entries) => V::Map(
                entries
                    .iter()
                    .filter_map(|(k, l, n)| {
                        let value = self
                            .evaluate_node(var, n, depth + 1)
                            .map_err(|e| e.within(&format!(".{k}")))
                            .transpose()?;
                        Some(value.map(|value| (Arc::clone(k), *l, value)))
                    })
                    .collect::<Result<_, Box<TemplateError>>>()?,
            ),
            other => other.clone(),
        };
        Ok(Some(Node::new(value, node.loc)))
    }

    /// A variable's value as templates see it (`None`: no such variable).
    fn lookup(self: &Arc<Self>, name: &str) -> Result<Option<Value>, Box<TemplateError>> {
        let templar = || self.templar.upgrade();
        match name {
            "inventory_hostname" => return Ok(Some(self.name.clone())),
            "inventory_hostname_short" => {
                let host = self.name();
                return Ok(Some(Value::from(host.split('.').next().unwrap_or(host))));
            }
            "group_names" => return Ok(Some(self.group_names.clone())),
            "groups" => return Ok(templar().map(|t| t.groups())),
            "hostvars" => return Ok(templar().map(|t| t.hostvars.clone())),
            // Ansible's `vars`: this host's variables, by name (`vars['haproxy_' ~ name]`)
            "vars" => return Ok(Some(Value::from_dyn_object(Arc::clone(self)))),
            _ => {}
        }
        if let Some(value) = self.lock_values().get(name) {
            return value.clone().map(Some);
        }
        let Some(raw) = self.vars.get(name) else {
            return Ok(self.inventory_source(name));
        };
        let secret = READ_SECRET.with(|r| r.replace(false));
        // what that variable's own templates read is not this template's to report
        let missing = error::missing_mark();
        let value = self.value(name, raw, &[], raw);
        error::missing_since(missing);
        let read_secret = READ_SECRET.with(|r| r.replace(secret || r.get()));
        if read_secret
            && let (Ok(Some(text)), Some(keyring)) =
                (value.as_ref().map(Value::as_str), self.keyring())
        {
            keyring.remember(text);
        }
        self.lock_values().insert(name.to_string(), value.clone());
        value.map(Some)
    }

    /// `inventory_file` and `inventory_dir`, which Ansible sets on each host unless a variable
    /// of the same name is defined: the inventory file that declared the host first, as an
    /// absolute path, and its directory.
    fn inventory_source(&self, name: &str) -> Option<Value> {
        if name != "inventory_file" && name != "inventory_dir" {
            return None;
        }
        let templar = self.templar.upgrade()?;
        let loc = templar.inventory.hosts.get(self.name())?.loc?;
        let file = absolute(Path::new(&*loc.file.name()))?;
        let path = if name == "inventory_file" {
            file.as_path()
        } else {
            file.parent()?
        };
        Some(Value::from(path.to_string_lossy().into_owned()))
    }

    fn lock_values(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Result<Value, Box<TemplateError>>>> {
        self.values.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The template value of `node`, found at `path` in variable `var`'s value `root`:
    /// scalars as they are (a template evaluated, a vault decrypted), containers read lazily.
    pub(super) fn value(
        self: &Arc<Self>,
        var: &str,
        root: &Arc<Node>,
        path: &[u32],
        node: &Node,
    ) -> Result<Value, Box<TemplateError>> {
        Ok(match &node.value {
            V::Null => Value::from(()),
            V::Bool(b) => Value::from(*b),
            V::Int(i) => Value::from(*i),
            V::Float(x) => Value::from(*x),
            V::Str(s) if is_template(s) => self.evaluate(var, node, s)?,
            V::Str(s) => {
                self.note_secret(s);
                Value::from(Arc::clone(s))
            }
            V::Unsafe(s) => Value::from(Arc::clone(s)),
            V::Vault(envelope) => Value::from(self.decrypt(var, node, envelope)?),
            V::Seq(_) | V::Map(_) => Value::from_object(Lazy::new(self, var, root, path)),
        })
    }

    /// Notes that the evaluation read a secret, when `text` is one.
    fn note_secret(&self, text: &str) {
        if let Some(keyring) = self.keyring()
            && !keyring.is_empty()
            && keyring.is_secret(text)
        {
            READ_SECRET.with(|r| r.set(true));
        }
    }

    fn decrypt(
        &self,
        var: &str,
        node: &Node,
        envelope: &str,
    ) -> Result<String, Box<TemplateError>> {
        let keyring = self.keyring().unwrap_or_default();
        READ_SECRET.with(|r| r.set(true));
        keyring.decrypt_text(envelope).map_err(|e| {
            let mut error = self.error(var, node.loc, None, format!("cannot decrypt: {e}"), false);
            error.hint = e.hint();
            error
        })
    }

    /// Evaluates the template `source`, written at `node` in variable `var`, in this scope.
    fn evaluate(
        self: &Arc<Self>,
        var: &str,
        node: &Node,
        source: &str,
    ) -> Result<Value, Box<TemplateError>> {
        let frame: Frame = (
            Arc::as_ptr(self) as usize,
            node as *const Node as usize,
            self.name().to_string(),
            var.to_string(),
            node.loc,
        );
        let looped = EVALUATING.with(|e| {
            let e = e.borrow();
            if e.len() >= MAX_NESTING {
                return Some(format!(
                    "variables refer to each other more than {MAX_NESTING} deep"
                ));
            }
            let first = e.iter().position(|f| f.0 == frame.0 && f.1 == frame.1)?;
            let names: Vec<&str> = e[first..]
                .iter()
                .map(|f| f.3.as_str())
                .chain(std::iter::once(var))
                .collect();
            Some(format!(
                "recursive loop: the variable refers to itself ({})",
                names.join(" -> ")
            ))
        });
        if let Some(message) = looped {
            return Err(self.error(var, node.loc, Some(source), message, false));
        }
        EVALUATING.with(|e| e.borrow_mut().push(frame));
        let start = error::mark();
        let ctx = Value::from_dyn_object(Arc::clone(self));
        // lookups through missing values (`facts.eth0 | default('eth0')`): see `chain`
        let result = chain::evaluate(
            source,
            || native::render(source, ctx.clone()),
            |v| !chain::is_missing(v),
        );
        EVALUATING.with(|e| e.borrow_mut().pop());
        let failed = error::take_since(start);
        result.map_err(|e| {
            error::reader_error(
                e,
                failed,
                |e| {
                    let (message, undefined) = describe(&e, source);
                    self.error(var, node.loc, Some(source), message, undefined)
                },
                (self.name(), var, node.loc),
            )
        })
    }

    fn error(
        &self,
        var: &str,
        loc: Loc,
        template: Option<&str>,
        message: String,
        undefined: bool,
    ) -> Box<TemplateError> {
        Box::new(TemplateError {
            loc,
            host: self.name().to_string(),
            var: var.to_string(),
            key: var.to_string(),
            template: template.map(str::to_string),
            message,
            hint: None,
            undefined,
            via: Vec::new(),
        })
    }
}

/// `path` made absolute, with `.` and `..` resolved as written (no link followed), as
/// Python's `os.path.abspath` does.
fn absolute(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in std::path::absolute(path).ok()?.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    Some(out)
}

/// `names` (read by a template, without a value) as a message lists them, leaving out
/// Jinja2's own globals (`range`, `dict`, ...), which a template reaches through the same
/// lookup.
fn named(names: &[String]) -> Option<String> {
    let globals: Vec<&str> = env::shared().globals().map(|(n, _)| n).collect();
    let names: Vec<String> = names
        .iter()
        .filter(|n| !globals.contains(&n.as_str()))
        .map(|n| format!("`{n}`"))
        .collect();
    (!names.is_empty()).then(|| names.join(", "))
}

/// A failed read, as the reading template sees it: undefined when the variable lacked a
/// value (`default` applies), otherwise a value that fails the template where it is used.
pub(super) fn failed_read(error: Box<TemplateError>) -> Option<Value> {
    let undefined = error.undefined;
    let message = error.message.clone();
    error::record(error);
    if undefined {
        None
    } else {
        Some(Value::from(Error::new(
            ErrorKind::InvalidOperation,
            message,
        )))
    }
}

fn remember_strings(node: &Node, keyring: &Keyring) {
    match &node.value {
        V::Str(s) => keyring.remember(s),
        V::Seq(items) => items.iter().for_each(|n| remember_strings(n, keyring)),
        V::Map(entries) => entries
            .iter()
            .for_each(|(_, _, n)| remember_strings(n, keyring)),
        _ => {}
    }
}

impl Object for HostScope {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<Value> {
        match self.lookup(key) {
            Ok(None) => {
                // Jinja2's globals (`range`, `lookup`, `omit`, ...) are looked up after the
                // context
                if env::shared().globals().any(|(name, _)| name == key) {
                    return None;
                }
                error::missing(key);
                chain::stand_in()
            }
            Ok(value) => value,
            // a variable whose own template lacked a value is missing too (see `chain`)
            Err(e) => failed_read(e).or_else(chain::stand_in),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut keys: Vec<Value> = MAGIC.iter().map(|k| Value::from(*k)).collect();
        keys.extend(self.vars.keys().map(|k| Value::from(k.as_str())));
        Enumerator::Values(keys)
    }
}

/// `hostvars`: every inventory host's scope, by name.
struct HostVars(Weak<Templar>);

impl fmt::Debug for HostVars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("hostvars")
    }
}

impl Object for HostVars {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let templar = self.0.upgrade()?;
        let host = key.as_str()?;
        if !templar.inventory.hosts.contains_key(host) {
            return chain::stand_in();
        }
        match templar.scope(host) {
            Ok(scope) => Some(Value::from_object(HostVarsVars(scope))),
            Err(diags) => {
                let d = diags.into_iter().next()?;
                failed_read(Box::new(TemplateError {
                    loc: Loc::new(&Arc::from(d.file.as_str()), d.line),
                    host: host.to_string(),
                    key: d.key.clone(),
                    var: d.key,
                    template: None,
                    message: d.message,
                    hint: d.hint,
                    undefined: false,
                    via: Vec::new(),
                }))
            }
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        match self.0.upgrade() {
            Some(t) => Enumerator::Values(
                t.inventory
                    .order
                    .iter()
                    .map(|h| Value::from(h.as_str()))
                    .collect(),
            ),
            None => Enumerator::Empty,
        }
    }
}

/// The Python type Ansible's own `hostvars` and `hostvars[host]` are (`type_debug`).
pub(super) fn python_type_name(value: &Value) -> Option<&'static str> {
    if value.downcast_object_ref::<HostVars>().is_some() {
        Some("HostVars")
    } else if value.downcast_object_ref::<HostVarsVars>().is_some() {
        Some("HostVarsVars")
    } else {
        None
    }
}

/// `hostvars[host]`: the host's variables without `hostvars` itself, as Ansible gives them
/// (`include_hostvars=False`), so that walking them (`hostvars | to_json`) ends.
#[derive(Debug)]
struct HostVarsVars(Arc<HostScope>);

impl Object for HostVarsVars {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "hostvars" => {
                error::missing("hostvars");
                None
            }
            name => self.0.get_value_by_str(name),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut keys: Vec<Value> = MAGIC
            .iter()
            .filter(|k| **k != "hostvars")
            .map(|k| Value::from(*k))
            .collect();
        keys.extend(self.0.vars.keys().map(|k| Value::from(k.as_str())));
        Enumerator::Values(keys)
    }
}

/// The deepest a template's result may nest, as the YAML it stands for.
pub(super) const MAX_RESULT_DEPTH: usize = MAX_DEPTH;

/// Whether `value` is the inventory's (a variable's list or mapping, `vars`, `hostvars`):
/// it holds no list or mapping a template built, and walking it would evaluate variables.
pub(super) fn is_inventory(value: &Value) -> bool {
    value.downcast_object_ref::<Lazy>().is_some()
        || value.downcast_object_ref::<HostScope>().is_some()
        || value.downcast_object_ref::<HostVars>().is_some()
        || value.downcast_object_ref::<HostVarsVars>().is_some()
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::input::Inventory;

    pub(in crate::input::template) fn templar(tag: &str, files: &[(&str, &str)]) -> Arc<Templar> {
        let d = std::env::temp_dir().join(format!("lbctl-templar-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        for (rel, text) in files {
            let p = d.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let inv = Inventory::load(&[PathBuf::from(&d)]).unwrap();
        Templar::new(Arc::new(inv), Arc::new(Sources::default()))
    }

    const HOSTS: &str = "all:\n  children:\n    workers:\n      hosts:\n        w3: {ansible_host: 10.0.0.13}\n        w1: {ansible_host: 10.0.0.11, port: \"{{ base + 1 }}\"}\n    lbs:\n      hosts:\n        lb2: {prio: 2}\n        lb1: {prio: 1}\n";

    fn json(node: &Node) -> String {
        node.to_json().to_string()
    }

    pub(in crate::input::template) fn eval(
        t: &Arc<Templar>,
        host: &str,
        var: &str,
    ) -> Result<String, Box<TemplateError>> {
        t.scope(host).unwrap().node(var).unwrap().map(|n| json(&n))
    }

    #[test]
    fn variables_are_evaluated_in_their_host_scope() {
        let t = templar(
            "scope",
            &[
                ("hosts.yml", HOSTS),
                (
                    "group_vars/lbs.yml",
                    concat!(
                        "vip: 10.0.0.100\n",
                        "mysql_nodeport: 30306\n",
                        "base: 8000\n",
                        "a_vip: \"{{ vip }}/24\"\n",
                        "a_port: \"{{ mysql_nodeport }}\"\n",
                        "a_sum: \"{{ mysql_nodeport | int + 1 }}\"\n",
                        "a_default: \"{{ nope | default('x') }}\"\n",
                        "a_worker: \"{{ hostvars['w1'].ansible_host }}\"\n",
                        "a_worker_port: \"{{ hostvars['w1'].port }}\"\n",
                        "a_mine: \"{{ prio * 10 }}\"\n",
                        "a_chain: \"{{ a_sum + 1 }}\"\n",
                        "a_groups: \"{{ groups['workers'] }}\"\n",
                        "a_names: \"{{ group_names }}\"\n",
                        "a_join: \"{{ groups['workers'] | map('extract', hostvars, 'ansible_host') | join(',') }}\"\n",
                        "a_servers:\n",
                        "  - {address: \"{{ hostvars['w3'].ansible_host }}\", port: \"{{ mysql_nodeport }}\"}\n",
                        "a_combine: \"{{ {'b': 1, 'a': 2} | combine({'c': mysql_nodeport}) }}\"\n",
                        "a_unsafe: !unsafe \"{{ vip }}\"\n",
                        "a_lazy: \"{{ d.a }}\"\n",
                        "d: {a: 1, b: \"{{ undefined_q }}\"}\n",
                    ),
                ),
            ],
        );
        let cases = [
            ("a_vip", "\"10.0.0.100/24\""),
            ("a_port", "30306"),
            ("a_sum", "30307"),
            ("a_default", "\"x\""),
            ("a_worker", "\"10.0.0.11\""),
            ("a_mine", "10"),
            ("a_chain", "30308"),
            ("a_groups", "[\"w3\",\"w1\"]"),
            ("a_names", "[\"lbs\"]"),
            ("a_join", "\"10.0.0.13,10.0.0.11\""),
            ("a_servers", "[{\"address\":\"10.0.0.13\",\"port\":30306}]"),
            ("a_unsafe", "\"{{ vip }}\""),
            ("a_lazy", "1"),
        ];
        for (var, want) in cases {
            assert_eq!(eval(&t, "lb1", var).unwrap(), want, "{var}");
        }
        assert_eq!(eval(&t, "lb2", "a_mine").unwrap(), "20");
        // the worker's own variable is evaluated in the worker's scope, which has no `base`
        let e = eval(&t, "lb1", "a_worker_port").unwrap_err();
        assert_eq!(e.var, "port", "{e:?}");
        assert_eq!(e.host, "w1");
        assert_eq!(e.message, "`base` is undefined");
        assert!(e.loc.to_string().ends_with("hosts.yml:6"), "{}", e.loc);
        let shown = e.diagnostic().to_string();
        assert!(shown.contains("(for host `w1`)"), "{shown}");
        assert!(shown.contains("read by `a_worker_port`"), "{shown}");
        // Python's dicts keep their order
        let combined = t.scope("lb1").unwrap().node("a_combine").unwrap().unwrap();
        let keys: Vec<&str> = match &combined.value {
            V::Map(entries) => entries.iter().map(|(k, _, _)| &**k).collect(),
            other => panic!("{other:?}"),
        };
        assert_eq!(keys, ["b", "a", "c"]);
    }

    /// As in ansible-core 2.19: `-i inv -i ./other/../other/more.ini` gives lb1
    /// `/tmp/invd/inv/hosts.ini|/tmp/invd/inv` and lb2 `/tmp/invd/other/more.ini|/tmp/invd/other`.
    #[test]
    fn inventory_file_and_dir_name_the_file_that_declared_the_host() {
        let t = templar(
            "inventory-file",
            &[
                (
                    "hosts",
                    "[lbs]\nlb1\nlb2\n[lbs:vars]\nwhere=\"{{ inventory_file }}|{{ inventory_dir }}\"\n",
                ),
                ("host_vars/lb2.yml", "inventory_dir: mine\n"),
            ],
        );
        let hosts = std::env::temp_dir()
            .join(format!(
                "lbctl-templar-inventory-file-{}",
                std::process::id()
            ))
            .join("hosts");
        let want = format!(
            "\"{}|{}\"",
            hosts.display(),
            hosts.parent().unwrap().display()
        );
        assert_eq!(eval(&t, "lb1", "where").unwrap(), want);
        // a variable of that name is the host's own
        let mine = format!("\"{}|mine\"", hosts.display());
        assert_eq!(eval(&t, "lb2", "where").unwrap(), mine);
        let relative = absolute(Path::new("a/./b/../c")).unwrap();
        assert_eq!(relative, std::env::current_dir().unwrap().join("a/c"));
    }

    #[test]
    fn loops_and_undefined_names_are_reported_where_they_are_written() {
        let t = templar(
            "errors",
            &[
                ("hosts", "[lbs]\nlb1\n"),
                (
                    "group_vars/all.yml",
                    "a: \"{{ b }}\"\nb: \"{{ a }}\"\nself: \"{{ self }}\"\nport: \"{{ mysql_nodeport }}\"\nuses_port: \"{{ port + 1 }}\"\nsafe: \"{{ a | default(1) }}\"\nbuilt: \"{% set l = [] %}{% set _ = l.append({'p': x | default(1), 'q': typo}) %}{{ l }}\"\nvip: \"{{ net }}.100/24\"\nnet: \"{{ site.net }}\"\nsite: {name: x}\nuses_vip: \"{{ vip }}\"\nby_name: \"{{ lookup('vars', 'by_' ~ 'name') }}\"\nsite_by_name: \"{{ lookup('vars', 'si' ~ 'te') }}\"\n",
                ),
            ],
        );
        let e = eval(&t, "lb1", "a").unwrap_err();
        assert!(e.message.contains("recursive loop"), "{e:?}");
        assert!(e.message.contains("a -> b -> a"), "{e:?}");
        let e = eval(&t, "lb1", "self").unwrap_err();
        assert!(e.message.contains("self -> self"), "{e:?}");
        // and through lookup('vars'), where the name is computed
        let e = eval(&t, "lb1", "by_name").unwrap_err();
        assert!(e.message.contains("by_name -> by_name"), "{e:?}");
        assert_eq!(eval(&t, "lb1", "site_by_name").unwrap(), r#"{"name":"x"}"#);
        // a loop is an error even under `default`, as in Ansible
        assert!(eval(&t, "lb1", "safe").is_err());
        let e = eval(&t, "lb1", "uses_port").unwrap_err();
        assert_eq!(
            (e.var.as_str(), e.message.as_str()),
            ("port", "`mysql_nodeport` is undefined")
        );
        assert_eq!(e.loc.line, 4);
        let d = e.diagnostic();
        assert_eq!(d.key, "port");
        assert!(
            d.message
                .starts_with("cannot evaluate `{{ mysql_nodeport }}`"),
            "{d}"
        );
        assert!(d.hint.unwrap().contains("read by `uses_port`"));
        // a list the template built and printed holding an undefined value names it, as
        // Ansible does (`x` has a default)
        let e = eval(&t, "lb1", "built").unwrap_err();
        assert_eq!(e.message, "`typo` is undefined", "{e:?}");
        let hint = e.diagnostic().hint.unwrap_or_default();
        assert!(hint.starts_with("define `typo`"), "{hint}");
        // two variables deep, the failure is still the one shown, with both readers
        let e = eval(&t, "lb1", "uses_vip").unwrap_err();
        assert_eq!((e.var.as_str(), e.loc.line), ("net", 9), "{e:?}");
        assert!(e.message.contains("net"), "{e:?}");
        let hint = e.diagnostic().hint.unwrap();
        assert!(
            hint.contains("read by `vip`") && hint.contains("read by `uses_vip`"),
            "{hint}"
        );
        assert!(hint.starts_with("`site` has no key `net`"), "{hint}");
    }

    /// Each variable is its own render with its own fuel, so a chain of variables that each
    /// double the last would grow without end: each value is bounded as it is made, in text
    /// and in items (a list, or lists within a mapping).
    #[test]
    fn variables_that_double_the_last_stop_at_a_bound() {
        let mut text = String::from("x0: xxxxxxxxxx\n");
        for i in 1..60 {
            let last = i - 1;
            text += &format!("x{i}: \"{{{{ x{last} }}}}{{{{ x{last} }}}}\"\n");
        }
        // 41 lists of 100,000 numbers in one value (minijinja's `range` makes at most 100,000)
        text += "l: \"{{ range(100000) | list }}\"\n";
        text += &format!("m: \"{{{{ {{'a': [{}]}} }}}}\"\n", vec!["l"; 41].join(", "));
        let t = templar(
            "doubling",
            &[("hosts", "[lbs]\nlb1\n"), ("group_vars/all.yml", &text)],
        );
        assert_eq!(
            eval(&t, "lb1", "x3").unwrap(),
            format!("\"{}\"", "x".repeat(80))
        );
        let e = eval(&t, "lb1", "x59").unwrap_err();
        // x23 is the first over 64 MiB (10 << 23 bytes), on its line
        assert_eq!((e.var.as_str(), e.loc.line), ("x23", 24), "{e:?}");
        assert!(e.message.contains("more than 64 MiB of text"), "{e:?}");
        let e = eval(&t, "lb1", "m").unwrap_err();
        assert_eq!(e.var, "m", "{e:?}");
        assert!(e.message.contains("more than 4000000 items"), "{e:?}");
    }
}
