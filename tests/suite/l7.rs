//! L7 routing, TLS termination and SNI passthrough on the namespace lab (issue 7), end to end:
//! `lbctl apply` of `tests/inputs/lab-l7-vars.yaml`, then real requests from the lab's
//! client to the VIP. The lab's workers answer with their own names, so every check knows which
//! worker a request reached. The lab's default configuration is applied again at the end (and
//! on failure), so other lab tests find it as they expect.
//!
//!     cargo test --test suite -- l7:: --nocapture      (as root)

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use crate::support::lab::{CLIENT_NS, LBS, Lab, STATE_DIR, VIP, describe, wait_for};
use crate::support::{Lbctl, scratch};

const VARS: &str = "@tests/inputs/lab-l7-vars.yaml";
/// Where the input's `tls_cert` points, inside each load balancer's view.
const CERT: &str = "/etc/haproxy/certs/lbctl-l7-test.pem";

fn apply(extra: &[&str]) -> Lbctl {
    Lbctl::on_lab().args(extra).args(["apply", "--yes"])
}

/// Puts the lab back as `inventory/lab` describes it, and removes the test certificate.
struct Restore {
    done: bool,
}

impl Restore {
    fn now(&mut self) {
        self.done = true;
        let run = apply(&[]).output();
        for lb in LBS {
            let _ = std::fs::remove_file(cert_on(lb.name));
        }
        assert_eq!(
            run.code, 0,
            "restoring inventory/lab failed:\n{}{}",
            run.stdout, run.stderr
        );
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        if !self.done {
            self.done = true;
            let run = apply(&[]).output();
            if run.code != 0 {
                eprintln!(
                    "restoring inventory/lab failed:\n{}{}",
                    run.stdout, run.stderr
                );
            }
            for lb in LBS {
                let _ = std::fs::remove_file(cert_on(lb.name));
            }
        }
    }
}

/// A load balancer's `CERT`, as the machine sees it (the lab bind-mounts this over its
/// /etc/haproxy).
fn cert_on(lb: &str) -> PathBuf {
    Path::new(STATE_DIR)
        .join("hosts")
        .join(lb)
        .join(CERT.trim_start_matches('/'))
}

/// A self-signed certificate for `*.l7.lab`: returns the PEM bundle HAProxy loads and the
/// certificate alone, which clients trust.
fn make_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (key, crt, bundle) = (
        dir.join("key.pem"),
        dir.join("crt.pem"),
        dir.join("bundle.pem"),
    );
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=l7.lab",
        ])
        .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .args(["-addext", "subjectAltName=DNS:l7.lab,DNS:*.l7.lab"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "{}", describe("openssl req", &out));
    let pem = std::fs::read_to_string(&crt).unwrap() + &std::fs::read_to_string(&key).unwrap();
    std::fs::write(&bundle, pem).unwrap();
    (bundle, crt)
}

/// curl from the lab's client; stdout when it succeeded.
fn curl(lab: &Lab, args: &[&str]) -> Option<String> {
    let mut cmd = vec!["curl", "-sS", "--max-time", "5"];
    cmd.extend_from_slice(args);
    let out = lab.netns(CLIENT_NS, 15, &cmd, b"");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The body of `https://host:port/` through the VIP, trusting `ca` (or nothing: `-k`).
fn https(lab: &Lab, host: &str, port: u16, ca: Option<&Path>) -> Option<String> {
    let resolve = format!("{host}:{port}:{VIP}");
    let url = format!("https://{host}:{port}/");
    let mut args = vec!["--resolve", &resolve];
    let ca_text = ca.map(|p| p.display().to_string());
    match &ca_text {
        Some(p) => args.extend(["--cacert", p.as_str()]),
        None => args.push("-k"),
    }
    args.push(&url);
    curl(lab, &args)
}

#[test]
fn host_path_tls_sni_sticky_and_rate_limit_on_the_lab() {
    let lab = Lab::up();
    let dir = scratch("l7-lab");
    let (bundle, crt) = make_certificate(&dir);
    let mut restore = Restore { done: false };

    // The certificate lives on the load balancers: until it is there on every one, plan and
    // apply refuse, naming the line that asks for it and the hosts that lack it.
    let place = |lb: &str| {
        let dest = cert_on(lb);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&bundle, &dest).unwrap();
    };
    place(LBS[0].name);
    Lbctl::on_lab()
        .args(["-e", VARS, "plan"])
        .stderr_has(format!(
            "tests/inputs/lab-l7-vars.yaml:10: haproxy_http_frontends[0].tls_cert: {CERT} is not a file on lb2, lb3"
        ))
        .exit(1)
        .run();
    apply(&["-e", VARS])
        .stderr_has("nothing was changed")
        .exit(1)
        .run();
    for lb in &LBS[1..] {
        place(lb.name);
    }

    apply(&["-e", VARS]).run();

    // TLS terminated by HAProxy with the test's certificate, routed by Host header.
    let first = wait_for(Duration::from_secs(20), "a.l7.lab over HTTPS", || {
        https(&lab, "a.l7.lab", 443, Some(&crt))
    });
    assert_eq!(first, "k8s-worker-1");
    for _ in 0..5 {
        assert_eq!(
            https(&lab, "a.l7.lab", 443, Some(&crt)).as_deref(),
            Some("k8s-worker-1")
        );
        assert_eq!(
            https(&lab, "b.l7.lab", 443, Some(&crt)).as_deref(),
            Some("k8s-worker-2")
        );
    }
    assert_eq!(
        https(&lab, "other.l7.lab", 443, Some(&crt)).as_deref(),
        Some("k8s-worker-3"),
        "a host no backend names goes to the default backend"
    );

    // Plain HTTP is redirected to the same URL over HTTPS.
    let redirect = curl(
        &lab,
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
            "-H",
            "Host: a.l7.lab",
            &format!("http://{VIP}/some/path?q=1"),
        ],
    );
    assert_eq!(
        redirect.as_deref(),
        Some("301 https://a.l7.lab/some/path?q=1")
    );

    // SNI passthrough: each server name reaches its own worker, whose certificate (signed by
    // the lab CA, not the test's) the client sees, so HAProxy did not terminate TLS.
    let sni_cases = [
        ("vault.l7.lab", "k8s-worker-1"),
        ("consul.l7.lab", "k8s-worker-2"),
        ("shop.apps.l7.lab", "k8s-worker-3"),
        ("unknown.example.org", "k8s-worker-3"),
    ];
    for (name, worker) in sni_cases {
        let body = wait_for(Duration::from_secs(10), name, || {
            https(&lab, name, 8443, None)
        });
        assert_eq!(body, worker, "server name {name}");
    }
    let lab_ca = format!("{STATE_DIR}/tls/ca.crt");
    let connect = format!("{VIP}:8443");
    let hello = lab.netns(
        CLIENT_NS,
        15,
        &[
            "timeout",
            "10",
            "openssl",
            "s_client",
            "-connect",
            &connect,
            "-servername",
            "vault.l7.lab",
            "-CAfile",
            &lab_ca,
        ],
        b"",
    );
    let text = String::from_utf8_lossy(&hello.stdout);
    assert!(
        text.contains("CN = k8s-worker-1") && text.contains("Verify return code: 0 (ok)"),
        "{}",
        describe("openssl s_client -servername vault.l7.lab", &hello)
    );

    // Sticky cookie: without it requests spread over the workers; with it, one worker.
    let spread: std::collections::BTreeSet<String> = (0..6)
        .filter_map(|_| https(&lab, "sticky.l7.lab", 443, Some(&crt)))
        .collect();
    assert!(
        spread.len() >= 2,
        "round robin without a cookie should reach several workers: {spread:?}"
    );
    let jar = dir.join("cookies.txt");
    let jar_text = jar.display().to_string();
    let resolve = format!("sticky.l7.lab:443:{VIP}");
    let crt_text = crt.display().to_string();
    let sticky = |save: bool| {
        let mut args = vec![
            "--resolve",
            &resolve,
            "--cacert",
            &crt_text,
            "-b",
            &jar_text,
        ];
        if save {
            args.extend(["-c", &jar_text]);
        }
        args.push("https://sticky.l7.lab/");
        curl(&lab, &args)
    };
    let chosen = sticky(true).expect("first sticky request");
    let cookies = std::fs::read_to_string(&jar).unwrap_or_default();
    assert!(
        cookies.contains(&format!("SERVERID\t{chosen}")),
        "HAProxy should set SERVERID={chosen}: {cookies}"
    );
    for i in 0..8 {
        assert_eq!(
            sticky(false).as_deref(),
            Some(chosen.as_str()),
            "request {i} with the cookie"
        );
    }

    // Rate limit: 5 requests per 10 s per client on :8080, then 429.
    let url = format!("http://{VIP}:8080/");
    let codes: Vec<String> = (0..8)
        .map(|_| curl(&lab, &["-o", "/dev/null", "-w", "%{http_code}", &url]).unwrap_or_default())
        .collect();
    assert_eq!(
        codes,
        ["200", "200", "200", "200", "200", "429", "429", "429"],
        "5/10s: five answered, then Too Many Requests"
    );

    restore.now();
    // The lab serves its seed-004 services again.
    let mysql = lab.tcp_greeting(CLIENT_NS, &format!("TCP:{VIP}:3306"));
    assert!(
        String::from_utf8_lossy(&mysql.stdout).starts_with("k8s-worker-"),
        "{}",
        describe(
            "mysql through the VIP after restoring inventory/lab",
            &mysql
        )
    );
}
