use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand};
use lbctl::{
    commands::{self, Global},
    error::Error,
    output,
};

/// lbctl: render, validate and deploy an HAProxy + keepalived load-balancer tier from an
/// Ansible inventory.
#[derive(Debug, Parser)]
#[command(name = "lbctl", version)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct GlobalArgs {
    /// Inventory file or directory (Ansible INI or YAML, with group_vars/ and host_vars/).
    #[arg(short = 'i', long, global = true, default_value = "inventory")]
    inventory: PathBuf,
    /// Extra vars, highest precedence: `@file.yaml`, `key=value` or inline YAML/JSON. Repeatable.
    #[arg(short = 'e', long = "extra-vars", global = true)]
    extra_vars: Vec<String>,
    /// Inventory group holding the load balancers.
    #[arg(long, global = true, default_value = "haproxy_servers")]
    lb_group: String,
    /// Directory holding roles/haproxy/defaults/main.yaml.
    #[arg(long, global = true, default_value = ".")]
    project_dir: PathBuf,
    /// Directory of template overrides (haproxy.cfg.j2, keepalived.conf.j2, nginx-stream.conf.j2).
    #[arg(long, global = true)]
    templates: Option<PathBuf>,
    /// Machine-readable output on stdout.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the inventory, vars and templates; exit 1 listing every problem.
    Validate,
    /// Write every load balancer's config files to DIR/<host>/.
    Render {
        #[arg(short = 'o', long, default_value = "rendered")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let g = cli.global;
    let global = Global {
        inventory: g.inventory,
        extra_vars: g.extra_vars,
        lb_group: g.lb_group,
        project_dir: g.project_dir,
        templates: g.templates,
        json: g.json,
    };
    let result: Result<u8, Error> = match cli.command {
        Command::Validate => {
            commands::validate::run(&global).map(|s| output::validated(&global, &s))
        }
        Command::Render { out } => {
            commands::render::run(&global, &out).map(|w| output::rendered(&global, &w))
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            output::error(&global, &e);
            ExitCode::from(1)
        }
    }
}
