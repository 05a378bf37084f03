use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{ArgGroup, Args, CommandFactory, Parser, Subcommand};
use lbctl::{
    cli::{self, AdminOptions, ApplyOptions, FailoverOptions, Global, MethodArg, Victim},
    deploy::SshOptions,
    remote::{AdminState, Setting},
    ssh::{Dial, Family, Persist},
};

/// lbctl: render, validate and deploy an HAProxy + keepalived load-balancer tier from an
/// Ansible inventory.
///
/// lbctl reads an Ansible inventory and its `haproxy_tcp_backends` / `haproxy_udp_backends`
/// vars, validates them, renders HAProxy, keepalived and nginx configurations for every load
/// balancer, and pushes and reloads them over SSH atomically: every host checks its new files
/// before any host changes, then the hosts switch one at a time, the VIP holder last.
/// `failover-test` proves that the tier fails over.
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
    /// Inventory file or directory (Ansible INI or YAML, with group_vars/ and host_vars/);
    /// repeatable [default: ansible.cfg's inventory, else ./inventory].
    #[arg(short = 'i', long, global = true)]
    inventory: Vec<PathBuf>,
    /// Vault password file, or an executable printing the password; repeatable.
    #[arg(long, visible_alias = "vault-pass-file", global = true)]
    vault_password_file: Vec<PathBuf>,
    /// Vault id: LABEL@FILE, LABEL@prompt or FILE; repeatable.
    #[arg(long, global = true)]
    vault_id: Vec<String>,
    /// Ask for the vault password on the terminal.
    #[arg(short = 'J', long, global = true)]
    ask_vault_pass: bool,
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
    /// Work only on the load balancers this Ansible host pattern selects: `lb1`, `lb[1:2]`,
    /// a group, `all:!lb3`, `lb1,lb2`, `haproxy_servers:&eu`, `~regex`, `@FILE`.
    #[arg(short = 'l', long, global = true, value_name = "PATTERN")]
    limit: Option<String>,
    /// How many SSH connections to open at once (commands over open connections are not
    /// limited).
    #[arg(long, global = true, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..))]
    forks: u16,
    /// Seconds to wait for a host's SSH connection before calling it unreachable (at most
    /// 2147483647, OpenSSH's own limit).
    #[arg(long, global = true, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=SSH_MAX_SECONDS))]
    connect_timeout: u64,
    /// Seconds an SSH connection stays open after a run, for the next run to reuse (like
    /// Ansible's ControlPersist); 0 closes connections when lbctl exits; at most 2147483647.
    #[arg(long, global = true, env = "LBCTL_SSH_PERSIST", default_value_t = 60, value_parser = clap::value_parser!(u64).range(..=SSH_MAX_SECONDS))]
    ssh_persist: u64,
    /// Private directory for the persisting connections' control sockets
    /// [default: $XDG_RUNTIME_DIR/lbctl-ssh, else ~/.local/state/lbctl/ssh]: a new directory
    /// (lbctl creates it) or one of mode 0700.
    #[arg(long, global = true, env = "LBCTL_SSH_CONTROL_DIR", value_parser = control_dir)]
    ssh_control_dir: Option<PathBuf>,
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
    /// Show what would change on each load balancer, as a diff against what is deployed.
    Plan {
        /// Exit 2 when there are changes (0: none, 1: error), as terraform does.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Also save the plan to FILE (mode 0600: it holds the rendered files and their
        /// secrets), for `lbctl apply FILE`.
        #[arg(long, value_name = "FILE", value_parser = output_file)]
        out: Option<PathBuf>,
    },
    /// Deploy: per host stage, check on the host, swap, reload, verify, roll back on failure.
    Apply {
        /// Do not ask for confirmation (required without a terminal, e.g. in CI).
        #[arg(long)]
        yes: bool,
        /// How many hosts to change at once; VIP holders always go alone, last. Every host's
        /// new files are checked on it before any host changes.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        serial: u16,
        /// A plan saved by `lbctl plan --out`: apply exactly that, without reading the
        /// inventory or asking; refused, changing nothing, if any host changed since.
        #[arg(value_name = "PLAN")]
        plan: Option<PathBuf>,
        /// Let the saved plan's files lie outside their services' usual directories, for a
        /// plan of an inventory that sets `lbctl_confine_paths: false` (the plan file cannot
        /// say so itself).
        #[arg(long, requires = "plan")]
        no_confine_paths: bool,
    },
    /// Every load balancer: does it hold the VIP, do its daemons run, and its servers as
    /// HAProxy sees them; exit status 1 when a host does not answer, a VIP has no holder or
    /// more than one, or a daemon does not run.
    Status,
    /// Take a worker out of new traffic on every load balancer, keeping its connections
    /// (HAProxy `drain`, no reload; UDP through nginx: marked `down`, nginx reloaded).
    Drain {
        #[command(flatten)]
        target: AdminTarget,
        /// Take the last server taking traffic of a backend out all the same.
        #[arg(long)]
        force: bool,
        /// Then wait until no load balancer has a session to the worker: exit 0 when none
        /// is left, 3 when --timeout passes first.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits (e.g. 10m, 90s).
        #[arg(long, default_value = "10m", value_parser = duration, requires = "wait")]
        timeout: Duration,
    },
    /// Take a worker out entirely on every load balancer: no traffic, no health checks
    /// (HAProxy `maint`; UDP through nginx: `down`).
    Maint {
        #[command(flatten)]
        target: AdminTarget,
        /// Take the last server taking traffic of a backend out all the same.
        #[arg(long)]
        force: bool,
    },
    /// Put a drained or maintained worker back into service on every load balancer.
    Ready {
        #[command(flatten)]
        target: AdminTarget,
    },
    /// Set a worker's weight on every load balancer, without a reload for HAProxy.
    #[command(group(ArgGroup::new("how").required(true).args(["weight", "reset"])))]
    Weight {
        #[command(flatten)]
        target: AdminTarget,
        /// The weight, 0-256 (0: no new traffic, as a drain).
        // i64, negative numbers allowed: `--weight -1` is refused as out of range, not taken
        // for an unknown flag
        #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..=256))]
        weight: Option<i64>,
        /// Back to the weight in the configuration.
        #[arg(long)]
        reset: bool,
        /// Set a weight of 0 on the last server taking traffic of a backend all the same.
        #[arg(long)]
        force: bool,
    },
    /// Break a worker's NodePorts (or stop the VIP holder) on purpose, measure how the tier
    /// copes, and put it back; exit 3 when it missed its budget.
    #[command(group(ArgGroup::new("victim").required(true).args(["worker", "lb"])))]
    FailoverTest {
        /// Inventory host (outside the load-balancer group) whose NodePorts break.
        #[arg(long)]
        worker: Option<String>,
        /// Load balancer whose keepalived (or HAProxy) stops.
        #[arg(long)]
        lb: Option<String>,
        /// Backend to break the worker in, TCP or health-checked UDP; repeatable (default:
        /// every one it serves).
        #[arg(long = "backend")]
        backends: Vec<String>,
        /// How to break it: drop or reject (--worker, default drop), stop-keepalived or
        /// stop-haproxy (--lb, default stop-keepalived).
        #[arg(long, value_enum)]
        method: Option<MethodArg>,
        /// How long the fault stays, at least (e.g. 30s, 500ms; at most 1h).
        #[arg(long, default_value = "30s", value_parser = hold)]
        hold: Duration,
        /// Inventory host to probe the VIP from, over SSH (default: where lbctl runs).
        #[arg(long)]
        probe_from: Option<String>,
        /// New probe connections (or datagrams, each a new flow) per second.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        probe_rate: u32,
        /// Failed probe connections a worker test tolerates before it fails (datagrams lost
        /// before the load balancers noticed a broken UDP server are not counted).
        #[arg(long, default_value_t = 0)]
        max_failed: u64,
        /// Break the last UP server of a backend, or a load balancer without the VIP.
        #[arg(long)]
        force: bool,
        /// Also draw the drill as one self-contained HTML page (timeline of every probe
        /// connection, the fault, each load balancer's marks against their budgets).
        #[arg(long, value_name = "FILE.html", value_parser = output_file)]
        report: Option<PathBuf>,
    },
    /// Print a shell completion script (install it as the README says).
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print lbctl's manual page (roff, every subcommand), e.g. `lbctl man | man -l -`.
    Man,
}

/// The worker a day-2 command acts on.
#[derive(Debug, Args)]
struct AdminTarget {
    /// Inventory host whose servers change: those whose address is its ansible_host or name.
    #[arg(long)]
    worker: String,
    /// Only this backend (TCP, HTTP or UDP); repeatable (default: every one it is in).
    #[arg(long = "backend")]
    backends: Vec<String>,
    /// Why, kept in lbctl's record on each load balancer and shown by status and plan: one
    /// line of text, at most 500 characters.
    #[arg(long, value_parser = reason)]
    reason: Option<String>,
}

impl AdminTarget {
    fn options(self, setting: Setting, force: bool, wait: Option<Duration>) -> AdminOptions {
        AdminOptions {
            worker: self.worker,
            backends: self.backends,
            setting,
            force,
            reason: self.reason,
            wait,
        }
    }
}

/// `lbctl ssh-dial HOST PORT ...`: what ssh runs as the `ProxyCommand` of the connections
/// lbctl dials for it (`lbctl::ssh::Dial`). lbctl's own plumbing, not a command for users: it
/// is not among the subcommands, their help, completions or manual page.
#[derive(Debug, Parser)]
#[command(name = "lbctl ssh-dial")]
struct SshDialArgs {
    host: String,
    port: u16,
    #[arg(long, value_parser = family)]
    family: Family,
    #[arg(long, default_value_t = 1)]
    attempts: u32,
    /// Seconds; none waits as long as the kernel does.
    #[arg(long)]
    timeout: Option<u64>,
    #[arg(long)]
    no_keepalive: bool,
}

fn ssh_dial(args: impl Iterator<Item = std::ffi::OsString>) -> ExitCode {
    let args =
        match SshDialArgs::try_parse_from(std::iter::once("lbctl ssh-dial".into()).chain(args)) {
            Ok(args) => args,
            Err(e) => {
                let _ = e.print();
                return ExitCode::from(u8::from(e.use_stderr()));
            }
        };
    ExitCode::from(cli::ssh_dial(&Dial {
        host: args.host,
        port: args.port,
        family: args.family,
        timeout: args.timeout,
        attempts: args.attempts,
        keepalive: !args.no_keepalive,
    }))
}

fn family(text: &str) -> Result<Family, String> {
    Family::parse(text).ok_or_else(|| format!("`{text}` is not any, inet or inet6"))
}

/// The most seconds OpenSSH takes for `ConnectTimeout` and `ControlPersist` (a C `int`); past
/// it ssh refused every connection, and a connect timeout near `u64::MAX` overflowed lbctl's
/// own deadline (a panic).
const SSH_MAX_SECONDS: u64 = i32::MAX as u64;

/// The longest `--hold`: the probe records every connection it makes (up to 1000 a second),
/// and a hold of `u64::MAX` milliseconds overflowed the probe's deadline (a panic).
const MAX_HOLD: Duration = Duration::from_secs(3600);

fn hold(text: &str) -> Result<Duration, String> {
    let hold = duration(text)?;
    if hold > MAX_HOLD {
        return Err(format!("`{text}` is longer than 1h, the longest hold"));
    }
    Ok(hold)
}

/// `--ssh-control-dir`: refused when others may enter it (lbctl changes no directory's mode).
fn control_dir(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    lbctl::ssh::check_masters_directory(&path).map_err(|e| e.to_string())?;
    Ok(path)
}

/// A file lbctl is to write (`plan --out`, `failover-test --report`), checked before any host
/// is touched.
fn output_file(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    lbctl::source::check_output_file(&path).map_err(|e| e.to_string())?;
    Ok(path)
}

fn duration(text: &str) -> Result<Duration, String> {
    lbctl::source::parse_duration(text)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{text}` is not a duration such as 30s or 500ms"))
}

/// A `--reason`: shown to whoever runs `status` or `plan` later, so it carries no control
/// character (a newline, a terminal's escape sequence) and stays one line.
fn reason(text: &str) -> Result<String, String> {
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(format!(
            "it holds the control character {:?}; write one line of plain text",
            c
        ));
    }
    if text.chars().count() > 500 {
        return Err("it is longer than 500 characters; say why in a line".into());
    }
    Ok(text.to_string())
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|first| first == "ssh-dial") {
        return ssh_dial(args);
    }
    // On a thread with a deep stack: templates evaluated here may free deeply nested values.
    lbctl::input::template::with_deep_stack(run)
}

/// The options an environment variable may set instead of the command line.
const FROM_ENVIRONMENT: &[(&str, &str)] = &[
    ("--ssh-persist", "LBCTL_SSH_PERSIST"),
    ("--ssh-control-dir", "LBCTL_SSH_CONTROL_DIR"),
];

/// clap's message for a bad value, naming the environment variable that gave it where the
/// command line did not: clap names the option, which the user may never have written.
fn from_environment(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let (flag, var) = FROM_ENVIRONMENT
        .iter()
        .find(|(flag, _)| arg.split(' ').next() == Some(*flag))?;
    let on_command_line = std::env::args_os().skip(1).any(|a| {
        a.to_str()
            .is_some_and(|a| a == *flag || a.strip_prefix(flag).is_some_and(|r| r.starts_with('=')))
    });
    if on_command_line || std::env::var_os(var).is_none() {
        return None;
    }
    let shown = format!("'{arg}'");
    let message = e.render().to_string();
    message.contains(&shown).then(|| {
        message.replacen(
            &shown,
            &format!("the environment variable {var} (which sets {flag})"),
            1,
        )
    })
}

fn run() -> ExitCode {
    // Invalid arguments exit 1 like any invalid input (clap's own default is 2, which lbctl
    // keeps for `plan --detailed-exitcode`); help and version exit 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            match from_environment(&e) {
                Some(message) => eprint!("{message}"),
                None => {
                    let _ = e.print();
                }
            }
            return ExitCode::from(u8::from(e.use_stderr()));
        }
    };
    let g = cli.global;
    let global = Global {
        inventory: g.inventory,
        vault: cli::VaultOptions {
            password_files: g.vault_password_file,
            ids: g.vault_id,
            ask: g.ask_vault_pass,
        },
        extra_vars: g.extra_vars,
        lb_group: g.lb_group,
        project_dir: g.project_dir,
        templates: g.templates,
        json: g.json,
        limit: g.limit,
        ssh: SshOptions {
            forks: usize::from(g.forks),
            connect_timeout: Duration::from_secs(g.connect_timeout),
            persist: (g.ssh_persist > 0).then(|| Persist {
                idle: Duration::from_secs(g.ssh_persist),
                directory: g
                    .ssh_control_dir
                    .unwrap_or_else(lbctl::ssh::default_masters_directory),
            }),
        },
    };
    if let Ok(exe) = std::env::current_exe() {
        lbctl::ssh::dial_through(exe);
    }
    let status = match cli.command {
        Command::Completions { shell } => cli::completions(&global, &mut Cli::command(), shell),
        Command::Man => cli::man_page(&global, &Cli::command()),
        Command::Validate => cli::validate(&global),
        Command::Render { out } => cli::render(&global, &out),
        Command::Plan {
            detailed_exitcode,
            out,
        } => cli::plan(&global, detailed_exitcode, out.as_deref()),
        Command::Apply {
            serial,
            plan: Some(plan),
            no_confine_paths,
            ..
        } => cli::apply_saved(&global, &plan, usize::from(serial), !no_confine_paths),
        Command::Apply { yes, serial, .. } => {
            let options = ApplyOptions {
                yes,
                serial: usize::from(serial),
            };
            cli::apply(&global, &options)
        }
        Command::Status => cli::status(&global),
        Command::Drain {
            target,
            force,
            wait,
            timeout,
        } => cli::admin(
            &global,
            &target.options(
                Setting::State(AdminState::Drain),
                force,
                wait.then_some(timeout),
            ),
        ),
        Command::Maint { target, force } => cli::admin(
            &global,
            &target.options(Setting::State(AdminState::Maint), force, None),
        ),
        Command::Ready { target } => cli::admin(
            &global,
            &target.options(Setting::State(AdminState::Ready), false, None),
        ),
        Command::Weight {
            target,
            weight,
            reset,
            force,
        } => {
            let weight = weight.and_then(|w| u32::try_from(w).ok());
            let setting = Setting::Weight(if reset { None } else { weight });
            cli::admin(&global, &target.options(setting, force, None))
        }
        Command::FailoverTest {
            worker,
            lb,
            backends,
            method,
            hold,
            probe_from,
            probe_rate,
            max_failed,
            force,
            report,
        } => {
            let victim = match (worker, lb) {
                (Some(w), _) => Victim::Worker(w),
                (None, lb) => Victim::Lb(lb.unwrap_or_default()),
            };
            let options = FailoverOptions {
                victim,
                backends,
                method,
                hold,
                probe_from,
                probe_rate,
                max_failed,
                force,
                report,
            };
            cli::failover_test(&global, &options)
        }
    };
    ExitCode::from(status)
}
