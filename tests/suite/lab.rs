//! Acceptance of the namespace lab (`tests/lab/lab.sh`, issue 3): real hosts on one machine.
//!
//! Runs as root only, and fails (never skips) otherwise or when the lab cannot come up.
//! Serialization with other lab tests: every test that touches the lab holds
//! `support::lab::Lab` (see `tests/suite/support/lab.rs`): an in-process mutex, then an
//! exclusive `flock` on `/run/lbctl-lab.test.lock` held by a child process for the guard's
//! life and released even if the test process dies. Dropping the guard runs `lab.sh down`
//! unless `LBCTL_KEEP_LAB=1`.
//!
//!     cargo test --test suite -- lab:: --nocapture

use crate::support::lab::{self, CLIENT, Host, LBS, Lab, WORKERS, describe, run};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A host of `inventory/lab/hosts.ini`, with the group it is listed in.
struct InventoryHost {
    name: String,
    group: String,
    address: String,
}

/// Reads the lab inventory the way Ansible would for what this test needs: hosts with
/// `ansible_host`, and `[all:vars]`.
fn read_inventory() -> (Vec<InventoryHost>, BTreeMap<String, String>) {
    let path = lab::inventory().join("hosts.ini");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let (mut hosts, mut vars, mut group) = (Vec::new(), BTreeMap::new(), String::new());
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            group = name.to_string();
        } else if group == "all:vars" {
            let (key, value) = line.split_once('=').expect("key=value in [all:vars]");
            vars.insert(key.to_string(), value.trim_matches('\'').to_string());
        } else {
            let mut words = line.split_whitespace();
            let name = words.next().expect("host name").to_string();
            let address = words
                .find_map(|w| w.strip_prefix("ansible_host="))
                .unwrap_or_else(|| panic!("{}: host {name} has no ansible_host", path.display()))
                .to_string();
            hosts.push(InventoryHost {
                name,
                group: group.clone(),
                address,
            });
        }
    }
    (hosts, vars)
}

/// Runs `command` on `address` with exactly the SSH settings the inventory gives Ansible,
/// plus BatchMode and StrictHostKeyChecking=yes: an unknown or changed host key fails.
fn ssh_like_ansible(vars: &BTreeMap<String, String>, address: &str, command: &str) -> String {
    let user = &vars["ansible_user"];
    let key = &vars["ansible_ssh_private_key_file"];
    let mut args: Vec<&str> = vars["ansible_ssh_common_args"].split_whitespace().collect();
    let target = format!("{user}@{address}");
    args.extend([
        "-i",
        key,
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=5",
        &target,
        command,
    ]);
    let out = run(30, "ssh", &args);
    assert!(
        out.status.success(),
        "{}",
        describe(&format!("ssh {target} {command:?}"), &out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// From the client: every worker's TCP NodePort answers with the worker's name, and its UDP
/// NodePort replies to a datagram with it.
fn assert_workers_answer(lab: &Lab) {
    for worker in WORKERS {
        let tcp = format!("TCP:{}:30306,connect-timeout=3", worker.ip);
        let out = lab.tcp_greeting(CLIENT.netns, &tcp);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            worker.name,
            "{}",
            describe(&format!("TCP {}:30306 from the client", worker.ip), &out)
        );
        let out = lab.udp_reply(CLIENT.netns, worker.ip, 31820, "ping\n");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            worker.name,
            "{}",
            describe(&format!("UDP {}:31820 from the client", worker.ip), &out)
        );
    }
}

/// A process alive now (zombies are dead: this machine's init may reap them late),
/// identified by pid and start time so that a recycled pid does not count.
fn process_identity(pid: &str) -> Option<(String, String)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // after the parenthesized command name: field 3 (state) ... field 22 (starttime)
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    if fields.next()? == "Z" {
        return None;
    }
    let start = fields.nth(18)?.to_string();
    Some((pid.to_string(), start))
}

/// Every process in the lab's namespaces right now.
fn lab_processes(namespaces: &[&str]) -> Vec<(String, String)> {
    namespaces
        .iter()
        .flat_map(|ns| {
            let out = run(10, "ip", &["netns", "pids", ns]);
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(process_identity)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn lab_namespaces_present() -> Vec<String> {
    let out = run(10, "ip", &["netns", "list"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|ns| ns.starts_with("lab-"))
        .map(str::to_string)
        .collect()
}

#[test]
fn lab_sh_rejects_bad_arguments_with_usage() {
    let script = lab::script();
    for args in [&[][..], &["sideways"][..], &["exec", "lb1"][..]] {
        let out = run(10, script.to_str().expect("utf-8 path"), args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            describe("lab.sh with bad args", &out)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("usage:"),
            "{}",
            describe("lab.sh with bad args prints no usage", &out)
        );
    }
}

#[test]
fn lab_comes_up_serves_fails_over_and_goes_down_cleanly() {
    let start = Instant::now();
    let lab = Lab::up();
    eprintln!(
        "lab up (incl. waiting for the lock) in {:?}",
        start.elapsed()
    );
    let status = lab.script(60, &["status"]);
    assert!(
        status.status.success(),
        "{}",
        describe("lab.sh status after up", &status)
    );

    // NodePorts, from the client namespace
    assert_workers_answer(&lab);

    // SSH to every inventory host with the inventory's own key and known_hosts; each lands
    // in its own host (hostname) and view
    let (hosts, vars) = read_inventory();
    let groups: Vec<(&str, &str)> = hosts
        .iter()
        .map(|h| (h.name.as_str(), h.group.as_str()))
        .collect();
    for (name, group) in [
        ("lb1", "haproxy_servers"),
        ("lb2", "haproxy_servers"),
        ("lb3", "haproxy_servers"),
        ("k8s-worker-1", "workers"),
        ("k8s-worker-2", "workers"),
        ("k8s-worker-3", "workers"),
        ("client", "clients"),
    ] {
        assert!(
            groups.contains(&(name, group)),
            "inventory lacks {name} in [{group}]"
        );
    }
    for host in &hosts {
        let hostname = ssh_like_ansible(&vars, &host.address, "hostname");
        assert_eq!(
            hostname.trim(),
            host.name,
            "ssh to {} landed elsewhere",
            host.address
        );
    }

    // private /etc/haproxy: a file written on lb1 over SSH is absent on lb2
    let marker = format!("/etc/haproxy/lab-isolation-{}", std::process::id());
    let (lb1, lb2) = (&hosts[0], &hosts[1]);
    assert_eq!((lb1.name.as_str(), lb2.name.as_str()), ("lb1", "lb2"));
    ssh_like_ansible(&vars, &lb1.address, &format!("echo lb1 > {marker}"));
    let on_lb1 = ssh_like_ansible(&vars, &lb1.address, &format!("cat {marker}"));
    assert_eq!(on_lb1.trim(), "lb1");
    let on_lb2 = ssh_like_ansible(
        &vars,
        &lb2.address,
        &format!("test -e {marker} && echo present || echo absent"),
    );
    assert_eq!(
        on_lb2.trim(),
        "absent",
        "{marker} written on lb1 is visible on lb2"
    );
    ssh_like_ansible(&vars, &lb1.address, &format!("rm -f {marker}"));

    // each host has its own PID namespace: over SSH, pid 1 is the host's init, the daemons'
    // pid files name live processes, and pgrep sees the host's own HAProxy only
    for host in hosts.iter().filter(|h| h.name.starts_with("lb")) {
        let seen = ssh_like_ansible(
            &vars,
            &host.address,
            "cat /proc/1/comm; m=$(cat /run/haproxy.pid); \
             kill -0 $m $(cat /run/keepalived.pid) && echo alive; \
             [ \"$(pgrep -x haproxy | sort)\" = \"$({ echo $m; pgrep -P $m; } | sort)\" ] && \
             echo own; pgrep -c -f 'nodeport[.]py' || true",
        );
        assert_eq!(
            seen.split_whitespace().collect::<Vec<_>>(),
            ["bash", "alive", "own", "0"],
            "{}: the host's own processes only (its init, live pid files, every HAProxy process \
             its own master's, no worker's NodePort)",
            host.name
        );
    }

    // keepalived elects exactly one VIP holder, the highest priority
    let holder = lab.wait_single_vip_holder(&LBS, Duration::from_secs(10));
    assert_eq!(holder.name, "lb1", "lb1 has the highest priority");

    // stopping keepalived on the holder (by the pid in its pid file, inside the host) moves
    // the VIP to another load balancer
    let pid = lab
        .daemon_pid(holder.name, "/run/keepalived.pid")
        .to_string();
    let stopped = Instant::now();
    let out = lab.exec(holder.name, &["kill", "-TERM", &pid]);
    assert!(
        out.status.success(),
        "{}",
        describe("kill keepalived", &out)
    );
    let others: Vec<Host> = LBS.iter().copied().filter(|lb| *lb != holder).collect();
    let successor = lab.wait_single_vip_holder(&others, Duration::from_secs(10));
    let moved = stopped.elapsed();
    let all_holders = lab.vip_holders(&LBS);
    assert_eq!(
        all_holders,
        vec![successor],
        "the VIP must be held exactly once"
    );
    eprintln!(
        "VIP moved {} -> {} in {moved:?}",
        holder.name, successor.name
    );

    // restore: once the old keepalived has exited, up restarts it and lb1 takes the VIP back
    lab::wait_for(
        Duration::from_secs(15),
        "the stopped keepalived to exit",
        || {
            let probe = lab.exec(holder.name, &["test", "-e", &format!("/proc/{pid}")]);
            (!probe.status.success()).then_some(())
        },
    );
    let repair = lab.bring_up();
    let restored = Instant::now();
    lab.wait_vip_held_by(&LBS, holder, Duration::from_secs(10));
    eprintln!(
        "{} took the VIP back {:?} after up",
        holder.name,
        restored.elapsed()
    );
    let status = lab.script(60, &["status"]);
    assert!(
        status.status.success(),
        "{}",
        describe("lab.sh status after repair", &status)
    );
    eprintln!("repair (up) in {repair:?}");

    // down leaves no namespace, bridge, process or state behind
    let namespaces: Vec<&str> = LBS
        .iter()
        .chain(WORKERS.iter())
        .chain([CLIENT].iter())
        .map(|h| h.netns)
        .collect();
    let before = lab_processes(&namespaces);
    assert!(
        before.len() >= 7,
        "expected the lab's daemons, found {before:?}"
    );
    let down = lab.bring_down();
    eprintln!("lab down in {down:?}");
    assert_eq!(
        lab_namespaces_present(),
        Vec::<String>::new(),
        "namespaces left behind"
    );
    assert!(
        !std::path::Path::new("/sys/class/net/lbctl-lab0").exists(),
        "bridge lbctl-lab0 left behind"
    );
    let survivors: Vec<_> = before
        .iter()
        .filter(|(pid, start)| {
            process_identity(pid)
                .as_ref()
                .is_some_and(|(_, s)| s == start)
        })
        .collect();
    assert!(
        survivors.is_empty(),
        "lab processes survived down: {survivors:?}"
    );
    assert!(
        !std::path::Path::new(lab::STATE_DIR).exists(),
        "state dir left behind"
    );
    let status = lab.script(60, &["status"]);
    assert!(
        !status.status.success(),
        "status must fail when the lab is down"
    );

    // a second up works
    let again = lab.bring_up();
    eprintln!("second lab up in {again:?}");
    assert_workers_answer(&lab);
    lab.wait_single_vip_holder(&LBS, Duration::from_secs(10));
}
