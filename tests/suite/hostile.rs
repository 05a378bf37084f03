//! Input written by a hostile or careless user: every crafted case either gets located errors
//! (file, line, key and a hint, exit 1) or renders files the daemons accept; none panics, and
//! each runs under a virtual-memory limit (`ulimit -v`) and is measured by `/usr/bin/time`:
//! at most 200 MiB resident and 1 s of CPU.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::support::{Lbctl, mkfifo, require_root_and, scratch, write, write_private};

const HOSTS: &str = "[haproxy_servers]\nlb1 ansible_host=10.0.0.1\nlb2 ansible_host=10.0.0.2\n";
const ALL: &str = "group_vars/all.yml";
const TCP: &str = "haproxy_tcp_backends:\n  - name: mysql\n    port: 3306\n    servers:\n      - {name: w1, address: 10.0.1.1, port: 30306}\n";
const VIP: &str = "keepalived_vip: 10.0.0.100/24\nkeepalived_interface: eth0\n";

/// The limits every crafted case runs under.
const MAX_RSS_KIB: u64 = 200 * 1024;
const MAX_CPU_SECONDS: f64 = 1.0;
const VIRTUAL_MEMORY_KIB: u64 = 1024 * 1024;
/// The most an error's report may be, whatever the size of the value it is about.
const MAX_ERROR_BYTES: usize = 16 * 1024;

/// What a case must give.
enum Expect {
    /// Exit 1 with a diagnostic at this file (relative to the case) and line, whose key
    /// contains `key` and whose message or hint contains `text`; every diagnostic with a hint.
    Refused {
        file: &'static str,
        line: usize,
        key: &'static str,
        text: &'static str,
    },
    /// Exit 0; every rendered file passes the real program's check.
    Renders,
}

struct Case {
    name: &'static str,
    /// Files of the inventory directory (written as given, or made by `make`).
    files: Vec<(&'static str, String)>,
    /// Extra arguments before `validate`/`render`.
    args: Vec<String>,
    expect: Expect,
    /// How many diagnostics at most (one located error per real problem).
    max_errors: usize,
}

fn case(name: &'static str, files: Vec<(&'static str, String)>, expect: Expect) -> Case {
    Case {
        name,
        files,
        args: Vec::new(),
        expect,
        max_errors: 1,
    }
}

fn refused(file: &'static str, line: usize, key: &'static str, text: &'static str) -> Expect {
    Expect::Refused {
        file,
        line,
        key,
        text,
    }
}

fn hosts_and(vars: &str) -> Vec<(&'static str, String)> {
    vec![("hosts", HOSTS.to_string()), (ALL, vars.to_string())]
}

fn cases() -> Vec<Case> {
    let deep_list = format!("haproxy_tcp_backends:\n{}x\n", "- ".repeat(20_000));
    let deep_flow = format!(
        "haproxy_tcp_backends: {}{}\n",
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let row = vec![format!("*a{}", i - 1); 9].join(", ");
        bomb.push_str(&format!("a{i}: &a{i} [{row}]\n"));
    }
    let mut chain = String::from("[haproxy_servers]\nlb1 ansible_host=10.0.0.1\n");
    for i in 0..3_000 {
        chain.push_str(&format!("[g{i}:children]\ng{}\n", i + 1));
    }
    chain.push_str("[g3000]\nlb1\n");
    vec![
        case(
            "a 40 KB list nested 20,000 deep",
            hosts_and(&deep_list),
            refused(
                ALL,
                2,
                "haproxy_tcp_backends[0]",
                "nested more than 64 levels",
            ),
        ),
        case(
            "a flow list nested 20,000 deep",
            hosts_and(&deep_flow),
            refused(ALL, 1, "haproxy_tcp_backends", "invalid YAML"),
        ),
        case(
            "an alias bomb, 9 levels of 9",
            hosts_and(&bomb),
            refused(ALL, 7, "a6[0]", "would copy more than"),
        ),
        case(
            "a mapping of 20,000 keys, one repeated",
            hosts_and(&format!(
                "a: {{{}k0: 2}}\n",
                (0..20_000)
                    .map(|i| format!("k{i}: 1, "))
                    .collect::<String>()
            )),
            refused(ALL, 1, "a.k0", "appears twice"),
        ),
        case(
            "5,000 servers in one backend, the last a duplicate",
            hosts_and(&format!(
                "haproxy_tcp_backends:\n  - name: mysql\n    port: 3306\n    servers:\n{}      - {{name: w0, address: 10.0.1.1, port: 30306}}\n",
                (0..5_000)
                    .map(|i| format!("      - {{name: w{i}, address: 10.0.1.1, port: 30306}}\n"))
                    .collect::<String>()
            )),
            refused(ALL, 5_005, "servers[5000].name", "duplicate server name `w0`"),
        ),
        case(
            "a backend name of a megabyte, quoted in its error",
            hosts_and(&format!(
                "haproxy_tcp_backends:\n  - name: \"{}\"\n    port: 3306\n    servers:\n      - {{name: w1, address: 10.0.1.1, port: 30306}}\n",
                "n".repeat(1 << 20)
            )),
            refused(
                ALL,
                2,
                "haproxy_tcp_backends[0].name",
                "at most 64 characters",
            ),
        ),
        case(
            "a key of a megabyte (an explicit `?` key), named in its error",
            hosts_and(&format!(
                "haproxy_tcp_backends:\n  - name: mysql\n    port: 3306\n    ? {}\n    : 1\n    servers:\n      - {{name: w1, address: 10.0.1.1, port: 30306}}\n",
                "k".repeat(1 << 20)
            )),
            refused(ALL, 4, "haproxy_tcp_backends[0]", "allowed keys here"),
        ),
        case(
            "a template of the user's writing 200 MB",
            vec![
                ("hosts", HOSTS.to_string()),
                (ALL, TCP.to_string()),
                (
                    "templates/haproxy.cfg.j2",
                    "global\n{% for i in range(200) %}# {{ 'x' * 1000000 }}\n{% endfor %}\n"
                        .to_string(),
                ),
            ],
            refused(
                "templates/haproxy.cfg.j2",
                0,
                "",
                "would be more than 64 MiB",
            ),
        ),
        case(
            "a template reading the vars of a host the inventory does not have",
            hosts_and(
                "haproxy_tcp_backends:\n  - name: mysql\n    port: 3306\n    servers:\n      - {name: w1, address: \"{{ hostvars['w9'].ansible_host }}\", port: 30306}\n",
            ),
            refused(
                ALL,
                5,
                "haproxy_tcp_backends[0].servers[0].address",
                "`hostvars['w9']` names a host or group the inventory does not have",
            ),
        ),
        case(
            "a template padding a name to 10 ** 12 characters",
            hosts_and(&format!(
                "{TCP}haproxy_stats_user: \"{{{{ 'a'.zfill(10 ** 12) }}}}\"\nhaproxy_stats_password: pw\n"
            )),
            refused(ALL, 6, "haproxy_stats_user", "would be over 64 MiB"),
        ),
        case(
            "a format of five million directives given to strftime",
            hosts_and(&format!(
                "{TCP}haproxy_stats_user: \"{{{{ ('%c' * 5000000) | strftime(0) }}}}\"\nhaproxy_stats_password: pw\n"
            )),
            refused(ALL, 6, "haproxy_stats_user", "the format could make"),
        ),
        case(
            "a stream of YAML documents, each an alias bomb, read by from_yaml_all",
            hosts_and(&format!(
                "{TCP}haproxy_stats_user: \"{{{{ stream | from_yaml_all | length }}}}\"\nhaproxy_stats_password: pw\nstream: |\n{}",
                format!(
                    "---\n{}",
                    bomb.lines().take(7).collect::<Vec<_>>().join("\n")
                )
                .repeat(3)
                .lines()
                .map(|l| format!("  {l}\n"))
                .collect::<String>()
            )),
            refused(ALL, 6, "haproxy_stats_user", "would copy more than"),
        ),
        case(
            "every host's variables printed whole: hostvars and vars",
            hosts_and(&format!(
                "{TCP}haproxy_stats_user: \"u{{{{ hostvars | to_json | length }}}}x{{{{ (vars | string | length) > 0 }}}}\"\nhaproxy_stats_password: \"p{{{{ hostvars[inventory_hostname] | to_nice_json | length }}}}\"\n"
            )),
            Expect::Renders,
        ),
        case(
            "a list built 5,000 deep, then printed",
            hosts_and(&format!(
                "{TCP}haproxy_stats_user: \"{{% set ns = namespace(x=[]) %}}{{% for i in range(5000) %}}{{% set ns.x = [ns.x] %}}{{% endfor %}}{{{{ ns.x }}}}\"\nhaproxy_stats_password: pw\n"
            )),
            refused(
                ALL,
                6,
                "haproxy_stats_user",
                "nests more than 500 levels deep",
            ),
        ),
        case(
            "a filter chain 100,000 long",
            hosts_and(&format!(
                "{TCP}haproxy_stats_user: \"{{{{ 'a'{} }}}}\"\nhaproxy_stats_password: pw\n",
                "|string".repeat(100_000)
            )),
            refused(ALL, 6, "haproxy_stats_user", "chains 100000 operators"),
        ),
        case(
            "a lazy list of 10 ** 8 items printed",
            hosts_and(&format!(
                "{TCP}haproxy_stats_user: \"{{{{ ([1] * 10 ** 8) | to_json }}}}\"\nhaproxy_stats_password: pw\n"
            )),
            refused(ALL, 6, "haproxy_stats_user", "more than 64 MiB of text"),
        ),
        case(
            "minijinja's debug(), which walks every variable",
            hosts_and(&format!(
                "{TCP}haproxy_stats_user: \"{{{{ debug() | length }}}}\"\nhaproxy_stats_password: pw\n"
            )),
            refused(ALL, 6, "haproxy_stats_user", "debug is unknown"),
        ),
        case(
            "an undefined password made text by `string`",
            hosts_and(&format!(
                "{TCP}haproxy_stats_user: admin\nhaproxy_stats_password: \"{{{{ vault_stats_pass | string }}}}\"\n"
            )),
            refused(
                ALL,
                7,
                "haproxy_stats_password",
                "`vault_stats_pass` is undefined",
            ),
        ),
        case(
            "an undefined name printed inside a list",
            hosts_and(&format!(
                "{TCP}haproxy_stats_user: \"u{{{{ [typo_user] }}}}\"\nhaproxy_stats_password: pw\n"
            )),
            refused(ALL, 6, "haproxy_stats_user", "`typo_user` is undefined"),
        ),
        case(
            "an undefined weight made a number by `int`",
            hosts_and(
                "haproxy_tcp_backends:\n  - name: mysql\n    port: 3306\n    servers:\n      - {name: w1, address: 10.0.1.1, port: 30306, weight: \"{{ w1_weight | int }}\"}\n",
            ),
            refused(
                ALL,
                5,
                "haproxy_tcp_backends[0].servers[0].weight",
                "`w1_weight` is undefined",
            ),
        ),
        case(
            "a group chain 3,000 deep",
            vec![("hosts", chain), (ALL, TCP.to_string())],
            Expect::Renders,
        ),
        case(
            "a host range that multiplies",
            vec![(
                "hosts",
                format!("[haproxy_servers]\nlb{}\n", "[1:9]".repeat(12)),
            )],
            refused("hosts", 2, "lb[1:9]", "more than 100000 host names"),
        ),
        case(
            "a host named ..",
            vec![(
                "hosts",
                "[haproxy_servers]\n.. ansible_host=10.0.0.1\n".into(),
            )],
            refused("hosts", 2, "..", "not a valid host name"),
        ),
        case(
            "a host named by an old numeric IPv4 form, without ansible_host",
            vec![(
                "hosts",
                "[haproxy_servers]\nlb1 ansible_host=10.0.0.1\n010.0.0.2\n".into(),
            )],
            refused("hosts", 3, "010.0.0.2", "resolvers read as 8.0.0.2"),
        ),
        case(
            "a host named by an old numeric IPv4 form, reached at its ansible_host",
            vec![
                (
                    "hosts",
                    "[haproxy_servers]\nlb1 ansible_host=10.0.0.1\n010.0.0.2 ansible_host=10.0.0.2\n"
                        .into(),
                ),
                (ALL, TCP.to_string()),
            ],
            Expect::Renders,
        ),
        case(
            "a host named like an option",
            vec![(
                "hosts",
                "[haproxy_servers]\n-rf ansible_host=10.0.0.1\n".into(),
            )],
            refused("hosts", 2, "-rf", "not a valid host name"),
        ),
        case(
            "HAProxy's config over keepalived's",
            hosts_and(&format!(
                "{TCP}{VIP}haproxy_config_path: /etc/keepalived/keepalived.conf\n"
            )),
            refused(
                ALL,
                8,
                "haproxy_config_path",
                "outside haproxy's usual directories",
            ),
        ),
        case(
            "HAProxy's config over keepalived's, unconfined",
            hosts_and(&format!(
                "{TCP}{VIP}lbctl_confine_paths: false\nhaproxy_config_path: /etc/keepalived/keepalived.conf\n"
            )),
            refused(
                ALL,
                9,
                "haproxy_config_path",
                "both name /etc/keepalived/keepalived.conf",
            ),
        ),
        case(
            "nginx's stream file over HAProxy's config",
            hosts_and(&format!(
                "{TCP}lbctl_confine_paths: false\nnginx_stream_config_path: /etc/haproxy/haproxy.cfg\nhaproxy_udp_backends:\n  - name: wg\n    port: 51820\n    servers:\n      - {{name: w1, address: 10.0.1.1, port: 31820}}\n"
            )),
            refused(
                ALL,
                7,
                "nginx_stream_config_path",
                "both name /etc/haproxy/haproxy.cfg",
            ),
        ),
        case(
            "HAProxy's server state over lbctl's record",
            hosts_and(&format!(
                "{TCP}lbctl_confine_paths: false\nhaproxy_server_state_file: /var/lib/lbctl/admin-state\n"
            )),
            refused(
                ALL,
                7,
                "haproxy_server_state_file",
                "both name /var/lib/lbctl/admin-state",
            ),
        ),
        case(
            "lbctl's record over HAProxy's config",
            hosts_and(&format!(
                "{TCP}lbctl_admin_state_file: /etc/haproxy/haproxy.cfg\n"
            )),
            refused(
                ALL,
                6,
                "lbctl_admin_state_file",
                "outside lbctl's usual directories",
            ),
        ),
        case(
            "a managed path with ..",
            hosts_and(&format!(
                "{TCP}haproxy_config_path: /etc/haproxy/../../tmp/x.cfg\n"
            )),
            refused(ALL, 6, "haproxy_config_path", "`.` and `..`"),
        ),
        case(
            "a managed path named like lbctl's backup",
            hosts_and(&format!(
                "{TCP}haproxy_config_path: /etc/haproxy/haproxy.cfg.lbctl-prev\n"
            )),
            refused(ALL, 6, "haproxy_config_path", ".lbctl-prev"),
        ),
        case(
            "check_interval: 0",
            hosts_and(
                "haproxy_tcp_backends:\n  - name: mysql\n    port: 3306\n    servers:\n      - name: w1\n        address: 10.0.1.1\n        port: 30306\n        check_interval: 0\n",
            ),
            refused(
                ALL,
                8,
                "haproxy_tcp_backends[0].servers[0].check_interval",
                "the check would never run",
            ),
        ),
        case(
            "a timer past HAProxy's 24.8 days",
            hosts_and(&format!("{TCP}haproxy_timeout_client: 25d\n")),
            refused(
                ALL,
                6,
                "haproxy_timeout_client",
                "longer than HAProxy's longest time value",
            ),
        ),
        Case {
            // each host's own address is a problem of its own
            max_errors: 2,
            ..case(
                "an IPv6 VIP with IPv4 unicast peers",
                hosts_and(&format!(
                    "{TCP}keepalived_vip: fd00::100/64\nkeepalived_interface: eth0\n"
                )),
                refused(
                    "hosts",
                    2,
                    "ansible_host",
                    "keepalived keeps one address family per instance",
                ),
            )
        },
        case(
            "IPv4 and IPv6 VIPs in one instance",
            hosts_and(&format!(
                "{TCP}keepalived_vips: [10.0.0.100/24, fd00::100/64]\nkeepalived_interface: eth0\n"
            )),
            refused(ALL, 6, "keepalived_vips[1]", "different address families"),
        ),
        case(
            "LVS with a worker given by name",
            hosts_and(&format!(
                "{VIP}lbctl_udp_engine: lvs\nhaproxy_udp_backends:\n  - name: wg\n    port: 51820\n    servers:\n      - {{name: w1, address: worker-1.example.invalid, port: 31820}}\n"
            )),
            refused(
                ALL,
                8,
                "haproxy_udp_backends[0].servers[0].address",
                "LVS forwards to IP addresses only",
            ),
        ),
        case(
            "a UDP worker given by name, without a resolver",
            hosts_and(
                "haproxy_udp_backends:\n  - name: wg\n    port: 51820\n    servers:\n      - {name: w1, address: 10.0.1.1, port: 31820}\n      - {name: w2, address: worker-2.example.invalid, port: 31820}\n",
            ),
            refused(
                ALL,
                6,
                "haproxy_udp_backends[0].servers[1].address",
                "nginx_resolver",
            ),
        ),
        case(
            "an unresolvable UDP worker, with a resolver",
            hosts_and(
                "nginx_resolver: 10.0.0.53\nhaproxy_udp_backends:\n  - name: wg\n    port: 51820\n    servers:\n      - {name: w1, address: 10.0.1.1, port: 31820, weight: 0}\n      - {name: w2, address: worker-2.example.invalid, port: 31820}\n",
            ),
            Expect::Renders,
        ),
        case(
            "a check script ending in a backslash",
            hosts_and(&format!(
                "{TCP}{VIP}keepalived_haproxy_check: script\nkeepalived_check_script: '/usr/local/bin/check \\'\n"
            )),
            refused(ALL, 9, "keepalived_check_script", "joins the next line"),
        ),
        case(
            "the README's old password, s3cr3t!",
            hosts_and(&format!("{TCP}{VIP}keepalived_auth_pass: s3cr3t!\n")),
            refused(
                ALL,
                8,
                "keepalived_auth_pass",
                "would read only what comes before it",
            ),
        ),
        case(
            "a password starting with !",
            hosts_and(&format!("{TCP}{VIP}keepalived_auth_pass: '!abc'\n")),
            refused(ALL, 8, "keepalived_auth_pass", "start of a comment"),
        ),
        case(
            "a list as the VRRP password (it turned authentication off, silently)",
            hosts_and(&format!("{TCP}{VIP}keepalived_auth_pass: [s3cret]\n")),
            refused(ALL, 8, "keepalived_auth_pass", "expected a string, found a list"),
        ),
        case(
            "a templated mapping as the VRRP password",
            hosts_and(&format!(
                "{TCP}{VIP}keepalived_auth_pass: \"{{{{ {{'a': 1}} }}}}\"\n"
            )),
            refused(ALL, 8, "keepalived_auth_pass", "expected a string, found a mapping"),
        ),
        case(
            "a password holding $",
            hosts_and(&format!("{TCP}{VIP}keepalived_auth_pass: ab$x\n")),
            refused(ALL, 8, "keepalived_auth_pass", "definitions"),
        ),
        case(
            "an interface keepalived could never find",
            hosts_and(&format!(
                "{TCP}keepalived_vip: 10.0.0.100/24\nkeepalived_interface: a-sixteen-chars!\n"
            )),
            refused(ALL, 7, "keepalived_interface", "not a safe name"),
        ),
        case(
            "a refused stats password, and nothing else",
            hosts_and(&format!(
                "{TCP}haproxy_stats_user: admin\nhaproxy_stats_password: two words\n"
            )),
            refused(ALL, 7, "haproxy_stats_password", "cannot be written safely"),
        ),
        Case {
            args: vec!["--templates".into(), "/nonexistent-lbctl-templates".into()],
            ..case(
                "--templates naming no directory",
                hosts_and(TCP),
                refused(
                    "/nonexistent-lbctl-templates",
                    0,
                    "--templates",
                    "no such directory",
                ),
            )
        },
        case(
            "a key holding a terminal escape",
            hosts_and(&format!("{TCP}\"lbctl_x\\e[2Jy\": 1\n")),
            refused(ALL, 6, "lbctl_x\u{1b}[2Jy", "unknown variable"),
        ),
    ]
}

/// Runs lbctl under the limits; returns its exit code, stdout, stderr, and (resident KiB,
/// CPU seconds) from `/usr/bin/time`.
fn limited(args: &[String]) -> (i32, String, String, u64, f64) {
    limited_in(&crate::support::repo_root(), args)
}

/// [`limited`], run from `dir` (where its `ansible.cfg` applies).
fn limited_in(dir: &Path, args: &[String]) -> (i32, String, String, u64, f64) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {VIRTUAL_MEMORY_KIB} && exec /usr/bin/time -f 'lbctl-resources %M %U %S' \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_lbctl"))
        .args(args)
        .current_dir(dir)
        .env_remove("ANSIBLE_CONFIG")
        .output()
        .expect("run lbctl under /usr/bin/time");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let (mut rss, mut cpu) = (u64::MAX, f64::MAX);
    if let Some(line) = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("lbctl-resources "))
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        rss = f[1].parse().unwrap_or(u64::MAX);
        cpu = f[2].parse::<f64>().unwrap_or(f64::MAX) + f[3].parse::<f64>().unwrap_or(f64::MAX);
    }
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
        rss,
        cpu,
    )
}

/// `nginx -t`, `haproxy -c` and `keepalived -t` on what a case rendered.
fn daemons_refuse(out: &Path) -> Option<String> {
    let ns = format!("lbctl-hostile-{}", std::process::id());
    let _ = Command::new("ip")
        .args(["netns", "del", &ns])
        .stderr(std::process::Stdio::null())
        .status();
    assert!(
        Command::new("ip")
            .args(["netns", "add", &ns])
            .status()
            .unwrap()
            .success()
    );
    let run = |args: &[&str]| {
        Command::new("ip")
            .args(["netns", "exec", &ns])
            .args(args)
            .output()
            .unwrap()
    };
    run(&["ip", "link", "set", "lo", "up"]);
    run(&["ip", "link", "add", "eth0", "type", "bridge"]);
    let mut problems = Vec::new();
    let mut files: Vec<PathBuf> = Vec::new();
    for host in std::fs::read_dir(out).unwrap().map(|e| e.unwrap().path()) {
        files.extend(std::fs::read_dir(host).unwrap().map(|e| e.unwrap().path()));
    }
    for f in files {
        let f_str = f.to_str().unwrap();
        let output = match f.file_name().unwrap().to_str().unwrap() {
            "haproxy.cfg" => run(&["haproxy", "-c", "-f", f_str]),
            "keepalived.conf" => run(&["keepalived", "-t", "-f", f_str]),
            "nginx-stream.conf" => {
                let wrapper = f.with_extension("main");
                std::fs::write(
                    &wrapper,
                    format!("include /etc/nginx/modules-enabled/*.conf;\nevents {{}}\npid {}.pid;\nerror_log stderr;\ninclude {f_str};\n", f_str),
                )
                .unwrap();
                run(&["nginx", "-t", "-q", "-c", wrapper.to_str().unwrap()])
            }
            _ => continue,
        };
        if !output.status.success() {
            problems.push(format!(
                "{f_str}: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    let _ = Command::new("ip")
        .args(["netns", "del", &ns])
        .stderr(std::process::Stdio::null())
        .status();
    (!problems.is_empty()).then(|| problems.join("\n"))
}

#[test]
fn crafted_inputs_are_refused_where_they_are_wrong_within_bounded_resources() {
    require_root_and(&["haproxy", "keepalived", "nginx", "ip"]);
    assert!(
        Path::new("/usr/bin/time").exists(),
        "/usr/bin/time is missing: apt-get install time"
    );
    let cases = cases();
    let mut failures = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let dir = scratch(&format!("hostile-{i}"));
        for (name, text) in &c.files {
            write(&dir, name, text);
        }
        let out = dir.join("out");
        let mut args: Vec<String> = vec![
            "-i".into(),
            dir.display().to_string(),
            "--project-dir".into(),
            dir.display().to_string(),
        ];
        args.extend(c.args.iter().cloned());
        let render = matches!(c.expect, Expect::Renders);
        if render {
            args.extend(["render".into(), "-o".into(), out.display().to_string()]);
        } else {
            args.extend(["--json".into(), "validate".into()]);
        }
        let (code, stdout, stderr, rss, cpu) = limited(&args);
        eprintln!(
            "{:<52} exit {code}  {:>4} MiB  {cpu:.2} s CPU",
            c.name,
            rss / 1024
        );
        let mut problems = Vec::new();
        if stderr.contains("panicked") || stderr.contains("overflow") || !(0..=3).contains(&code) {
            problems.push(format!("crashed (exit {code})"));
        }
        if rss > MAX_RSS_KIB {
            problems.push(format!("used {} MiB", rss / 1024));
        }
        if cpu > MAX_CPU_SECONDS {
            problems.push(format!("used {cpu:.2} s of CPU"));
        }
        match &c.expect {
            Expect::Renders => {
                if code != 0 {
                    problems.push(format!("exit {code}, expected a render"));
                } else if let Some(refusal) = daemons_refuse(&out) {
                    problems.push(format!("a daemon refused what lbctl rendered:\n{refusal}"));
                }
            }
            Expect::Refused {
                file,
                line,
                key,
                text,
            } => {
                let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_default();
                let diags = report["diagnostics"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let wanted = dir.join(file).display().to_string();
                let hit = diags.iter().any(|d| {
                    d["file"].as_str() == Some(wanted.as_str())
                        && d["line"].as_u64() == Some(*line as u64)
                        && d["key"].as_str().is_some_and(|k| k.contains(key))
                        && (d["message"].as_str().is_some_and(|m| m.contains(text))
                            || d["hint"].as_str().is_some_and(|h| h.contains(text)))
                });
                if code != 1 || !hit {
                    problems.push(format!(
                        "expected exit 1 and {file}:{line} `{key}` ~ {text:?}"
                    ));
                }
                if diags
                    .iter()
                    .any(|d| d["hint"].as_str().is_none_or(str::is_empty))
                {
                    problems.push("an error without a hint".into());
                }
                if diags.len() > c.max_errors {
                    problems.push(format!("{} errors for one problem", diags.len()));
                }
                // What a user reads: the input's control characters shown escaped.
                let (_, _, text_stderr, _, _) = limited(
                    &args[..args.len() - 2]
                        .iter()
                        .cloned()
                        .chain(["validate".to_string()])
                        .collect::<Vec<_>>(),
                );
                if text_stderr.chars().any(|c| c.is_control() && c != '\n') {
                    problems.push("raw control characters in the message".into());
                }
                // A value quoted in an error is clipped: its error is not its size.
                for (what, shown) in [("--json", stdout.len()), ("text", text_stderr.len())] {
                    if shown > MAX_ERROR_BYTES {
                        problems.push(format!("the {what} error is {shown} bytes"));
                    }
                }
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n--- stdout\n{}\n--- stderr\n{}",
                c.name,
                problems.join("; "),
                stdout.chars().take(3000).collect::<String>(),
                stderr.chars().take(2000).collect::<String>()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} crafted cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// A template builds a value 60,000 levels deep (`{% set ns.x = [ns.x] %}` in a loop, which
/// the fuel allows many times over), in a variable and in a template of the user's, which the
/// render threads evaluate. minijinja frees such a value by recursion, which overflowed the
/// default stacks: a render thread's 2 MiB at about 35,000 levels in a release build, and the
/// main thread's 8 MiB at about 20,000 in the test profile: an abort. Now it renders, under
/// the harness's 1 GiB address-space limit (where the deep stacks are 64 MiB).
#[test]
fn a_value_built_sixty_thousand_levels_deep_is_freed_without_a_crash() {
    require_root_and(&["haproxy", "keepalived", "nginx", "ip"]);
    let deep = "{% set ns = namespace(x=[]) %}{% for i in range(60) %}{% for j in range(1000) %}{% set ns.x = [ns.x] %}{% endfor %}{% endfor %}";
    let dir = scratch("hostile-deep-value");
    write(
        &dir,
        ALL,
        &format!(
            "{TCP}haproxy_stats_user: \"{deep}u{{{{ ns.x | length }}}}\"\nhaproxy_stats_password: pw\n"
        ),
    );
    write(&dir, "hosts", HOSTS);
    let builtin =
        std::fs::read_to_string(crate::support::repo_root().join("templates/haproxy.cfg.j2"))
            .expect("read the built-in haproxy.cfg.j2");
    write(
        &dir,
        "tpl/haproxy.cfg.j2",
        &format!("{builtin}\n{deep}# {{{{ ns.x | length }}}} deep\n"),
    );
    let out = dir.join("out");
    let args: Vec<String> = vec![
        "-i".into(),
        dir.display().to_string(),
        "--project-dir".into(),
        dir.display().to_string(),
        "--templates".into(),
        dir.join("tpl").display().to_string(),
        "render".into(),
        "-o".into(),
        out.display().to_string(),
    ];
    let (code, _, stderr, rss, cpu) = limited(&args);
    eprintln!("exit {code}, {} MiB, {cpu:.2} s of CPU", rss / 1024);
    assert_eq!(code, 0, "{stderr}");
    let cfg = std::fs::read_to_string(out.join("lb1/haproxy.cfg")).expect("lb1's haproxy.cfg");
    assert!(cfg.contains("stats auth u1:pw"), "{cfg}");
    assert!(
        cfg.ends_with("# 1 deep\n"),
        "{}",
        &cfg[cfg.len().saturating_sub(200)..]
    );
    assert_eq!(daemons_refuse(&out), None);
}

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
    // Given as a file, or as the directory holding it (where Ansible skips a file it cannot
    // read: here that leaves no host, so the run fails on the file's error, and the hosts it
    // did read have their variables checked all the same).
    for source in [hosts.clone(), dir.display().to_string()] {
        Lbctl::new()
            .args([
                "-i",
                &source,
                "--project-dir",
                dir.to_str().unwrap(),
                "validate",
            ])
            .stderr_has(format!("error: {hosts}:3:"))
            .stderr_has("host variables are written `host key=value")
            .stderr_has(format!(
                "error: {vars}:3: haproxy_tcp_backends[0].port: 70000 is out of range"
            ))
            .stderr_has("2 problems found")
            .exit(1)
            .run();
    }
}

/// `render -o` replaces links found in its output directory (at a file's name or at the name
/// it stages it under) instead of writing through them.
#[test]
fn render_never_writes_through_a_link_in_its_output_directory() {
    let dir = scratch("hostile-render-links");
    write(&dir, "hosts", HOSTS);
    write(&dir, ALL, TCP);
    let out = dir.join("out");
    let victims = [dir.join("victim-new"), dir.join("victim-live")];
    std::fs::create_dir_all(out.join("lb1")).unwrap();
    for v in &victims {
        std::fs::write(v, "precious\n").unwrap();
    }
    std::os::unix::fs::symlink(&victims[0], out.join("lb1/haproxy.cfg.lbctl-new")).unwrap();
    std::os::unix::fs::symlink(&victims[1], out.join("lb1/haproxy.cfg")).unwrap();
    Lbctl::new()
        .args([
            "-i",
            dir.to_str().unwrap(),
            "--project-dir",
            dir.to_str().unwrap(),
        ])
        .args(["render", "-o", out.to_str().unwrap()])
        .stdout_has("lb1: wrote")
        .run();
    for v in &victims {
        assert_eq!(std::fs::read_to_string(v).unwrap(), "precious\n", "{v:?}");
    }
    let live = out.join("lb1/haproxy.cfg");
    assert!(!live.symlink_metadata().unwrap().file_type().is_symlink());
    assert!(
        std::fs::read_to_string(&live)
            .unwrap()
            .contains("backend mysql")
    );
    assert!(!out.join("lb1/haproxy.cfg.lbctl-new").exists());
}

/// A reader that goes away (`lbctl validate | head -0`, a closed terminal) is not lbctl's
/// error: it neither panics nor reports one, and exits as it would have. Each command runs
/// with its standard output (and error) a pipe whose reading end is already closed.
#[test]
fn a_closed_output_is_no_panic() {
    let dir = scratch("closed-output");
    write(&dir, "hosts", HOSTS);
    write(&dir, ALL, TCP);
    let inventory = dir.display().to_string();
    let out = dir.join("rendered").display().to_string();
    let cases: [&[&str]; 7] = [
        &["-i", &inventory, "validate"],
        &["-i", &inventory, "--json", "validate"],
        &["-i", &inventory, "render", "--out", &out],
        &["man"],
        &["completions", "bash"],
        &["completions", "zsh"],
        &["--help"],
    ];
    for args in cases {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let run = Command::new(env!("CARGO_BIN_EXE_lbctl"))
            .args(args)
            .stdout(writer.try_clone().unwrap())
            .stderr(writer)
            .output()
            .unwrap();
        assert_eq!(
            run.status.code(),
            Some(0),
            "lbctl {}: {:?}",
            args.join(" "),
            run.status
        );
    }
}

/// Sources that never end (`/dev/zero`, a password script that prints forever) are read up
/// to lbctl's limit and refused, naming the source: a `--limit @FILE`, a vault password file
/// or script; a saved plan that is no regular file is refused before it is read.
#[test]
fn an_endless_source_is_cut_at_the_limit() {
    let dir = scratch("endless-sources");
    write(&dir, "hosts", HOSTS);
    write(&dir, ALL, TCP);
    let vault = crate::support::repo_root().join("tests/inputs/vault/file-1.1.yml");
    let vars = format!("@{}", vault.display());
    // (beside the inventory, not in it: lbctl would take it for an inventory script)
    let scripts = scratch("endless-sources-script");
    let script = scripts.join("password-forever");
    write(
        &scripts,
        "password-forever",
        "#!/bin/sh\nexec cat /dev/zero\n",
    );
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let inventory = dir.display().to_string();
    let script = script.display().to_string();
    let cases: [(&[&str], &str); 4] = [
        (
            &["-i", &inventory, "--limit", "@/dev/zero", "validate"],
            "--limit @/dev/zero: the file is larger than 64 MiB, more than lbctl reads",
        ),
        (
            &[
                "-i",
                &inventory,
                "-e",
                &vars,
                "--vault-password-file",
                "/dev/zero",
                "validate",
            ],
            "/dev/zero: larger than 64 MiB, more than lbctl reads",
        ),
        (
            &[
                "-i",
                &inventory,
                "-e",
                &vars,
                "--vault-password-file",
                &script,
                "validate",
            ],
            "password-forever: larger than 64 MiB, more than lbctl reads",
        ),
        (
            // a plan file is a regular file, as lbctl writes one: a device is refused unread
            &["apply", "/dev/zero"],
            "the plan file /dev/zero is refused: it is not a regular file",
        ),
    ];
    for (args, error) in cases {
        Lbctl::new()
            .args(args.iter().copied())
            .timeout(60)
            .stderr_has(error)
            .exit(1)
            .run();
    }
}

/// A `--reason` is shown later to whoever runs `status` or `plan`: one line of plain text,
/// refused (exit 1) with a control character (a newline, a terminal escape) or past 500
/// characters, before any host is reached.
#[test]
fn a_reason_is_one_line_of_plain_text() {
    let long = "a".repeat(501);
    for (reason, error) in [
        ("down\nfor the night", "the control character '\\n'"),
        ("\u{1b}[2Jcleared", "the control character '\\u{1b}'"),
        (long.as_str(), "longer than 500 characters"),
    ] {
        Lbctl::new()
            .args(["drain", "--worker", "k8s-worker-1", "--reason", reason])
            .stderr_has(error)
            .exit(1)
            .run();
    }
}

/// Symlinks back up an inventory's tree (`ln -s . loop`, twice in one directory, in the
/// inventory directory and in a `group_vars/GROUP/` directory) are walked once: every file
/// is read once, at once (two such links doubled the walk at every level, forty deep, for
/// minutes). A FIFO where a vars file is expected is refused, not waited on.
#[test]
fn symlink_loops_are_walked_once_and_a_fifo_is_refused() {
    let dir = scratch("symlink-loops");
    write(&dir, "hosts", HOSTS);
    write(&dir, "group_vars/all/backends.yml", TCP);
    for link in ["s1", "s2"] {
        std::os::unix::fs::symlink(".", dir.join(link)).unwrap();
        std::os::unix::fs::symlink(".", dir.join("group_vars/all").join(link)).unwrap();
    }
    Lbctl::new()
        .args(["-i", &dir.display().to_string(), "validate"])
        .timeout(20)
        .stdout_has("valid: 2 load balancers (lb1, lb2), 1 TCP and 0 UDP backends")
        .run();

    let fifo = dir.join("group_vars/haproxy_servers.yml");
    mkfifo(&fifo);
    Lbctl::new()
        .args(["-i", &dir.display().to_string(), "validate"])
        .timeout(20)
        .stderr_has("group_vars/haproxy_servers.yml: is not a regular file")
        .exit(1)
        .run();
}

/// A template override that is not a regular file (a link to nothing, a named pipe, a
/// directory) is an error naming it: it was skipped for the built-in template, silently.
#[test]
fn a_template_override_that_is_not_a_file_is_refused_not_skipped() {
    let dir = scratch("template-override-not-a-file");
    write(&dir, "hosts", HOSTS);
    write(&dir, ALL, TCP);
    let at = dir.join("templates/haproxy.cfg.j2");
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    let validate = || {
        Lbctl::new()
            .args(["-i", &dir.display().to_string(), "validate"])
            .timeout(20)
            .stderr_has("templates/haproxy.cfg.j2: haproxy.cfg.j2 is not a regular file")
            .exit(1)
            .run();
    };
    std::os::unix::fs::symlink(dir.join("nothing-here"), &at).unwrap();
    validate();
    std::fs::remove_file(&at).unwrap();
    mkfifo(&at);
    validate();
    std::fs::remove_file(&at).unwrap();
    std::fs::create_dir(&at).unwrap();
    validate();
    std::fs::remove_dir(&at).unwrap();
    Lbctl::new()
        .args(["-i", &dir.display().to_string(), "validate"])
        .stdout_has("valid: 2 load balancers")
        .run();
}

/// `render --out OUT`: a link planted at `OUT/<host>` is not written through (the files went
/// to its target), and what is written is private (0600: the configuration's secrets).
#[test]
fn render_writes_private_files_and_never_through_a_planted_link() {
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("render-planted-link");
    write(&dir, "inventory/hosts", HOSTS);
    write(&dir, "inventory/group_vars/all.yml", TCP);
    let inventory = dir.join("inventory").display().to_string();
    let out = dir.join("out");
    let elsewhere = dir.join("elsewhere");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, out.join("lb2")).unwrap();
    let out_arg = out.display().to_string();
    Lbctl::new()
        .args(["-i", &inventory, "render", "--out", &out_arg])
        .stderr_has("lb2: is a symbolic link")
        .exit(1)
        .run();
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    assert!(
        !out.join("lb1/haproxy.cfg").exists(),
        "a failed render wrote lb1"
    );

    std::fs::remove_file(out.join("lb2")).unwrap();
    Lbctl::new()
        .args(["-i", &inventory, "render", "--out", &out_arg])
        .run();
    for host in ["lb1", "lb2"] {
        let mode = std::fs::metadata(out.join(host).join("haproxy.cfg"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{host}/haproxy.cfg");
    }
}

/// A plan file of 12 million numbers (24 MB) where lbctl reads none: it was read whole into a
/// tree of JSON values first (32 bytes each: 12 million took 395 MiB, and the 1 GiB a plan
/// file may be would take 16 GiB), then into the plan. Now its stamp is read straight from
/// the text, the rest passed over, and the plan refused for the field it does not know:
/// within the usual 200 MiB.
#[test]
fn a_plan_file_of_millions_of_numbers_is_refused_without_holding_them() {
    let dir = scratch("hostile-plan-numbers");
    let mut text = String::from(r#"{"format": "lbctl-plan", "version": 1, "padding": ["#);
    text.push_str(&"0,".repeat(12_000_000));
    text.push_str("0]}");
    let path = write_private(&dir, "plan.json", text.as_bytes());
    let (code, _, stderr, rss, _) = limited(&["apply".into(), path.display().to_string()]);
    eprintln!("exit {code}, {} MiB", rss / 1024);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("is not an lbctl plan file: unknown field `padding`"),
        "{stderr}"
    );
    assert!(rss <= MAX_RSS_KIB, "{} MiB", rss / 1024);
}

/// An ansible.cfg value continued over 3 million short lines (12 MB): kept as a list of its
/// lines, it took 15 times the file (190 MiB); now it is one text, within 10 times.
#[test]
fn a_setting_continued_over_millions_of_lines_stays_near_its_size() {
    let dir = scratch("hostile-cfg-continuation");
    write(&dir, "hosts", HOSTS);
    write(&dir, ALL, TCP);
    let mut cfg = String::from("[defaults]\ninventory = hosts\nansible_managed = a\n");
    cfg.push_str(&"  c\n".repeat(3_000_000));
    write(&dir, "ansible.cfg", &cfg);
    let (code, _, stderr, rss, _) = limited_in(&dir, &["validate".into()]);
    eprintln!("exit {code}, {} MiB", rss / 1024);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        rss <= 10 * cfg.len() as u64 / 1024,
        "{} MiB for a file of {} MiB",
        rss / 1024,
        cfg.len() >> 20
    );
}

/// An inventory with 3,000 bad lines is 3,000 problems, but an error prints the first thousand
/// and says how many more there are, in text and in `--json`: the rest would only bury them.
#[test]
fn thousands_of_problems_print_the_first_thousand_and_a_count() {
    let dir = scratch("many-problems");
    let lines: String = (0..3000)
        .map(|i| format!("lb{i} ansible_port=x\n"))
        .collect();
    write(&dir, "hosts", &format!("[haproxy_servers]\n{lines}"));
    let inventory = dir.join("hosts").display().to_string();
    let text = Lbctl::new()
        .args(["-i", &inventory, "validate"])
        .stderr_has("error: ... and 2000 more problems not shown (the first 1000 are above)")
        .stderr_has("error: 3000 problems found in the input")
        .exit(1)
        .run();
    assert_eq!(text.stderr.matches("expected a whole number").count(), 1000);
    let json = Lbctl::new()
        .args(["-i", &inventory, "--json", "validate"])
        .exit(1)
        .run();
    let report: serde_json::Value = serde_json::from_str(&json.stdout).expect("--json is JSON");
    assert_eq!(report["diagnostics"].as_array().map(Vec::len), Some(1000));
    assert_eq!(report["diagnostics_not_shown"], 2000);
}

/// The command line and the environment, hostile: each value is refused (exit 1, naming its
/// flag or file) at once, before any host is reached, with no panic. Before: a connect
/// timeout of u64::MAX panicked after connecting; a `--hold` of u64::MAX ms would overflow
/// the probe's deadline; `--ssh-control-dir` made a shared directory mode 0700 and removed
/// its dangling links; `plan --out /dev/null` would have renamed the plan over the device;
/// `--report FIFO` would have waited for a reader after the drill; `-e @FIFO` and
/// `--limit @FIFO` waited for ever; 200 `~regex` terms took more than a minute.
#[test]
fn hostile_flags_and_environment_are_refused_before_any_host_is_reached() {
    let dir = scratch("hostile-flags");
    write(
        &dir,
        "hosts",
        "[haproxy_servers]\nlb1 ansible_host=127.0.0.1 ansible_port=1\n\
         lb2 ansible_host=127.0.0.2 ansible_port=1\n[workers]\nw1 ansible_host=10.0.1.1\n",
    );
    write(&dir, ALL, &format!("{TCP}{VIP}"));
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    let shared = dir.join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::os::unix::fs::symlink("/nonexistent", shared.join("dangling")).unwrap();
    let path = |p: &Path| p.display().to_string();
    let regexes = vec![r"~[\p{L}\p{N}]{199}"; 200].join(",");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--connect-timeout".into(),
                u64::MAX.to_string(),
                "status".into(),
            ],
            "'--connect-timeout <CONNECT_TIMEOUT>': 18446744073709551615 is not in 1..=2147483647",
        ),
        (
            vec!["--ssh-persist".into(), "2147483648".into(), "status".into()],
            "is not in 0..=2147483647",
        ),
        (
            vec![
                "failover-test".into(),
                "--worker".into(),
                "w1".into(),
                "--hold".into(),
                "99999999999999999h".into(),
            ],
            "longer than 1h, the longest hold",
        ),
        (
            vec!["plan".into(), "--out".into(), "/dev/null".into()],
            "'--out <FILE>': it is a device, not a file",
        ),
        (
            vec![
                "plan".into(),
                "--out".into(),
                path(&dir.join("missing/plan.json")),
            ],
            "No such file or directory",
        ),
        (
            vec![
                "failover-test".into(),
                "--worker".into(),
                "w1".into(),
                "--report".into(),
                path(&fifo),
            ],
            "'--report <FILE.html>': it is a named pipe, not a file",
        ),
        (
            vec!["--ssh-control-dir".into(), path(&shared), "status".into()],
            "other users may enter it (mode 755)",
        ),
        (
            vec!["--limit".into(), regexes, "validate".into()],
            "the 200 `~` terms share 10 MiB compiled",
        ),
        (
            vec![
                "--limit".into(),
                format!("@{}", path(&fifo)),
                "validate".into(),
            ],
            "it is a named pipe (FIFO), and nothing wrote to it",
        ),
        (
            vec!["-e".into(), format!("@{}", path(&fifo)), "validate".into()],
            "it is a named pipe (FIFO), and nothing wrote to it",
        ),
        (
            vec!["--limit".into(), "lb1\nlb2,lb3".into(), "validate".into()],
            r"holds the control character '\n'",
        ),
    ];
    std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    for (args, error) in cases {
        let started = std::time::Instant::now();
        let run = Lbctl::new()
            .args(["-i", &path(&dir)])
            .args(&args)
            .timeout(20)
            .stderr_has(error)
            .exit(1)
            .run();
        assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
        assert!(
            !run.stdout.contains("unreachable"),
            "{args:?}: {}",
            run.stdout
        );
        let elapsed = started.elapsed();
        assert!(elapsed.as_secs() < 3, "{args:?} took {elapsed:?}");
    }
    // Set by the environment, the message names the variable, not an option never written;
    // an option on the command line wins over it and is named.
    let env_cases = [
        (
            "LBCTL_SSH_PERSIST",
            "2147483648".to_string(),
            vec![],
            "invalid value '2147483648' for the environment variable LBCTL_SSH_PERSIST (which sets --ssh-persist): 2147483648 is not in 0..=2147483647",
        ),
        (
            "LBCTL_SSH_CONTROL_DIR",
            path(&shared),
            vec![],
            "for the environment variable LBCTL_SSH_CONTROL_DIR (which sets --ssh-control-dir): ",
        ),
        (
            "LBCTL_SSH_PERSIST",
            "60".to_string(),
            vec!["--ssh-persist=x"],
            "invalid value 'x' for '--ssh-persist <SSH_PERSIST>'",
        ),
    ];
    for (var, value, flags, error) in env_cases {
        Lbctl::new()
            .env(var, value)
            .args(["-i", &path(&dir)])
            .args(flags)
            .args(["status"])
            .timeout(20)
            .stderr_has(error)
            .exit(1)
            .run();
    }
    let meta = std::fs::metadata(&shared).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o755
    );
    assert!(std::fs::symlink_metadata(shared.join("dangling")).is_ok());
    let null = std::fs::metadata("/dev/null").unwrap().file_type();
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(&null));
}
