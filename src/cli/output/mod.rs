//! What users read: plain text on a terminal or in CI logs, or JSON with `--json`.

pub(super) mod failover;
pub(super) mod report_html;
pub(super) mod status;

use std::io::{BufRead, IsTerminal, Write};

use serde::Serialize;

use crate::{
    cli::Error,
    cli::ExitStatus,
    cli::commands::{Global, render::Written, validate::Summary},
    deploy::Action,
    deploy::{Outcome, Report},
};

fn json<T: Serialize>(value: &T) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, value);
    let _ = writeln!(out);
}

pub fn validated(global: &Global, s: &Summary) -> ExitStatus {
    if global.json {
        json(s);
    } else {
        let http = match s.http_backends {
            0 => String::new(),
            n => format!(", {n} HTTP"),
        };
        // A fleet of thousands is summed up, not listed.
        const LISTED: usize = 10;
        let mut names = s.hosts[..s.hosts.len().min(LISTED)].join(", ");
        if s.hosts.len() > LISTED {
            names.push_str(&format!(" and {} more", s.hosts.len() - LISTED));
        }
        println!(
            "valid: {} load balancer{} ({names}), {} TCP{http} and {} UDP backend{}",
            s.hosts.len(),
            plural(s.hosts.len()),
            s.tcp_backends,
            s.udp_backends,
            plural(s.udp_backends)
        );
    }
    ExitStatus::Success
}

pub fn rendered(global: &Global, written: &[Written]) -> ExitStatus {
    if global.json {
        json(&serde_json::json!({ "hosts": written }));
    } else {
        for host in written {
            for f in &host.files {
                println!(
                    "{}: wrote {} (for {})",
                    host.host,
                    f.written.display(),
                    f.remote_path
                );
            }
        }
    }
    ExitStatus::Success
}

/// Prints an error: every diagnostic with its hint, then a summary line.
pub fn error(global: &Global, e: &Error) {
    if global.json {
        let diagnostics = e.diagnostics();
        json(&serde_json::json!({
            "error": e.to_string(),
            "hint": e.hint(),
            "diagnostics": diagnostics,
        }));
        return;
    }
    let mut err = std::io::stderr().lock();
    for d in e.diagnostics() {
        let _ = writeln!(err, "error: {d}");
    }
    let _ = writeln!(err, "error: {e}");
    if let Some(h) = e.hint() {
        let _ = writeln!(err, "  hint: {h}");
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A plan as people read it: a coloured unified diff per host and file, then a summary.
pub fn plan_text(report: &Report) {
    let color = std::io::stdout().is_terminal();
    let mut out = std::io::stdout().lock();
    for h in &report.hosts {
        let vip = if h.holds_vip { " (holds the VIP)" } else { "" };
        match h.outcome {
            Outcome::Unreachable => {
                let e = h
                    .error
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                let _ = writeln!(out, "{}{vip}: unreachable: {e}", h.host);
            }
            _ if !h.changed => {
                let _ = writeln!(out, "{}{vip}: no changes", h.host);
            }
            _ => {
                let n = h
                    .files
                    .iter()
                    .filter(|f| f.action != Action::Unchanged)
                    .count();
                let _ = writeln!(out, "{}{vip}: {n} file{} to change", h.host, plural(n));
                for f in h.files.iter().filter(|f| f.action != Action::Unchanged) {
                    for line in f.diff.lines() {
                        let _ = writeln!(out, "{}", paint(line, color));
                    }
                }
            }
        }
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "Plan: {} to change, {} unchanged{}.",
        s.changed,
        s.unchanged,
        if s.unreachable > 0 {
            format!(", {} unreachable", s.unreachable)
        } else {
            String::new()
        }
    );
}

fn paint(line: &str, color: bool) -> String {
    if !color {
        return line.to_string();
    }
    let code = if line.starts_with("+++") || line.starts_with("---") {
        "1"
    } else if line.starts_with('+') {
        "32"
    } else if line.starts_with('-') {
        "31"
    } else if line.starts_with("@@") {
        "36"
    } else {
        return line.to_string();
    };
    format!("\x1b[{code}m{line}\x1b[0m")
}

/// `plan`: 0 no changes, 2 changes with `--detailed-exitcode`, 1 when a host could not be read.
pub fn planned(global: &Global, report: &Report, detailed_exitcode: bool) -> ExitStatus {
    if global.json {
        json(report);
    } else {
        plan_text(report);
    }
    if let Some(file) = &report.plan_file
        && !global.json
    {
        println!(
            "Saved this plan to {file} (mode 0600: it holds the rendered files, secrets included). Apply exactly this plan with `lbctl apply {file}`."
        );
    }
    if report.has_errors() {
        if !global.json {
            eprintln!(
                "error: {} host{} could not be surveyed",
                report.summary.unreachable,
                plural(report.summary.unreachable)
            );
        }
        ExitStatus::Failed
    } else if detailed_exitcode && report.summary.changed > 0 {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    }
}

/// `apply`: what happened on each host; 1 when any host failed.
pub fn applied(global: &Global, report: &Report) -> ExitStatus {
    if global.json {
        json(report);
        return ExitStatus::failed_if(report.has_errors());
    }
    if report.summary.changed == 0 && !report.has_errors() {
        println!(
            "No changes: {} host{} up to date; nothing was written or reloaded.",
            report.summary.unchanged,
            plural(report.summary.unchanged)
        );
        return ExitStatus::Success;
    }
    for h in &report.hosts {
        let files: Vec<&str> = h
            .files
            .iter()
            .filter(|f| f.action != Action::Unchanged)
            .map(|f| f.path.as_str())
            .collect();
        match h.outcome {
            Outcome::Applied => println!(
                "{}: applied {} in {:.2} s",
                h.host,
                files.join(", "),
                h.seconds.unwrap_or_default()
            ),
            Outcome::Unchanged => println!("{}: unchanged (not reloaded)", h.host),
            Outcome::Skipped => println!(
                "{}: not changed (another host failed; this one keeps its configuration)",
                h.host
            ),
            Outcome::Failed => {
                if let Some(f) = &h.failure {
                    eprintln!("error: {}: {f}", h.host);
                }
                if let Some(e) = &h.error {
                    eprintln!("error: {e}");
                }
                if h.rolled_back {
                    eprintln!(
                        "  {}: rolled back; the previous configuration is serving",
                        h.host
                    );
                }
            }
            Outcome::WouldChange | Outcome::Unreachable => {}
        }
    }
    let s = &report.summary;
    println!(
        "Apply: {} changed, {} unchanged, {} failed.",
        s.changed, s.unchanged, s.failed
    );
    ExitStatus::failed_if(report.has_errors())
}

/// Asks on the terminal before `apply` changes `hosts` hosts; only `yes` proceeds.
pub fn confirm(hosts: usize) -> bool {
    eprint!(
        "Apply these changes to {hosts} host{}? Only 'yes' proceeds: ",
        if hosts == 1 { "" } else { "s" }
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok() && answer.trim() == "yes"
}
