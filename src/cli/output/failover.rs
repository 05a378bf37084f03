//! `lbctl failover-test`: what broke, how fast the tier noticed and healed against its
//! budgets, what clients saw, and the verdict. Exit status 0 passed, 3 missed.

use std::fmt::Write as _;

use super::json;
use crate::{
    cli::ExitStatus,
    cli::commands::{Global, failover_test::Report},
    drill::Tally,
    drill::lb::LbReport,
    drill::worker::WorkerReport,
    spec::Protocol,
};

pub fn print(global: &Global, report: &Report) -> ExitStatus {
    if global.json {
        match report {
            Report::Worker(r) => json(&serde_json::json!({ "test": "worker", "report": r })),
            Report::Lb(r) => json(&serde_json::json!({ "test": "lb", "report": r })),
        }
    } else {
        out!(
            "{}",
            match report {
                Report::Worker(r) => worker_text(r),
                Report::Lb(r) => lb_text(r),
            }
        );
    }
    if report.passed() {
        ExitStatus::Success
    } else {
        ExitStatus::MissedBudget
    }
}

fn seconds(ms: u64) -> String {
    if ms < 10_000 {
        format!("{:.2} s", ms as f64 / 1000.0)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

fn within(measured: Option<u64>, budget: u64) -> String {
    match measured {
        Some(ms) if ms <= budget => format!("{} (budget {}) ok", seconds(ms), seconds(budget)),
        Some(ms) => format!("{} (budget {}) LATE", seconds(ms), seconds(budget)),
        None => format!("never (budget {}) MISSED", seconds(budget)),
    }
}

fn tally(t: &Tally) -> String {
    format!("{} attempts, {} failed", t.attempts, t.failed)
}

fn errors(out: &mut String, t: &Tally) {
    for (error, n) in &t.errors {
        let _ = writeln!(out, "    {n} x {error}");
    }
}

fn worker_text(r: &WorkerReport) -> String {
    let mut out = String::new();
    let ports: Vec<String> = r
        .ports
        .iter()
        .map(|p| format!("{p}/tcp"))
        .chain(r.udp_ports.iter().map(|p| format!("{p}/udp")))
        .collect();
    let method = match r.method {
        crate::drill::worker::Method::Drop => "drop",
        crate::drill::worker::Method::Reject => "reject",
    };
    let _ = writeln!(
        out,
        "failover-test {}: {method} {} on {} for {} (run {})",
        r.backends.join(", "),
        ports.join(", "),
        r.worker,
        seconds(r.fault_ms),
        r.run_id
    );
    for t in &r.results {
        let (down, up) = match t.target.protocol {
            Protocol::Tcp => ("DOWN", "UP"),
            Protocol::Udp => ("out of nginx", "back"),
        };
        let _ = writeln!(
            out,
            "  {:<8} {}/{}{}: {down} after {}; {up} after {}",
            t.target.lb,
            t.target.backend,
            t.target.server,
            if t.target.protocol == Protocol::Udp {
                " (udp)"
            } else {
                ""
            },
            within(t.detected_ms, t.target.detect_budget_ms),
            within(t.recovered_ms, t.target.recover_budget_ms),
        );
    }
    let p = &r.probe;
    let _ = writeln!(
        out,
        "  probe from {} to {}, {}/s, {} s each: before {}; fault {}; recovery {}; after {}",
        p.from,
        p.targets.join(", "),
        p.rate,
        p.timeout_ms / 1000,
        tally(&p.before),
        tally(&p.fault),
        tally(&p.recovery),
        tally(&p.after)
    );
    if p.unnoticed.attempts > 0 {
        let _ = writeln!(
            out,
            "  datagrams before every load balancer noticed: {}; after, until the fault ended: {}",
            tally(&p.unnoticed),
            tally(&p.noticed)
        );
    }
    errors(&mut out, &p.total);
    if r.rules_left.is_empty() {
        let _ = writeln!(out, "  {}: no lbctl rule left", r.worker);
    } else {
        let _ = writeln!(
            out,
            "  {}: lbctl rules left: {}",
            r.worker,
            r.rules_left.join("; ")
        );
    }
    verdict(&mut out, r.passed, &r.failures, || {
        let lost = if p.unnoticed.failed > 0 {
            format!(
                " ({} of them datagrams before the load balancers noticed, within budget)",
                p.unnoticed.failed
            )
        } else {
            String::new()
        };
        format!(
            "every load balancer noticed and recovered within budget; {} of {} client connections failed{lost}",
            p.total.failed, p.total.attempts
        )
    });
    out
}

fn lb_text(r: &LbReport) -> String {
    let mut out = String::new();
    use crate::drill::lb::Break;
    let what = match r.method {
        Break::StopKeepalived => "keepalived stopped",
        Break::StopHaproxy => "haproxy stopped",
        Break::KillKeepalived => "keepalived killed (SIGKILL)",
        Break::KillHaproxy => "haproxy killed (SIGKILL)",
        Break::Isolate => "cut off the network",
    };
    let _ = writeln!(
        out,
        "failover-test {} ({}): {what} for {} (run {}); VIP holder before: {}",
        r.lb,
        r.method.name(),
        seconds(r.stopped_ms),
        r.run_id,
        r.holder_before
    );
    if r.holder_before == r.lb {
        let _ = writeln!(
            out,
            "  VIP moved to {} after {}",
            r.new_holder.as_deref().unwrap_or("nobody"),
            within(r.vip_moved_ms, r.move_budget_ms)
        );
    } else {
        let _ = writeln!(out, "  {} did not hold the VIP: nothing had to move", r.lb);
    }
    let _ = writeln!(
        out,
        "  tier whole again {} after the repair; VIP holder now: {}",
        r.settled_ms.map_or("never".to_string(), seconds),
        if r.holder_after.is_empty() {
            "none".to_string()
        } else {
            r.holder_after.join(", ")
        }
    );
    let p = &r.probe;
    let _ = writeln!(
        out,
        "  probe from {} to {}, {}/s: before {}; during the move {}; while broken {}; restore {}; after {}",
        p.from,
        p.targets.join(", "),
        p.rate,
        tally(&p.before),
        tally(&p.during_move),
        tally(&p.while_stopped),
        tally(&p.restore),
        tally(&p.after)
    );
    errors(&mut out, &p.total);
    if r.rules_left.is_empty() {
        if r.method == Break::Isolate {
            let _ = writeln!(out, "  {}: no lbctl rule left", r.lb);
        }
    } else {
        let _ = writeln!(
            out,
            "  {}: lbctl rules left: {}",
            r.lb,
            r.rules_left.join("; ")
        );
    }
    verdict(&mut out, r.passed, &r.failures, || {
        format!(
            "the VIP moved within budget and the tier is whole; {} of {} client connections failed",
            p.total.failed, p.total.attempts
        )
    });
    out
}

fn verdict(out: &mut String, passed: bool, failures: &[String], summary: impl Fn() -> String) {
    if passed {
        let _ = writeln!(out, "PASSED: {}", summary());
    } else {
        let _ = writeln!(out, "FAILED:");
        for f in failures {
            let _ = writeln!(out, "  {f}");
        }
    }
}
