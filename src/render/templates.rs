//! The Jinja2 templates (built in, or the user's overrides) and rendering a host through them:
//! what a template sees, and the filters lbctl adds.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError},
};

use super::{
    RenderedFile, RenderedHost,
    view::{HostView, Part, PartKey},
};
use crate::{
    input::{HostScope, Templar, template},
    source::{Diagnostic, Loc, read_text},
    spec::{HostSpec, Service},
};
use minijinja::{
    Environment, Error, ErrorKind, State, Value,
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
    (
        Service::UdpHealth,
        include_str!("../../templates/udp-health.j2"),
    ),
    (
        Service::UdpHealthUnit,
        include_str!("../../templates/lbctl-udp-health.service.j2"),
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
        let mut env = template::environment();
        env.add_filter("hostport", hostport);
        env.add_filter("address_only", |s: String| {
            s.split('/').next().unwrap_or_default().to_string()
        });
        env.add_filter("sh_quote", |s: String| shell_quote(&s));
        env.add_filter("printf_escape", |s: String| printf_escape(&s));
        env.add_filter("hex", |s: String| {
            s.bytes().map(|b| format!("{b:02x}")).collect::<String>()
        });
        // The shell functions that mark nginx's upstream servers, shared with the scripts lbctl
        // runs on hosts: lbctl's UDP health watcher includes them.
        env.add_template(
            "nginx-marks.sh",
            include_str!("../../templates/nginx-marks.sh"),
        )
        .expect("the marks' shell functions hold no template syntax");
        // The parts of the built-in templates that most hosts share, each rendered once per
        // distinct inputs (`lbctl_part`).
        for part in Part::ALL {
            env.add_template_owned(part.name(), template::prepare(part.source()).into_owned())
                .expect("the built-in parts are valid templates");
        }
        let parts = Arc::new(Parts::default());
        env.add_function(
            "lbctl_part",
            move |state: &State, name: &str, lb: &Value| parts.render(state.env(), name, lb),
        );
        let mut origin = BTreeMap::new();
        let mut errors = Vec::new();
        for (service, builtin) in BUILTIN {
            let name = format!("{}.j2", service.file_name());
            // the first directory where the name exists at all: one that is not a regular
            // file (a directory, a named pipe, a link to nothing) is an error, not skipped for
            // the built-in template
            let user = override_dirs
                .iter()
                .map(|d| d.join(&name))
                .find(|p| p.symlink_metadata().is_ok());
            if let Some(path) = &user
                && !path.is_file()
            {
                errors.push(template_error(
                    &path.display().to_string(),
                    0,
                    format!("{name} is not a regular file (a directory, a named pipe, a device, or a link to nothing): a template override must be one"),
                ));
                continue;
            }
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
            let added = template::check_chains(&source).and_then(|()| {
                env.add_template_owned(name.clone(), template::prepare(&source).into_owned())
                    .map_err(|e| (e.line().unwrap_or(0), e))
            });
            if let Err((line, e)) = added {
                errors.push(template_error(&from, line, describe(&e)));
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
    /// and the UDP health watcher when UDP backends use the nginx engine (nginx's stream
    /// file goes where the watcher reads it; the watcher writes the one nginx loads).
    pub fn render(&self, spec: &HostSpec, run: &RunContext) -> Result<RenderedHost, Diagnostic> {
        let ctx = Value::from_object(HostContext {
            scope: Arc::clone(&spec.scope),
            ansible_managed: run.ansible_managed.clone(),
            lb: Value::from_object(HostView::new(spec)),
        });
        let mut files =
            vec![self.render_one(Service::Haproxy, spec.haproxy.config_path.clone(), &ctx)?];
        if let Some(k) = &spec.keepalived {
            files.push(self.render_one(Service::Keepalived, k.config_path.clone(), &ctx)?);
        }
        if let Some(w) = &spec.udp_health {
            files.push(self.render_one(Service::Nginx, w.source_path.clone(), &ctx)?);
            files.push(self.render_one(Service::UdpHealth, w.script_path.clone(), &ctx)?);
            if let Some(unit) = &w.unit_path {
                files.push(self.render_one(Service::UdpHealthUnit, unit.clone(), &ctx)?);
            }
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
        // A variable the template read that could not be evaluated is the error to show, at
        // the variable's line, rather than the undefined value the template then saw.
        // Lookups go through missing values, as in a variable's template (`facts.eth0 |
        // default('eth0')`).
        let source = template.source();
        let content = template::explain(|| {
            template::render_through_missing(source, || template::render_file(&template, ctx))
        })
        .map_err(|e| match *e {
            Ok(variable) => variable.diagnostic(),
            Err(e) => template_error(&from, e.line().unwrap_or(0), describe(&e)),
        })?;
        Ok(RenderedFile {
            service,
            path,
            content,
        })
    }
}

/// The texts of the parts rendered in this run, by what they read (the same on most hosts:
/// 20,000 load balancers sharing their backends render each part once instead of 20,000
/// times). A host needing a part another host is rendering waits for that text rather than
/// render it too. Bounded: past `PARTS_BYTES` of text (hosts that share nothing), it starts
/// over.
#[derive(Default)]
struct Parts {
    slots: Mutex<PartSlots>,
}

#[derive(Default)]
struct PartSlots {
    by_key: HashMap<PartKey, Arc<Mutex<Option<Value>>>>,
    bytes: usize,
}

const PARTS_BYTES: usize = 64 << 20;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Parts {
    /// `{{ lbctl_part(name, lb) }}`: the part `name` of lbctl's templates for the host `lb`.
    fn render(&self, env: &Environment, name: &str, lb: &Value) -> Result<Value, Error> {
        let part = Part::named(name).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("lbctl_part: lbctl has no template part `{name}`"),
            )
        })?;
        let host = lb.downcast_object_ref::<HostView>().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                "lbctl_part: the second argument must be `lb`",
            )
        })?;
        let render = || -> Result<Value, Error> {
            let text = env
                .get_template(part.name())?
                .render(minijinja::context! { lb => host.part_view(part) })?;
            Ok(Value::from(text))
        };
        let Some(key) = host.part_key(part) else {
            return render();
        };
        let slot = Arc::clone(lock(&self.slots).by_key.entry(key).or_default());
        let mut text = lock(&slot);
        if let Some(text) = &*text {
            return Ok(text.clone());
        }
        let rendered = render()?;
        *text = Some(rendered.clone());
        drop(text);
        let mut slots = lock(&self.slots);
        slots.bytes += rendered.as_str().map_or(0, str::len);
        if slots.bytes > PARTS_BYTES {
            *slots = PartSlots::default();
        }
        Ok(rendered)
    }
}

/// What a template sees: lbctl's typed view as `lb`, `ansible_managed`, and the host's scope:
/// every variable by its Ansible name (evaluated when read), `inventory_hostname`, `groups`,
/// `group_names` and `hostvars`. Variables are converted only when a template asks for them,
/// so built-in templates never pay for them.
#[derive(Debug)]
struct HostContext {
    scope: Arc<HostScope>,
    ansible_managed: Value,
    lb: Value,
}

/// What every host's templates share in one run: `ansible_managed`, and the templar the
/// hosts' scopes come from (kept alive for `hostvars` and `groups`).
pub struct RunContext {
    _templar: Arc<Templar>,
    ansible_managed: Value,
}

impl RunContext {
    pub fn new(templar: Arc<Templar>, ansible_managed: &str) -> Self {
        RunContext {
            _templar: templar,
            ansible_managed: Value::from(ansible_managed),
        }
    }
}

impl Object for HostContext {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "lb" => Some(self.lb.clone()),
            "ansible_managed" => Some(self.ansible_managed.clone()),
            name => self.scope.get_value_by_str(name),
        }
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let mut keys = vec![Value::from("lb"), Value::from("ansible_managed")];
        if let Enumerator::Values(vars) = self.scope.enumerate() {
            keys.extend(vars);
        }
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

/// `text` as one single-quoted shell word.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `text` as a `printf` format that writes exactly its bytes: letters and digits as they are,
/// every other byte as an octal escape (so no `%`, quote or backslash is left to interpret).
fn printf_escape(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("\\{b:03o}")
            }
        })
        .collect()
}

fn template_error(file: &str, line: usize, message: String) -> Diagnostic {
    Diagnostic::new(&Loc::new(&Arc::from(file), line), "", message)
        .hint("fix the template, or remove it to use lbctl's built-in one")
}

fn describe(e: &minijinja::Error) -> String {
    let mut text = match e.detail() {
        Some(detail) => format!("template error: {}: {detail}", e.kind()),
        None => format!("template error: {}", e.kind()),
    };
    if let Some(advice) = template::advice(e) {
        text.push_str("; ");
        text.push_str(advice);
    }
    text
}

/// The directories searched for template overrides: `--templates`, then `templates/` next to
/// the inventory.
/// `--templates DIR` must name a directory: a mistyped one would otherwise leave lbctl's
/// built-in templates in use without a word.
pub fn check_flag_dir(flag: Option<&Path>) -> Result<(), Vec<Diagnostic>> {
    match flag {
        Some(dir) if !dir.is_dir() => Err(vec![
            Diagnostic::new(
                &Loc::new(&Arc::from(dir.display().to_string()), 0),
                "--templates",
                if dir.exists() {
                    "is not a directory"
                } else {
                    "no such directory"
                },
            )
            .hint("give the directory holding your haproxy.cfg.j2 (or keepalived.conf.j2, nginx-stream.conf.j2), or leave --templates out to use lbctl's built-in templates"),
        ]),
        _ => Ok(()),
    }
}

pub fn override_dirs(flag: Option<&Path>, inventory_dir: &Path) -> Vec<PathBuf> {
    flag.map(Path::to_path_buf)
        .into_iter()
        .chain(std::iter::once(inventory_dir.join("templates")))
        .collect()
}
