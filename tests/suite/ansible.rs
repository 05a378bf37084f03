//! Differential tests against the real Ansible: for every case under `tests/inputs/ansible/`,
//! ansible-core (installed into a throwaway virtualenv on first use) resolves each host's
//! variables — precedence, templates, Vault — and lbctl renders the load balancers twice: from
//! the case as it is, and from a flat inventory holding exactly the values Ansible resolved. The
//! two renderings must be byte-identical, and lbctl must manage the same load balancers as the
//! ones Ansible puts in the group.
//!
//! A case is a directory run from its own root (so its `ansible.cfg` applies): `args` holds the
//! command-line arguments both tools get, one per line (`-i`, `-e`, `--vault-password-file`,
//! ...); `lbctl-args`, if present, arguments only lbctl gets; `roles/haproxy/defaults/` the role
//! defaults both read; a `templates/` directory beside the inventory, template overrides.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use crate::support::{Lbctl, repo_root, scratch};
use serde_json::Value;

/// What the behaviour is compared with: ansible-core 2.19 and the `netaddr` that
/// ansible.utils' address filters (`ipaddr`, `ipv4`, `ipv6`, `ipwrap`) need, pinned.
const ANSIBLE_CORE: &[&str] = &["ansible-core==2.19.14", "netaddr==1.3.0"];

/// The collection ansible.utils, as the `ansible` 12.3.0 package (the one built on ansible-core
/// 2.19) bundles it: only that collection is unpacked from the package's wheel, checked against
/// this SHA-256, instead of installing its hundred collections (a fifth of the time and size).
const ANSIBLE_WHEEL: (&str, &str) = (
    "ansible==12.3.0",
    "cd156f82fa87f7a899212b0efa9f7ca3a24d609212de9f78428a572eb01e5414",
);

/// Unpacks `ansible_collections/ansible/utils/` of the wheel `argv[1]` (checked against the
/// SHA-256 `argv[2]`) into the virtualenv's site-packages, where ansible-core finds it.
const UNPACK_UTILS: &str = r#"
import hashlib, sys, sysconfig, zipfile
wheel, digest = sys.argv[1], sys.argv[2]
with open(wheel, "rb") as f:
    got = hashlib.sha256(f.read()).hexdigest()
if got != digest:
    sys.exit(f"{wheel}: SHA-256 {got}, expected {digest}")
prefix = "ansible_collections/ansible/utils/"
with zipfile.ZipFile(wheel) as z:
    z.extractall(sysconfig.get_paths()["purelib"], [n for n in z.namelist() if n.startswith(prefix)])
"#;

/// Variables every host has that Ansible makes up itself rather than reads from the inventory.
const MAGIC: &[&str] = &[
    "ansible_check_mode",
    "ansible_config_file",
    "ansible_diff_mode",
    "ansible_facts",
    "ansible_forks",
    "ansible_inventory_sources",
    "ansible_playbook_python",
    "ansible_run_tags",
    "ansible_skip_tags",
    "ansible_verbosity",
    "ansible_version",
    "group_names",
    "groups",
    "inventory_dir",
    "inventory_file",
    "inventory_hostname",
    "inventory_hostname_short",
    "omit",
    "playbook_dir",
];

/// The virtualenv's `bin/` directory, made once per test run and kept under the target
/// directory for the next one (installing takes about half a minute). Installing needs
/// python3-venv (scripts/packages.sh) and PyPI.
pub fn ansible_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ansible-core-2.19.14");
        let bin = venv.join("bin");
        let core = Command::new(bin.join("ansible-playbook"))
            .arg("--version")
            .output()
            .is_ok_and(|o| {
                o.status.success() && String::from_utf8_lossy(&o.stdout).contains("core 2.19.14]")
            });
        let utils = Command::new(bin.join("python3"))
            .args(["-c", "import netaddr, ansible_collections.ansible.utils"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !(core && utils) {
            let _ = std::fs::remove_dir_all(&venv);
            let run = |program: PathBuf, args: &[&str], what: &str| {
                let out = Command::new(&program)
                    .args(args)
                    .output()
                    .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
                assert!(
                    out.status.success(),
                    "{what} failed:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            let venv_arg = venv.to_str().expect("the target directory is UTF-8");
            run(
                "python3".into(),
                &["-m", "venv", venv_arg],
                "python3 -m venv (scripts/packages.sh installs python3-venv)",
            );
            let pip = bin.join("pip");
            let quiet = ["-q", "--disable-pip-version-check"];
            run(
                pip.clone(),
                &[&["install"], &quiet[..], ANSIBLE_CORE].concat(),
                &format!("pip install {ANSIBLE_CORE:?}"),
            );
            let wheels = venv.join("wheels");
            let wheels_arg = wheels.to_str().expect("the target directory is UTF-8");
            let (package, digest) = ANSIBLE_WHEEL;
            run(
                pip,
                &[
                    &["download", "--no-deps", "-d", wheels_arg],
                    &quiet[..],
                    &[package],
                ]
                .concat(),
                &format!("pip download {package}"),
            );
            let wheel = std::fs::read_dir(&wheels)
                .expect("pip download made its directory")
                .map(|e| e.expect("read the wheel directory").path())
                .find(|p| p.extension().is_some_and(|e| e == "whl"))
                .expect("pip download left a wheel");
            let wheel_arg = wheel.to_str().expect("the target directory is UTF-8");
            run(
                bin.join("python3"),
                &["-c", UNPACK_UTILS, wheel_arg, digest],
                "unpacking ansible.utils",
            );
            let _ = std::fs::remove_dir_all(&wheels);
        }
        bin
    })
}

/// An Ansible command run from `dir`, quiet and without colours or deprecation noise.
pub fn ansible_command(program: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(ansible_bin().join(program));
    cmd.current_dir(dir)
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_DEPRECATION_WARNINGS", "false")
        .env("ANSIBLE_LOCALHOST_WARNING", "false")
        .env("ANSIBLE_INVENTORY_UNPARSED_WARNING", "false")
        .env_remove("ANSIBLE_CONFIG");
    cmd
}

/// What Ansible resolved for one host.
#[derive(Debug)]
struct Resolved {
    vars: serde_json::Map<String, Value>,
    group_names: Vec<String>,
}

/// The play that dumps every host's variables, each templated in the host's full context
/// (`query('vars', ...)`, so `hostvars`, `groups` and Vault work as in a real task).
fn dump_play(defaults: Option<&Path>, template: Option<(&Path, &Path, &str)>) -> String {
    let magic: Vec<String> = MAGIC.iter().map(|m| format!("'{m}'")).collect();
    let (roles, default_names) = match defaults {
        Some(file) => (
            "  roles: [haproxy]\n".to_string(),
            format!(
                " + (lookup('file', '{}') | from_yaml | default({{}}, true) | list)",
                file.display()
            ),
        ),
        None => (String::new(), String::new()),
    };
    // A template override is also rendered by Ansible's own template module, for each load
    // balancer, to be compared with lbctl's rendering of it. It runs first: the tree callback
    // keeps each host's last result, which must be the dump.
    let template_task = template
        .map(|(src, dest, group)| {
            format!(
                "    - ansible.builtin.template:\n        src: {}\n        dest: \"{}/{{{{ inventory_hostname }}}}\"\n      when: inventory_hostname in groups['{group}']\n      vars:\n        ansible_python_interpreter: {}\n",
                src.display(),
                dest.display(),
                ansible_bin().join("python3").display()
            )
        })
        .unwrap_or_default();
    format!(
        "- hosts: all\n  gather_facts: false\n  connection: local\n{roles}  tasks:\n{template_task}    - ansible.builtin.debug:\n        msg:\n          vars: \"{{{{ dict(names | zip(query('vars', *names))) }}}}\"\n          group_names: \"{{{{ group_names }}}}\"\n          groups: \"{{{{ groups | dict2items }}}}\"\n      vars:\n        names: \"{{{{ ((hostvars[inventory_hostname].keys() | list){default_names}) | unique | reject('in', [{}]) | list }}}}\"\n",
        magic.join(", ")
    )
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|t| {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Runs the dump play for a case and reads each host's result; with a `haproxy.cfg.j2`
/// override, Ansible's template module renders it into `work/ansible-template/HOST`.
fn resolve_with_ansible(
    case: &Path,
    args: &[String],
    work: &Path,
    lb_group: &str,
) -> (BTreeMap<String, Resolved>, Groups) {
    let defaults = ["main.yml", "main.yaml"]
        .iter()
        .map(|f| case.join("roles/haproxy/defaults").join(f))
        .find(|p| p.is_file());
    let play = work.join("dump.yml");
    let override_template = templates_of(case).map(|t| t.join("haproxy.cfg.j2"));
    let rendered = work.join("ansible-template");
    std::fs::create_dir_all(&rendered).unwrap();
    let template = override_template
        .as_deref()
        .filter(|t| t.is_file())
        .map(|t| (t, rendered.as_path(), lb_group));
    std::fs::write(&play, dump_play(defaults.as_deref(), template)).unwrap();
    let tree = work.join("tree");
    let out = ansible_command("ansible-playbook", case)
        .args(args)
        .arg(&play)
        .env("ANSIBLE_CALLBACKS_ENABLED", "tree")
        .env("ANSIBLE_CALLBACK_TREE_DIR", &tree)
        .env("ANSIBLE_ROLES_PATH", case.join("roles"))
        .output()
        .expect("run ansible-playbook");
    assert!(
        out.status.success(),
        "{}: ansible-playbook failed\n--- stdout\n{}\n--- stderr\n{}",
        case.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut hosts = BTreeMap::new();
    let mut groups = Groups::new();
    for entry in std::fs::read_dir(&tree).unwrap().map(Result::unwrap) {
        let host = entry.file_name().to_string_lossy().into_owned();
        let result: Value =
            serde_json::from_str(&std::fs::read_to_string(entry.path()).unwrap()).unwrap();
        let msg = &result["msg"];
        let vars = msg["vars"].as_object().cloned().unwrap_or_default();
        let group_names = msg["group_names"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|g| g.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        hosts.insert(host, Resolved { vars, group_names });
        groups = msg["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| {
                let names = g["value"].as_array().into_iter().flatten();
                let names = names.filter_map(|h| h.as_str().map(String::from));
                (
                    g["key"].as_str().unwrap_or_default().to_string(),
                    names.collect(),
                )
            })
            .collect();
    }
    (hosts, groups)
}

/// Ansible's `groups`: every group's hosts, groups and hosts in Ansible's order.
type Groups = Vec<(String, Vec<String>)>;

/// A value as YAML flow text; strings that look like templates are marked `!unsafe`, since
/// Ansible already evaluated what it was going to.
fn flow(value: &Value, out: &mut String) {
    match value {
        Value::String(s) if s.contains("{{") || s.contains("{%") || s.contains("{#") => {
            out.push_str("!unsafe ");
            out.push_str(&value.to_string());
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                flow(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(": ");
                flow(v, out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A YAML inventory holding each host's resolved variables and its groups, nothing else,
/// hosts and groups declared in the order Ansible lists them (so `groups` reads the same).
fn flat_inventory(hosts: &BTreeMap<String, Resolved>, groups: &Groups) -> String {
    let all: Vec<&String> = groups
        .iter()
        .find(|(g, _)| g == "all")
        .map(|(_, members)| members.iter().collect())
        .unwrap_or_else(|| hosts.keys().collect());
    let mut out = String::from("all:\n  hosts:\n");
    for name in all {
        let mut vars = String::new();
        flow(&Value::Object(hosts[name].vars.clone()), &mut vars);
        out.push_str(&format!("    {name}: {vars}\n"));
    }
    let named: Vec<&(String, Vec<String>)> = groups
        .iter()
        .filter(|(g, members)| g != "all" && g != "ungrouped" && !members.is_empty())
        .collect();
    if !named.is_empty() {
        out.push_str("  children:\n");
        for (group, members) in named {
            out.push_str(&format!("    {group}:\n      hosts:\n"));
            for m in members {
                out.push_str(&format!("        {m}:\n"));
            }
        }
    }
    out
}

fn files_under(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().map(Result::unwrap) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    out
}

fn hosts_rendered(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The template override directory of a case, if it has one.
fn templates_of(case: &Path) -> Option<PathBuf> {
    let mut stack = vec![case.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().map(Result::unwrap) {
            let p = e.path();
            if p.is_dir() && !p.ends_with("roles") {
                if p.file_name().is_some_and(|n| n == "templates") {
                    return Some(p);
                }
                stack.push(p);
            }
        }
    }
    None
}

/// Runs one case; returns the number of load balancers compared.
fn differential(name: &str) -> usize {
    let case = repo_root().join("tests/inputs/ansible").join(name);
    assert!(case.is_dir(), "no case {}", case.display());
    let args = lines_of(&case.join("args"));
    let lbctl_args = lines_of(&case.join("lbctl-args"));
    let lb_group = lbctl_args
        .iter()
        .position(|a| a == "--lb-group")
        .and_then(|i| lbctl_args.get(i + 1).cloned())
        .unwrap_or_else(|| "haproxy_servers".into());
    let work = scratch(&format!("ansible-diff-{name}"));
    let (resolved, groups) = resolve_with_ansible(&case, &args, &work, &lb_group);
    let lbs: BTreeSet<String> = resolved
        .iter()
        .filter(|(_, r)| r.group_names.contains(&lb_group))
        .map(|(h, _)| h.clone())
        .collect();
    assert!(
        !lbs.is_empty(),
        "{name}: Ansible sees no host in {lb_group}"
    );

    let own = work.join("own");
    Lbctl::new()
        .current_dir(&case)
        .args(&args)
        .args(&lbctl_args)
        .args(["render", "-o", own.to_str().unwrap()])
        .run();

    let flat = work.join("flat");
    std::fs::create_dir_all(&flat).unwrap();
    std::fs::write(flat.join("hosts.yml"), flat_inventory(&resolved, &groups)).unwrap();
    let theirs = work.join("theirs");
    let mut flat_run =
        Lbctl::new()
            .current_dir(&flat)
            .args(["-i", "hosts.yml", "--lb-group", &lb_group]);
    if let Some(t) = templates_of(&case) {
        flat_run = flat_run.args(["--templates", t.to_str().unwrap()]);
    }
    flat_run
        .args(["render", "-o", theirs.to_str().unwrap()])
        .run();

    assert_eq!(
        hosts_rendered(&own),
        lbs,
        "{name}: lbctl manages other load balancers than Ansible's group {lb_group}"
    );
    assert_eq!(
        hosts_rendered(&theirs),
        lbs,
        "{name}: flat inventory's hosts"
    );
    let (mine, ansible) = (files_under(&own), files_under(&theirs));
    assert_eq!(
        mine.keys().collect::<Vec<_>>(),
        ansible.keys().collect::<Vec<_>>(),
        "{name}: rendered file sets differ"
    );
    for (rel, text) in &mine {
        if *text != ansible[rel] {
            let diff = similar_lines(&ansible[rel], text);
            panic!(
                "{name}: {} differs between Ansible's values (-) and lbctl's own (+):\n{diff}",
                rel.display()
            );
        }
    }
    // Ansible's template module on the user's own haproxy.cfg.j2 wrote the same file.
    let by_ansible = work.join("ansible-template");
    for host in &lbs {
        let theirs = by_ansible.join(host);
        if theirs.exists() {
            let ours = &mine[&PathBuf::from(host).join("haproxy.cfg")];
            let theirs = std::fs::read_to_string(theirs).unwrap();
            assert!(
                *ours == theirs,
                "{name}: {host}'s haproxy.cfg differs from Ansible's template module's (-) and lbctl's (+):\n{}",
                similar_lines(&theirs, ours)
            );
        }
    }
    lbs.len()
}

/// A short line diff for failure messages.
fn similar_lines(a: &str, b: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let mut out = String::new();
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        if x != y {
            out.push_str(&format!("line {}:\n- {x}\n+ {y}\n", i + 1));
        }
    }
    if a.len() != b.len() {
        out.push_str(&format!("({} lines vs {})\n", a.len(), b.len()));
    }
    out
}

/// Every case directory under tests/inputs/ansible.
fn cases() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join("tests/inputs/ansible"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn lbctl_resolves_inventories_as_ansible_does() {
    let mut names = cases();
    assert!(names.len() >= 15, "too few differential cases: {names:?}");
    // While working on a few cases: LBCTL_ANSIBLE_CASES=templated- runs those whose name holds it.
    if let Ok(only) = std::env::var("LBCTL_ANSIBLE_CASES") {
        names.retain(|n| n.contains(&only));
    }
    let mut compared = 0;
    let mut failed = Vec::new();
    for name in &names {
        match std::panic::catch_unwind(|| differential(name)) {
            Ok(n) => compared += n,
            Err(_) => failed.push(name.as_str()),
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} differential cases failed (messages above): {failed:?}",
        failed.len(),
        names.len()
    );
    eprintln!(
        "{} inventories, {compared} load balancers: lbctl's renderings equal Ansible's",
        names.len()
    );
}

/// The SSH connection lbctl makes to each load balancer is the one Ansible makes: Ansible runs
/// a stand-in `ssh` (`ansible_ssh_executable`) that records its arguments and fails, so no
/// packet leaves the machine, and its address, port, user, key and host-key checking are
/// compared with what `lbctl validate --json` reports.
#[test]
fn connections_are_the_ones_ansible_makes() {
    let case = repo_root().join("tests/inputs/ansible/connections-and-ansible-cfg");
    same_connections(&case, "hosts", "ansible-connections");
}

/// A YAML inventory's `host:port` keys set `ansible_port`, as Ansible's YAML plugin parses
/// them (lbctl once took `lb1:2222` for a host name); so does an INI line `[ADDRESS]:PORT`.
#[test]
fn yaml_host_keys_with_a_port_are_the_connections_ansible_makes() {
    let case = scratch("ansible-yaml-ports-case");
    std::fs::write(
        case.join("hosts.yml"),
        "all:\n  children:\n    haproxy_servers:\n      hosts:\n        lb1:2222:\n        lb2:2223:\n          ansible_host: 10.0.0.2\n        lb3:\n          ansible_port: 2224\n        '[2001:db8::4]:2225':\n        lb[5:6]:2226:\n",
    )
    .unwrap();
    same_connections(&case, "hosts.yml", "ansible-yaml-ports");
    // In an INI inventory, a line that starts with `[` is a host when it does not end with
    // `]`: an IPv6 address with a port (lbctl took it for a section header not closed).
    std::fs::write(
        case.join("hosts"),
        "[haproxy_servers]\n[2001:db8::1]:2222\n[2001:db8::3]:2223 ansible_user=deploy  # a comment\nlb1\n",
    )
    .unwrap();
    same_connections(&case, "hosts", "ansible-ini-ports");
}

/// `ansible.cfg` is read as Ansible reads it (Python's configparser, then Ansible's own
/// unquoting): quoted string settings, `[DEFAULT]` for every section, values continued on
/// indented lines, `$VARS` in paths. A file configparser refuses, Ansible refuses, and so does lbctl, naming the
/// line (lbctl used to skip such lines silently). One in a world-writable working directory is
/// ignored by both, with a warning.
#[test]
fn ansible_cfg_is_read_and_refused_as_ansible_does() {
    let case = scratch("ansible-cfg-case");
    let hosts = "[haproxy_servers]\nlb1 ansible_host=10.7.0.11\nlb2 ansible_host=10.7.0.12 ansible_user=ops\n\n[haproxy_servers:vars]\nhaproxy_tcp_backends=[{\"name\": \"web\", \"port\": 80, \"servers\": [{\"name\": \"w1\", \"address\": \"10.7.1.1\", \"port\": 30080}]}]\n";
    std::fs::write(case.join("hosts"), hosts).unwrap();
    std::fs::write(
        case.join("ansible.cfg"),
        "# quoted strings, [DEFAULT], inline comments, a value continued\n[DEFAULT]\nremote_port = 2022\n[defaults]\nremote_user = \"deploy\"  ; Ansible unquotes string settings\nprivate_key_file = ${HOME}/keys/id_ed25519\n\n[ssh_connection]\nssh_args = -C\n    -o ControlMaster=auto\n",
    )
    .unwrap();
    same_connections(&case, "hosts", "ansible-cfg-connections");

    // Each of these, Ansible refuses to start with; lbctl too, naming the line.
    let broken = [
        ("remote_user = deploy\n", 1),
        ("[defaults]\nremote_user deploy\n", 2),
        (
            "[defaults]\nremote_user = a\n\n# again\nREMOTE_USER: b\n",
            5,
        ),
        ("[defaults]\nforks = 5\n[ssh_connection]\n[defaults]\n", 4),
        ("[defaults\nremote_user = deploy\n", 1),
    ];
    for (text, line) in broken {
        std::fs::write(case.join("ansible.cfg"), text).unwrap();
        let theirs = ansible_command("ansible-inventory", &case)
            .args(["-i", "hosts", "--list"])
            .output()
            .unwrap();
        assert!(
            !theirs.status.success()
                && String::from_utf8_lossy(&theirs.stderr).contains("Error reading config file"),
            "Ansible read {text:?}:\n{}",
            String::from_utf8_lossy(&theirs.stderr)
        );
        Lbctl::new()
            .current_dir(&case)
            .args(["-i", "hosts", "validate"])
            .exit(1)
            .stderr_has(format!("ansible.cfg:{line}: "))
            .stderr_has("that Ansible refuses too; nothing was changed")
            .run();
    }

    // ANSIBLE_CONFIG naming a file that is not .cfg or .ini: Ansible will not read it.
    std::fs::write(
        case.join("settings.conf"),
        "[defaults]\nremote_user = deploy\n",
    )
    .unwrap();
    let theirs = ansible_command("ansible-inventory", &case)
        .args(["-i", "hosts", "--list"])
        .env("ANSIBLE_CONFIG", case.join("settings.conf"))
        .output()
        .unwrap();
    assert!(
        !theirs.status.success()
            && String::from_utf8_lossy(&theirs.stderr).contains("Unsupported configuration file"),
        "{}",
        String::from_utf8_lossy(&theirs.stderr)
    );
    Lbctl::new()
        .current_dir(&case)
        .env(
            "ANSIBLE_CONFIG",
            case.join("settings.conf").display().to_string(),
        )
        .args(["-i", "hosts", "validate"])
        .exit(1)
        .stderr_has("settings.conf is not an INI file (.cfg or .ini)")
        .run();

    // In a world-writable directory, its ansible.cfg is anyone's: both ignore it, and say so.
    let open = scratch("ansible-cfg-world-writable");
    std::fs::write(open.join("hosts"), hosts).unwrap();
    std::fs::write(
        open.join("ansible.cfg"),
        "[defaults]\nremote_user = intruder\nremote_port = 2200\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let theirs = ansible_command("ansible-config", &open)
        .args(["dump", "--only-changed"])
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&theirs.stdout),
        String::from_utf8_lossy(&theirs.stderr)
    );
    assert!(
        said.contains("world writable directory") && !said.contains("intruder"),
        "{said}"
    );
    Lbctl::new()
        .current_dir(&open)
        .args(["-i", "hosts", "validate"])
        .stderr_has("world writable directory")
        .run();
    same_connections(&open, "hosts", "ansible-cfg-world-writable-connections");
}

/// `hash_behaviour = merge`: Ansible merges a mapping set in several scopes, where lbctl
/// replaces it whole as Ansible's default does. Rather than render something else than Ansible
/// would, lbctl refuses the setting, naming its line (or the environment variable) and what
/// to write instead; `replace` is read as before.
#[test]
fn hash_behaviour_merge_is_refused_rather_than_rendered_otherwise() {
    let case = scratch("ansible-cfg-hash-merge");
    std::fs::create_dir_all(case.join("group_vars")).unwrap();
    std::fs::write(
        case.join("hosts"),
        "[haproxy_servers]\nlb1 ansible_host=10.7.0.11\n",
    )
    .unwrap();
    std::fs::write(
        case.join("group_vars/all.yml"),
        "nodeports: {mysql: 30306, redis: 30379}\n",
    )
    .unwrap();
    std::fs::write(
        case.join("group_vars/haproxy_servers.yml"),
        "nodeports: {redis: 30380}\nhaproxy_tcp_backends:\n  - name: mysql\n    port: 3306\n    servers:\n      - {name: w1, address: 10.7.1.1, port: \"{{ nodeports.mysql | default(30000) }}\"}\n",
    )
    .unwrap();
    std::fs::write(
        case.join("ansible.cfg"),
        "[defaults]\n# merge the mappings\nhash_behaviour = merge\n",
    )
    .unwrap();
    // Ansible merges: lb1 sees both ports
    let theirs = ansible_command("ansible-inventory", &case)
        .args(["-i", "hosts", "--host", "lb1"])
        .output()
        .unwrap();
    let vars: serde_json::Value = serde_json::from_slice(&theirs.stdout).unwrap();
    assert_eq!(
        vars["nodeports"],
        serde_json::json!({"mysql": 30306, "redis": 30380}),
        "{}",
        String::from_utf8_lossy(&theirs.stderr)
    );
    Lbctl::new()
        .current_dir(&case)
        .args(["-i", "hosts", "validate"])
        .exit(1)
        .stderr_has("ansible.cfg:3: hash_behaviour = merge: lbctl resolves variables as Ansible's default `replace` does")
        .stderr_has("combine(site_map, recursive=true)")
        .run();
    std::fs::write(
        case.join("ansible.cfg"),
        "[defaults]\nhash_behaviour = replace\n",
    )
    .unwrap();
    Lbctl::new()
        .current_dir(&case)
        .args(["-i", "hosts", "validate"])
        .run();
    Lbctl::new()
        .current_dir(&case)
        .env("ANSIBLE_HASH_BEHAVIOUR", "merge")
        .args(["-i", "hosts", "validate"])
        .exit(1)
        .stderr_has("$ANSIBLE_HASH_BEHAVIOUR: hash_behaviour = merge")
        .run();
}

/// The SSH connections Ansible makes to the load balancers of the inventory `inventory` (in
/// `case`), and the ones lbctl reads from it, are the same: address, port, user, key, host
/// key policy.
fn same_connections(case: &Path, inventory: &str, scratch_name: &str) {
    let work = scratch(scratch_name);
    let log = work.join("argv.log");
    let fake = work.join("fake-ssh");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> {}\nexit 255\n",
            log.display()
        ),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    let out = ansible_command("ansible", case)
        .args(["-i", inventory, "haproxy_servers", "-m", "ping", "-f", "1"])
        .arg("-e")
        .arg(format!("ansible_ssh_executable={}", fake.display()))
        .output()
        .unwrap();
    let argv = std::fs::read_to_string(&log).unwrap_or_else(|_| {
        panic!(
            "Ansible never ran ssh:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    // (address, port, user, key, strict host keys) as Ansible's ssh would use them.
    let mut theirs: Vec<(String, String, String, String, bool)> = argv
        .lines()
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let opt = |name: &str| {
                words
                    .iter()
                    .find_map(|w| w.strip_prefix(&format!("{name}=")))
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_string()
            };
            let host = words[words.iter().position(|w| *w == "/bin/sh").unwrap() - 1];
            (
                host.to_string(),
                opt("Port"),
                opt("User"),
                opt("IdentityFile"),
                opt("StrictHostKeyChecking") != "no",
            )
        })
        .collect();
    theirs.sort();
    let run = Lbctl::new()
        .current_dir(case)
        .args(["-i", inventory, "validate", "--json"])
        .run();
    let mut ours: Vec<(String, String, String, String, bool)> = run.json()["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["address"].as_str().unwrap().to_string(),
                c["port"]
                    .as_u64()
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
                c["user"].as_str().unwrap_or_default().to_string(),
                c["private_key"].as_str().unwrap_or_default().to_string(),
                c["strict_host_keys"] == "strict",
            )
        })
        .collect();
    ours.sort();
    assert_eq!(
        ours, theirs,
        "lbctl's connections (left) and Ansible's (right)"
    );
}

/// With a template of the user's own, the keys it reads are theirs (`maxconn` on a server is
/// no "unknown key"), but a typo of one of lbctl's keys is still caught.
#[test]
fn a_template_override_allows_its_keys_and_still_catches_typos() {
    let case = repo_root().join("tests/inputs/ansible/user-template-keys/inventory");
    let dir = scratch("ansible-template-keys");
    for rel in ["hosts", "templates/haproxy.cfg.j2"] {
        crate::support::write(&dir, rel, &std::fs::read_to_string(case.join(rel)).unwrap());
    }
    let vars = std::fs::read_to_string(case.join("group_vars/haproxy_servers.yml")).unwrap();
    crate::support::write(
        &dir,
        "group_vars/haproxy_servers.yml",
        &vars.replace("check: no}", "chek: no}"),
    );
    Lbctl::new()
        .current_dir(&dir)
        .args(["-i", "hosts", "validate"])
        .stderr_has("unknown key `chek`")
        .stderr_has("did you mean `check`?")
        .exit(1)
        .run();
    std::fs::remove_file(dir.join("templates/haproxy.cfg.j2")).unwrap();
    crate::support::write(&dir, "group_vars/haproxy_servers.yml", &vars);
    Lbctl::new()
        .current_dir(&dir)
        .args(["-i", "hosts", "validate"])
        .stderr_has("unknown key `maxconn`")
        .exit(1)
        .run();
}

/// A repository migrated from the seed role as it is: the lab's inventory with its secrets in
/// an encrypted `group_vars/all/vault.yml` and an inline `!vault` value (made by the real
/// ansible-vault), the seed role's defaults, and its `haproxy.cfg.j2` as the template. `plan`
/// and `apply` work with `--vault-password-file`, apply verifies what the seed template
/// declares and does not roll back, and no secret shows in the plan.
#[test]
fn the_seed_role_with_vault_secrets_applies_on_the_lab() {
    let lab = crate::support::lab::Lab::up();
    let dir = scratch("ansible-seed-on-lab");
    let lab_inv = repo_root().join("inventory/lab");
    let copy = |from: &str, to: &str| {
        let text = std::fs::read_to_string(lab_inv.join(from)).unwrap();
        crate::support::write(&dir, to, &text);
        text
    };
    copy("hosts.ini", "inventory/hosts.ini");
    copy("group_vars/all.yml", "inventory/group_vars/all/main.yml");
    for lb in ["lb1", "lb2", "lb3"] {
        copy(
            &format!("host_vars/{lb}.yml"),
            &format!("inventory/host_vars/{lb}.yml"),
        );
    }
    let lbs = std::fs::read_to_string(lab_inv.join("group_vars/haproxy_servers.yml")).unwrap();
    assert!(lbs.contains("keepalived_auth_pass: lab-vrrp\n"), "{lbs}");
    assert!(
        lbs.contains("haproxy_stats_password: lab-stats-secret\n"),
        "{lbs}"
    );
    let pass = dir.join("vault-pass");
    std::fs::write(&pass, "lab vault password\n").unwrap();
    let vault = |args: &[&str]| {
        let out = Command::new(ansible_bin().join("ansible-vault"))
            .args(args)
            .arg("--vault-password-file")
            .arg(&pass)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let inline = vault(&[
        "encrypt_string",
        "lab-vrrp",
        "--name",
        "keepalived_auth_pass",
    ]);
    crate::support::write(
        &dir,
        "inventory/group_vars/haproxy_servers.yml",
        &lbs.replace("keepalived_auth_pass: lab-vrrp\n", &inline)
            .replace("haproxy_stats_password: lab-stats-secret\n", ""),
    );
    let vault_file = dir.join("inventory/group_vars/all/vault.yml");
    std::fs::write(&vault_file, "haproxy_stats_password: lab-stats-secret\n").unwrap();
    vault(&["encrypt", vault_file.to_str().unwrap()]);
    let seed = repo_root().join("tests/inputs/ansible/seed-role-template");
    for rel in [
        "roles/haproxy/defaults/main.yml",
        "inventory/templates/haproxy.cfg.j2",
    ] {
        crate::support::write(&dir, rel, &std::fs::read_to_string(seed.join(rel)).unwrap());
    }
    let lbctl = |cmd: &[&str]| {
        Lbctl::new()
            .current_dir(&dir)
            .args(["-i", "inventory", "--vault-password-file", "vault-pass"])
            .args(cmd)
    };
    let plan = lbctl(&["plan"]).stdout_has("# Ansible managed").run();
    for secret in ["lab-vrrp", "lab-stats-secret"] {
        assert!(
            !plan.stdout.contains(secret),
            "{secret} in the plan:\n{}",
            plan.stdout
        );
    }
    let apply = lbctl(&["apply", "--yes", "--json"]).run();
    let report = apply.json();
    for host in report["hosts"].as_array().unwrap() {
        assert_eq!(host["outcome"], "applied", "{host}");
        assert_eq!(host["rolled_back"], false, "{host}");
        let verify = host["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == "verify")
            .unwrap_or_else(|| panic!("no verify step: {host}"));
        assert_eq!(verify["ok"], true, "{host}");
    }
    assert!(!apply.stdout.contains("lab-vrrp"), "{}", apply.stdout);
    let live = lab.exec("lb1", &["cat", "/etc/haproxy/haproxy.cfg"]);
    assert!(
        String::from_utf8_lossy(&live.stdout).starts_with("# Ansible managed\n"),
        "{}",
        String::from_utf8_lossy(&live.stdout)
    );
    lbctl(&["plan", "--detailed-exitcode"]).run();
}

/// Inventory plugins, scripts and TOML are refused by name, with the export that works in
/// their place (the case `exported-from-ansible-inventory` is such an export).
#[test]
fn plugin_configs_scripts_and_toml_point_to_the_export() {
    let dir = scratch("ansible-plugin-config");
    crate::support::write(
        &dir,
        "aws_ec2.yml",
        "plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n",
    );
    crate::support::write(
        &dir,
        "inventory.py",
        "#!/usr/bin/env python3\nprint('{}')\n",
    );
    Command::new("chmod")
        .args(["+x", dir.join("inventory.py").to_str().unwrap()])
        .status()
        .unwrap();
    crate::support::write(&dir, "hosts.toml", "[haproxy_servers.hosts.lb1]\n");
    for (file, what) in [
        ("aws_ec2.yml", "an inventory plugin configuration"),
        ("inventory.py", "an inventory script"),
        ("hosts.toml", "a TOML inventory"),
    ] {
        Lbctl::new()
            .current_dir(&dir)
            .args(["-i", file, "validate"])
            .stderr_has(format!("{file}: this is {what}, which lbctl does not run"))
            .stderr_has(format!(
                "ansible-inventory -i {file} --list -y > inventory.yml"
            ))
            .exit(1)
            .run();
    }
}
