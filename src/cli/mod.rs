//! The command line: one function per subcommand, each doing its work, printing what users
//! read (text, progress, JSON) and returning the exit status.
//!
//! Takes the parsed arguments (`Global` and each command's options); returns an exit status.
//! `commands/` does the work and returns plain data, `output/` prints it (and every error),
//! `progress.rs` shows each host as it goes.

/// `println!`, `print!`, `eprintln!` and `eprint!` for the command line, which never panic: a
/// reader that went away (`lbctl plan | head`, a closed terminal) is not lbctl's error, and
/// must not cut an apply short. What cannot be written is dropped; the command goes on and
/// exits as it would have.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod commands;
mod error;
mod exit_status;
mod output;
mod progress;

use std::path::Path;

pub use commands::{
    Global, VaultOptions,
    admin::AdminOptions,
    apply::ApplyOptions,
    failover_test::{FailoverOptions, MethodArg, Victim},
};

pub use error::Error;
pub use exit_status::ExitStatus;

/// `lbctl validate`.
pub fn validate(global: &Global) -> ExitStatus {
    finish(
        global,
        commands::validate::run(global).map(|s| output::validated(global, &s)),
    )
}

/// `lbctl render`.
pub fn render(global: &Global, out: &Path) -> ExitStatus {
    finish(
        global,
        commands::render::run(global, out).map(|w| output::rendered(global, &w)),
    )
}

/// `lbctl plan`.
pub fn plan(global: &Global, detailed_exitcode: bool, out: Option<&Path>) -> ExitStatus {
    finish(
        global,
        commands::plan::run(global, out).map(|r| output::planned(global, &r, detailed_exitcode)),
    )
}

/// `lbctl apply FILE`: a saved plan, exactly, without asking.
pub fn apply_saved(global: &Global, file: &Path, serial: usize, confine_paths: bool) -> ExitStatus {
    if global.limit.is_some() || !global.extra_vars.is_empty() {
        return finish(global, Err(Error::PlanFileWithInputs));
    }
    finish(
        global,
        commands::apply::run_saved(global, file, serial, confine_paths)
            .map(|r| output::applied(global, &r)),
    )
}

/// `lbctl apply`: the plan is shown, and confirmed unless `--yes`, before any host changes.
pub fn apply(global: &Global, options: &ApplyOptions) -> ExitStatus {
    let confirm = |plan: &crate::deploy::Report| {
        if !global.json {
            output::plan_text(plan);
        }
        options.yes || output::confirm(plan.summary.changed + plan.runtime.drift.len())
    };
    finish(
        global,
        commands::apply::run(global, options, confirm).map(|r| output::applied(global, &r)),
    )
}

/// `lbctl status`.
pub fn status(global: &Global) -> ExitStatus {
    finish(
        global,
        commands::status::run(global).map(|s| output::status::print(global, &s)),
    )
}

/// `lbctl drain|maint|ready|weight`: exit 1 when a load balancer was not changed as asked,
/// 3 when `drain --wait` ran out of time.
pub fn admin(global: &Global, options: &AdminOptions) -> ExitStatus {
    let waiting = match options.wait {
        Some(_) => output::admin::Waiting::new(global, &options.worker),
        None => output::admin::Waiting::Quiet,
    };
    let outcome = commands::admin::run(global, options, &waiting);
    waiting.finish();
    finish(global, outcome.map(|o| output::admin::print(global, &o)))
}

/// `lbctl failover-test`.
pub fn failover_test(global: &Global, options: &FailoverOptions) -> ExitStatus {
    finish(
        global,
        commands::failover_test::run(global, options).and_then(|r| {
            if let Some(path) = &options.report {
                let html = output::report_html::render(r.timeline());
                crate::source::replace_file(path, html.as_bytes(), 0o644).map_err(|source| {
                    Error::Write {
                        path: path.clone(),
                        source,
                    }
                })?;
                if !global.json {
                    errln!("lbctl: wrote the drill's timeline to {}", path.display());
                }
            }
            Ok(output::failover::print(global, &r))
        }),
    )
}

/// `lbctl man`: `lbctl` is the clap definition the page describes.
pub fn man_page(global: &Global, lbctl: &clap::Command) -> ExitStatus {
    finish(
        global,
        commands::manual::man_page(lbctl, &mut std::io::stdout()).map(|()| ExitStatus::Success),
    )
}

/// `lbctl completions SHELL`.
pub fn completions(
    global: &Global,
    lbctl: &mut clap::Command,
    shell: clap_complete::Shell,
) -> ExitStatus {
    finish(
        global,
        commands::manual::completions(lbctl, shell, &mut std::io::stdout())
            .map(|()| ExitStatus::Success),
    )
}

/// `lbctl ssh-dial`, run by ssh as its `ProxyCommand`: connects, and hands ssh the
/// connection over its standard output; else says why as ssh would (`ssh: connect to host
/// ...`), on standard error and in the master's log.
pub fn ssh_dial(dial: &crate::ssh::Dial) -> ExitStatus {
    match crate::ssh::dial_for_ssh(dial) {
        Ok(()) => ExitStatus::Success,
        Err(error) => {
            let line = format!("ssh: {error}");
            eprintln!("{line}");
            crate::ssh::add_to_log(&line);
            ExitStatus::Failed
        }
    }
}

/// The exit status of a command, its error printed.
fn finish(global: &Global, result: Result<ExitStatus, Error>) -> ExitStatus {
    result.unwrap_or_else(|e| {
        output::error(global, &e);
        ExitStatus::Failed
    })
}
