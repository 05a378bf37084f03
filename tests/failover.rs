//! `lbctl failover-test` on the lab (issue 5's acceptance): break a worker's NodePort with
//! iptables and measure every load balancer and the clients; kill lbctl halfway and watch the
//! dead man's switch clean up; refuse to break the last UP server; stop the VIP holder's
//! keepalived and time the VIP's move.
//!
//!     sudo -E cargo test --test failover -- --nocapture

mod common;

use std::{
    process::{Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use common::lab::{self, LBS, Lab, WORKERS, describe, wait_for};
use serde_json::Value;

const WORKER: &str = "k8s-worker-2";

/// Runs lbctl on the lab's inventory from the repository root, bounded in time.
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

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

/// lbctl's configuration on every load balancer, and every server UP (bounded wait).
fn applied(lab: &Lab) {
    let (code, out, err) = lbctl(300, &["apply", "--yes"]);
    assert_eq!(code, 0, "apply\n{out}\n{err}");
    all_up(lab);
}

fn all_up(lab: &Lab) {
    lab.wait_single_vip_holder(&LBS, Duration::from_secs(20));
    wait_for(
        Duration::from_secs(30),
        "every server UP on every LB",
        || {
            let (code, out, _) = lbctl(30, &["status", "--json"]);
            if code != 0 {
                return None;
            }
            let status = json(&out);
            let servers: Vec<&Value> = status["hosts"]
                .as_array()?
                .iter()
                .flat_map(|h| h["backends"].as_array().into_iter().flatten())
                .flat_map(|b| b["servers"].as_array().into_iter().flatten())
                .collect();
            (servers.len() == 27 && servers.iter().all(|s| s["up"] == true)).then_some(())
        },
    );
}

/// The lbctl-failover rules on the worker right now (`iptables -S` lines).
fn lbctl_rules(lab: &Lab) -> Vec<String> {
    let out = lab.exec(
        WORKER,
        &[
            "sh",
            "-c",
            "for t in raw filter; do iptables -w 5 -t $t -S; done",
        ],
    );
    assert!(out.status.success(), "{}", describe("iptables -S", &out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("lbctl-failover-"))
        .map(str::to_string)
        .collect()
}

fn runtime_api(lab: &Lab, lb: &str, command: &str) {
    let out = lab.exec(
        lb,
        &[
            "sh",
            "-c",
            &format!("echo '{command}' | socat - UNIX-CONNECT:/run/haproxy/admin.sock"),
        ],
    );
    assert!(out.status.success(), "{}", describe(command, &out));
}

/// Issue 5's acceptance, as written: after `apply`, the default (drop) drill sees every load
/// balancer detect and recover within budget, not one client connection fail, and no rule
/// left behind.
#[test]
fn worker_drop_drill_meets_the_acceptance() {
    let lab = Lab::up();
    applied(&lab);
    assert_eq!(WORKERS[1].name, WORKER);

    let started = Instant::now();
    let (code, out, err) = lbctl(
        120,
        &[
            "failover-test",
            "--worker",
            WORKER,
            "--backend",
            "mysql",
            "--hold",
            "5s",
            "--json",
        ],
    );
    eprintln!("drop drill took {:?}\n{out}", started.elapsed());
    assert!(code == 0 || code == 3, "failover-test\n{out}\n{err}");
    let doc = json(&out);
    let report = &doc["report"];
    assert_eq!(doc["test"], "worker");
    assert_eq!(report["method"], "drop");
    assert_eq!(report["ports"], serde_json::json!([30306]));
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "one per load balancer: {report}");
    for r in results {
        assert_eq!(r["backend"], "mysql");
        assert_eq!(r["server"], WORKER);
        assert_eq!(r["detected_in_budget"], true, "{r}");
        assert_eq!(r["recovered_in_budget"], true, "{r}");
        assert!(
            r["detected_ms"].as_u64().unwrap() <= r["detect_budget_ms"].as_u64().unwrap(),
            "{r}"
        );
    }
    let probe = &report["probe"];
    assert!(
        probe["fault"]["attempts"].as_u64().unwrap() >= 50,
        "about 20 per second during a 5 s fault: {probe}"
    );
    assert_eq!(
        probe["total"]["failed"], 0,
        "client connections failed during the drill: {probe}"
    );
    assert_eq!(report["rules_left"], serde_json::json!([]));
    assert_eq!(lbctl_rules(&lab), Vec::<String>::new());
    assert_eq!(report["passed"], true, "{report}");
    assert_eq!(code, 0);
}

/// Connection resets instead of silence, probed from the lab's client over SSH; lbctl killed
/// mid-drill (only the dead man's switch can clean up); the last UP server of a backend left
/// alone.
#[test]
fn worker_drills_reject_clean_up_after_a_kill_and_spare_the_last_server() {
    let lab = Lab::up();
    applied(&lab);

    let (code, out, err) = lbctl(
        120,
        &[
            "failover-test",
            "--worker",
            WORKER,
            "--backend",
            "mysql",
            "--method",
            "reject",
            "--hold",
            "3s",
            "--probe-from",
            "client",
        ],
    );
    eprintln!("{out}");
    assert_eq!(code, 0, "failover-test --method reject\n{out}\n{err}");
    assert!(
        out.contains("probe from client to 10.77.77.100:3306"),
        "{out}"
    );
    assert!(out.contains("PASSED"), "{out}");
    assert_eq!(lbctl_rules(&lab), Vec::<String>::new());

    // SIGKILL in the middle of the hold: nothing can clean up but the dead man's switch, which
    // fires max(hold, 2 x the detection budget) + 15 s after arming: 25 s here.
    all_up(&lab);
    let mut child = Command::new(env!("CARGO_BIN_EXE_lbctl"))
        .args([
            "-i",
            "inventory/lab",
            "failover-test",
            "--worker",
            WORKER,
            "--backend",
            "mysql",
            "--hold",
            "5s",
            "--json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start lbctl");
    let rules = wait_for(
        Duration::from_secs(30),
        "lbctl's rule on the worker",
        || {
            let rules = lbctl_rules(&lab);
            (!rules.is_empty()).then_some(rules)
        },
    );
    assert!(
        rules
            .iter()
            .all(|r| r.contains("--dport 30306") && r.contains("-j DROP")),
        "{rules:?}"
    );
    // the switch was armed just before the rule went in
    let armed = Instant::now();
    sleep(Duration::from_secs(2));
    child.kill().expect("SIGKILL lbctl");
    let killed = Instant::now();
    let _ = child.wait();
    assert_eq!(
        lbctl_rules(&lab),
        rules,
        "the rule stays until the switch fires"
    );
    let gone = wait_for(
        Duration::from_secs(40),
        "the dead man's switch to remove the rule",
        || lbctl_rules(&lab).is_empty().then(Instant::now),
    );
    eprintln!(
        "the rule went {:?} after lbctl was killed, {:?} after it was seen",
        gone - killed,
        gone - armed
    );
    assert!(
        gone - armed <= Duration::from_secs(25 + 2),
        "the switch fires 25 s after arming: {:?}",
        gone - armed
    );

    // The last UP server of a backend is not broken without --force; nothing is touched.
    all_up(&lab);
    for lb in LBS {
        for other in ["k8s-worker-1", "k8s-worker-3"] {
            runtime_api(&lab, lb.name, &format!("disable server mysql/{other}"));
        }
    }
    let (code, out, err) = lbctl(
        60,
        &["failover-test", "--worker", WORKER, "--backend", "mysql"],
    );
    for lb in LBS {
        for other in ["k8s-worker-1", "k8s-worker-3"] {
            runtime_api(&lab, lb.name, &format!("enable server mysql/{other}"));
        }
    }
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains(
            "refusing to break k8s-worker-2: it is the last UP server of mysql/k8s-worker-2 on lb1"
        ),
        "{err}"
    );
    assert!(err.contains("--force"), "{err}");
    assert_eq!(lbctl_rules(&lab), Vec::<String>::new());
}

#[test]
fn the_vip_moves_when_its_holder_loses_keepalived() {
    let lab = Lab::up();
    applied(&lab);
    let holder = lab.wait_single_vip_holder(&LBS, Duration::from_secs(20));
    let pids_before: Vec<u32> = LBS
        .iter()
        .map(|lb| lab.daemon_pid(lb.name, "/run/keepalived.pid"))
        .collect();

    let (code, out, err) = lbctl(
        120,
        &[
            "failover-test",
            "--lb",
            holder.name,
            "--hold",
            "3s",
            "--json",
        ],
    );
    eprintln!("{out}");
    assert_eq!(code, 0, "failover-test --lb\n{out}\n{err}");
    let doc = json(&out);
    let report = &doc["report"];
    assert_eq!(doc["test"], "lb");
    assert_eq!(report["holder_before"], holder.name);
    assert_eq!(report["method"], "stop-keepalived");
    assert_eq!(report["move_budget_ms"], 3000, "3 adverts of 1 s");
    let moved = report["vip_moved_ms"].as_u64().expect("the VIP moved");
    assert!(moved <= 3000, "{report}");
    assert_ne!(report["new_holder"], holder.name);
    let probe = &report["probe"];
    assert!(
        probe["during_move"]["attempts"].as_u64().is_some()
            && probe["during_move"]["failed"].as_u64().is_some(),
        "{probe}"
    );
    assert!(
        probe["total"]["attempts"].as_u64().unwrap() >= 60,
        "{probe}"
    );
    assert_eq!(report["passed"], true, "{report}");

    // The tier is whole: the holder took its VIP back (it has the highest priority), and
    // every keepalived runs (the holder's is a new one).
    lab.wait_vip_held_by(&LBS, holder, Duration::from_secs(10));
    let out = lab.script(30, &["status"]);
    assert!(out.status.success(), "{}", describe("lab.sh status", &out));
    for (lb, before) in LBS.iter().zip(&pids_before) {
        let now = lab.daemon_pid(lb.name, "/run/keepalived.pid");
        assert_eq!(now != *before, lb.name == holder.name, "{}", lb.name);
    }

    // A load balancer without the VIP is not broken without --force.
    let other = LBS.iter().find(|lb| lb.name != holder.name).unwrap();
    let (code, _, err) = lbctl(60, &["failover-test", "--lb", other.name]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not hold the VIP"), "{err}");
}
