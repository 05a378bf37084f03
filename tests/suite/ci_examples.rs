//! `examples/ci/`: the GitHub Actions and GitLab CI pipelines parse as YAML, use only flags
//! the README documents, and their lbctl steps, run as the CI would run them (bash, the
//! pipeline's variables), plan, apply the saved plan and drill the lab.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;

use crate::support::lab::Lab;
use crate::support::{Lbctl, repo_root, scratch};

/// A pipeline file as data (PyYAML, Debian's python3-yaml).
fn load(name: &str) -> Value {
    let path = repo_root().join("examples/ci").join(name);
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1])), default=str))",
        ])
        .arg(&path)
        .output()
        .expect("python3 with yaml (scripts/packages.sh installs python3-yaml)");
    assert!(
        out.status.success(),
        "{name} is not YAML: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every job's shell steps, by job name.
fn github_steps(doc: &Value) -> BTreeMap<String, Vec<String>> {
    doc["jobs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, job)| {
            let runs = job["steps"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|s| s["run"].as_str().map(String::from))
                .collect();
            (name.clone(), runs)
        })
        .collect()
}

fn gitlab_steps(doc: &Value) -> BTreeMap<String, Vec<String>> {
    doc.as_object()
        .unwrap()
        .iter()
        .filter_map(|(name, job)| {
            let script = job.get("script")?.as_array()?;
            Some((
                name.clone(),
                script
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect(),
            ))
        })
        .collect()
}

/// Every option an lbctl command line in `steps` uses must be in the README.
fn documented(steps: &BTreeMap<String, Vec<String>>) {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    for script in steps.values().flatten() {
        for line in script.lines().filter(|l| l.contains("lbctl ")) {
            for word in line.split_whitespace().filter(|w| w.starts_with('-')) {
                assert!(
                    readme.contains(&format!("`{word}")) || readme.contains(&format!("{word} ")),
                    "`{word}` in `{line}` is not documented in the README"
                );
            }
        }
    }
}

/// Runs one step as the CI would (`bash -e`), with lbctl on the PATH, in `dir`.
fn run_step(script: &str, dir: &Path, env: &[(&str, String)]) -> std::process::Output {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_lbctl"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "5", "300", "bash", "-e", "-c", script])
        .current_dir(dir)
        .env("PATH", path)
        .env("LBCTL_INVENTORY", repo_root().join("inventory/lab"))
        .env("LBCTL_SSH_PERSIST", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn ok(what: &str, out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{what}: {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_pipelines_parse_and_use_documented_flags_only() {
    let github = load("github-actions.yml");
    // PyYAML reads the bare key `on` as a YAML 1.1 boolean.
    let on = github
        .get("on")
        .or_else(|| github.get("true"))
        .expect("on:");
    for event in ["pull_request", "push", "schedule"] {
        assert!(on.get(event).is_some(), "no {event} trigger");
    }
    let steps = github_steps(&github);
    assert_eq!(steps.keys().collect::<Vec<_>>(), ["apply", "drill", "plan"]);
    documented(&steps);
    let gitlab = load("gitlab-ci.yml");
    let steps = gitlab_steps(&gitlab);
    assert_eq!(steps.keys().collect::<Vec<_>>(), ["apply", "drill", "plan"]);
    documented(&steps);
}

/// Mark the lab as needing a change: the inventory's own configuration is then the change.
fn pending_change() {
    Lbctl::on_lab()
        .args(["-e", "@tests/inputs/limit-change.yaml", "apply", "--yes"])
        .run();
}

#[test]
fn the_pipelines_lbctl_steps_plan_apply_the_saved_plan_and_drill_the_lab() {
    let _lab = Lab::up();

    // GitHub Actions: plan (exit 2: changes), the artifact, apply of the saved plan, drill.
    pending_change();
    let steps = github_steps(&load("github-actions.yml"));
    let dir = scratch("ci-github");
    let output = dir.join("github-output");
    std::fs::write(&output, "").unwrap();
    let env = [("GITHUB_OUTPUT", output.display().to_string())];
    let out = run_step(&steps["plan"][0], &dir, &env);
    ok("github plan", &out);
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "changes=true\n");
    assert!(dir.join("plan.json").exists() && dir.join("plan.txt").exists());
    ok("github apply", &run_step(&steps["apply"][0], &dir, &env));
    Lbctl::on_lab()
        .args(["plan", "--detailed-exitcode"])
        .stdout_has("Plan: 0 to change")
        .run();
    let out = run_step(&steps["drill"][0], &dir, &env);
    ok("github drill", &out);
    let drill: Value =
        serde_json::from_slice(&std::fs::read(dir.join("drill.json")).unwrap()).unwrap();
    assert_eq!(drill["test"], "worker");
    assert_eq!(drill["report"]["passed"], true, "{drill}");
    assert!(dir.join("drill.html").exists());

    // GitLab CI: the same, its dotenv report carrying "changes" to the apply job.
    pending_change();
    let steps = gitlab_steps(&load("gitlab-ci.yml"));
    let dir = scratch("ci-gitlab");
    ok("gitlab plan", &run_step(&steps["plan"][0], &dir, &[]));
    let dotenv = std::fs::read_to_string(dir.join("plan.env")).unwrap();
    assert_eq!(dotenv, "LBCTL_CHANGES=true\n");
    let env = [("LBCTL_CHANGES", "true".to_string())];
    for line in &steps["apply"] {
        ok("gitlab apply", &run_step(line, &dir, &env));
    }
    Lbctl::on_lab()
        .args(["plan", "--detailed-exitcode"])
        .stdout_has("Plan: 0 to change")
        .run();
    ok("gitlab drill", &run_step(&steps["drill"][0], &dir, &[]));
    let drill: Value =
        serde_json::from_slice(&std::fs::read(dir.join("drill.json")).unwrap()).unwrap();
    assert_eq!(drill["report"]["passed"], true, "{drill}");
}
