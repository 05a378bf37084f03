//! What users read: plain text on a terminal or in CI logs, or JSON with `--json`.

use std::io::Write;

use serde::Serialize;

use crate::{
    commands::{Global, render::Written, validate::Summary},
    error::Error,
};

fn json<T: Serialize>(value: &T) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, value);
    let _ = writeln!(out);
}

pub fn validated(global: &Global, s: &Summary) -> u8 {
    if global.json {
        json(s);
    } else {
        println!(
            "valid: {} load balancer{} ({}), {} TCP and {} UDP backend{}",
            s.hosts.len(),
            plural(s.hosts.len()),
            s.hosts.join(", "),
            s.tcp_backends,
            s.udp_backends,
            plural(s.udp_backends)
        );
    }
    0
}

pub fn rendered(global: &Global, written: &[Written]) -> u8 {
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
    0
}

/// Prints an error: every diagnostic with its hint, then a summary line.
pub fn error(global: &Global, e: &Error) {
    if global.json {
        let diagnostics = match e {
            Error::Invalid(d) => d.clone(),
            _ => Vec::new(),
        };
        json(&serde_json::json!({
            "error": e.to_string(),
            "hint": e.hint(),
            "diagnostics": diagnostics,
        }));
        return;
    }
    let mut err = std::io::stderr().lock();
    if let Error::Invalid(diags) = e {
        for d in diags {
            let _ = writeln!(err, "error: {d}");
        }
    }
    let _ = writeln!(err, "error: {e}");
    if let Some(h) = e.hint() {
        let _ = writeln!(err, "  hint: {h}");
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
