//! Ansible Vault from the user's side: vaults made by the real `ansible-vault` (the
//! differential cases `vault-*` prove Ansible reads them the same), a wrong or missing password
//! as one clear error naming the file, vaults nobody needs left alone, and decrypted values
//! never shown in errors.

use std::path::PathBuf;

use crate::support::{Lbctl, mkfifo, repo_root, scratch, write};

fn case() -> PathBuf {
    repo_root().join("tests/inputs/ansible/vault-files-and-inline")
}

#[test]
fn the_right_password_decrypts_files_and_inline_values() {
    let out = scratch("vault-render");
    Lbctl::new()
        .current_dir(case())
        .args(["-i", "inventory", "--vault-password-file", "vault-pass"])
        .args(["render", "-o", out.to_str().unwrap()])
        .run();
    let haproxy = std::fs::read_to_string(out.join("lb1/haproxy.cfg")).unwrap();
    assert!(
        haproxy.contains("stats auth admin:stats-secret-from-the-vault"),
        "{haproxy}"
    );
    let keepalived = std::fs::read_to_string(out.join("lb1/keepalived.conf")).unwrap();
    assert!(keepalived.contains("auth_pass vrrp-pw"), "{keepalived}");
}

#[test]
fn a_wrong_password_is_one_error_naming_the_file() {
    let dir = scratch("vault-wrong");
    write(&dir, "wrong-pass", "not-the-password\n");
    let run = Lbctl::new()
        .current_dir(case())
        .args(["-i", "inventory", "--vault-password-file"])
        .arg(dir.join("wrong-pass").to_str().unwrap())
        .arg("validate")
        .stderr_has("inventory/group_vars/all/vault.yml: cannot decrypt: no vault password given decrypts this vault")
        .stderr_has("hint: check the password")
        .exit(1)
        .run();
    // The inline value fails too, at its own line; each problem is reported once.
    assert_eq!(
        run.stderr.matches("group_vars/all/vault.yml").count(),
        1,
        "{}",
        run.stderr
    );
}

#[test]
fn a_vault_without_a_password_says_how_to_give_one() {
    Lbctl::new()
        .current_dir(case())
        .args(["-i", "inventory", "validate"])
        .stderr_has("this is an Ansible Vault, and no vault password was given")
        .stderr_has("--vault-password-file")
        .exit(1)
        .run();
}

/// `-J` where there is no terminal to ask on (CI, cron, a pipe): one error at once that says
/// how else to give the password. Run in a session of its own (`setsid`), which has no
/// controlling terminal whatever the test's own.
#[test]
fn asking_without_a_terminal_says_how_else_to_give_the_password() {
    let out = std::process::Command::new("setsid")
        .arg("--wait")
        .arg(env!("CARGO_BIN_EXE_lbctl"))
        .args(["-i", "inventory", "-J", "validate"])
        .current_dir(case())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("setsid (util-linux) runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot ask for the vault password: there is no terminal to ask on"),
        "{stderr}"
    );
    assert!(stderr.contains("--vault-password-file FILE"), "{stderr}");
}

#[test]
fn a_vault_nobody_needs_is_never_decrypted() {
    let dir = scratch("vault-unneeded");
    let encrypted =
        std::fs::read_to_string(case().join("inventory/group_vars/workers/vault.yml")).unwrap();
    write(&dir, "group_vars/workers/vault.yml", &encrypted);
    write(
        &dir,
        "hosts",
        "[haproxy_servers]\nlb1 ansible_host=10.0.0.1\n[workers]\nw1 ansible_host=10.0.1.1\n",
    );
    write(
        &dir,
        "group_vars/haproxy_servers.yml",
        "haproxy_tcp_backends:\n  - {name: a, port: 80, servers: [{name: w1, address: 10.0.1.1, port: 30080}]}\n",
    );
    // No password source at all, and a password script that must not run.
    write(&dir, "never.sh", "#!/bin/sh\ntouch \"$0.ran\"\necho x\n");
    std::process::Command::new("chmod")
        .args(["+x", dir.join("never.sh").to_str().unwrap()])
        .status()
        .unwrap();
    Lbctl::new()
        .current_dir(&dir)
        .args(["-i", "hosts", "validate"])
        .run();
    Lbctl::new()
        .current_dir(&dir)
        .args([
            "-i",
            "hosts",
            "--vault-password-file",
            "never.sh",
            "validate",
        ])
        .run();
    assert!(
        !dir.join("never.sh.ran").exists(),
        "the password script ran"
    );
}

/// `--vault-password-file pass` names the executable file `./pass`, as Ansible runs it; lbctl
/// looked a name without a `/` up on $PATH, so it failed (no such file), or ran another
/// program of that name (password-store's `pass`, say) and took what it printed.
#[test]
fn a_password_script_named_without_a_directory_is_the_file_here() {
    let dir = scratch("vault-relative-script");
    write(&dir, "pass", "#!/bin/sh\necho lbctl-test-pass\n");
    std::process::Command::new("chmod")
        .args(["+x", dir.join("pass").to_str().unwrap()])
        .status()
        .unwrap();
    let out = dir.join("out");
    Lbctl::new()
        .current_dir(&dir)
        .arg("-i")
        .arg(case().join("inventory").to_str().unwrap())
        .args(["--vault-password-file", "pass", "render", "-o"])
        .arg(out.to_str().unwrap())
        .run();
    let haproxy = std::fs::read_to_string(out.join("lb1/haproxy.cfg")).unwrap();
    assert!(
        haproxy.contains("stats auth admin:stats-secret-from-the-vault"),
        "{haproxy}"
    );
}

/// A password file that is a named pipe: given by process substitution (`<(...)`, which a
/// shell passes as `/dev/fd/N`), it is read as a file; one that nothing writes to is an
/// error at once. lbctl waited to open it for as long as nothing opened it to write.
#[test]
fn a_password_pipe_is_read_and_an_abandoned_one_is_an_error() {
    let dir = scratch("vault-fifo");
    let lbctl = env!("CARGO_BIN_EXE_lbctl");
    let substituted = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "exec {lbctl} -i inventory --vault-password-file <(echo lbctl-test-pass) validate"
        ))
        .current_dir(case())
        .output()
        .expect("bash runs");
    assert!(
        substituted.status.success(),
        "{}",
        String::from_utf8_lossy(&substituted.stderr)
    );
    let fifo = dir.join("pass.fifo");
    mkfifo(&fifo);
    let mut child = std::process::Command::new(lbctl)
        .args(["-i", "inventory", "--vault-password-file"])
        .arg(&fifo)
        .arg("validate")
        .current_dir(case())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Not a timing: a bound on a wait that never ended, so the test fails instead of hanging.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("lbctl still waits for a writer to the FIFO");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("it is a named pipe (FIFO), and nothing wrote to it"),
        "{stderr}"
    );
}

#[test]
fn errors_never_show_a_decrypted_value() {
    let dir = scratch("vault-redacted");
    let pass = case().join("vault-pass");
    let out = std::process::Command::new(crate::ansible::ansible_bin().join("ansible-vault"))
        .args(["encrypt_string", "--vault-password-file"])
        .arg(&pass)
        .args(["not-an-address-but-secret", "--name", "keepalived_vip"])
        .output()
        .unwrap();
    assert!(out.status.success());
    write(
        &dir,
        "hosts.yml",
        &format!(
            "all:\n  children:\n    haproxy_servers:\n      hosts:\n        lb1: {{ansible_host: 10.0.0.1}}\n      vars:\n        keepalived_interface: eth0\n        {}",
            String::from_utf8_lossy(&out.stdout).replace('\n', "\n        ")
        ),
    );
    let run = Lbctl::new()
        .current_dir(&dir)
        .args(["-i", "hosts.yml", "--vault-password-file"])
        .arg(pass.to_str().unwrap())
        .arg("validate")
        .stderr_has("keepalived_vip")
        .stderr_has("<redacted>")
        .exit(1)
        .run();
    assert!(
        !run.stderr.contains("not-an-address-but-secret"),
        "{}",
        run.stderr
    );
}

/// `name: !vault |...` holding `value`, as `ansible-vault encrypt_string` writes it with the
/// case's password.
fn vaulted(name: &str, value: &str) -> String {
    let out = std::process::Command::new(crate::ansible::ansible_bin().join("ansible-vault"))
        .args(["encrypt_string", "--vault-password-file"])
        .arg(case().join("vault-pass"))
        .args([value, "--name", name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The first piece of `secret` that `text` shows: the whole, or 4 characters or more of its
/// start, as written or escaped inside quotes (Rust's and JSON's escapes).
fn shown_part(text: &str, secret: &str) -> Option<String> {
    let escaped = format!("{secret:?}");
    let json = serde_json::to_string(secret).unwrap();
    [
        secret,
        &escaped[1..escaped.len() - 1],
        &json[1..json.len() - 1],
    ]
    .into_iter()
    .flat_map(|form| {
        let ends: Vec<usize> = form.char_indices().map(|(i, _)| i).skip(4).collect();
        ends.into_iter()
            .map(|end| form[..end].to_string())
            .chain([form.to_string()])
            .collect::<Vec<_>>()
    })
    .find(|part| text.contains(part.as_str()))
}

#[test]
fn errors_about_a_password_never_show_it_nor_its_start() {
    const VARS: &str = "haproxy_tcp_backends:\n  - name: mysql\n    port: 3306\n    servers:\n      - {name: w1, address: 10.0.1.1, port: 30306}\nkeepalived_vip: 10.0.0.100/24\nkeepalived_interface: eth0\n";
    let stats = |password: &str| {
        format!("haproxy_stats_user: admin\nhaproxy_stats_password: {password:?}\n")
    };
    for (name, vars, secret, why) in [
        (
            "a vaulted password Rust would escape",
            vaulted("keepalived_auth_pass", "Se\"cr3t"),
            "Se\"cr3t",
            "as a quote and removes it",
        ),
        (
            "a vaulted password keepalived would cut at `!`",
            vaulted("keepalived_auth_pass", "Sup3r!x"),
            "Sup3r!x",
            "holds `!`, which keepalived reads as the start of a comment",
        ),
        (
            "a plain password keepalived would cut at `!`",
            "keepalived_auth_pass: 'Pl41n!pw'\n".to_string(),
            "Pl41n!pw",
            "holds `!`, which keepalived reads as the start of a comment",
        ),
        (
            "a plain password keepalived would cut at a space",
            "keepalived_auth_pass: 'Pl41n pw'\n".to_string(),
            "Pl41n pw",
            "holds a space",
        ),
        (
            "a plain stats password holding a quote",
            stats("St4ts\"pw"),
            "St4ts\"pw",
            "cannot be written safely",
        ),
        (
            "a plain password whose template fails",
            "keepalived_auth_pass: 'Pl41nPw{{ nope }}'\n".to_string(),
            "Pl41nPw",
            "`nope` is undefined",
        ),
    ] {
        let dir = scratch("vault-password-errors");
        write(
            &dir,
            "hosts",
            "[haproxy_servers]\nlb1 ansible_host=10.0.0.1\n",
        );
        write(&dir, "group_vars/all.yml", &format!("{VARS}{vars}"));
        let lbctl = || {
            Lbctl::new()
                .current_dir(&dir)
                .args(["-i", "hosts", "--vault-password-file"])
                .arg(case().join("vault-pass").to_str().unwrap())
                .arg("validate")
                .exit(1)
        };
        let text = lbctl().stderr_has(why).run();
        let json = lbctl().arg("--json").stdout_has(why).run();
        for out in [&text.stdout, &text.stderr, &json.stdout, &json.stderr] {
            assert_eq!(shown_part(out, secret), None, "{name}:\n{out}");
        }
    }
}

/// A vaulted vars file that decrypts to bytes that are not UTF-8 (a Latin-1 file encrypted as
/// it was) is one error at the file, with a hint saying how to look at it and fix it.
#[test]
fn a_vault_of_latin1_bytes_is_an_error_with_a_hint() {
    let dir = scratch("vault-latin1");
    write(
        &dir,
        "hosts",
        "[haproxy_servers]\nlb1 ansible_host=10.0.0.1\n",
    );
    std::fs::create_dir_all(dir.join("group_vars")).unwrap();
    let vars = dir.join("group_vars/all.yml");
    std::fs::write(&vars, b"keepalived_interface: eth0 # Configuraci\xf3n\n").unwrap();
    let out = std::process::Command::new(crate::ansible::ansible_bin().join("ansible-vault"))
        .args(["encrypt", "--vault-password-file"])
        .arg(case().join("vault-pass"))
        .arg(&vars)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Lbctl::new()
        .current_dir(&dir)
        .args(["-i", "hosts", "--vault-password-file"])
        .arg(case().join("vault-pass").to_str().unwrap())
        .arg("validate")
        .stderr_has("group_vars/all.yml: the decrypted vault is not UTF-8 text")
        .stderr_has("hint: a vaulted vars file holds YAML: `ansible-vault view ")
        .exit(1)
        .run();
}
