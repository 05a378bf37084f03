//! Input written by a hostile or careless user: every crafted file either gets located errors
//! (file, line, key and a hint, exit 1) within bounded time and memory, or renders files the
//! daemons accept. No panic, no stack overflow, no runaway allocation.

use crate::support::{Lbctl, scratch, write};

#[test]
fn inventory_and_variable_errors_are_reported_together() {
    let dir = scratch("hostile-inventory-and-vars");
    write(
        &dir,
        "hosts",
        "[haproxy_servers]\nlb1 ansible_host=10.0.0.1\nlb2 junk\n",
    );
    write(
        &dir,
        "group_vars/all.yml",
        "haproxy_tcp_backends:\n  - name: mysql\n    port: 70000\n    servers:\n      - {name: w1, address: 10.0.1.1, port: 30306}\n",
    );
    let hosts = dir.join("hosts").display().to_string();
    let vars = dir.join("group_vars/all.yml").display().to_string();
    Lbctl::new()
        .args([
            "-i",
            &hosts,
            "--project-dir",
            dir.to_str().unwrap(),
            "validate",
        ])
        .stderr_has(format!("error: {hosts}:3:"))
        .stderr_has(format!(
            "error: {vars}:3: haproxy_tcp_backends[0].port: 70000 is out of range"
        ))
        .stderr_has("2 problems found")
        .exit(1)
        .run();
}
