//! `lbctl plan` / `apply` against the lab's real hosts (sshd, HAProxy, keepalived, nginx in
//! network namespaces). One test walks the whole story, since every step builds on the last.

use std::{
    collections::BTreeSet,
    process::{Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use crate::support::lab::{self, CLIENT_NS, Host, LBS, Lab, VIP};
use crate::support::{self, Lbctl, scratch, write};

/// Python run in the lab client: `count` connections to `addr:port`, one after another, each
/// reading the server's greeting (the worker's name) before closing, as a database client
/// does. Prints one line per connection: the name, or `FAIL <time> <error>`.
const CLIENT: &str = r#"
import socket, sys, time
addr, port, count, pause = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
for i in range(count):
    try:
        with socket.create_connection((addr, port), timeout=5) as s:
            s.settimeout(5)
            name = s.recv(64).decode().strip()
            print(name if name.startswith("k8s-worker-") else f"FAIL {time.time():.3f} reply {name!r}")
    except OSError as e:
        print(f"FAIL {time.time():.3f} {e}")
    sys.stdout.flush()
    time.sleep(pause)
"#;

fn client_args(addr: &str, port: u16, count: u32, pause: &str) -> Vec<String> {
    [
        "python3",
        "-c",
        CLIENT,
        addr,
        &port.to_string(),
        &count.to_string(),
        pause,
    ]
    .map(str::to_string)
    .to_vec()
}

/// One exchange from the lab client: the worker's name, or None on failure.
fn tcp_name(lab: &Lab, addr: &str, port: u16) -> Option<String> {
    let args = client_args(addr, port, 1, "0");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = lab.netns(CLIENT_NS, 10, &args, b"");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    text.starts_with("k8s-worker-").then_some(text)
}

fn file_on(lab: &Lab, host: &str, path: &str) -> String {
    String::from_utf8_lossy(&lab.exec(host, &["cat", path]).stdout).into_owned()
}

/// HAProxy's master pid and its children on a host: a reload replaces the children.
fn haproxy_processes(lab: &Lab, host: &str) -> String {
    let out = lab.exec(
        host,
        &[
            "sh",
            "-c",
            "m=$(cat /run/haproxy.pid); echo $m; pgrep -P $m | sort",
        ],
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The lab's vars with k8s-worker-3 removed from the mysql backend only.
fn without_worker3_in_mysql() -> String {
    let all =
        std::fs::read_to_string(support::repo_root().join("inventory/lab/group_vars/all.yml"))
            .unwrap();
    let start = all
        .find("      - name: k8s-worker-3\n        address: 10.77.77.23\n        port: 30306")
        .expect("mysql's worker-3 entry");
    let end = start
        + all[start..]
            .find("  - name: postgresql")
            .expect("next backend");
    format!("{}{}", &all[..start], &all[end..])
}

/// What a test cuts in the middle of an apply.
#[derive(Clone, Copy, Debug)]
enum Cut {
    /// lbctl is killed; the SSH master it kept (`--ssh-persist`) lives on.
    Lbctl,
    /// The SSH master connection lbctl uses for the host is killed, lbctl left alone.
    Connection,
}

/// A reload slow enough to be caught mid-way (the rollback reloads with it too).
const SLOW_RELOAD: &str = "sleep 3";

/// Starts an apply of `extra_vars` whose reload is slow, cuts `cut` while `host` reloads
/// its new configuration, and checks that the host restores `previous` on its own, then
/// waits until it is done (its apply lock free again).
fn cut_mid_reload(lab: &Lab, host: Host, previous: &str, extra_vars: &str, cut: Cut) {
    let mut slow = Lbctl::on_lab()
        .args(["-e", extra_vars, "-e"])
        .arg(format!(
            "haproxy_reload_method=command haproxy_reload_command='{SLOW_RELOAD}'"
        ))
        .args(["apply", "--yes"])
        .spawn();
    // anchored: no other command line (pgrep's own, its parents') starts with it
    let reloading = || {
        lab.exec(host.name, &["pgrep", "-f", &format!("^{SLOW_RELOAD}$")])
            .status
            .success()
    };
    lab::wait_for(Duration::from_secs(20), "the slow reload to start", || {
        if let Ok(Some(status)) = slow.try_wait() {
            panic!("lbctl ended ({status}) before {} reloaded", host.name);
        }
        reloading().then_some(())
    });
    assert_ne!(
        file_on(lab, host.name, "/etc/haproxy/haproxy.cfg"),
        previous,
        "{} reloads, yet its configuration is the previous one",
        host.name
    );
    let masters = lab.ssh_masters();
    let master = match masters
        .iter()
        .filter(|m| m.address == host.ip)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [one] => (*one).clone(),
        _ => panic!("not one SSH master for {}: {masters:?}", host.ip),
    };
    match cut {
        Cut::Lbctl => {
            let _ = slow.kill();
            let _ = slow.wait();
        }
        Cut::Connection => {
            let _ = Command::new("kill")
                .args(["-KILL", &master.pid.to_string()])
                .status();
            let status = lab::wait_for(Duration::from_secs(30), "lbctl to end", || {
                slow.try_wait().unwrap()
            });
            assert!(!status.success(), "lbctl lost {} yet {status}", host.name);
        }
    }
    lab::wait_for(
        Duration::from_secs(20),
        &format!("{} to roll back after lbctl's {cut:?} was cut", host.name),
        || (file_on(lab, host.name, "/etc/haproxy/haproxy.cfg") == previous).then_some(()),
    );
    if let Cut::Lbctl = cut {
        assert!(
            lab.ssh_masters().contains(&master),
            "the kept master {master:?} ended with lbctl: the case is not the one tested"
        );
    }
    lab::wait_for(
        Duration::from_secs(20),
        "the rolled-back apply to end",
        || {
            lab.exec(host.name, &["flock", "-n", "/run/lbctl.apply.lock", "true"])
                .status
                .success()
                .then_some(())
        },
    );
}

/// Every load balancer's haproxy.cfg is the one in `configs` (in `LBS`' order); `otherwise`
/// says what a host whose file differs did.
fn assert_haproxy_configs(lab: &Lab, configs: &[String], otherwise: &str) {
    for (h, before) in LBS.iter().zip(configs) {
        assert_eq!(
            &file_on(lab, h.name, "/etc/haproxy/haproxy.cfg"),
            before,
            "{} {otherwise}",
            h.name
        );
    }
}

fn changed_diff_lines(plan: &str) -> Vec<String> {
    plan.lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn plan_apply_rollback_and_hitless_reloads_on_the_lab() {
    let lab = Lab::up();
    // A fresh lab: only the bootstrap configs, nothing of lbctl's yet.
    lab.bring_down();
    lab.bring_up();
    let dir = scratch("apply");

    // Without a terminal and without --yes, apply refuses before touching anything.
    Lbctl::on_lab()
        .arg("apply")
        .stderr_has("pass --yes")
        .exit(1)
        .run();

    // Fresh lab -> apply. The VIP holder, as the apply finds it, goes last.
    let holder = lab.wait_single_vip_holder(&LBS, Duration::from_secs(10));
    let first = Lbctl::on_lab()
        .args(["apply", "--yes"])
        .stdout_has("Apply: 3 changed, 0 unchanged, 0 failed.")
        .stdout_has(format!("{} (holds the VIP)", holder.name))
        .run();
    let order: Vec<&str> = first
        .stdout
        .lines()
        .filter(|l| l.contains(": applied"))
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(
        order.last(),
        Some(&holder.name),
        "VIP holder {} must be changed last: {order:?}",
        holder.name
    );
    // lbctl's keepalived configuration keeps the priorities: the holder keeps the VIP.
    lab.wait_vip_held_by(&LBS, holder, Duration::from_secs(10));

    // Connections to the VIP are answered by the workers, round robin.
    let mut names = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while names.len() < 3 && Instant::now() < deadline {
        if let Some(n) = tcp_name(&lab, VIP, 3306) {
            names.insert(n);
        } else {
            sleep(Duration::from_millis(200));
        }
    }
    assert_eq!(names.len(), 3, "round robin over the VIP reached {names:?}");
    let udp = lab.udp_reply(CLIENT_NS, VIP, 51820, "ping\n");
    assert!(
        String::from_utf8_lossy(&udp.stdout).starts_with("k8s-worker-"),
        "{}",
        lab::describe("UDP via the VIP", &udp)
    );

    // Right after, nothing to change; a second apply reloads nothing.
    Lbctl::on_lab().args(["plan", "--detailed-exitcode"]).run();
    let before: Vec<String> = LBS
        .iter()
        .map(|h| haproxy_processes(&lab, h.name))
        .collect();
    Lbctl::on_lab()
        .args(["apply", "--yes"])
        .stdout_has("No changes: 3 hosts up to date")
        .run();
    let after: Vec<String> = LBS
        .iter()
        .map(|h| haproxy_processes(&lab, h.name))
        .collect();
    assert_eq!(before, after, "a no-op apply must not reload HAProxy");

    // Removing k8s-worker-3 from mysql: exit 2, and the diff is exactly that, on every LB.
    write(&dir, "no-w3.yml", &without_worker3_in_mysql());
    let no_w3 = format!("@{}", dir.join("no-w3.yml").display());
    let plan = Lbctl::on_lab()
        .args(["-e", &no_w3, "plan", "--detailed-exitcode"])
        .stdout_has("Plan: 3 to change, 0 unchanged.")
        // no secret in the plan
        .stdout_lacks("lab-stats-secret")
        .stdout_lacks("lab-vrrp")
        .exit(2)
        .run();
    let lines = changed_diff_lines(&plan.stdout);
    assert_eq!(
        lines,
        vec![
            "-    server k8s-worker-3 10.77.77.23:30306 check inter 1s fastinter 250ms rise 2 fall 2";
            3
        ],
        "{}",
        plan.stdout
    );
    let report = Lbctl::on_lab()
        .args(["-e", &no_w3, "--json", "plan"])
        .run()
        .json();
    assert_eq!(report["summary"]["changed"], 3);
    assert_eq!(report["hosts"][0]["files"][0]["action"], "update");

    // A link planted where apply keeps the previous file (by anyone who may write into
    // /etc/haproxy) is replaced, never written through, by every apply below.
    const VICTIM: &str = "/etc/haproxy/lbctl-test-victim";
    const PREV: &str = "/etc/haproxy/haproxy.cfg.lbctl-prev";
    for h in LBS {
        let out = lab.exec(
            h.name,
            &[
                "sh",
                "-c",
                &format!("echo precious >{VICTIM} && rm -f {PREV} && ln -s {VICTIM} {PREV}"),
            ],
        );
        assert!(out.status.success(), "{}", lab::describe("planting", &out));
    }

    // A broken template override fails every host's check, which all run before any host
    // changes: nothing moves anywhere.
    let first_host = order[0];
    let configs: Vec<String> = LBS
        .iter()
        .map(|h| file_on(&lab, h.name, "/etc/haproxy/haproxy.cfg"))
        .collect();
    let broken = dir.join("broken-templates");
    let builtin =
        std::fs::read_to_string(support::repo_root().join("templates/haproxy.cfg.j2")).unwrap();
    write(
        &broken,
        "haproxy.cfg.j2",
        &builtin.replace(
            "    option dontlognull\n",
            "    option dontlognull\n    this_is_not_a_directive\n",
        ),
    );
    // the host's haproxy -c output must reach the user
    let mut failed = Lbctl::on_lab()
        .args(["--templates", broken.to_str().unwrap(), "apply", "--yes"])
        .stderr_has("this_is_not_a_directive")
        .exit(1);
    for h in LBS {
        failed = failed.stderr_has(format!("error: {}: validate failed", h.name));
    }
    failed.run();
    assert_haproxy_configs(&lab, &configs, "was changed");
    let first_ip = LBS.iter().find(|h| h.name == first_host).unwrap().ip;
    assert!(
        tcp_name(&lab, first_ip, 3306).is_some(),
        "{first_host} stopped serving"
    );

    // A failing reload rolls back: the host keeps serving its previous configuration.
    // The hosts without the VIP went first, together, and failed; the VIP holder, last, was
    // told to stop and kept its configuration.
    Lbctl::on_lab()
        .args(["-e", &no_w3, "-e"])
        .arg("haproxy_reload_method=command haproxy_reload_command=false")
        .args(["apply", "--yes"])
        .stderr_has("reload failed")
        .stderr_has("rolled back")
        .stdout_has(format!("{}: not changed (another host failed", holder.name))
        .exit(1)
        .run();
    assert_haproxy_configs(&lab, &configs, "kept a configuration whose reload failed");
    assert_eq!(
        file_on(&lab, first_host, "/etc/haproxy/haproxy.cfg"),
        configs[LBS.iter().position(|h| h.name == first_host).unwrap()]
    );
    assert!(
        tcp_name(&lab, first_ip, 3306).is_some(),
        "{first_host} stopped serving after a rollback"
    );

    // A connection lost mid-apply (during a slow reload) rolls the host back too: when
    // lbctl dies while the master connection it kept lives on (an operator's lbctl killed),
    // and when that connection itself is cut.
    let host = *LBS.iter().find(|h| h.name == first_host).unwrap();
    let previous = &configs[LBS.iter().position(|h| h.name == first_host).unwrap()];
    for cut in [Cut::Lbctl, Cut::Connection] {
        cut_mid_reload(&lab, host, previous, &no_w3, cut);
        assert!(
            tcp_name(&lab, first_ip, 3306).is_some(),
            "{first_host} stopped serving after {cut:?} was cut"
        );
    }

    // Hitless: 200 connections to the VIP while every host is changed and reloaded.
    let probe = Command::new("ip")
        .args(["netns", "exec", CLIENT_NS])
        .args(client_args(VIP, 3306, 200, "0.02"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    sleep(Duration::from_millis(300));
    let started = Instant::now();
    Lbctl::on_lab()
        .args(["-e", &no_w3, "apply", "--yes"])
        .stdout_has("Apply: 3 changed")
        .run();
    let during_took = started.elapsed();
    let replies = String::from_utf8(probe.wait_with_output().unwrap().stdout).unwrap();
    let failures: Vec<&str> = replies.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(
        replies.lines().count(),
        200,
        "the probe did not finish: {replies}"
    );
    assert!(
        failures.is_empty(),
        "{} of 200 connections failed during a rolling reload that took {:?}:\n{}",
        failures.len(),
        during_took,
        failures.join("\n")
    );
    Lbctl::on_lab()
        .args(["-e", &no_w3, "plan", "--detailed-exitcode"])
        .run();
    for (h, before) in LBS.iter().zip(&configs) {
        assert_eq!(file_on(&lab, h.name, VICTIM), "precious\n", "{}", h.name);
        let kind = lab.exec(h.name, &["stat", "-c", "%F", PREV]);
        assert_eq!(
            String::from_utf8_lossy(&kind.stdout).trim(),
            "regular file",
            "{}: {PREV} after apply",
            h.name
        );
        assert_eq!(&file_on(&lab, h.name, PREV), before, "{}", h.name);
    }
}

#[test]
fn unreachable_host_is_an_error_not_a_hang() {
    let dir = scratch("apply-unreachable");
    // 10.77.77.250 is on the lab subnet but nothing answers there (no lab needed for this one:
    // without the lab the address is unroutable, which fails just as fast).
    write(
        &dir,
        "hosts",
        "[haproxy_servers]\nghost ansible_host=10.77.77.250 ansible_user=root\n",
    );
    let started = Instant::now();
    Lbctl::new()
        .args([
            "-i",
            dir.to_str().unwrap(),
            "--connect-timeout",
            "2",
            "plan",
        ])
        .stdout_has("ghost: unreachable: ghost: connect failed")
        .exit(1)
        .run();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "plan hung for {:?}",
        started.elapsed()
    );
}

/// `apply` returns once the new configuration serves: the first connection after it meets the
/// new backends, never HAProxy's process from before the reload (which takes new connections
/// until the new one runs: before lbctl waited for it, 6 of 30 and 9 of 40 such first
/// connections on the lab still reached the worker the apply had just taken out).
#[test]
fn the_first_connection_after_an_apply_meets_the_new_configuration() {
    let lab = Lab::up();
    let dir = scratch("apply-first-connection");
    // mysql on one worker only, the other one in each variant
    let variant = |worker: u8| {
        write(
            &dir,
            &format!("mysql-on-{worker}.yml"),
            &format!(
                "haproxy_tcp_backends:\n  - name: mysql\n    port: 3306\n    servers:\n      - name: k8s-worker-{worker}\n        address: 10.77.77.2{worker}\n        port: 30306\n        check_interval: 1s\n"
            ),
        );
        format!("@{}", dir.join(format!("mysql-on-{worker}.yml")).display())
    };
    let on = [variant(1), variant(2)];
    Lbctl::on_lab().args(["-e", &on[0], "apply", "--yes"]).run();
    let mut stale = Vec::new();
    for round in 1..=12 {
        let worker = round % 2;
        Lbctl::on_lab()
            .args(["-e", &on[worker], "apply", "--yes"])
            .stdout_has("Apply: 3 changed")
            .run();
        let expected = format!("k8s-worker-{}", worker + 1);
        // at once, as a script's next line would (socat starts in a few milliseconds)
        let out = lab.tcp_greeting(CLIENT_NS, &format!("TCP:{VIP}:3306"));
        let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if got != expected {
            stale.push(format!("apply {round}: {got:?}, expected {expected}"));
        }
    }
    assert!(
        stale.is_empty(),
        "first connections after an apply: {stale:?}"
    );
}

#[test]
fn a_reload_haproxys_master_refuses_is_rolled_back_not_reported_applied() {
    let lab = Lab::up();
    Lbctl::on_lab().args(["apply", "--yes"]).run();
    let configs: Vec<String> = LBS
        .iter()
        .map(|h| file_on(&lab, h.name, "/etc/haproxy/haproxy.cfg"))
        .collect();
    // an address no load balancer has: `haproxy -c` accepts the file (it binds nothing), the
    // new process cannot bind it, and HAProxy's master keeps the old process running
    let dir = scratch("apply-refused-reload");
    write(
        &dir,
        "elsewhere.yml",
        "haproxy_tcp_backends:\n  - name: mysql\n    port: 3306\n    bind: 10.99.99.99\n    servers:\n      - name: k8s-worker-1\n        address: 10.77.77.21\n        port: 30306\n",
    );
    let vars = format!("@{}", dir.join("elsewhere.yml").display());
    Lbctl::on_lab()
        .args(["-e", &vars, "apply", "--yes"])
        .timeout(120)
        .exit(1)
        .stderr_has("HAProxy's master refused the new configuration")
        .stderr_has("rolled back")
        .run();
    // the first host failed and was put back; no other host was changed
    assert_haproxy_configs(&lab, &configs, "does not hold its previous configuration");
    Lbctl::on_lab()
        .args(["plan", "--detailed-exitcode"])
        .exit(0)
        .run();
    // and the tier serves with it
    assert!(
        tcp_name(&lab, VIP, 3306).is_some(),
        "mysql through the VIP after the rollback"
    );
    Lbctl::on_lab()
        .args(["status"])
        .stdout_has("VIP held by lb1")
        .run();
}

/// HAProxy killed (SIGKILL, master and workers) on a load balancer between two applies: its
/// reload (HAProxy's master CLI) cannot reach it. Found only at that reload, in the
/// one-host-at-a-time part, the hosts before it would have changed already, and the tier
/// would be half applied. Every host's check asks first whether the daemons it will reload
/// run: the apply, and a saved plan's, are refused naming the host and HAProxy, and no host
/// changes or reloads.
#[test]
fn an_apply_to_a_tier_with_a_dead_haproxy_is_refused_before_any_host_changes() {
    let lab = Lab::up();
    Lbctl::on_lab().args(["apply", "--yes"]).run();
    let holder = lab.wait_single_vip_holder(&LBS, Duration::from_secs(20));
    // the last host to change before the holder: another one would go before it
    let dead = LBS.iter().rfind(|h| h.name != holder.name).unwrap().name;
    let configs: Vec<String> = LBS
        .iter()
        .map(|h| file_on(&lab, h.name, "/etc/haproxy/haproxy.cfg"))
        .collect();
    lab.kill_master(dead, "/run/haproxy.pid");
    let alive: Vec<(&str, String)> = LBS
        .iter()
        .filter(|h| h.name != dead)
        .map(|h| (h.name, haproxy_processes(&lab, h.name)))
        .collect();
    let refusal = format!(
        "error: {dead}: preflight failed: `kill -0 $(cat /run/haproxy.pid)`: HAProxy is not running: pid "
    );
    let how = format!(
        "start it (e.g. `systemctl start haproxy`) and apply again, or leave this host out with `--limit 'all:!{dead}'`"
    );

    let run = Lbctl::on_lab()
        .args(["-e", "haproxy_maxconn=4097", "apply", "--yes"])
        .timeout(120)
        .exit(1)
        .stderr_has(&refusal)
        .stderr_has(&how)
        .stdout_has("Apply: 0 changed, 0 unchanged, 1 failed.")
        .run();
    assert!(!run.stderr.contains("rolled back"), "{}", run.stderr);
    let json = Lbctl::on_lab()
        .args(["-e", "haproxy_maxconn=4097", "apply", "--yes", "--json"])
        .timeout(120)
        .exit(1)
        .run()
        .json();
    for host in json["hosts"].as_array().unwrap() {
        if host["host"] == dead {
            assert_eq!(host["outcome"], "failed", "{host}");
            assert_eq!(host["failure"]["step"], "preflight", "{host}");
            let said = host["failure"]["stderr"].as_str().unwrap();
            assert!(said.contains(&how), "{said}");
        } else {
            assert_eq!(host["outcome"], "skipped", "{host}");
        }
        assert_eq!(host["rolled_back"], false, "{host}");
    }

    // a saved plan's apply asks the same
    let dir = scratch("apply-dead-haproxy");
    let plan = dir.join("plan.json");
    let plan = plan.to_str().unwrap();
    Lbctl::on_lab()
        .args(["-e", "haproxy_maxconn=4097", "plan", "--out", plan])
        .timeout(120)
        .run();
    Lbctl::on_lab()
        .args(["apply", plan])
        .timeout(120)
        .exit(1)
        .stderr_has(&refusal)
        .stdout_has("Apply: 0 changed, 0 unchanged, 1 failed.")
        .run();

    // no host changed, and none was reloaded
    assert_haproxy_configs(&lab, &configs, "was changed");
    for (host, processes) in &alive {
        assert_eq!(&haproxy_processes(&lab, host), processes, "{host}");
    }

    // `lab.sh up` starts the dead HAProxy again, with that file: nothing left to apply
    lab.bring_up();
    Lbctl::on_lab()
        .args(["plan", "--detailed-exitcode"])
        .exit(0)
        .run();
}

/// Found on the lab: a host cut off the network (every packet in and out dropped, in its
/// namespace) while its apply script waited for the go-ahead. lbctl gave up on it (its SSH
/// keep-alives unanswered) and ended; the host's sshd, hearing nothing, kept the session and
/// the script waiting, with its file staged and the apply lock held, for hours after the cut
/// healed: every apply and drain there was refused meanwhile. The held script now says it
/// still waits every 5 s; once the cut heals, TCP's retransmission of that reaches lbctl's
/// machine, whose ssh has exited and which answers with a reset: sshd closes the session, and
/// the script stops as when told to. Its lock is free again, its staged file gone, its live
/// file the previous one, and the next apply changes every host.
///
/// Deterministic: the first host of the rollout reloads slowly (a file of the test's on that
/// host alone makes its reload command sleep first), so every other host is held, ready and
/// waiting, when the second one is cut. lbctl's machine keeps the closed connection a while
/// (orphaned, retransmitting its last data and its FIN): a cut that heals before the kernel
/// gives up on it lets the FIN through, which ends the session without any keep-alive. The
/// test removes it (`ss -K`) once lbctl has ended, as a cut of a few minutes would, so that
/// the cut can be short.
#[test]
fn a_held_apply_cut_off_from_lbctl_frees_its_lock_once_the_cut_heals() {
    const SLOW: &str = "/run/lbctl-test-slow-reload";
    const LOCK: &str = "/run/lbctl.apply.lock";
    const STAGED: &str = "/etc/haproxy/haproxy.cfg.lbctl-new";
    let lab = Lab::up();
    Lbctl::on_lab().args(["apply", "--yes"]).timeout(120).run();
    let holder = lab.wait_single_vip_holder(&LBS, Duration::from_secs(20));
    // the rollout's order: the hosts without the VIP first, in inventory order
    let others: Vec<Host> = LBS.iter().copied().filter(|h| *h != holder).collect();
    let (first, cut) = (others[0], others[1]);
    let configs: Vec<String> = LBS
        .iter()
        .map(|h| file_on(&lab, h.name, "/etc/haproxy/haproxy.cfg"))
        .collect();
    let previous = &configs[LBS.iter().position(|h| *h == cut).unwrap()];
    let dir = scratch("apply-held-cut");
    write(
        &dir,
        "slow.yml",
        &format!(
            "haproxy_maxconn: 4097\nhaproxy_reload_method: command\nhaproxy_reload_command: '[ ! -e {SLOW} ] || sleep 20; echo reload | socat -t 5 STDIO UNIX-CONNECT:/run/haproxy/master.sock'\n"
        ),
    );
    let slow = format!("@{}", dir.join("slow.yml").display());
    let touched = lab.exec(first.name, &["touch", SLOW]);
    assert!(
        touched.status.success(),
        "{}",
        lab::describe("touch", &touched)
    );

    let apply = Lbctl::on_lab()
        .args(["-e", &slow, "apply", "--yes"])
        .timeout(120);
    let applying = std::thread::spawn(move || apply.output());
    lab::wait_for(
        Duration::from_secs(30),
        &format!("{} to reload (every other host held)", first.name),
        || {
            assert!(
                !applying.is_finished(),
                "lbctl ended before {} reloaded",
                first.name
            );
            lab.exec(first.name, &["pgrep", "-f", "^sleep 20$"])
                .status
                .success()
                .then_some(())
        },
    );
    let rules = [
        "INPUT ! -i lo -m comment --comment lbctl-test-held-cut -j DROP",
        "OUTPUT ! -o lo -m comment --comment lbctl-test-held-cut -j DROP",
    ];
    for rule in rules {
        let out = lab.exec(cut.name, &["sh", "-c", &format!("iptables -w 5 -I {rule}")]);
        assert!(out.status.success(), "{}", lab::describe("iptables", &out));
    }
    let cut_at = Instant::now();
    let run = applying.join().unwrap();
    let lbctl_took = cut_at.elapsed();
    assert_eq!(
        run.code, 1,
        "lbctl lost {} yet:\n{}{}",
        cut.name, run.stdout, run.stderr
    );
    assert!(
        run.stdout.contains(&format!("{}: applied", first.name))
            && run.stderr.contains(&format!("{}:", cut.name)),
        "{}{}",
        run.stdout,
        run.stderr
    );
    // lbctl's machine forgets the connection (see above)
    let forgot = lab::run(10, "ss", &["-K", "-t", "dst", cut.ip, "dport", "=", "22"]);
    assert!(
        forgot.status.success(),
        "{}",
        lab::describe("ss -K", &forgot)
    );
    // the script still waits, its lock held: what the keep-alives are for
    let held = |host: Host| {
        !lab.exec(host.name, &["flock", "-n", LOCK, "true"])
            .status
            .success()
    };
    assert!(held(cut), "{} freed its lock while cut off", cut.name);
    for rule in rules {
        let out = lab.exec(cut.name, &["sh", "-c", &format!("iptables -w 5 -D {rule}")]);
        assert!(out.status.success(), "{}", lab::describe("iptables", &out));
    }
    let healed = Instant::now();
    lab::wait_for(
        Duration::from_secs(180),
        &format!("{} to free its apply lock after the cut healed", cut.name),
        || (!held(cut)).then_some(()),
    );
    eprintln!(
        "{} cut {lbctl_took:?} before lbctl ended; its lock free {:?} after the cut healed",
        cut.name,
        healed.elapsed()
    );
    let left = lab.exec(
        cut.name,
        &["sh", "-c", &format!("! ls {STAGED} 2>/dev/null")],
    );
    assert!(
        left.status.success(),
        "{}",
        lab::describe("staged file left", &left)
    );
    assert_eq!(
        &file_on(&lab, cut.name, "/etc/haproxy/haproxy.cfg"),
        previous,
        "{} does not hold its previous configuration",
        cut.name
    );
    // it took the VIP while it heard no advert: until it hears the holder again
    lab.wait_single_vip_holder(&LBS, Duration::from_secs(20));

    // The next apply changes every host that needs it, the cut one included.
    let rm = lab.exec(first.name, &["rm", "-f", SLOW]);
    assert!(rm.status.success(), "{}", lab::describe("rm", &rm));
    Lbctl::on_lab()
        .args(["-e", &slow, "apply", "--yes"])
        .timeout(120)
        .stdout_has("Apply: 2 changed, 1 unchanged, 0 failed.")
        .run();
    Lbctl::on_lab()
        .args(["-e", &slow, "plan", "--detailed-exitcode"])
        .timeout(120)
        .run();
}

/// keepalived's state on `host`: whether its configuration exists, and the pid of a running
/// keepalived (none when it does not run).
fn keepalived_on(lab: &Lab, host: &str) -> (bool, Option<u32>) {
    let out = lab.exec(
        host,
        &[
            "sh",
            "-c",
            "test -e /etc/keepalived/keepalived.conf && echo conf; p=$(cat /run/keepalived.pid 2>/dev/null) && kill -0 \"$p\" 2>/dev/null && echo \"pid $p\"; true",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let pid = text
        .lines()
        .find_map(|l| l.strip_prefix("pid ").and_then(|p| p.trim().parse().ok()));
    (text.lines().any(|l| l == "conf"), pid)
}

/// Makes `host` a fresh load balancer as far as keepalived goes: not running, no configuration.
fn make_fresh(lab: &Lab, host: &str) {
    lab.kill_master(host, "/run/keepalived.pid");
    let removed = lab.exec(
        host,
        &[
            "rm",
            "-f",
            "/etc/keepalived/keepalived.conf",
            "/etc/keepalived/keepalived.conf.lbctl-prev",
        ],
    );
    assert!(
        removed.status.success(),
        "{}",
        lab::describe("rm", &removed)
    );
    assert_eq!(keepalived_on(lab, host), (false, None));
}

/// Found while reading the reload path: Debian's keepalived does not start without a
/// configuration (its unit's `ConditionFileNotEmpty`), so on a fresh load balancer it does not
/// run, and the first apply's reload of it (`systemctl reload`, or a signal to its pid) acted on
/// nothing: that host failed, and the rollout stopped there. An apply that installs keepalived's
/// configuration where keepalived does not run now starts it (`keepalived_start_command`),
/// verifies that it runs, and a rollback stops it again. A host whose configuration exists
/// and whose keepalived is dead is still refused before any host changes (see the test above).
#[test]
fn a_first_apply_starts_the_keepalived_it_installs_and_a_rollback_stops_it_again() {
    let lab = Lab::up();
    Lbctl::on_lab().args(["apply", "--yes"]).run();
    let holder = lab.wait_single_vip_holder(&LBS, Duration::from_secs(20));
    let fresh = LBS.iter().rfind(|h| h.name != holder.name).unwrap().name;
    let limit = fresh.to_string();

    // A keepalived that still runs without its file (someone removed it) is reloaded, not
    // started: the plan says nothing of a start.
    let removed = lab.exec(fresh, &["rm", "-f", "/etc/keepalived/keepalived.conf"]);
    assert!(
        removed.status.success(),
        "{}",
        lab::describe("rm", &removed)
    );
    let run = Lbctl::on_lab()
        .args(["plan", "--limit", &limit])
        .stdout_has(format!("{fresh}: 1 file to change"))
        .run();
    assert!(!run.stdout.contains("will start"), "{}", run.stdout);

    // Where it does not run either, the plan says that the apply starts it, for this host
    // only, and so does its JSON.
    make_fresh(&lab, fresh);
    let run = Lbctl::on_lab()
        .args(["plan", "--detailed-exitcode"])
        .exit(2)
        .stdout_has(format!(
            "{fresh}: will start keepalived: it does not run, and this apply installs its configuration"
        ))
        .run();
    assert_eq!(
        run.stdout.matches("will start").count(),
        1,
        "{}",
        run.stdout
    );
    let json = Lbctl::on_lab().args(["plan", "--json"]).run().json();
    for host in json["hosts"].as_array().unwrap() {
        let starts = if host["host"] == fresh {
            serde_json::json!(["keepalived"])
        } else {
            serde_json::Value::Null
        };
        assert_eq!(host["starts"], starts, "{host}");
    }

    // A start that fails once keepalived runs: the host is rolled back, its keepalived
    // stopped again and its file removed.
    let start = "setsid keepalived -n -l -D -f /etc/keepalived/keepalived.conf -p /run/keepalived.pid -r /run/keepalived_vrrp.pid -c /run/keepalived_checkers.pid </dev/null >>/var/log/keepalived.log 2>&1 &";
    let failing = format!("keepalived_start_command='{start} sleep 1; echo cannot enable; exit 3'");
    let run = Lbctl::on_lab()
        .args(["-e", &failing, "apply", "--yes", "--limit", &limit])
        .timeout(120)
        .exit(1)
        .stderr_has(format!("error: {fresh}: reload failed"))
        .stderr_has("cannot enable")
        .stderr_has(format!("{fresh}: rolled back"))
        .run();
    assert!(!run.stdout.contains("started keepalived"), "{}", run.stdout);
    // the lab's stop command signals keepalived, which takes a moment to end
    lab::wait_for_or_explain(
        Duration::from_secs(5),
        &format!("{fresh}: keepalived stopped by the rollback"),
        || (keepalived_on(&lab, fresh) == (false, None)).then_some(()),
        || format!("{:?}\n{}", keepalived_on(&lab, fresh), run.stderr),
    );

    // The first apply proper: keepalived installed, started and running, the VIP where it was.
    let json = Lbctl::on_lab()
        .args(["apply", "--yes", "--limit", &limit, "--json"])
        .timeout(120)
        .run()
        .json();
    let host = &json["hosts"][0];
    assert_eq!(host["outcome"], "applied", "{host}");
    let reload = host["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "reload")
        .unwrap_or_else(|| panic!("no reload step: {host}"));
    assert_eq!(
        reload["detail"], "keepalived (started: lbctl installs it, and it did not run)",
        "{host}"
    );
    let (conf, pid) = keepalived_on(&lab, fresh);
    assert!(conf && pid.is_some(), "{fresh}: keepalived does not run");
    lab.wait_vip_held_by(&LBS, holder, Duration::from_secs(10));
    Lbctl::on_lab()
        .args(["plan", "--detailed-exitcode"])
        .exit(0)
        .run();
    Lbctl::on_lab().args(["status"]).exit(0).run();

    // the human report says so
    make_fresh(&lab, fresh);
    Lbctl::on_lab()
        .args(["apply", "--yes", "--limit", &limit])
        .timeout(120)
        .stdout_has(format!(
            "{fresh}: started keepalived: it did not run, and this apply installed its configuration"
        ))
        .run();
    assert!(keepalived_on(&lab, fresh).1.is_some());
}
