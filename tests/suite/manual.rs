//! `lbctl completions` and `lbctl man`: what a user installs into their shell and man path
//! must load there.

use std::process::{Command, Stdio};

use crate::support::{Lbctl, scratch};

#[test]
fn every_shell_gets_a_completion_script_and_bash_loads_its_own() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = Lbctl::new().args(["completions", shell]).run();
        assert!(
            run.stdout.contains("failover-test") && run.stdout.contains("detailed-exitcode"),
            "{shell}: the script does not complete lbctl's subcommands and flags:\n{}",
            run.stdout
        );
    }
    let script = Lbctl::new().args(["completions", "bash"]).run().stdout;
    let dir = scratch("completions-bash");
    let file = dir.join("lbctl.bash");
    std::fs::write(&file, &script).unwrap();
    let syntax = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert!(
        syntax.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    // Loaded, it completes a subcommand from its first letters, as a user's TAB would.
    let complete = format!(
        "source {}; COMP_WORDS=(lbctl fail); COMP_CWORD=1; _lbctl lbctl fail lbctl; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file.display()
    );
    let out = Command::new("bash")
        .args(["-c", &complete])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "failover-test",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_manual_page_renders_with_man_and_documents_every_subcommand() {
    let page = Lbctl::new().arg("man").run().stdout;
    assert!(page.contains("\n.TH lbctl 1 "), "not a roff page:\n{page}");
    let dir = scratch("manual-page");
    let file = dir.join("lbctl.1");
    std::fs::write(&file, &page).unwrap();
    let out = Command::new("man")
        .args(["--warnings", "-P", "cat", "-l"])
        .arg(&file)
        .env("MANWIDTH", "100")
        .stdin(Stdio::null())
        .output()
        .expect("man is installed (scripts/packages.sh installs man-db)");
    let text = String::from_utf8_lossy(&out.stdout);
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && warnings.trim().is_empty(),
        "man -l: {warnings}"
    );
    for section in [
        "NAME",
        "SYNOPSIS",
        "OPTIONS",
        "SUBCOMMANDS",
        "LBCTL VALIDATE",
        "LBCTL RENDER",
        "LBCTL PLAN",
        "LBCTL APPLY",
        "LBCTL STATUS",
        "LBCTL FAILOVER-TEST",
        "LBCTL COMPLETIONS",
        "LBCTL MAN",
        "EXIT STATUS",
    ] {
        assert!(
            text.lines().any(|l| l == section),
            "no section {section} in the rendered page:\n{text}"
        );
    }
    for flag in [
        "--detailed-exitcode",
        "--serial",
        "--probe-rate",
        "--inventory",
    ] {
        assert!(text.contains(flag), "{flag} is not in the page:\n{text}");
    }
}
