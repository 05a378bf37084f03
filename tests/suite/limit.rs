//! `--limit PATTERN`: the load balancers it selects are the ones ansible-core's `--limit`
//! selects from the same inventory (compared with the real Ansible), and on the lab a limited
//! plan and apply touch only those hosts, never leaving the VIP without a host to go to.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::ansible::ansible_command;
use crate::support::lab::{self, Lab};
use crate::support::{Lbctl, scratch, write};

const INVENTORY: &str = "\
[haproxy_servers]
lb1 ansible_host=10.0.0.1
lb2 ansible_host=10.0.0.2
lb3 ansible_host=10.0.0.3
lb4 ansible_host=10.0.0.4
[eu]
lb1
lb2
w1
[us]
lb3
lb4
[workers]
w1
w2
[k8s:children]
workers
";

const LBS: [&str; 4] = ["lb1", "lb2", "lb3", "lb4"];

/// The load balancers lbctl works on with `--limit pattern` (none when it refuses).
fn lbctl_selects(inventory: &str, pattern: &str) -> BTreeSet<String> {
    let run = Lbctl::new()
        .args([
            "-i",
            inventory,
            "-e",
            "@tests/inputs/seed004-vars.yaml",
            "--json",
        ])
        .args(["validate", "--limit", pattern])
        .output();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "--limit {pattern}: not JSON ({e}): {}{}",
            run.stdout, run.stderr
        )
    });
    match report["hosts"].as_array() {
        Some(hosts) if run.code == 0 => hosts
            .iter()
            .map(|h| h.as_str().unwrap().to_string())
            .collect(),
        _ => {
            assert_eq!(
                run.code, 1,
                "--limit {pattern}: {}{}",
                run.stdout, run.stderr
            );
            BTreeSet::new()
        }
    }
}

/// The load balancers `ansible all --limit pattern --list-hosts` lists (none when it refuses).
fn ansible_selects(dir: &std::path::Path, pattern: &str) -> BTreeSet<String> {
    let out = ansible_command("ansible", dir)
        .args(["-i", "hosts", "all", "--list-hosts", "--limit", pattern])
        .output()
        .expect("run ansible");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .map(str::trim)
        .filter(|h| LBS.contains(h))
        .map(String::from)
        .collect()
}

#[test]
fn limit_selects_the_load_balancers_ansible_selects() {
    let dir = scratch("limit-vs-ansible");
    write(&dir, "hosts", INVENTORY);
    write(&dir, "retry", "lb2\nlb4\n");
    let inventory = dir.join("hosts");
    let inventory = inventory.to_str().unwrap();
    let retry = format!("@{}", dir.join("retry").display());
    let patterns = [
        "lb3",
        "lb1,lb2",
        "lb1:lb2",
        " lb1 , lb3 ",
        "all:!lb1",
        "!lb1",
        "!lb1:!us",
        "eu",
        "eu:&haproxy_servers",
        "haproxy_servers:!us",
        "us:eu",
        "all:&eu:!w1",
        "lb*:!lb4",
        "lb?",
        "*",
        "~lb[13]",
        "~(lb1|w)",
        "haproxy_servers[0]",
        "haproxy_servers[-1]",
        "haproxy_servers[1:2]",
        "haproxy_servers[2:]",
        "haproxy_servers[0:0]",
        "lb1,nosuch",
        "k8s",
        "nosuch",
        &retry,
    ];
    let mut differ = Vec::new();
    for pattern in patterns {
        let (ours, theirs) = (
            lbctl_selects(inventory, pattern),
            ansible_selects(&dir, pattern),
        );
        if ours != theirs {
            differ.push(format!(
                "--limit {pattern:?}: lbctl {ours:?}, ansible {theirs:?}"
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "lbctl and ansible-core disagree:\n{}",
        differ.join("\n")
    );

    // The one addition: a bare host range, which Ansible reads as a subscript of a group or
    // host `lb` that does not exist.
    assert!(ansible_selects(&dir, "lb[1:2]").is_empty());
    assert_eq!(
        lbctl_selects(inventory, "lb[1:2]"),
        BTreeSet::from(["lb1".to_string(), "lb2".to_string()])
    );
}

#[test]
fn a_pattern_file_of_stale_names_warns_about_the_first_twenty_and_counts_the_rest() {
    let dir = scratch("limit-stale");
    write(&dir, "hosts", INVENTORY);
    let stale: String = (1..=25).map(|i| format!("gone{i}\n")).collect();
    write(&dir, "limit.txt", &format!("lb3\n{stale}"));
    let run = Lbctl::new()
        .args([
            "-i",
            dir.join("hosts").to_str().unwrap(),
            "-e",
            "@tests/inputs/seed004-vars.yaml",
            "--limit",
            &format!("@{}", dir.join("limit.txt").display()),
            "validate",
        ])
        .stdout_has("valid: 1 load balancer (lb3)")
        .stderr_has("ignoring: gone20\n")
        .stderr_has("warning: --limit: 5 more host patterns matched nothing and are ignored")
        .run();
    let warned = run
        .stderr
        .lines()
        .filter(|l| l.contains("could not match supplied host pattern"))
        .count();
    assert_eq!(warned, 20, "{}", run.stderr);
    assert!(!run.stderr.contains("gone21"), "{}", run.stderr);
}

#[test]
fn a_limit_that_selects_no_load_balancer_is_an_error_naming_them() {
    let dir = scratch("limit-none");
    write(&dir, "hosts", INVENTORY);
    let inventory = dir.join("hosts");
    Lbctl::new()
        .args([
            "-i",
            inventory.to_str().unwrap(),
            "-e",
            "@tests/inputs/seed004-vars.yaml",
        ])
        .args(["validate", "--limit", "k8s,lb9"])
        .stderr_has("warning: --limit: could not match supplied host pattern, ignoring: lb9")
        .stderr_has(
            "error: --limit k8s,lb9 selects none of the load balancers (lb1, lb2, lb3, lb4)",
        )
        .stderr_has("the pattern matched: w1, w2")
        .exit(1)
        .run();
    Lbctl::new()
        .args([
            "-i",
            inventory.to_str().unwrap(),
            "-e",
            "@tests/inputs/seed004-vars.yaml",
        ])
        .args(["validate", "--limit", "haproxy_servers[9]"])
        .stderr_has("no host matched the subscripted pattern `haproxy_servers[9]`")
        .exit(1)
        .run();
}

/// The lab's vars with one server's check interval changed: every load balancer has a change.
const CHANGE: &str = "@tests/inputs/limit-change.yaml";

#[test]
fn limited_plan_and_apply_touch_only_the_selected_load_balancers() {
    let lab = Lab::up();
    Lbctl::on_lab().args(["apply", "--yes"]).run();

    let plan = Lbctl::on_lab()
        .args([
            "-e",
            CHANGE,
            "plan",
            "--limit",
            "lb3",
            "--detailed-exitcode",
        ])
        .stdout_has("lb3: 1 file to change")
        .stdout_has("Plan: 1 to change, 0 unchanged.")
        .stdout_lacks("lb1")
        .stdout_lacks("lb2")
        .exit(2)
        .run();
    assert!(
        !plan.stdout.contains("lb1:") && !plan.stdout.contains("lb2:"),
        "{}",
        plan.stdout
    );

    let applied = Lbctl::on_lab()
        .args([
            "-e", CHANGE, "--json", "apply", "--yes", "--limit", "all:!lb1",
        ])
        .run()
        .json();
    let hosts: Vec<(&str, &str)> = applied["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["host"].as_str().unwrap(), h["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(hosts, [("lb2", "applied"), ("lb3", "applied")], "{applied}");
    // lb1 was left alone: it alone still has the change pending.
    let after = Lbctl::on_lab()
        .args(["-e", CHANGE, "--json", "plan"])
        .run()
        .json();
    let pending: Vec<(&str, &str)> = after["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["host"].as_str().unwrap(), h["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        pending,
        [
            ("lb1", "would-change"),
            ("lb2", "unchanged"),
            ("lb3", "unchanged")
        ],
        "{after}"
    );

    // lb1 holds the VIP; with keepalived stopped on lb2 and lb3, nobody could take it over
    // while lb1 reloads: a limited apply of lb1 alone is refused, and lb1 keeps its file.
    let before = lab.exec("lb1", &["sha256sum", "/etc/haproxy/haproxy.cfg"]);
    for lb in ["lb2", "lb3"] {
        // keepalived takes a moment to stop its children and remove its pid file.
        let stop = "kill $(cat /run/keepalived.pid) && i=0 && while [ -e /run/keepalived.pid ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; [ ! -e /run/keepalived.pid ]";
        let out = lab.exec(lb, &["sh", "-c", stop]);
        assert!(
            out.status.success(),
            "{}",
            crate::support::lab::describe("kill keepalived", &out)
        );
    }
    Lbctl::on_lab()
        .args(["-e", CHANGE, "apply", "--yes", "--limit", "lb1"])
        .stderr_has("refusing to change lb1, which holds the VIP, without a load balancer able to take it over")
        .stderr_has("lb2: keepalived is not running")
        .stderr_has("lb3: keepalived is not running")
        .exit(1)
        .run();
    // The same limit saved as a plan: applying it asks the load balancers the plan leaves
    // out, as the live apply did, and is refused the same way.
    let dir = scratch("limit-saved-plan");
    let saved = dir.join("lb1.plan");
    let saved = saved.to_str().unwrap();
    Lbctl::on_lab()
        .args(["-e", CHANGE, "plan", "--limit", "lb1", "--out", saved])
        .stdout_has("lb1 (holds the VIP): 1 file to change")
        .run();
    Lbctl::on_lab()
        .args(["apply", saved])
        .stderr_has("refusing to change lb1, which holds the VIP, without a load balancer able to take it over")
        .stderr_has("lb2: keepalived is not running")
        .stderr_has("lb3: keepalived is not running")
        .exit(1)
        .run();
    let after = lab.exec("lb1", &["sha256sum", "/etc/haproxy/haproxy.cfg"]);
    assert_eq!(before.stdout, after.stdout, "lb1 changed");
    lab.bring_up();
    // With lb2 ready to take the VIP again, the same apply goes through.
    Lbctl::on_lab()
        .args(["-e", CHANGE, "apply", "--yes", "--limit", "lb1"])
        .stdout_has("lb1: applied")
        .run();
    // Back as planned on, the saved plan applies too.
    Lbctl::on_lab()
        .args(["apply", "--yes", "--limit", "lb1"])
        .stdout_has("lb1: applied")
        .run();
    Lbctl::on_lab()
        .args(["apply", saved])
        .stdout_has("lb1: applied")
        .run();
    Lbctl::on_lab().args(["apply", "--yes"]).run();
}

/// `status` and the drills under a limit that leaves out the VIP holder: the hosts left out
/// are not asked, so "none of those asked holds the VIP" is no outage (status exits 0, a
/// worker drill runs), two holders among them still are split brain, and an --lb drill, which
/// must see the VIP move, is refused while a host that can take it is left out.
#[test]
fn status_and_drills_under_a_limit_do_not_call_the_vip_lost_when_its_holder_is_left_out() {
    let lab = Lab::up();
    Lbctl::on_lab().args(["apply", "--yes"]).run();
    let holder = lab
        .wait_single_vip_holder(&lab::LBS, Duration::from_secs(20))
        .name
        .to_string();
    let other = if holder == "lb2" { "lb3" } else { "lb2" };

    Lbctl::on_lab()
        .args(["status", "--limit", other])
        .stdout_has(format!("{other}: VIP 10.77.77.100/24 not here"))
        .stdout_has("the VIP is not held here (--limit leaves out")
        .stdout_lacks("no load balancer holds")
        .run();
    let json = Lbctl::on_lab()
        .args(["--json", "status", "--limit", other])
        .run()
        .json();
    assert_eq!(json["vip_problems"], serde_json::json!([]), "{json}");
    let left_out: Vec<&str> = json["vip_hosts_left_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(left_out.contains(&holder.as_str()), "{json}");
    // the whole tier is still judged as before: one holder
    Lbctl::on_lab()
        .args(["status", "--limit", &format!("{holder},{other}")])
        .stdout_has(format!("VIP held by {holder}"))
        .run();

    Lbctl::on_lab()
        .args([
            "failover-test",
            "--worker",
            "k8s-worker-2",
            "--backend",
            "mysql",
            "--hold",
            "3s",
            "--limit",
            other,
        ])
        .stdout_has("PASSED")
        .stdout_has(format!("  {other} "))
        .stdout_lacks(format!("  {holder} "))
        .run();

    Lbctl::on_lab()
        .args([
            "failover-test",
            "--lb",
            &holder,
            "--limit",
            &format!("{holder},{other}"),
        ])
        .stderr_has("--limit leaves out")
        .stderr_has("which can hold the VIP: an --lb drill watches every load balancer")
        .exit(1)
        .run();
}
