//! `lbctl status` against the lab: after `apply`, the VIP holder and every server UP, as a
//! table and as JSON; an unreachable load balancer is an error for that host, not a hang; a
//! daemon that does not run makes the exit status 1.
//!
//!     sudo -E cargo test --test suite -- status:: --nocapture

use std::time::{Duration, Instant};

use crate::support::lab::{self, LBS, Lab, describe};
use crate::support::{self, Lbctl};
use serde_json::Value;

#[test]
fn status_shows_the_vip_holder_and_every_server_up() {
    let lab = Lab::up();
    Lbctl::on_lab().args(["apply", "--yes"]).timeout(300).run();
    let holder = lab.wait_single_vip_holder(&LBS, Duration::from_secs(20));

    let status = support::wait_every_server(Duration::from_secs(20), "every server UP", |s| {
        s["up"] == true
    });
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
        assert_eq!(names, ["mysql", "postgresql", "redis", "wireguard"], "{h}");
        assert_eq!(h["daemons"]["nginx"]["running"], true, "{h}");
        assert_eq!(h["daemons"]["udp-health"]["running"], true, "{h}");
        for b in h["backends"].as_array().unwrap() {
            let servers = b["servers"].as_array().unwrap();
            assert_eq!(servers.len(), 3, "{b}");
            let udp = b["name"] == "wireguard";
            assert_eq!(b["protocol"], if udp { "udp" } else { "tcp" }, "{b}");
            for s in servers {
                assert_eq!(s["status"], "UP", "{s}");
                // the datagram check runs as HAProxy's external check
                assert_eq!(s["check"], if udp { "PROCOK" } else { "L4OK" }, "{s}");
                assert_eq!(
                    s["nginx_down"],
                    if udp { Value::Bool(false) } else { Value::Null },
                    "{s}"
                );
            }
        }
        assert_eq!(h["missing_backends"], serde_json::json!([]), "{h}");
    }

    let text = Lbctl::on_lab()
        .arg("status")
        .timeout(60)
        .stdout_has(format!("{}: holds VIP 10.77.77.100/24", holder.name))
        .stdout_has("VIP held by")
        .stdout_has("36 of 36 servers UP")
        .stdout_has("udp-health running")
        .run()
        .stdout;
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["mysql", "k8s-worker-2", "UP", "L4OK", "0"]),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["wireguard", "(udp)", "k8s-worker-2", "UP", "PROCOK", "0"]),
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
    let text = Lbctl::new()
        .args([
            "-i",
            dir.to_str().unwrap(),
            "--connect-timeout",
            "2",
            "status",
        ])
        .timeout(60)
        .stdout_has("lb3: error:")
        .stdout_has("could not ask lb3")
        .exit(1)
        .run()
        .stdout;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(15), "took {took:?}");
    for answering in ["lb1: ", "lb2: "] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(answering) && l.contains("haproxy running")),
            "{text}"
        );
    }
}

/// Monitoring runs `lbctl status` and reads its exit status: a daemon that does not run is a
/// problem, as an unreachable host or a VIP without a holder is. HAProxy killed (SIGKILL,
/// master and workers) on a load balancer that does not hold the VIP, so that the daemon is
/// the only problem: exit 1, the host and the daemon named on stderr and in `--json`; `plan`
/// and a no-op `apply` warn of it; started again (`lab.sh up`), exit 0.
#[test]
fn status_exits_1_while_a_daemon_does_not_run_and_names_it() {
    let lab = Lab::up();
    Lbctl::on_lab().args(["apply", "--yes"]).timeout(300).run();
    let holder = lab.wait_single_vip_holder(&LBS, Duration::from_secs(20));
    let dead = LBS.iter().find(|h| h.name != holder.name).unwrap().name;
    let json = Lbctl::on_lab()
        .args(["status", "--json"])
        .timeout(60)
        .run()
        .json();
    assert_eq!(json["daemon_problems"], serde_json::json!([]), "{json}");

    let pid = lab.daemon_pid(dead, "/run/haproxy.pid");
    lab.kill_master(dead, "/run/haproxy.pid");
    let problem = format!("{dead}: haproxy is not running (pid {pid} in /run/haproxy.pid is gone)");
    let run = Lbctl::on_lab()
        .arg("status")
        .timeout(60)
        .exit(1)
        .stdout_has("haproxy NOT RUNNING")
        .stderr_has(format!("error: {problem}\n"))
        .run();
    assert_eq!(run.stderr.matches("error: ").count(), 1, "{}", run.stderr);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with(&format!("{dead}: ")) && l.contains("haproxy NOT RUNNING")),
        "{}",
        run.stdout
    );
    let json = Lbctl::on_lab()
        .args(["status", "--json"])
        .timeout(60)
        .exit(1)
        .run()
        .json();
    assert_eq!(
        json["daemon_problems"],
        serde_json::json!([problem]),
        "{json}"
    );
    assert_eq!(json["vip_problems"], serde_json::json!([]), "{json}");

    // a plan and an apply with nothing to change say so too, and still change nothing
    let warning = format!("warning: {dead}: haproxy is not running");
    Lbctl::on_lab()
        .arg("plan")
        .timeout(60)
        .stdout_has(&warning)
        .run();
    let plan = Lbctl::on_lab()
        .args(["plan", "--json"])
        .timeout(60)
        .run()
        .json();
    for host in plan["hosts"].as_array().unwrap() {
        let expected = if host["host"] == dead {
            serde_json::json!(["haproxy"])
        } else {
            serde_json::Value::Null
        };
        assert_eq!(host["not_running"], expected, "{plan}");
    }
    Lbctl::on_lab()
        .args(["apply", "--yes"])
        .timeout(120)
        .stdout_has("No changes")
        .stderr_has(&warning)
        .run();

    // started again: nothing wrong, exit 0
    lab.bring_up();
    let json = lab::wait_for(Duration::from_secs(20), "status exit 0", || {
        let run = Lbctl::on_lab()
            .args(["status", "--json"])
            .timeout(60)
            .output();
        (run.code == 0).then(|| run.json())
    });
    assert_eq!(json["daemon_problems"], serde_json::json!([]), "{json}");
    Lbctl::on_lab().arg("status").timeout(60).run();
}
