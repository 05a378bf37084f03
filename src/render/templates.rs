//! The Jinja2 templates (built in, or the user's overrides) and rendering a host through them:
//! what a template sees, and the filters lbctl adds.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
};

use super::{RenderedFile, RenderedHost, view::HostView};
use crate::{
    input::{Inventory, Keyring, Sources, has_vault, resolve_vars, reveal},
    source::{Diagnostic, Loc, VarMap, read_text},
    spec::{HostSpec, Service, UdpEngine},
};
use minijinja::{
    Environment, UndefinedBehavior, Value,
    syntax::SyntaxConfig,
    value::Serde,
    value::{Enumerator, Object},
};

const BUILTIN: &[(Service, &str)] = &[
    (
        Service::Haproxy,
        include_str!("../../templates/haproxy.cfg.j2"),
    ),
    (
        Service::Keepalived,
        include_str!("../../templates/keepalived.conf.j2"),
    ),
    (
        Service::Nginx,
        include_str!("../../templates/nginx-stream.conf.j2"),
    ),
];

pub struct Templates {
    env: Environment<'static>,
    /// Where each template came from, for error messages.
    origin: BTreeMap<String, String>,
}

impl Templates {
    /// The built-in templates, each replaced by `<dir>/<name>.j2` from the first directory in
    /// `override_dirs` that has it.
    pub fn load(override_dirs: &[PathBuf]) -> Result<Templates, Vec<Diagnostic>> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .expect("the default delimiters are valid");
        env.set_syntax(syntax);
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        super::ansible::register(&mut env);
        env.add_filter("hostport", hostport);
        env.add_filter("address_only", |s: String| {
            s.split('/').next().unwrap_or_default().to_string()
        });
        let mut origin = BTreeMap::new();
        let mut errors = Vec::new();
        for (service, builtin) in BUILTIN {
            let name = format!("{}.j2", service.file_name());
            let user = override_dirs
                .iter()
                .map(|d| d.join(&name))
                .find(|p| p.is_file());
            let (source, from) = match &user {
                Some(path) => match read_text(path) {
                    Ok(text) => (text, path.display().to_string()),
                    Err(d) => {
                        errors.push(d);
                        continue;
                    }
                },
                None => (builtin.to_string(), format!("built-in {name}")),
            };
            if let Err(e) = env.add_template_owned(name.clone(), source) {
                errors.push(template_error(&from, e.line().unwrap_or(0), describe(&e)));
            }
            origin.insert(name, from);
        }
        if errors.is_empty() {
            Ok(Templates { env, origin })
        } else {
            Err(errors)
        }
    }

    /// Renders every file `spec` needs: HAProxy always, keepalived when a VIP is set, nginx
    /// when UDP backends use the nginx engine.
    pub fn render(&self, spec: &HostSpec, run: &RunContext) -> Result<RenderedHost, Diagnostic> {
        let group_names: Vec<&String> = run
            .groups
            .iter()
            .filter(|(g, hosts)| *g != "all" && hosts.binary_search(&spec.name).is_ok())
            .map(|(g, _)| g)
            .collect();
        let context = Arc::new(HostContext {
            vars: spec.vars.clone(),
            keyring: Arc::clone(&spec.keyring),
            vault_error: Mutex::new(None),
            inventory_hostname: Value::from(spec.name.clone()),
            groups: run.groups_value.clone(),
            group_names: Value::from(Serde(group_names)),
            hostvars: run.hostvars.clone(),
            ansible_managed: run.ansible_managed.clone(),
            lb: Value::from_object(HostView::new(spec)),
        });
        let ctx = Value::from_dyn_object(Arc::clone(&context));
        // A vault a template read but could not decrypt is the error to show, not the
        // undefined value the template then saw.
        let vault_first = |e: Diagnostic| {
            context
                .vault_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .unwrap_or(e)
        };
        let mut files = vec![
            self.render_one(Service::Haproxy, spec.haproxy.config_path.clone(), &ctx)
                .map_err(vault_first)?,
        ];
        if let Some(k) = &spec.keepalived {
            files.push(
                self.render_one(Service::Keepalived, k.config_path.clone(), &ctx)
                    .map_err(vault_first)?,
            );
        }
        if let UdpEngine::Nginx { config_path, .. } = &spec.udp_engine
            && !spec.udp_backends.is_empty()
        {
            files.push(
                self.render_one(Service::Nginx, config_path.clone(), &ctx)
                    .map_err(vault_first)?,
            );
        }
        Ok(RenderedHost {
            host: spec.name.clone(),
            files,
        })
    }

    fn render_one(
        &self,
        service: Service,
        path: String,
        ctx: &Value,
    ) -> Result<RenderedFile, Diagnostic> {
        let name = format!("{}.j2", service.file_name());
        let from = self
            .origin
            .get(&name)
            .cloned()
            .unwrap_or_else(|| name.clone());
        let template = self
            .env
            .get_template(&name)
            .map_err(|e| template_error(&from, 0, describe(&e)))?;
        let content = template
            .render(ctx)
            .map_err(|e| template_error(&from, e.line().unwrap_or(0), describe(&e)))?;
        Ok(RenderedFile {
            service,
            path,
            content,
        })
    }
}

/// What a template sees: lbctl's typed view as `lb`, Ansible's `inventory_hostname` and
/// `groups`, and every raw variable by its Ansible name. Raw variables are converted only when
/// a template asks for them, so built-in templates never pay for them.
#[derive(Debug)]
struct HostContext {
    vars: VarMap,
    keyring: Arc<Keyring>,
    vault_error: Mutex<Option<Diagnostic>>,
    inventory_hostname: Value,
    groups: Value,
    group_names: Value,
    hostvars: Value,
    ansible_managed: Value,
    lb: Value,
}

/// What every host's templates share in one run: the inventory's `groups`, `hostvars` (each
/// host's variables, resolved only when a template reads them) and `ansible_managed`.
pub struct RunContext {
    groups: BTreeMap<String, Vec<String>>,
    groups_value: Value,
    hostvars: Value,
    ansible_managed: Value,
}

impl RunContext {
    pub fn new(inventory: Arc<Inventory>, sources: Arc<Sources>, ansible_managed: &str) -> Self {
        // Every group's hosts in one pass (and sorted, so each host finds its groups by
        // binary search): asking for each group's hosts walks every group below it again.
        let groups = inventory.group_hosts();
        RunContext {
            groups_value: Value::from(Serde(&groups)),
            groups,
            hostvars: Value::from_object(HostVars { inventory, sources }),
            ansible_managed: Value::from(ansible_managed),
        }
    }
}

/// `hostvars`: any inventory host's variables, resolved when a template asks for them.
#[derive(Debug)]
struct HostVars {
    inventory: Arc<Inventory>,
    sources: Arc<Sources>,
}

impl Object for HostVars {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let host = key.as_str()?;
        self.inventory.hosts.get(host)?;
        let vars = resolve_vars(&self.inventory, host, &self.sources).ok()?;
        Some(Value::from_object(HostVarsOf {
            vars,
            keyring: Arc::clone(&self.sources.keyring),
            name: Value::from(host),
        }))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.inventory.hosts.keys().map(Value::from).collect())
    }
}

/// One host's variables in `hostvars`.
#[derive(Debug)]
struct HostVarsOf {
    vars: VarMap,
    keyring: Arc<Keyring>,
    name: Value,
}

impl Object for HostVarsOf {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        if name == "inventory_hostname" {
            return Some(self.name.clone());
        }
        let node = self.vars.get(name)?;
        let node = reveal(node, name, &self.keyring).ok()?;
        Some(Value::from(Serde(node.to_json())))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.vars.keys().map(|k| Value::from(k.as_str())).collect())
    }
}

impl Object for HostContext {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "lb" => Some(self.lb.clone()),
            "inventory_hostname" => Some(self.inventory_hostname.clone()),
            "groups" => Some(self.groups.clone()),
            "group_names" => Some(self.group_names.clone()),
            "hostvars" => Some(self.hostvars.clone()),
            "ansible_managed" => Some(self.ansible_managed.clone()),
            "inventory_hostname_short" => self
                .inventory_hostname
                .as_str()
                .map(|h| Value::from(h.split('.').next().unwrap_or(h))),
            name => {
                let node = self.vars.get(name)?;
                if !has_vault(node) {
                    return Some(Value::from(Serde(node.to_json())));
                }
                match reveal(node, name, &self.keyring) {
                    Ok(plain) => Some(Value::from(Serde(plain.to_json()))),
                    Err(d) => {
                        *self
                            .vault_error
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner) = Some(d);
                        None
                    }
                }
            }
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut keys: Vec<Value> = [
            "lb",
            "inventory_hostname",
            "inventory_hostname_short",
            "groups",
            "group_names",
            "hostvars",
            "ansible_managed",
        ]
        .map(Value::from)
        .to_vec();
        keys.extend(self.vars.keys().map(|k| Value::from(k.clone())));
        Enumerator::Values(keys)
    }
}

/// `address:port`, with IPv6 addresses in brackets and `*` kept as the wildcard. The address
/// is read in place when it is a string (every server line calls this).
fn hostport(address: &Value, port: u16) -> String {
    let text;
    let address = match address.as_str() {
        Some(s) => s,
        None => {
            text = address.to_string();
            &text
        }
    };
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

fn template_error(file: &str, line: usize, message: String) -> Diagnostic {
    Diagnostic::new(&Loc::new(&Arc::from(file), line), "", message)
        .hint("fix the template, or remove it to use lbctl's built-in one")
}

fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("template error: {}: {detail}", e.kind()),
        None => format!("template error: {}", e.kind()),
    }
}

/// The directories searched for template overrides: `--templates`, then `templates/` next to
/// the inventory.
pub fn override_dirs(flag: Option<&Path>, inventory_dir: &Path) -> Vec<PathBuf> {
    flag.map(Path::to_path_buf)
        .into_iter()
        .chain(std::iter::once(inventory_dir.join("templates")))
        .collect()
}
