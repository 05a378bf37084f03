//! `failover-test --report FILE.html`, drawn by a real headless Chromium (Debian's
//! `chromium`): the screenshot must show the timeline, found by the exact colours the page
//! uses for successful and failed probe connections, the fault, DOWN periods and the VIP.
//! The pages and screenshots stay in `target/drill-report/` for a look.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::lab::Lab;
use crate::support::{Lbctl, repo_root};

const SUCCESS: [u8; 3] = [0x1a, 0x98, 0x50];
const FAILURE: [u8; 3] = [0xd7, 0x30, 0x27];
const DOWN: [u8; 3] = [0xfd, 0xae, 0x61];
const HOLDS_VIP: [u8; 3] = [0x45, 0x75, 0xb4];
const FAULT: [u8; 3] = [0xfd, 0xe0, 0xdd];

fn artifacts() -> PathBuf {
    let dir = repo_root().join("target/drill-report");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Chromium's screenshot of `page`, as RGB rows, kept beside it as a PNG.
fn screenshot(page: &Path) -> (usize, Vec<Vec<[u8; 3]>>) {
    let png = page.with_extension("png");
    let profile = page.with_extension("chromium-profile");
    let _ = std::fs::remove_dir_all(&profile);
    let _ = std::fs::remove_file(&png);
    let out = Command::new("timeout")
        .args(["-k", "5", "120", "chromium"])
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,1400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium is installed (scripts/packages.sh installs it)");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        png.exists(),
        "chromium made no screenshot: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let decoder = png::Decoder::new(std::fs::File::open(&png).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let rows = buf[..info.buffer_size()]
        .chunks(info.line_size)
        .map(|row| {
            row.chunks(channels)
                .map(|p| [p[0], p[1], p[2]])
                .collect::<Vec<_>>()
        })
        .collect();
    (info.width as usize, rows)
}

fn count(rows: &[Vec<[u8; 3]>], colour: [u8; 3]) -> usize {
    rows.iter().flatten().filter(|p| **p == colour).count()
}

/// The page is one file that loads nothing: no script, no external resource.
fn self_contained(html: &str) {
    for banned in ["<script", " src=", " href=", "@import", "url("] {
        assert!(!html.contains(banned), "the report holds {banned:?}");
    }
}

#[test]
fn drill_reports_render_in_chromium_and_show_the_timeline() {
    let lab = Lab::up();
    Lbctl::on_lab().args(["apply", "--yes"]).run();
    let dir = artifacts();

    // A worker drill: every probe connection succeeds, the fault and the DOWN periods show.
    let worker = dir.join("worker-drill.html");
    Lbctl::on_lab()
        .args([
            "failover-test",
            "--worker",
            "k8s-worker-2",
            "--backend",
            "mysql",
        ])
        .args(["--hold", "5s", "--report", worker.to_str().unwrap()])
        .stderr_has("wrote the drill's timeline to")
        .stdout_has("PASSED")
        .run();
    let html = std::fs::read_to_string(&worker).unwrap();
    self_contained(&html);
    assert!(
        html.contains("lb1 mysql/k8s-worker-2") && html.contains("DOWN"),
        "{html}"
    );
    let (width, rows) = screenshot(&worker);
    assert!(width >= 1200, "screenshot {width} px wide");
    let ok = count(&rows, SUCCESS);
    assert!(ok > 1000, "{ok} pixels of successful probe connections");
    assert!(
        count(&rows, DOWN) > 500,
        "no DOWN periods on the screenshot"
    );
    assert!(
        count(&rows, FAULT) > 5000,
        "no fault window on the screenshot"
    );
    // The failure colour is only in the key: no probe failed.
    let key_only = count(&rows, FAILURE);
    assert!(key_only < 200, "failed probes shown, none failed");

    // The VIP holder's HAProxy stopped: probes that reach it fail, and the VIP moves.
    let lb = dir.join("lb-drill.html");
    let run = Lbctl::on_lab()
        .args(["failover-test", "--lb", "lb1", "--method", "stop-haproxy"])
        .args(["--hold", "5s", "--report", lb.to_str().unwrap()])
        .output();
    assert!(
        matches!(run.code, 0 | 3),
        "the drill did not run:\n{}{}",
        run.stdout,
        run.stderr
    );
    let html = std::fs::read_to_string(&lb).unwrap();
    self_contained(&html);
    assert!(html.contains("VIP moved"), "{html}");
    let (_, rows) = screenshot(&lb);
    assert!(count(&rows, HOLDS_VIP) > 500, "no VIP holder shown");
    assert!(count(&rows, SUCCESS) > 500, "no successful probe shown");
    // A single failed probe is a thin mark: anything beyond the key's own swatch shows it.
    if html.contains("connections, 0 failed") {
        assert!(count(&rows, FAILURE) <= key_only + 20);
    } else {
        assert!(
            count(&rows, FAILURE) > key_only,
            "failed probes not shown ({} failure pixels, the key alone {key_only})",
            count(&rows, FAILURE)
        );
    }
    drop(lab);
}
