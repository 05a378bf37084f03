//! One function per subcommand. Each takes validated settings and returns plain data or an
//! `Error`; printing and exit codes are decided by the caller (`cli`'s own functions).

pub(super) mod admin;
pub(super) mod apply;
pub(super) mod failover_test;
pub(super) mod manual;
pub(super) mod plan;
pub(super) mod render;
pub(super) mod status;
pub(super) mod validate;

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
};

use crate::{
    cli::Error,
    deploy::SshOptions,
    input::AnsibleCfg,
    input::Inventory,
    input::Keyring,
    input::Limit,
    input::Templar,
    input::template,
    render::{RenderedHost, RunContext, Templates, check_flag_dir, override_dirs},
    source::clip,
    spec::{Fleet, HostSpec, Input},
};

/// The options every command shares, after parsing.
#[derive(Debug, Clone)]
pub struct Global {
    /// `-i` sources; none: `ansible.cfg`'s `inventory`, else `./inventory`.
    pub inventory: Vec<PathBuf>,
    pub vault: VaultOptions,
    pub extra_vars: Vec<String>,
    pub lb_group: String,
    pub project_dir: PathBuf,
    pub templates: Option<PathBuf>,
    pub json: bool,
    pub ssh: SshOptions,
    /// `--limit`: the load balancers to work on, as an Ansible host pattern.
    pub limit: Option<String>,
}

/// Where vault passwords come from, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct VaultOptions {
    pub password_files: Vec<PathBuf>,
    pub ids: Vec<String>,
    pub ask: bool,
}

/// The validated inputs: the inventory, the other variable sources, the fleet built from
/// them, and the `ansible.cfg` in force.
pub struct Loaded {
    pub inventory: Arc<Inventory>,
    /// Every host's variables, evaluated when read (for templates and the other hosts).
    pub templar: Arc<Templar>,
    /// The load balancers to work on: all of them, or those `--limit` selects.
    pub fleet: Fleet,
    /// The load balancers `--limit` left out, validated like the others.
    pub outside: Vec<HostSpec>,
    pub cfg: AnsibleCfg,
}

impl Global {
    pub fn load(&self) -> Result<Loaded, Error> {
        let cfg = AnsibleCfg::load()?;
        for w in &cfg.warnings {
            errln!("warning: {}", clip(w.clone()));
        }
        let inventory = if !self.inventory.is_empty() {
            self.inventory.clone()
        } else {
            let configured = cfg.inventory();
            if configured.is_empty() {
                vec![PathBuf::from("inventory")]
            } else {
                configured
            }
        };
        let ids = cfg.vault_ids(&self.vault.ids, &self.vault.password_files, self.vault.ask);
        let input = Input {
            inventory: &inventory,
            project_dir: &self.project_dir,
            extra_vars: &self.extra_vars,
            lb_group: &self.lb_group,
            keyring: Arc::new(Keyring::new(ids)),
            config: cfg.connection_vars(),
            templates: self.templates.as_deref(),
        };
        let (templar, mut fleet) = Fleet::load(&input)?;
        let inventory = Arc::clone(templar.inventory());
        crate::cli::progress::warnings(&inventory.warnings);
        let outside = match &self.limit {
            Some(pattern) => limit_fleet(&mut fleet, &inventory, pattern, &self.lb_group)?,
            None => Vec::new(),
        };
        Ok(Loaded {
            inventory,
            templar,
            fleet,
            outside,
            cfg,
        })
    }
}

/// Keeps in `fleet` the load balancers `--limit pattern` selects; returns the others.
fn limit_fleet(
    fleet: &mut Fleet,
    inventory: &Inventory,
    pattern: &str,
    lb_group: &str,
) -> Result<Vec<HostSpec>, Error> {
    let selection = Limit::parse(pattern).and_then(|limit| limit.select(inventory))?;
    // One line per term, as Ansible warns, up to a screenful: a pattern file of thousands of
    // stale names says how many more there were.
    const SHOWN: usize = 20;
    for term in selection.unmatched.iter().take(SHOWN) {
        errln!(
            "warning: --limit: could not match supplied host pattern, ignoring: {}",
            crate::source::escape_control(term)
        );
    }
    let more = selection.unmatched.len().saturating_sub(SHOWN);
    if more > 0 {
        errln!("warning: --limit: {more} more host patterns matched nothing and are ignored");
    }
    let all: Vec<String> = fleet.hosts.iter().map(|h| h.name.clone()).collect();
    let selected: std::collections::HashSet<&str> =
        selection.hosts.iter().map(String::as_str).collect();
    let (kept, left): (Vec<HostSpec>, Vec<HostSpec>) = std::mem::take(&mut fleet.hosts)
        .into_iter()
        .partition(|h| selected.contains(h.name.as_str()));
    if kept.is_empty() {
        return Err(Error::LimitSelectsNone {
            pattern: pattern.to_string(),
            all,
            lb_group: lb_group.to_string(),
            matched: selection.hosts,
        });
    }
    fleet.hosts = kept;
    fleet.vip_hosts_left_out = left
        .iter()
        .filter(|h| h.keepalived.is_some())
        .map(|h| h.name.clone())
        .collect();
    Ok(left)
}

impl Loaded {
    /// Renders every load balancer's files in memory, in the fleet's order; any template error
    /// fails the whole run before anything is written or pushed.
    pub fn render_all(&self, global: &Global) -> Result<Vec<RenderedHost>, Error> {
        let mut out: Vec<Option<RenderedHost>> = Vec::new();
        out.resize_with(self.fleet.hosts.len(), || None);
        self.render_each(global, |index, host| {
            out[index] = Some(host);
            Ok(())
        })?;
        Ok(out.into_iter().flatten().collect())
    }

    /// Renders every load balancer's files and hands each host to `done` (with its index in
    /// the fleet) as soon as it is rendered, so a caller that writes them out need not hold
    /// every host's output at once. Template errors are reported for every host together,
    /// after the others were handed over; an error from `done` is returned once all hosts
    /// are rendered.
    pub fn render_each(
        &self,
        global: &Global,
        mut done: impl FnMut(usize, RenderedHost) -> Result<(), Error>,
    ) -> Result<(), Error> {
        check_flag_dir(global.templates.as_deref())?;
        let dirs = override_dirs(global.templates.as_deref(), &self.inventory.dir);
        let templates = Templates::load(&dirs)?;
        let run = RunContext::new(Arc::clone(&self.templar), &self.cfg.ansible_managed());
        let hosts = &self.fleet.hosts;
        // Hosts render independently and take about as long as each other. Twice as many
        // threads as cores keep every core busy to the end when the hosts do not divide evenly
        // (3 hosts on 2 cores take 1.5 host-times instead of 2). The channel holds a few outputs
        // per thread: past them a thread waits for the caller, so a caller that falls behind
        // (descheduled, or writing files) does not gather every host's output in memory
        // (20,000 load balancers: up to 90 MiB more at the peak).
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = hosts.len().min(2 * cores).max(1);
        let next = AtomicUsize::new(0);
        let mut errors = Vec::new();
        let mut failed = None;
        std::thread::scope(|scope| {
            let (send, receive) = mpsc::sync_channel(8 * threads);
            for _ in 0..threads {
                let (templates, run, next, send) = (&templates, &run, &next, send.clone());
                // A deep stack: a template may free a deeply nested value (input::template).
                template::spawn_scoped(scope, move || {
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(host) = hosts.get(index) else { break };
                        if send.send((index, templates.render(host, run))).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(send);
            for (index, rendered) in receive {
                match rendered {
                    Ok(host) if failed.is_none() => {
                        if let Err(e) = done(index, host) {
                            failed = Some(e);
                        }
                    }
                    Ok(_) => {}
                    Err(d) => errors.push((index, d)),
                }
            }
        });
        if !errors.is_empty() {
            errors.sort_by_key(|(index, _)| *index);
            let mut errors: Vec<_> = errors.into_iter().map(|(_, d)| d).collect();
            errors.dedup();
            return Err(Error::Invalid(errors));
        }
        failed.map_or(Ok(()), Err)
    }
}

/// The async runtime for commands that talk to hosts.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}
