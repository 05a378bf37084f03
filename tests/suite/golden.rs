//! Golden render tests: the configs lbctl writes are reviewed as files in `tests/golden/`, and
//! every one of them must pass the real program's own check (`haproxy -c`, `keepalived -t`,
//! `nginx -t`). Regenerate with `LBCTL_BLESS=1 cargo test --test suite -- golden::`.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
    sync::{Mutex, MutexGuard},
};

use crate::support::{self, Lbctl, repo_root, require_root_and, scratch};

/// Each case: a name and lbctl's arguments (from the repository root).
const CASES: &[(&str, &[&str])] = &[
    ("example", &["-i", "inventory/example"]),
    (
        "seed004-extra-vars",
        &[
            "-i",
            "inventory/example",
            "-e",
            "@tests/inputs/seed004-vars.yaml",
        ],
    ),
    (
        "lvs-udp",
        &["-i", "inventory/example", "-e", "lbctl_udp_engine=lvs"],
    ),
    (
        "multicast",
        &[
            "-i",
            "inventory/example",
            "-e",
            "keepalived_unicast=false keepalived_advert_int=2",
        ],
    ),
    ("single-lb", &["-i", "tests/inputs/single-lb"]),
    ("seed000", &["-i", "inventory/seed000"]),
    ("seed003", &["-i", "inventory/seed003"]),
    ("l7-edges", &["-i", "tests/inputs/l7-edges"]),
    ("vrrp3", &["-i", "tests/inputs/vrrp3"]),
    (
        "process-delay",
        &[
            "-i",
            "inventory/example",
            "-e",
            "keepalived_haproxy_process=hapee-lb keepalived_haproxy_process_delay=0.05",
        ],
    ),
    ("udp-health", &["-i", "tests/inputs/udp-health"]),
    (
        "udp-health-script",
        &[
            "-i",
            "tests/inputs/udp-health",
            "-e",
            "keepalived_haproxy_check=script nginx_pid_file=/run/nginx/nginx.pid",
        ],
    ),
    (
        "udp-health-lvs",
        &[
            "-i",
            "tests/inputs/udp-health",
            "-e",
            "lbctl_udp_engine=lvs",
        ],
    ),
];

/// `tests/golden/`, held by a test that reads it: `LBCTL_BLESS=1` rewrites it, and the tests
/// run in parallel.
fn golden_files() -> MutexGuard<'static, ()> {
    static GOLDEN: Mutex<()> = Mutex::new(());
    GOLDEN.lock().unwrap_or_else(|e| e.into_inner())
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().map(Result::unwrap) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p)
            } else {
                out.push(p)
            }
        }
    }
    out.sort();
    out
}

fn render(test: &str, name: &str, args: &[&str]) -> PathBuf {
    let out = scratch(&format!("golden-{test}-{name}"));
    Lbctl::new()
        .args(args)
        .args(["render", "-o", out.to_str().unwrap()])
        .run();
    out
}

#[test]
fn rendered_configs_match_golden_files() {
    let _golden = golden_files();
    let bless = std::env::var_os("LBCTL_BLESS").is_some();
    let mut diffs = Vec::new();
    for (name, args) in CASES {
        let out = render("match", name, args);
        let golden = repo_root().join("tests/golden").join(name);
        if bless {
            let _ = std::fs::remove_dir_all(&golden);
            for f in files_under(&out) {
                let dest = golden.join(f.strip_prefix(&out).unwrap());
                std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                std::fs::copy(&f, dest).unwrap();
            }
            continue;
        }
        let got: BTreeSet<PathBuf> = files_under(&out)
            .iter()
            .map(|f| f.strip_prefix(&out).unwrap().to_path_buf())
            .collect();
        let want: BTreeSet<PathBuf> = files_under(&golden)
            .iter()
            .map(|f| f.strip_prefix(&golden).unwrap().to_path_buf())
            .collect();
        assert_eq!(
            got, want,
            "{name}: rendered file set differs from tests/golden/{name}"
        );
        for rel in got {
            let a = std::fs::read_to_string(out.join(&rel)).unwrap();
            let b = std::fs::read_to_string(golden.join(&rel)).unwrap();
            if a != b {
                diffs.push(format!("{name}/{}", rel.display()));
            }
        }
    }
    assert!(
        diffs.is_empty(),
        "rendered output differs from golden files (review, then LBCTL_BLESS=1): {diffs:?}"
    );
}

/// A scratch network namespace holding bridge links named like the configs' interfaces, since
/// `keepalived -t` refuses interfaces that do not exist.
struct Netns(String);

impl Netns {
    fn new(interfaces: &BTreeSet<String>) -> Netns {
        let name = format!("lbctl-chk-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        assert!(
            Command::new("ip")
                .args(["netns", "add", &name])
                .status()
                .unwrap()
                .success(),
            "ip netns add"
        );
        for ifname in interfaces {
            let ok = Command::new("ip")
                .args([
                    "netns", "exec", &name, "ip", "link", "add", ifname, "type", "bridge",
                ])
                .status()
                .unwrap()
                .success();
            assert!(
                ok,
                "cannot create interface {ifname} in the scratch namespace"
            );
        }
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn check(cmd: &mut Command, what: &Path) -> Option<String> {
    let out = cmd.output().expect("run checker");
    (!out.status.success()).then(|| {
        format!(
            "{} rejected by {:?}:\n{}{}",
            what.display(),
            cmd.get_program(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The certificates a rendered HAProxy config terminates TLS with (`bind ... ssl crt PATH`).
fn certificates(cfg: &str) -> Vec<String> {
    cfg.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("bind ") && l.contains(" ssl "))
        .flat_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words
                .windows(2)
                .filter(|w| w[0] == "crt")
                .map(|w| w[1].to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `haproxy -c` loads the certificates a config names, at the paths the load balancers keep
/// them (examples keep them under /etc/haproxy/). Such a config is checked in a private mount
/// namespace whose /etc/haproxy holds a throwaway self-signed certificate at each of those
/// paths; the machine's own /etc/haproxy is left alone.
fn check_haproxy(cfg: &Path, scratch_dir: &Path) -> Option<String> {
    let certs = certificates(&std::fs::read_to_string(cfg).unwrap());
    if certs.is_empty() {
        return check(
            Command::new("haproxy").args(["-c", "-q", "-f"]).arg(cfg),
            cfg,
        );
    }
    let pem = scratch_dir.join("self-signed.pem");
    if !pem.exists() {
        let (key, crt) = (scratch_dir.join("key.pem"), scratch_dir.join("crt.pem"));
        let made = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=lbctl-golden",
            ])
            .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&crt)
            .output()
            .expect("run openssl");
        assert!(made.status.success(), "openssl: {made:?}");
        let bundle =
            std::fs::read_to_string(&crt).unwrap() + &std::fs::read_to_string(&key).unwrap();
        std::fs::write(&pem, bundle).unwrap();
    }
    let etc = scratch_dir.join(format!("etc-haproxy-{}", cfg.display()).replace('/', "_"));
    for c in &certs {
        let rel = c.strip_prefix("/etc/haproxy/").unwrap_or_else(|| {
            panic!(
                "{}: examples keep certificates under /etc/haproxy/, not {c}",
                cfg.display()
            )
        });
        let dest = etc.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&pem, dest).unwrap();
    }
    check(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(r#"mount --bind "$1" /etc/haproxy && exec haproxy -c -q -f "$2""#)
            .arg("sh")
            .arg(&etc)
            .arg(cfg),
        cfg,
    )
}

/// `systemd-analyze verify` of the watcher's unit, whose `ExecStart` must name an executable
/// that exists: it is pointed at the script rendered beside the unit, copied to a scratch
/// place (the load balancers' path, /etc/lbctl, is not this machine's).
fn check_unit(unit: &Path, scratch_dir: &Path, n: usize) -> Option<String> {
    let text = std::fs::read_to_string(unit).unwrap();
    let script = unit.with_file_name("udp-health");
    let copy = scratch_dir.join(format!("udp-health-{n}"));
    std::fs::copy(&script, &copy).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let exec = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap_or_else(|| panic!("{}: no ExecStart", unit.display()));
    let program = exec.split_whitespace().next().unwrap();
    let dir = scratch_dir.join(format!("unit-{n}"));
    std::fs::create_dir_all(&dir).unwrap();
    let moved = dir.join("lbctl-udp-health.service");
    std::fs::write(&moved, text.replace(program, copy.to_str().unwrap())).unwrap();
    check(
        Command::new("systemd-analyze").arg("verify").arg(&moved),
        unit,
    )
}

#[test]
fn every_rendered_config_passes_the_real_programs_checks() {
    require_root_and(&[
        "haproxy",
        "keepalived",
        "nginx",
        "ip",
        "unshare",
        "openssl",
        "shellcheck",
        "systemd-analyze",
    ]);
    let _golden = golden_files();
    assert!(
        Path::new("/usr/lib/nginx/modules/ngx_stream_module.so").exists(),
        "nginx's stream module is missing: apt-get install libnginx-mod-stream"
    );
    let mut files = Vec::new();
    for (name, args) in CASES {
        files.extend(files_under(&render("checks", name, args)));
    }
    files.extend(files_under(&repo_root().join("tests/golden")));
    let interfaces: BTreeSet<String> = files
        .iter()
        .filter(|f| {
            f.extension().is_some_and(|e| e == "conf") && f.to_string_lossy().contains("keepalived")
        })
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter_map(|l| {
                    l.trim()
                        .strip_prefix("interface ")
                        .map(|i| i.trim().to_string())
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let ns = Netns::new(&interfaces);
    let wrapper_dir = scratch("golden-nginx-wrappers");
    let cert_dir = scratch("golden-haproxy-certs");
    let mut failures = Vec::new();
    let mut checked = 0;
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let failure = match name.as_str() {
            "haproxy.cfg" => check_haproxy(f, &cert_dir),
            "keepalived.conf" => check(
                Command::new("ip")
                    .args(["netns", "exec", &ns.0, "keepalived", "-t", "-f"])
                    .arg(f),
                f,
            ),
            "nginx-stream.conf" => {
                let wrapper = wrapper_dir.join(format!("wrapper-{checked}.conf"));
                std::fs::write(&wrapper, format!(
                    "include /etc/nginx/modules-enabled/*.conf;\nevents {{}}\npid {}/nginx.pid;\ninclude {};\n",
                    wrapper_dir.display(), f.display()
                )).unwrap();
                check(
                    Command::new("nginx").args(["-t", "-q", "-c"]).arg(&wrapper),
                    f,
                )
            }
            "udp-health" => check(Command::new("sh").arg("-n").arg(f), f)
                .or_else(|| check(Command::new("shellcheck").args(["-s", "sh"]).arg(f), f)),
            "lbctl-udp-health.service" => check_unit(f, &wrapper_dir, checked),
            other => panic!("unexpected rendered file {other}"),
        };
        checked += 1;
        failures.extend(failure);
    }
    assert!(checked >= 20, "only {checked} files were checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn seed_vars_file_pasted_as_is_validates() {
    Lbctl::new()
        .args(["-i", "inventory/example"])
        .args(["-e", "@tests/inputs/seed004-vars.yaml", "validate"])
        .stdout_has("1 TCP and 1 UDP backend")
        .run();
}

#[test]
fn seed_examples_validate_without_their_certificates() {
    // seed000's certificate lives on its load balancers, not here: validate checks its form only.
    Lbctl::new()
        .args(["-i", "inventory/seed000", "validate"])
        .stdout_has("1 TCP, 3 HTTP and 0 UDP backends")
        .run();
    Lbctl::new()
        .args(["-i", "inventory/seed003", "validate"])
        .stdout_has("6 TCP and 0 UDP backends")
        .run();
}

#[test]
fn render_writes_one_folder_per_load_balancer() {
    let out = render("folders", "example", &["-i", "inventory/example"]);
    let hosts: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(hosts, ["lb1", "lb2", "lb3"]);
    for h in &hosts {
        for f in ["haproxy.cfg", "keepalived.conf", "nginx-stream.conf"] {
            assert!(out.join(h).join(f).is_file(), "{h}/{f} missing");
        }
    }
}

/// The parts of the built-in templates that hosts share (`lbctl_part`: haproxy.cfg's
/// proxies, the UDP health watcher's script, nginx's stream file) are rendered once per
/// distinct inputs in a run: every host's files are byte for byte those it gets rendered
/// alone, when some hosts share everything, one has its own watcher directory, one its own UDP
/// backends, one its own nginx resolver.
#[test]
fn hosts_sharing_template_parts_render_as_alone() {
    let dir = scratch("golden-shared-parts");
    let input = repo_root().join("tests/inputs/udp-health");
    support::write(
        &dir,
        "group_vars/all.yml",
        &std::fs::read_to_string(input.join("group_vars/all.yml")).unwrap(),
    );
    support::write(
        &dir,
        "hosts.ini",
        "[haproxy_servers]\nlb1 ansible_host=10.0.0.11\nlb2 ansible_host=10.0.0.12\n\
         lb3 ansible_host=10.0.0.13\nlb4 ansible_host=10.0.0.14\nlb5 ansible_host=10.0.0.15\n",
    );
    support::write(
        &dir,
        "host_vars/lb3.yml",
        "lbctl_udp_health_dir: /etc/lbctl/lb3\n",
    );
    support::write(
        &dir,
        "host_vars/lb4.yml",
        "haproxy_udp_backends:\n  - name: statsd\n    port: 8125\n    health_check: {port: 30601}\n    servers:\n      - {name: w1, address: 10.0.0.21, port: 30125}\n",
    );
    support::write(&dir, "host_vars/lb5.yml", "nginx_resolver: 10.0.0.53\n");
    let inventory = dir.to_str().unwrap();
    let together = render("shared-parts", "all", &["-i", inventory]);
    for host in ["lb1", "lb2", "lb3", "lb4", "lb5"] {
        let alone = render("shared-parts", host, &["-i", inventory, "-l", host]);
        let files = files_under(&alone);
        assert_eq!(files.len(), 5, "{host}: {files:?}");
        for f in files {
            let rel = f.strip_prefix(&alone).unwrap();
            assert_eq!(
                std::fs::read_to_string(together.join(rel)).unwrap(),
                std::fs::read_to_string(&f).unwrap(),
                "{} differs from the host rendered alone",
                rel.display()
            );
        }
    }
    let read = |rel: &str| std::fs::read_to_string(together.join(rel)).unwrap();
    assert!(read("lb3/udp-health").contains("/etc/lbctl/lb3/nginx-stream.conf"));
    assert!(read("lb3/haproxy.cfg").contains("external-check command /etc/lbctl/lb3/udp-health"));
    assert!(!read("lb1/udp-health").contains("/etc/lbctl/lb3"));
    assert!(!read("lb4/haproxy.cfg").contains("backend dns"));
    assert!(read("lb1/haproxy.cfg").contains("backend dns"));
    assert!(!read("lb4/nginx-stream.conf").contains("udp_dns"));
    assert!(read("lb5/nginx-stream.conf").contains("resolver 10.0.0.53"));
    assert!(!read("lb1/nginx-stream.conf").contains("resolver"));
}

#[test]
fn template_override_next_to_the_inventory_wins() {
    let dir = scratch("golden-override");
    for entry in files_under(&repo_root().join("inventory/example")) {
        let rel = entry
            .strip_prefix(repo_root().join("inventory/example"))
            .unwrap();
        support::write(
            &dir,
            rel.to_str().unwrap(),
            &std::fs::read_to_string(&entry).unwrap(),
        );
    }
    // An Ansible-style template using the seed's raw variable names.
    support::write(
        &dir,
        "templates/haproxy.cfg.j2",
        "# {{ inventory_hostname }}\n{% for b in haproxy_tcp_backends %}\nlisten {{ b.name }}\n    bind :{{ b.port }}\n{% endfor %}\n",
    );
    let out = dir.join("out");
    Lbctl::new()
        .args([
            "-i",
            dir.to_str().unwrap(),
            "render",
            "-o",
            out.to_str().unwrap(),
        ])
        .run();
    let cfg = std::fs::read_to_string(out.join("lb1/haproxy.cfg")).unwrap();
    assert!(
        cfg.starts_with("# lb1\nlisten mysql\n    bind :3306\n"),
        "{cfg}"
    );
    support::write(
        &dir,
        "templates/haproxy.cfg.j2",
        "{% for b in haproxy_tcp_backends %}\n{{ b.nonexistent.field }}\n{% endfor %}\n",
    );
    Lbctl::new()
        .args(["-i", dir.to_str().unwrap(), "validate"])
        .stderr_has("templates/haproxy.cfg.j2:2: template error")
        .exit(1)
        .run();
}
