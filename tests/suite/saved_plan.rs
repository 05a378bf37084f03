//! Saved plans on the lab: `plan --out FILE` writes a private file, `apply FILE` applies
//! exactly it, and refuses, changing no host, when a host changed since the plan.

use std::os::unix::fs::PermissionsExt;

use crate::support::lab::{LBS, Lab};
use crate::support::{Lbctl, scratch};

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
