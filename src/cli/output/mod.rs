//! What users read: plain text on a terminal or in CI logs, or JSON with `--json`.

pub(super) mod admin;
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
    deploy::{HostReport, Outcome, Report},
    deploy::{RuntimeState, Why, setting_words},
    remote::Step,
    source::{Diagnostic, clip, escape_control},
};

/// Standard output for a long text: buffered, where `stdout` alone would make a system call
/// of every line (a plan of thousands of servers is hundreds of thousands of lines). Flushed
/// when dropped.
fn buffered() -> std::io::BufWriter<std::io::StdoutLock<'static>> {
    std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock())
}

fn json<T: Serialize>(value: &T) {
    let mut out = buffered();
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
        outln!(
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
                outln!(
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

/// The most problems one error prints: past a thousand, the input is not what its author
/// meant (a binary file given as an inventory), and the rest would only bury the first.
const MAX_DIAGNOSTICS_SHOWN: usize = 1000;

/// Prints an error: every diagnostic with its hint (the first thousand), then a summary line.
pub fn error(global: &Global, e: &Error) {
    let summary = clip(e.to_string());
    let hint = e.hint().map(clip);
    let all = e.diagnostics();
    let shown = &all[..all.len().min(MAX_DIAGNOSTICS_SHOWN)];
    let not_shown = all.len() - shown.len();
    if global.json {
        let diagnostics: Vec<Diagnostic> = shown.iter().map(Diagnostic::clipped).collect();
        json(&serde_json::json!({
            "error": summary,
            "hint": hint,
            "diagnostics": diagnostics,
            "diagnostics_not_shown": not_shown,
        }));
        return;
    }
    let mut err = std::io::stderr().lock();
    for d in shown {
        let _ = writeln!(err, "error: {d}");
    }
    if not_shown > 0 {
        let _ = writeln!(
            err,
            "error: ... and {not_shown} more problems not shown (the first {MAX_DIAGNOSTICS_SHOWN} are above)"
        );
    }
    let _ = writeln!(err, "error: {summary}");
    if let Some(h) = hint {
        let _ = writeln!(err, "  hint: {h}");
    }
}

/// A time (seconds since the epoch) as people read it here: `14:02` today, else
/// `2026-10-17 14:02`, in the local time zone.
pub fn local_time(secs: u64) -> String {
    let parts = |secs: u64| -> Option<(i32, u32, u32, u32, u32)> {
        let t = libc::time_t::try_from(secs).ok()?;
        // SAFETY: localtime_r only writes the tm it is given, and reads the time zone.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
        ok.then(|| {
            (
                tm.tm_year + 1900,
                (tm.tm_mon + 1) as u32,
                tm.tm_mday as u32,
                tm.tm_hour as u32,
                tm.tm_min as u32,
            )
        })
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match (parts(secs), parts(now)) {
        (Some((y, m, d, hh, mm)), Some((ny, nm, nd, _, _))) if (y, m, d) == (ny, nm, nd) => {
            format!("{hh:02}:{mm:02}")
        }
        (Some((y, m, d, hh, mm)), _) => format!("{y}-{m:02}-{d:02} {hh:02}:{mm:02}"),
        (None, _) => format!("@{secs}"),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A plan as people read it: a coloured unified diff per host and file, then a summary.
pub fn plan_text(report: &Report) {
    let color = std::io::stdout().is_terminal();
    let mut out = buffered();
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
                for line in not_running_lines(h) {
                    let _ = writeln!(out, "{line}");
                }
            }
            _ => {
                let n = h
                    .files
                    .iter()
                    .filter(|f| f.action != Action::Unchanged)
                    .count();
                let _ = writeln!(out, "{}{vip}: {n} file{} to change", h.host, plural(n));
                for line in not_running_lines(h) {
                    let _ = writeln!(out, "{line}");
                }
                for service in &h.starts {
                    let _ = writeln!(
                        out,
                        "{}: will start {service}: it does not run, and this apply installs its configuration",
                        h.host
                    );
                }
                for f in h.files.iter().filter(|f| f.action != Action::Unchanged) {
                    for line in f.diff.lines() {
                        let _ = writeln!(out, "{}", paint(line, color));
                    }
                }
            }
        }
    }
    for line in runtime_lines(&report.runtime) {
        let _ = writeln!(out, "{line}");
    }
    let s = &report.summary;
    let drift = report.runtime.drift.len();
    let _ = writeln!(
        out,
        "Plan: {} to change, {} unchanged{}{}.",
        s.changed,
        s.unchanged,
        if s.unreachable > 0 {
            format!(", {} unreachable", s.unreachable)
        } else {
            String::new()
        },
        if drift > 0 {
            format!(
                "; {drift} load balancer{} to bring in line with lbctl's admin state",
                plural(drift)
            )
        } else {
            String::new()
        }
    );
}

/// The admin state lbctl set, as a plan shows it next to the files.
/// A daemon the survey found not running on `h`, which the apply does not start: a plan or an
/// apply with nothing to change for it would otherwise say nothing of a dead HAProxy or nginx.
fn not_running_lines(h: &HostReport) -> Vec<String> {
    h.not_running
        .iter()
        .map(|name| {
            format!(
                "warning: {}: {name} is not running (its pid file names no live process), and an apply does not start it: start it on the host (`lbctl status` lists what runs)",
                h.host
            )
        })
        .collect()
}

fn runtime_lines(runtime: &RuntimeState) -> Vec<String> {
    if runtime.is_empty() {
        return Vec::new();
    }
    let mut lines =
        vec!["Set by lbctl drain|maint|weight (runtime state, not in the files):".to_string()];
    for s in &runtime.settings {
        let mut line = format!(
            "  {} {} on {} since {} by {} (run {}): {}",
            s.worker,
            admin::done_words(s.setting),
            if s.hosts.is_empty() {
                "no load balancer".to_string()
            } else {
                s.hosts.join(", ")
            },
            local_time(s.since),
            if s.who.is_empty() {
                "?".into()
            } else {
                escape_control(&s.who)
            },
            s.run,
            s.servers.join(", ")
        );
        if !s.reason.is_empty() {
            line.push_str(&format!(" - {}", escape_control(&s.reason)));
        }
        lines.push(line);
    }
    for d in &runtime.drift {
        let items: Vec<String> = d
            .items
            .iter()
            .map(|i| {
                let why = match i.why {
                    Why::Missed => "its record lacks it (unreachable when it was set)",
                    Why::Lost => {
                        "HAProxy lost it (restarted without its state, or changed by hand)"
                    }
                    Why::NginxMarks => "nginx's stream file is not marked so",
                };
                format!("{}: {why}", setting_words(&i.entry))
            })
            .collect();
        lines.push(format!(
            "  {}: out of line, apply brings it in line: {}",
            d.host,
            items.join("; ")
        ));
    }
    lines
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
        outln!(
            "Saved this plan to {file} (mode 0600: it holds the rendered files, secrets included). Apply exactly this plan with `lbctl apply {file}`."
        );
    }
    if report.has_errors() {
        if !global.json {
            errln!(
                "error: {} host{} could not be surveyed",
                report.summary.unreachable,
                plural(report.summary.unreachable)
            );
        }
        ExitStatus::Failed
    } else if detailed_exitcode && (report.summary.changed > 0 || !report.runtime.drift.is_empty())
    {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    }
}

/// `apply`: what happened on each host; 1 when any host failed.
pub fn applied(global: &Global, report: &Report) -> ExitStatus {
    if global.json {
        json(report);
        let converge_failed = report.runtime.converged.iter().any(|c| c.error.is_some());
        return ExitStatus::failed_if(report.has_errors() || converge_failed);
    }
    let converge_failed = report.runtime.converged.iter().any(|c| c.error.is_some());
    for c in &report.runtime.converged {
        match &c.error {
            None => outln!(
                "{}: brought in line with lbctl's admin state (no reload)",
                c.host
            ),
            Some(e) => errln!(
                "error: {}: bringing it in line with lbctl's admin state: {e}",
                c.host
            ),
        }
    }
    if converge_failed {
        return ExitStatus::Failed;
    }
    for line in report.hosts.iter().flat_map(not_running_lines) {
        errln!("{line}");
    }
    if report.summary.changed == 0 && !report.has_errors() {
        outln!(
            "No changes: {} host{} up to date; {}.",
            report.summary.unchanged,
            plural(report.summary.unchanged),
            if report.runtime.converged.is_empty() {
                "nothing was written or reloaded"
            } else {
                "no file was written, nothing was reloaded"
            }
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
            Outcome::Applied => {
                outln!(
                    "{}: applied {} in {:.2} s",
                    h.host,
                    files.join(", "),
                    h.seconds.unwrap_or_default()
                );
                // a daemon that did not run where this apply installed its configuration
                for step in h.steps.iter().filter(|s| s.ok && s.step == Step::Reload) {
                    if let Some((service, _)) = step.detail.split_once(" (started: ") {
                        outln!(
                            "{}: started {service}: it did not run, and this apply installed its configuration",
                            h.host
                        );
                    }
                }
            }
            Outcome::Unchanged => outln!("{}: unchanged (not reloaded)", h.host),
            Outcome::Skipped => outln!(
                "{}: not changed (another host failed; this one keeps its configuration)",
                h.host
            ),
            Outcome::Failed => {
                if let Some(f) = &h.failure {
                    errln!("error: {}: {f}", h.host);
                }
                if let Some(e) = &h.error {
                    errln!("error: {e}");
                }
                if h.rolled_back {
                    errln!(
                        "  {}: rolled back; the previous configuration is serving",
                        h.host
                    );
                }
                for step in h.steps.iter().filter(|s| s.step == Step::Rollback && !s.ok) {
                    errln!(
                        "  {}: NOT rolled back: {}; see to the host before the next apply",
                        h.host,
                        step.detail
                    );
                }
            }
            Outcome::WouldChange | Outcome::Unreachable => {}
        }
    }
    let s = &report.summary;
    outln!(
        "Apply: {} changed, {} unchanged, {} failed.",
        s.changed,
        s.unchanged,
        s.failed
    );
    ExitStatus::failed_if(report.has_errors())
}

/// Asks on the terminal before `apply` changes `hosts` hosts; only `yes` proceeds.
pub fn confirm(hosts: usize) -> bool {
    err!(
        "Apply these changes to {hosts} host{}? Only 'yes' proceeds: ",
        if hosts == 1 { "" } else { "s" }
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok() && answer.trim() == "yes"
}
