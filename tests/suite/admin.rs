//! `lbctl drain|maint|ready|weight` on the lab (issue 13's acceptance): a worker out of every
//! load balancer at once without a reload, for TCP and UDP through the VIP; `drain --wait`
//! with a long-lived connection; the state kept across applies and reloads (a DOWN server
//! stays DOWN); `plan` naming the drained worker; a load balancer unreachable during a drain
//! named and brought in line by the next apply; `maint --backend` touching one backend; bad
//! input changing nothing; `weight` moving new TCP and UDP traffic, and `--reset`.
//!
//!     sudo -E cargo test --test suite -- admin:: --nocapture

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use crate::support::lab::{self, CLIENT_NS, LBS, Lab, VIP, describe, wait_for};
use crate::support::{self, Lbctl};
use serde_json::Value;

const WORKER: &str = "k8s-worker-2";
const TCP_PORTS: [u16; 3] = [3306, 5432, 6379];
const UDP_PORT: u16 = 51820;

/// lbctl's configuration on every load balancer, every server UP (bounded wait).
fn applied(lab: &Lab, extra: &[&str]) {
    Lbctl::on_lab()
        .args(["apply", "--yes"])
        .args(extra)
        .timeout(300)
        .run();
    lab.wait_single_vip_holder(&LBS, Duration::from_secs(20));
}

fn status() -> Value {
    Lbctl::on_lab()
        .args(["status", "--json"])
        .timeout(60)
        .run()
        .json()
}

/// `(lb, backend) -> status` of the worker's TCP servers, from `status --json`.
fn worker_states(status: &Value, worker: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for h in status["hosts"].as_array().unwrap() {
        // HAProxy only checks the UDP servers (for nginx, which carries them)
        for b in h["backends"].as_array().unwrap() {
            if b["protocol"] == "udp" {
                continue;
            }
            for s in b["servers"].as_array().unwrap() {
                if s["name"] == worker {
                    out.push((
                        h["host"].as_str().unwrap().to_string(),
                        b["name"].as_str().unwrap().to_string(),
                        s["status"].as_str().unwrap().to_string(),
                    ));
                }
            }
        }
    }
    out
}

fn wait_all_up() {
    support::wait_every_server(
        Duration::from_secs(30),
        "every server UP on every LB",
        |s| s["up"] == true,
    );
}

/// What a runtime API command answers on a load balancer.
fn runtime_api(lab: &Lab, lb: &str, command: &str) -> String {
    let out = lab.exec(
        lb,
        &[
            "sh",
            "-c",
            &format!("echo '{command}' | socat - UNIX-CONNECT:/run/haproxy/admin.sock"),
        ],
    );
    assert!(out.status.success(), "{}", describe(command, &out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The pid of HAProxy's worker process (the one serving; a reload replaces it).
fn haproxy_worker_pid(lab: &Lab, lb: &str) -> String {
    runtime_api(lab, lb, "show info")
        .lines()
        .find_map(|l| l.strip_prefix("Pid: "))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no Pid in {lb}'s show info"))
}

/// Who answers `n` new TCP connections to `port` through the VIP, from the client.
fn tcp_answers(lab: &Lab, port: u16, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let out = lab.tcp_greeting(CLIENT_NS, &format!("TCP:{VIP}:{port}"));
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .collect()
}

/// Who answers `n` datagrams to the UDP port through the VIP, each from a new source port
/// (a new flow for nginx).
fn udp_answers(lab: &Lab, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| {
            let out = lab.udp_reply(CLIENT_NS, VIP, UDP_PORT, "hello\n");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .collect()
}

/// How many probes a worker answered.
fn answered(answers: &[String]) -> usize {
    answers
        .iter()
        .filter(|a| a.starts_with("k8s-worker-"))
        .count()
}

/// lbctl's record on every load balancer, as the files hold it.
fn records(lab: &Lab) -> Vec<String> {
    LBS.iter()
        .map(|lb| {
            let out = lab.exec(
                lb.name,
                &["sh", "-c", "cat /var/lib/lbctl/admin-state 2>/dev/null"],
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .collect()
}

fn nginx_stream(lab: &Lab, lb: &str) -> String {
    let out = lab.exec(lb, &["cat", "/etc/nginx/lbctl-stream.conf"]);
    assert!(out.status.success(), "{}", describe("cat", &out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The lab's inventory in a scratch directory `name`, with lb3 at an address no host has
/// (10.77.77.99, on the lab's bridge): lb3 cannot be reached.
fn lb3_unreachable(name: &str) -> std::path::PathBuf {
    let dir = support::scratch(name);
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
    support::write(
        &dir,
        "hosts.ini",
        &hosts.replace(
            "lb3 ansible_host=10.77.77.13",
            "lb3 ansible_host=10.77.77.99",
        ),
    );
    dir
}

/// Issue 13's acceptance for drain, plan, apply, ready, maint and bad input.
#[test]
fn drain_takes_a_worker_out_everywhere_without_a_reload_and_it_lasts() {
    let lab = Lab::up();
    applied(&lab, &[]);
    wait_all_up();
    let pids: Vec<String> = LBS
        .iter()
        .map(|lb| haproxy_worker_pid(&lab, lb.name))
        .collect();

    // drain: every LB, every backend; no reload
    let started = Instant::now();
    let run = Lbctl::on_lab()
        .args([
            "drain",
            "--worker",
            WORKER,
            "--reason",
            "kernel upgrade",
            "--json",
        ])
        .timeout(60)
        .run();
    eprintln!("drain took {:?}", started.elapsed());
    let report = run.json();
    assert_eq!(
        report["setting"],
        serde_json::json!({"state": "drain"}),
        "{report}"
    );
    for h in report["hosts"].as_array().unwrap() {
        assert_eq!(h["error"], Value::Null, "{h}");
        let servers = h["servers"].as_array().unwrap();
        assert_eq!(servers.len(), 4, "three TCP backends and wireguard: {h}");
        for s in servers {
            let want = if s["engine"] == "nginx" {
                "down"
            } else {
                "DRAIN"
            };
            assert_eq!(s["after"], want, "{s}");
        }
    }
    let now = status();
    let states = worker_states(&now, WORKER);
    assert_eq!(states.len(), 9, "{states:?}");
    assert!(states.iter().all(|(_, _, s)| s == "DRAIN"), "{states:?}");
    for h in now["hosts"].as_array().unwrap() {
        let admin = h["admin"].as_array().unwrap();
        assert_eq!(admin.len(), 4, "{h}");
        // status shows the UDP server out of nginx
        let wireguard = h["backends"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == "wireguard")
            .unwrap_or_else(|| panic!("no wireguard: {h}"));
        let server = wireguard["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == WORKER)
            .unwrap();
        assert_eq!(server["nginx_down"], true, "{server}");
        assert!(
            admin
                .iter()
                .all(|e| e["worker"] == WORKER && e["reason"] == "kernel upgrade")
        );
    }
    for (lb, pid) in LBS.iter().zip(&pids) {
        assert_eq!(
            &haproxy_worker_pid(&lab, lb.name),
            pid,
            "{}: HAProxy reloaded",
            lb.name
        );
        assert!(
            nginx_stream(&lab, lb.name).contains("down; # lbctl:wireguard/k8s-worker-2 down"),
            "{}",
            lb.name
        );
    }
    // Whatever answers is another worker (a probe that times out on a busy machine proves
    // nothing either way, so most must answer).
    for port in TCP_PORTS {
        let answers = tcp_answers(&lab, port, 9);
        assert!(answered(&answers) >= 6, "{port}: {answers:?}");
        assert!(!answers.iter().any(|a| a == WORKER), "{port}: {answers:?}");
    }
    let answers = udp_answers(&lab, 9);
    assert!(answered(&answers) >= 6, "{answers:?}");
    assert!(!answers.iter().any(|a| a == WORKER), "udp: {answers:?}");

    // plan names it; an apply of a changed configuration (every HAProxy reloads) keeps it
    Lbctl::on_lab()
        .arg("plan")
        .timeout(60)
        .stdout_has("k8s-worker-2 drained on lb1, lb2, lb3 since")
        .stdout_has("kernel upgrade")
        .stdout_has("Plan: 0 to change, 3 unchanged.")
        .run();
    let plan = Lbctl::on_lab()
        .args(["plan", "--json"])
        .timeout(60)
        .run()
        .json();
    assert_eq!(plan["runtime"]["settings"][0]["worker"], WORKER, "{plan}");
    assert_eq!(plan["runtime"]["drift"], serde_json::json!([]), "{plan}");
    applied(&lab, &["-e", "haproxy_maxconn=4001"]);
    let states = worker_states(&status(), WORKER);
    assert!(
        states.iter().all(|(_, _, s)| s == "DRAIN"),
        "after apply: {states:?}"
    );
    for (lb, pid) in LBS.iter().zip(&pids) {
        assert_ne!(
            &haproxy_worker_pid(&lab, lb.name),
            pid,
            "{}: not reloaded",
            lb.name
        );
    }
    let answers = udp_answers(&lab, 6);
    assert!(
        !answers.iter().any(|a| a == WORKER),
        "udp after apply: {answers:?}"
    );
    applied(&lab, &[]);
    let states = worker_states(&status(), WORKER);
    assert!(
        states.iter().all(|(_, _, s)| s == "DRAIN"),
        "after apply: {states:?}"
    );

    // bad input: exit 1, nothing changed
    let before = records(&lab);
    for (args, says) in [
        (
            vec!["drain", "--worker", "k8s-worker-9"],
            "the inventory has no host",
        ),
        (
            vec!["ready", "--worker", WORKER, "--backend", "nope"],
            "there is no backend `nope`",
        ),
        (
            vec!["weight", "--worker", WORKER, "--weight", "300"],
            "300 is not in 0..=256",
        ),
        (
            vec!["weight", "--worker", WORKER, "--weight", "-1"],
            "-1 is not in 0..=256",
        ),
        (
            vec!["maint", "--worker", "lb1"],
            "is a load balancer, not a worker",
        ),
    ] {
        Lbctl::on_lab()
            .args(&args)
            .timeout(60)
            .exit(1)
            .stderr_has(says)
            .run();
    }
    assert_eq!(records(&lab), before, "bad input changed a record");
    let states = worker_states(&status(), WORKER);
    assert!(states.iter().all(|(_, _, s)| s == "DRAIN"), "{states:?}");

    // ready: back everywhere and through the VIP
    Lbctl::on_lab()
        .args(["ready", "--worker", WORKER])
        .timeout(60)
        .stdout_has("k8s-worker-2 ready on lb1, lb2, lb3")
        .run();
    let states = worker_states(&status(), WORKER);
    assert!(states.iter().all(|(_, _, s)| s == "UP"), "{states:?}");
    for port in TCP_PORTS {
        let answers = tcp_answers(&lab, port, 9);
        assert!(answers.iter().any(|a| a == WORKER), "{port}: {answers:?}");
    }
    // nginx's new workers take over within milliseconds; on a loaded machine a check the
    // UDP health watcher saw fail while it was drained may keep it out of nginx a few seconds
    // more, until a check passes (README, "UDP health"): some probes must reach it soon.
    wait_for(
        Duration::from_secs(20),
        "k8s-worker-2 answering UDP",
        || {
            udp_answers(&lab, 3)
                .iter()
                .any(|a| a == WORKER)
                .then_some(())
        },
    );
    for lb in LBS {
        assert!(
            !nginx_stream(&lab, lb.name).contains(" down;"),
            "{}",
            lb.name
        );
    }

    // maint --backend redis touches redis only
    Lbctl::on_lab()
        .args(["maint", "--worker", WORKER, "--backend", "redis"])
        .timeout(60)
        .run();
    for (lb, backend, state) in worker_states(&status(), WORKER) {
        let want = if backend == "redis" { "MAINT" } else { "UP" };
        assert_eq!(state, want, "{lb} {backend}");
    }
    for lb in LBS {
        assert!(
            !nginx_stream(&lab, lb.name).contains(" down;"),
            "{}",
            lb.name
        );
    }
    let answers = tcp_answers(&lab, 6379, 9);
    assert!(!answers.iter().any(|a| a == WORKER), "redis: {answers:?}");
    Lbctl::on_lab()
        .args(["ready", "--worker", WORKER, "--backend", "redis"])
        .timeout(60)
        .run();

    // an LB unreachable during a drain is named; the next apply brings it in line
    let dir = lb3_unreachable("admin-unreachable");
    Lbctl::new()
        .args(["-i", dir.to_str().unwrap(), "--connect-timeout", "2"])
        .args(["drain", "--worker", WORKER, "--backend", "mysql"])
        .timeout(60)
        .exit(1)
        .stdout_has("lb3: not changed: unreachable")
        .stdout_has("k8s-worker-2 drained on lb1, lb2")
        .run();
    let mysql: Vec<(String, String)> = worker_states(&status(), WORKER)
        .into_iter()
        .filter(|(_, b, _)| b == "mysql")
        .map(|(lb, _, s)| (lb, s))
        .collect();
    assert_eq!(
        mysql,
        [("lb1", "DRAIN"), ("lb2", "DRAIN"), ("lb3", "UP")].map(|(a, b)| (a.into(), b.into())),
    );
    Lbctl::on_lab()
        .arg("plan")
        .timeout(60)
        .stdout_has("lb3: out of line")
        .stdout_has("1 load balancer to bring in line")
        .run();
    Lbctl::on_lab()
        .args(["plan", "--detailed-exitcode"])
        .timeout(60)
        .exit(2)
        .run();
    Lbctl::on_lab()
        .args(["apply", "--yes"])
        .timeout(120)
        .stdout_has("lb3: brought in line")
        .run();
    let states = worker_states(&status(), WORKER);
    assert!(
        states
            .iter()
            .all(|(_, b, s)| (b == "mysql") == (s == "DRAIN")),
        "{states:?}"
    );
    Lbctl::on_lab()
        .args(["plan", "--detailed-exitcode"])
        .timeout(60)
        .run();
    Lbctl::on_lab()
        .args(["ready", "--worker", WORKER])
        .timeout(60)
        .run();
}

/// A client connection through the VIP that landed on `worker`, held open until killed.
fn hold_connection(worker: &str) -> Child {
    let script = format!(
        "import socket, sys, time\n\
         for _ in range(60):\n\
         \x20   s = socket.create_connection(('{VIP}', 3306), timeout=3)\n\
         \x20   if s.recv(64).decode().strip() == '{worker}':\n\
         \x20       print('holding', flush=True)\n\
         \x20       time.sleep(120)\n\
         \x20       sys.exit(0)\n\
         \x20   s.close()\n\
         print('missed', flush=True)\n"
    );
    // `ip netns exec` runs python in its own place: killing the child closes the connection
    // (python's own sleep bounds it otherwise)
    let mut child = Command::new("ip")
        .args(["netns", "exec", CLIENT_NS, "python3", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 in the client's namespace");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "holding", "no connection landed on {worker}");
    child
}

/// `drain --wait` with a long-lived connection, and a DOWN server kept DOWN by an apply that
/// reloads every load balancer.
#[test]
fn drain_wait_counts_sessions_and_a_reload_keeps_a_down_server_down() {
    let lab = Lab::up();
    applied(&lab, &[]);
    wait_all_up();

    let mut client = hold_connection(WORKER);
    let run = Lbctl::on_lab()
        .args(["drain", "--worker", WORKER, "--wait", "--timeout", "2s"])
        .timeout(60)
        .exit(3)
        .stderr_has("sessions left after")
        .stderr_has("still has sessions after 2 s")
        .run();
    assert!(
        LBS.iter()
            .any(|lb| run.stderr.contains(&format!("{} 1", lb.name))),
        "the count: {}",
        run.stderr
    );
    let waiting = Command::new(env!("CARGO_BIN_EXE_lbctl"))
        .current_dir(support::repo_root())
        .args(["-i", "inventory/lab", "drain", "--worker", WORKER, "--wait"])
        .args(["--timeout", "60s"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lbctl");
    sleep(Duration::from_secs(2));
    let _ = client.kill();
    let _ = client.wait();
    let started = Instant::now();
    let out = waiting.wait_with_output().expect("lbctl drain --wait");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        describe("drain --wait", &out)
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("k8s-worker-2: no session left on lb1, lb2, lb3"),
        "{}",
        describe("drain --wait", &out)
    );
    Lbctl::on_lab()
        .args(["ready", "--worker", WORKER])
        .timeout(60)
        .run();

    // The worker's MySQL NodePort dropped: DOWN everywhere, and still DOWN right after an
    // apply that reloads every load balancer (no UP while checks catch up).
    let rule = [
        "iptables",
        "-w",
        "5",
        "-t",
        "raw",
        "PREROUTING",
        "-p",
        "tcp",
        "--dport",
        "30306",
        "-j",
        "DROP",
        "-m",
        "comment",
        "--comment",
        "lbctl-test-admin",
    ];
    let with = |op: &str| {
        let mut cmd: Vec<&str> = rule[..5].to_vec();
        cmd.push(op);
        cmd.extend_from_slice(&rule[5..]);
        let out = lab.exec(WORKER, &cmd);
        assert!(out.status.success(), "{}", describe("iptables", &out));
    };
    with("-I");
    let mysql_down = |status: &Value| {
        worker_states(status, WORKER)
            .into_iter()
            .filter(|(_, b, _)| b == "mysql")
            .all(|(_, _, s)| s.starts_with("DOWN"))
    };
    wait_for(
        Duration::from_secs(20),
        "mysql/k8s-worker-2 DOWN everywhere",
        || mysql_down(&status()).then_some(()),
    );
    let pids: Vec<String> = LBS
        .iter()
        .map(|lb| haproxy_worker_pid(&lab, lb.name))
        .collect();
    applied(&lab, &["-e", "haproxy_maxconn=4002"]);
    let after = status();
    with("-D");
    eprintln!(
        "mysql/k8s-worker-2 right after an apply that reloaded every load balancer: {:?}",
        worker_states(&after, WORKER)
            .into_iter()
            .filter(|(_, b, _)| b == "mysql")
            .collect::<Vec<_>>()
    );
    assert!(mysql_down(&after), "{:?}", worker_states(&after, WORKER));
    for (lb, pid) in LBS.iter().zip(&pids) {
        assert_ne!(
            &haproxy_worker_pid(&lab, lb.name),
            pid,
            "{}: not reloaded",
            lb.name
        );
    }
    applied(&lab, &[]);
    wait_all_up();
}

/// HAProxy on `lb` stopped (its master, as a crash or a stop would) and started again by the
/// lab's repair; `forget` removes its state file first, as a fresh /var/lib would.
fn restart_haproxy(lab: &Lab, lb: &str, forget: bool) {
    let pid = lab.daemon_pid(lb, "/run/haproxy.pid");
    let out = lab.exec(lb, &["kill", &pid.to_string()]);
    assert!(out.status.success(), "{}", describe("kill haproxy", &out));
    wait_for(Duration::from_secs(10), "HAProxy stopped", || {
        let out = lab.exec(lb, &["kill", "-0", &pid.to_string()]);
        (!out.status.success()).then_some(())
    });
    if forget {
        let out = lab.exec(lb, &["rm", "-f", "/var/lib/haproxy/server-state"]);
        assert!(out.status.success(), "{}", describe("rm", &out));
    }
    lab.bring_up();
    assert_ne!(
        lab.daemon_pid(lb, "/run/haproxy.pid"),
        pid,
        "{lb}: not restarted"
    );
    // a holder whose HAProxy stopped gives the VIP up (process tracking), and `status` rightly
    // exits 1 while nobody holds it: let the election settle first
    lab.wait_single_vip_holder(&LBS, Duration::from_secs(20));
}

/// A drain lasts across HAProxy restarts: from its state file when it has one, and from
/// lbctl's record (plan names the load balancer, apply sets it again, without a reload) when
/// it does not.
#[test]
fn a_drain_lasts_across_restarts_and_the_record_brings_back_what_a_restart_lost() {
    let lab = Lab::up();
    applied(&lab, &[]);
    wait_all_up();
    Lbctl::on_lab()
        .args(["drain", "--worker", WORKER, "--backend", "mysql"])
        .timeout(60)
        .stdout_has("k8s-worker-2 drained on lb1, lb2, lb3")
        .run();
    let mysql = |status: &Value| -> Vec<(String, String)> {
        worker_states(status, WORKER)
            .into_iter()
            .filter(|(_, b, _)| b == "mysql")
            .map(|(lb, _, s)| (lb, s))
            .collect()
    };
    let expect = |pairs: [(&str, &str); 3]| -> Vec<(String, String)> {
        pairs.map(|(a, b)| (a.into(), b.into())).into()
    };

    // with its state file: DRAIN from the moment it starts
    restart_haproxy(&lab, "lb2", false);
    let now = mysql(&status());
    eprintln!("right after restarting lb2's HAProxy with its state file: {now:?}");
    assert_eq!(
        now,
        expect([("lb1", "DRAIN"), ("lb2", "DRAIN"), ("lb3", "DRAIN")])
    );

    // without it: HAProxy forgot, lbctl's record did not
    restart_haproxy(&lab, "lb3", true);
    let now = mysql(&status());
    eprintln!("right after restarting lb3's HAProxy without its state file: {now:?}");
    assert_eq!(now[2].0, "lb3");
    assert_ne!(now[2].1, "DRAIN", "{now:?}");
    let shown = Lbctl::on_lab()
        .arg("status")
        .timeout(60)
        .stdout_has("not in force here although lbctl set it: mysql/k8s-worker-2 drain")
        .run();
    assert_eq!(
        shown.stdout.matches("not in force here").count(),
        1,
        "only lb3: {}",
        shown.stdout
    );
    Lbctl::on_lab()
        .arg("plan")
        .timeout(60)
        .stdout_has(
            "lb3: out of line, apply brings it in line: mysql/k8s-worker-2 drain: HAProxy lost it",
        )
        .stdout_has("Plan: 0 to change, 3 unchanged; 1 load balancer to bring in line")
        .run();
    Lbctl::on_lab()
        .args(["plan", "--detailed-exitcode"])
        .timeout(60)
        .exit(2)
        .run();
    let pid = haproxy_worker_pid(&lab, "lb3");
    Lbctl::on_lab()
        .args(["apply", "--yes"])
        .timeout(120)
        .stdout_has("lb3: brought in line")
        .run();
    assert_eq!(haproxy_worker_pid(&lab, "lb3"), pid, "lb3 reloaded");
    assert_eq!(
        mysql(&status()),
        expect([("lb1", "DRAIN"), ("lb2", "DRAIN"), ("lb3", "DRAIN")])
    );
    Lbctl::on_lab()
        .args(["plan", "--detailed-exitcode"])
        .timeout(60)
        .run();
    Lbctl::on_lab()
        .args(["ready", "--worker", WORKER])
        .timeout(60)
        .run();
}

/// A load balancer unreachable during a drain is named, and the next drain (of anything)
/// brings it in line on the way, without an apply.
#[test]
fn the_next_drain_brings_a_load_balancer_that_missed_one_in_line() {
    let lab = Lab::up();
    applied(&lab, &[]);
    wait_all_up();
    let dir = lb3_unreachable("admin-missed");
    Lbctl::new()
        .args(["-i", dir.to_str().unwrap(), "--connect-timeout", "2"])
        .args(["drain", "--worker", WORKER, "--backend", "mysql"])
        .timeout(60)
        .exit(1)
        .stdout_has("lb3: not changed: unreachable")
        .stdout_has("k8s-worker-2 drained on lb1, lb2 (run ")
        .stdout_has("; not on lb3")
        .run();
    Lbctl::on_lab()
        .args([
            "drain",
            "--worker",
            "k8s-worker-3",
            "--backend",
            "postgresql",
        ])
        .timeout(60)
        .stdout_has("brought in line: mysql/k8s-worker-2 drain")
        .stdout_has("k8s-worker-3 drained on lb1, lb2, lb3")
        .run();
    let states = worker_states(&status(), WORKER);
    assert!(
        states
            .iter()
            .all(|(_, b, s)| (b == "mysql") == (s == "DRAIN")),
        "{states:?}"
    );
    Lbctl::on_lab()
        .args(["plan", "--detailed-exitcode"])
        .timeout(60)
        .run();
    for worker in [WORKER, "k8s-worker-3"] {
        Lbctl::on_lab()
            .args(["ready", "--worker", worker])
            .timeout(60)
            .run();
    }
}

/// lb3 cut off the network (every packet in and out dropped, inside its namespace) while
/// lbctl keeps an SSH connection to it open from an earlier run, as it does by default
/// (`--ssh-persist`): that connection fails only once its keep-alives go unanswered. The
/// drain names lb3 unreachable and changes lb1 and lb2, as it does when lb3's connection
/// cannot be opened at all; it used to change no load balancer. `maint` and `weight` share
/// the drain's way to the load balancers, and each is tried the same way, a connection kept
/// to lb3 (by `status`, which used to close the connections it opened) before its cut.
#[test]
fn a_load_balancer_cut_off_behind_a_kept_connection_is_unreachable_and_the_others_change() {
    const OTHER: &str = "k8s-worker-3";
    let lab = Lab::up();
    applied(&lab, &[]);
    wait_all_up();
    let rules = [
        "INPUT ! -i lo -m comment --comment lbctl-test-cut -j DROP",
        "OUTPUT ! -o lo -m comment --comment lbctl-test-cut -j DROP",
    ];
    // the command, what it says it did, and the server's state it leaves on lb1 and lb2
    let commands: [(&[&str], String, &str); 3] = [
        (
            &["drain", "--worker", WORKER, "--backend", "mysql"],
            format!("{WORKER} drained on lb1, lb2 (run "),
            "DRAIN",
        ),
        (
            &["maint", "--worker", OTHER, "--backend", "mysql"],
            format!("{OTHER} in maintenance on lb1, lb2 (run "),
            "MAINT",
        ),
        (
            &[
                "weight",
                "--worker",
                WORKER,
                "--backend",
                "postgresql",
                "--weight",
                "7",
            ],
            format!("{WORKER} at weight 7 on lb1, lb2 (run "),
            "UP",
        ),
    ];
    for (args, done, state) in commands {
        // keeps a connection to every load balancer for the next run
        Lbctl::on_lab().args(["status"]).timeout(60).run();
        for rule in rules {
            let out = lab.exec("lb3", &["sh", "-c", &format!("iptables -w 5 -I {rule}")]);
            assert!(out.status.success(), "{}", describe("iptables", &out));
        }
        let started = Instant::now();
        let run = Lbctl::on_lab().args(args).timeout(120).output();
        let took = started.elapsed();
        for rule in rules {
            lab.exec("lb3", &["sh", "-c", &format!("iptables -w 5 -D {rule}")]);
        }
        // lb3, hearing no advert while cut off, took the VIP as well: until it hears lb1 again
        lab.wait_single_vip_holder(&LBS, Duration::from_secs(20));
        eprintln!(
            "{args:?} with lb3 cut off: exit {} after {took:?}\n{}{}",
            run.code, run.stdout, run.stderr
        );
        assert_eq!(run.code, 1, "{args:?}: a load balancer was not reached");
        assert!(
            run.stdout.contains("lb3: not changed: unreachable"),
            "{args:?}: {}",
            run.stdout
        );
        // through the connection `status` kept (a new one would time out connecting), and
        // said as the master said it, not as its socket's "unexpected end of file"
        assert!(
            run.stdout.contains(&format!(
                "the SSH connection was lost: Timeout, server {} not responding",
                LBS[2].ip
            )),
            "{args:?}: {}",
            run.stdout
        );
        assert!(run.stdout.contains(&done), "{args:?}: {}", run.stdout);
        let status = status();
        let worker = args[2];
        let backend = args[4];
        for (lb, b, s) in worker_states(&status, worker) {
            if b == backend && lb != "lb3" {
                assert_eq!(s, state, "{args:?}: {lb} {b}");
            } else if state != "UP" {
                // lb3's own checks may still see the worker DOWN from the cut
                assert_ne!(s, state, "{args:?}: {lb} {b}");
            }
        }
        if args[0] == "weight" {
            for (lb, b, weight, _, _) in worker_weights(&status, worker) {
                if b == backend {
                    assert_eq!(
                        weight == 7,
                        lb != "lb3",
                        "{args:?}: {lb} {b} weight {weight}"
                    );
                }
            }
        }
    }
    // back on the network, the next commands bring lb3 in line on their way
    Lbctl::on_lab()
        .args(["weight", "--worker", WORKER, "--reset"])
        .timeout(60)
        .stdout_has(format!(
            "{WORKER} at its configured weight on lb1, lb2, lb3"
        ))
        .run();
    for worker in [WORKER, OTHER] {
        Lbctl::on_lab()
            .args(["ready", "--worker", worker])
            .timeout(60)
            .stdout_has(format!("{worker} ready on lb1, lb2, lb3"))
            .run();
    }
    Lbctl::on_lab()
        .args(["plan", "--detailed-exitcode"])
        .timeout(60)
        .run();
}

/// A drain's script on a load balancer holds the apply lock while it waits for lbctl to have
/// heard from every load balancer. Found with the apply (`apply::a_held_apply_cut_off_from_lbctl_frees_its_lock_once_the_cut_heals`):
/// one cut off from lbctl meanwhile went on waiting after lbctl gave up, its host's sshd
/// having nothing to send, and every apply and drain there was refused for hours. The script
/// says it still waits every 5 s; once the cut heals, that reaches lbctl's machine, which
/// answers with a reset, and the script ends with its lock free and nothing changed.
///
/// Deterministic: the first load balancer's lock is held (by the test) for longer than a drain
/// waits for it (10 s), so that the others are held, ready, when the last one is cut, and the
/// drain then fails there: no load balancer changes. lbctl's machine forgets the dead
/// connection (`ss -K`) once lbctl has ended, as a longer cut would make it.
#[test]
fn a_drain_held_on_a_load_balancer_cut_off_from_lbctl_frees_its_lock_once_the_cut_heals() {
    const LOCK: &str = "/run/lbctl.apply.lock";
    let lab = Lab::up();
    applied(&lab, &[]);
    wait_all_up();
    let (slow, cut) = (LBS[0], LBS[2]);
    let locked = |host: &str| {
        !lab.exec(host, &["flock", "-n", LOCK, "true"])
            .status
            .success()
    };
    let holding = lab.exec(
        slow.name,
        &[
            "sh",
            "-c",
            &format!("setsid flock {LOCK} sleep 14 </dev/null >/dev/null 2>&1 &"),
        ],
    );
    assert!(holding.status.success(), "{}", describe("flock", &holding));
    wait_for(Duration::from_secs(5), "the test's lock", || {
        locked(slow.name).then_some(())
    });
    let drain = Lbctl::on_lab()
        .args(["drain", "--worker", WORKER, "--backend", "mysql"])
        .timeout(120);
    let draining = std::thread::spawn(move || drain.output());
    wait_for(
        Duration::from_secs(20),
        &format!("the drain to hold {}'s lock", cut.name),
        || {
            assert!(!draining.is_finished(), "lbctl ended before the cut");
            locked(cut.name).then_some(())
        },
    );
    // its report and "ready" on their way
    sleep(Duration::from_millis(500));
    let rules = [
        "INPUT ! -i lo -m comment --comment lbctl-test-drain-cut -j DROP",
        "OUTPUT ! -o lo -m comment --comment lbctl-test-drain-cut -j DROP",
    ];
    for rule in rules {
        let out = lab.exec(cut.name, &["sh", "-c", &format!("iptables -w 5 -I {rule}")]);
        assert!(out.status.success(), "{}", describe("iptables", &out));
    }
    let run = draining.join().unwrap();
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let forgot = lab::run(10, "ss", &["-K", "-t", "dst", cut.ip, "dport", "=", "22"]);
    assert!(forgot.status.success(), "{}", describe("ss -K", &forgot));
    // the script still waits, its lock held: what the keep-alives are for
    assert!(
        locked(cut.name),
        "{} freed its lock while cut off",
        cut.name
    );
    for rule in rules {
        let out = lab.exec(cut.name, &["sh", "-c", &format!("iptables -w 5 -D {rule}")]);
        assert!(out.status.success(), "{}", describe("iptables", &out));
    }
    let healed = Instant::now();
    wait_for(
        Duration::from_secs(15),
        &format!("{}'s lock free after the cut healed", cut.name),
        || (!locked(cut.name)).then_some(()),
    );
    eprintln!(
        "drain with {} cut off: lbctl exit {}; its lock free {:?} after the cut healed\n{}{}",
        cut.name,
        run.code,
        healed.elapsed(),
        run.stdout,
        run.stderr
    );
    // nothing changed anywhere, and the next drain goes through
    lab.wait_single_vip_holder(&LBS, Duration::from_secs(20));
    let states = worker_states(&status(), WORKER);
    assert!(
        states.iter().all(|(_, _, state)| state != "DRAIN"),
        "{states:?}"
    );
    Lbctl::on_lab()
        .args(["drain", "--worker", WORKER, "--backend", "mysql"])
        .timeout(60)
        .stdout_has(format!("{WORKER} drained on lb1, lb2, lb3"))
        .run();
    Lbctl::on_lab()
        .args(["ready", "--worker", WORKER])
        .timeout(60)
        .run();
}

/// `(lb, backend, weight, configured_weight, set_by_lbctl)` of every server of the worker,
/// TCP and UDP, from `status --json`.
fn worker_weights(status: &Value, worker: &str) -> Vec<(String, String, Value, Value, Value)> {
    let mut out = Vec::new();
    for h in status["hosts"].as_array().unwrap() {
        for b in h["backends"].as_array().unwrap() {
            for s in b["servers"].as_array().unwrap() {
                if s["name"] == worker {
                    out.push((
                        h["host"].as_str().unwrap().to_string(),
                        b["name"].as_str().unwrap().to_string(),
                        s["weight"].clone(),
                        s["configured_weight"].clone(),
                        s["set_by_lbctl"].clone(),
                    ));
                }
            }
        }
    }
    out
}

/// `weight`: new connections through the VIP follow the worker's weight on every load
/// balancer, TCP (HAProxy's runtime weight, no reload) and UDP (nginx's `weight=`); `status`
/// shows it as in force; 0 takes the worker out of new traffic and an apply keeps it so;
/// `--reset` puts the configured weight back.
#[test]
fn weight_moves_new_traffic_for_tcp_and_udp_and_reset_puts_it_back() {
    let lab = Lab::up();
    applied(&lab, &[]);
    wait_all_up();
    let pids: Vec<String> = LBS
        .iter()
        .map(|lb| haproxy_worker_pid(&lab, lb.name))
        .collect();

    Lbctl::on_lab()
        .args(["weight", "--worker", WORKER, "--weight", "5"])
        .args(["--reason", "canary"])
        .timeout(60)
        .stdout_has("k8s-worker-2 at weight 5 on lb1, lb2, lb3")
        .run();
    let weights = worker_weights(&status(), WORKER);
    assert_eq!(weights.len(), 12, "4 backends on 3 LBs: {weights:?}");
    for (lb, backend, weight, configured, set) in &weights {
        assert_eq!(weight, 5, "{lb} {backend}");
        assert_eq!(configured, 1, "{lb} {backend}");
        assert_eq!(set, &serde_json::json!(["weight 5"]), "{lb} {backend}");
    }
    for (lb, pid) in LBS.iter().zip(&pids) {
        assert_eq!(
            &haproxy_worker_pid(&lab, lb.name),
            pid,
            "{}: reloaded",
            lb.name
        );
        assert!(
            nginx_stream(&lab, lb.name)
                .contains("weight=5; # lbctl:wireguard/k8s-worker-2 weight=5"),
            "{}",
            lb.name
        );
    }
    let text = Lbctl::on_lab()
        .arg("status")
        .timeout(60)
        .stdout_has("k8s-worker-2 at weight 5 since")
        .run()
        .stdout;
    assert!(!text.contains("not in force"), "{text}");
    let wireguard = text
        .lines()
        .filter(|l| l.trim_start().starts_with("wireguard (udp)") && l.contains(WORKER))
        .collect::<Vec<_>>();
    assert_eq!(wireguard.len(), 3, "{text}");
    assert!(
        wireguard.iter().all(|l| l.contains("UP, weight 5")),
        "{text}"
    );
    // 5 against 1 and 1: HAProxy's round robin gives the worker 5 connections of every 7,
    // nginx's consistent hash about as many flows
    let tcp = tcp_answers(&lab, 3306, 14);
    let to_worker = tcp.iter().filter(|a| *a == WORKER).count();
    assert!(answered(&tcp) >= 12 && to_worker >= 8, "{tcp:?}");
    let udp = udp_answers(&lab, 21);
    let to_worker = udp.iter().filter(|a| *a == WORKER).count();
    assert!(answered(&udp) >= 18 && to_worker >= 9, "{udp:?}");

    // 0: no new traffic, TCP or UDP; an apply that reloads every HAProxy keeps it
    Lbctl::on_lab()
        .args(["weight", "--worker", WORKER, "--weight", "0"])
        .timeout(60)
        .stdout_has("k8s-worker-2 at weight 0 on lb1, lb2, lb3")
        .run();
    applied(&lab, &["-e", "haproxy_maxconn=4001"]);
    let now = status();
    for (lb, backend, weight, _, set) in worker_weights(&now, WORKER) {
        assert_eq!(set, serde_json::json!(["weight 0"]), "{lb} {backend}");
        if backend != "wireguard" {
            assert_eq!(weight, 0, "{lb} {backend}");
        }
    }
    for h in now["hosts"].as_array().unwrap() {
        let wireguard = h["backends"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == "wireguard")
            .unwrap();
        let server = wireguard["servers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == WORKER)
            .unwrap();
        assert_eq!(server["nginx_down"], true, "{server}");
    }
    let tcp = tcp_answers(&lab, 3306, 9);
    assert!(answered(&tcp) >= 6, "{tcp:?}");
    assert!(!tcp.iter().any(|a| a == WORKER), "{tcp:?}");
    let udp = udp_answers(&lab, 9);
    assert!(answered(&udp) >= 6, "{udp:?}");
    assert!(!udp.iter().any(|a| a == WORKER), "{udp:?}");

    // --reset: the configured weight, nothing set by lbctl, the worker back in the traffic
    Lbctl::on_lab()
        .args(["weight", "--worker", WORKER, "--reset"])
        .timeout(60)
        .stdout_has("k8s-worker-2 at its configured weight on lb1, lb2, lb3")
        .run();
    for (lb, backend, weight, configured, set) in worker_weights(&status(), WORKER) {
        assert_eq!(weight, configured, "{lb} {backend}");
        assert_eq!(set, serde_json::json!([]), "{lb} {backend}");
    }
    for lb in LBS {
        let stream = nginx_stream(&lab, lb.name);
        assert!(
            stream.contains("fail_timeout=10s; # lbctl:wireguard/k8s-worker-2\n"),
            "{}: {stream}",
            lb.name
        );
    }
    wait_for(
        Duration::from_secs(20),
        "k8s-worker-2 answering TCP and UDP",
        || {
            (tcp_answers(&lab, 3306, 3).iter().any(|a| a == WORKER)
                && udp_answers(&lab, 3).iter().any(|a| a == WORKER))
            .then_some(())
        },
    );
}
