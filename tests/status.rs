//! `lbctl status` against the lab: after `apply`, the VIP holder and every server UP, as a
//! table and as JSON; an unreachable load balancer is an error for that host, not a hang.
//!
//!     sudo -E cargo test --test status -- --nocapture

mod common;
mod support;

use std::time::{Duration, Instant};

use common::lab::{self, LBS, Lab, describe};
use serde_json::Value;

/// Runs lbctl from the repository root, bounded in time.
fn lbctl(secs: u32, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["-i", "inventory/lab"];
    all.extend_from_slice(args);
    let out = lab::run(secs, env!("CARGO_BIN_EXE_lbctl"), &all);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn servers(status: &Value) -> Vec<&Value> {
    status["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h["backends"].as_array().unwrap())
        .flat_map(|b| b["servers"].as_array().unwrap())
        .collect()
}

#[test]
fn status_shows_the_vip_holder_and_every_server_up() {
    let lab = Lab::up();
    let (code, out, err) = lbctl(300, &["apply", "--yes"]);
    assert_eq!(code, 0, "apply\n{out}\n{err}");
    let holder = lab.wait_single_vip_holder(&LBS, Duration::from_secs(20));

    // Health checks need `rise` of them after a reload: poll (bounded) until all are UP.
    let start = Instant::now();
    let status = loop {
        let (code, out, err) = lbctl(60, &["status", "--json"]);
        assert_eq!(code, 0, "status --json\n{out}\n{err}");
        let status: Value = serde_json::from_str(&out).expect("status --json is JSON");
        let all = servers(&status);
        if !all.is_empty() && all.iter().all(|s| s["up"] == true) {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "servers not all UP after 20 s: {out}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(status["vip_holders"], serde_json::json!([holder.name]));
    let hosts = status["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 3);
    for h in hosts {
        assert_eq!(h["error"], Value::Null, "{h}");
        assert_eq!(h["holds_vip"], h["host"] == holder.name, "{h}");
        assert_eq!(h["daemons"]["haproxy"]["running"], true, "{h}");
        assert_eq!(h["daemons"]["keepalived"]["running"], true, "{h}");
        let names: Vec<&str> = h["backends"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["mysql", "postgresql", "redis"], "{h}");
        for b in h["backends"].as_array().unwrap() {
            let servers = b["servers"].as_array().unwrap();
            assert_eq!(servers.len(), 3, "{b}");
            for s in servers {
                assert_eq!(s["status"], "UP", "{s}");
                assert_eq!(s["check"], "L4OK", "{s}");
            }
        }
        assert_eq!(h["missing_backends"], serde_json::json!([]), "{h}");
    }

    let (code, text, err) = lbctl(60, &["status"]);
    assert_eq!(code, 0, "status\n{text}\n{err}");
    assert!(
        text.contains(&format!("{}: holds VIP 10.77.77.100/24", holder.name)),
        "{text}"
    );
    assert!(
        text.contains("VIP held by") && text.contains("27 of 27 servers UP"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["mysql", "k8s-worker-2", "UP", "L4OK", "0"]),
        "{text}"
    );

    // A load balancer that does not answer: an error for it alone, within the connect timeout.
    let dir = support::scratch("status-unreachable");
    for entry in ["group_vars", "host_vars"] {
        let out = lab::run(
            10,
            "cp",
            &[
                "-r",
                lab::inventory().join(entry).to_str().unwrap(),
                dir.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{}", describe("cp", &out));
    }
    let hosts = std::fs::read_to_string(lab::inventory().join("hosts.ini")).unwrap();
    // 10.77.77.99 is on the lab's bridge, but no host has it
    support::write(
        &dir,
        "hosts.ini",
        &hosts.replace(
            "lb3 ansible_host=10.77.77.13",
            "lb3 ansible_host=10.77.77.99",
        ),
    );
    let started = Instant::now();
    let out = lab::run(
        60,
        env!("CARGO_BIN_EXE_lbctl"),
        &[
            "-i",
            dir.to_str().unwrap(),
            "--connect-timeout",
            "2",
            "status",
        ],
    );
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}", describe("status", &out));
    assert!(took < Duration::from_secs(15), "took {took:?}");
    assert!(text.contains("lb3: error:"), "{text}");
    assert!(text.contains("could not ask lb3"), "{text}");
    for answering in ["lb1: ", "lb2: "] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(answering) && l.contains("haproxy running")),
            "{text}"
        );
    }
}
