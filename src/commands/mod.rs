//! One function per subcommand. Each takes validated settings and returns plain data or an
//! `Error`; printing and exit codes are decided in `main`.

pub mod apply;
pub mod failover_test;
pub mod plan;
pub mod render;
pub mod status;
pub mod validate;

use std::{collections::BTreeMap, path::PathBuf};

use crate::{
    error::Error,
    fleet::{Fleet, Input},
    inventory::Inventory,
    render::{RenderedHost, Templates, override_dirs},
    survey::SshOptions,
};

/// The options every command shares, after parsing.
#[derive(Debug, Clone)]
pub struct Global {
    pub inventory: PathBuf,
    pub extra_vars: Vec<String>,
    pub lb_group: String,
    pub project_dir: PathBuf,
    pub templates: Option<PathBuf>,
    pub json: bool,
    pub ssh: SshOptions,
}

/// The validated inputs: the inventory and the fleet built from it.
pub struct Loaded {
    pub inventory: Inventory,
    pub fleet: Fleet,
}

impl Global {
    pub fn load(&self) -> Result<Loaded, Error> {
        let input = Input {
            inventory: &self.inventory,
            project_dir: &self.project_dir,
            extra_vars: &self.extra_vars,
            lb_group: &self.lb_group,
        };
        let (inventory, fleet) = Fleet::load(&input)?;
        Ok(Loaded { inventory, fleet })
    }
}

impl Loaded {
    /// Renders every load balancer's files in memory; any template error fails the whole run
    /// before anything is written or pushed.
    pub fn render_all(&self, global: &Global) -> Result<Vec<RenderedHost>, Error> {
        let dirs = override_dirs(global.templates.as_deref(), &self.inventory.dir);
        let templates = Templates::load(&dirs)?;
        let groups: BTreeMap<String, Vec<String>> = self
            .inventory
            .groups
            .keys()
            .map(|g| (g.clone(), self.inventory.hosts_of(g)))
            .collect();
        // Hosts render independently; spread them over the cores.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = self.fleet.hosts.len().div_ceil(threads).max(1);
        let results: Vec<_> = std::thread::scope(|scope| {
            let workers: Vec<_> = self
                .fleet
                .hosts
                .chunks(chunk)
                .map(|hosts| {
                    let (templates, groups) = (&templates, &groups);
                    scope.spawn(move || {
                        hosts
                            .iter()
                            .map(|h| templates.render(h, groups))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("a render thread panicked"))
                .collect()
        });
        let mut out = Vec::with_capacity(results.len());
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok(r) => out.push(r),
                Err(d) => errors.push(d),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            errors.dedup();
            Err(Error::Invalid(errors))
        }
    }
}

/// The async runtime for commands that talk to hosts.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Failed(format!("cannot start the async runtime: {e}")))
}
