//! `failover-test --report FILE.html`: the drill's timeline as one self-contained HTML page
//! (inline SVG and CSS, no script, nothing loaded from anywhere), the picture an on-call
//! engineer pastes into an incident review.

use std::fmt::Write as _;

use crate::drill::{Mark, SpanKind, Timeline};

/// A successful probe connection; a failed one. Tests look for these exact colours.
pub const SUCCESS: &str = "#1a9850";
pub const FAILURE: &str = "#d73027";
/// A server marked DOWN; a load balancer holding the VIP; a mark's budget; the fault.
pub const DOWN: &str = "#fdae61";
pub const HOLDS_VIP: &str = "#4575b4";
pub const BUDGET: &str = "#bdbdbd";
pub const FAULT: &str = "#fde0dd";

const WIDTH: f64 = 1200.0;
const LEFT: f64 = 230.0;
const RIGHT: f64 = 30.0;
const PROBE_TOP: f64 = 60.0;
const PROBE_HEIGHT: f64 = 120.0;
const STRIP_HEIGHT: f64 = 14.0;
const LANE_HEIGHT: f64 = 40.0;

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn secs(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

pub fn render(t: &Timeline) -> String {
    let end = t.end_ms.max(1) as f64;
    let plot = WIDTH - LEFT - RIGHT;
    let x = |ms: u64| LEFT + (ms as f64 / end).min(1.0) * plot;
    let strip_top = PROBE_TOP + PROBE_HEIGHT + 8.0;
    let lanes_top = strip_top + STRIP_HEIGHT + 24.0;
    let height = lanes_top + LANE_HEIGHT * t.lanes.len() as f64 + 20.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12" shape-rendering="crispEdges">"#
    );
    // What was broken, behind everything.
    for w in &t.windows {
        let (a, b) = (x(w.from_ms), x(w.to_ms));
        let _ = write!(
            svg,
            r##"<rect class="fault" x="{a:.1}" y="34" width="{:.1}" height="{:.1}" fill="{FAULT}"/><text x="{:.1}" y="48" fill="#a50f15">{}</text>"##,
            (b - a).max(1.0),
            height - 34.0,
            a + 4.0,
            esc(&w.label)
        );
    }
    // The time axis.
    let step = [1u64, 2, 5, 10, 20, 30, 60, 120]
        .into_iter()
        .map(|s| s * 1000)
        .find(|s| end / (*s as f64) <= 15.0)
        .unwrap_or(300_000);
    let mut tick = 0;
    while tick as f64 <= end {
        let at = x(tick);
        let _ = write!(
            svg,
            r##"<line x1="{at:.1}" y1="24" x2="{at:.1}" y2="{height}" stroke="#eeeeee"/><text x="{at:.1}" y="20" text-anchor="middle" fill="#555555">{}</text>"##,
            tick / 1000
        );
        tick += step;
    }
    let _ = write!(
        svg,
        r##"<text x="{:.1}" y="20" fill="#555555">s</text>"##,
        WIDTH - 20.0
    );
    // The probe: latency on a log scale, and a strip of successes and failures.
    let slowest = t
        .probes
        .iter()
        .map(|p| p.took_ms)
        .max()
        .unwrap_or(1)
        .max(10);
    let ln_max = (slowest as f64).ln();
    let y_of = |ms: u64| {
        let v = (ms.max(1) as f64).ln() / ln_max;
        PROBE_TOP + PROBE_HEIGHT - v.min(1.0) * PROBE_HEIGHT
    };
    let _ = write!(
        svg,
        r##"<text x="10" y="{:.1}">client probe: latency</text><text x="10" y="{:.1}" fill="#555555">(log scale, {} at the top)</text><line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999999"/><text x="10" y="{:.1}">connections</text>"##,
        PROBE_TOP + 14.0,
        PROBE_TOP + 30.0,
        esc(&format!("{slowest} ms")),
        PROBE_TOP + PROBE_HEIGHT,
        WIDTH - RIGHT,
        PROBE_TOP + PROBE_HEIGHT,
        strip_top + 11.0
    );
    let bar = (plot / (t.probes.len().max(1) as f64)).clamp(2.0, 6.0);
    for p in &t.probes {
        let (colour, class) = match p.error {
            None => (SUCCESS, "ok"),
            Some(_) => (FAILURE, "failed"),
        };
        let title = match &p.error {
            None => format!("{} ms: {} ms", p.at_ms, p.took_ms),
            Some(e) => format!("{} ms: failed after {} ms: {e}", p.at_ms, p.took_ms),
        };
        let at = x(p.at_ms);
        let _ = write!(
            svg,
            r#"<rect class="probe {class}" x="{:.1}" y="{:.1}" width="4" height="4" fill="{colour}"><title>{}</title></rect><rect class="strip {class}" x="{:.1}" y="{strip_top:.1}" width="{bar:.1}" height="{STRIP_HEIGHT}" fill="{colour}"/>"#,
            at - 2.0,
            y_of(p.took_ms) - 2.0,
            esc(&title),
            at - bar / 2.0,
        );
    }
    // One lane per thing watched.
    for (i, lane) in t.lanes.iter().enumerate() {
        let top = lanes_top + LANE_HEIGHT * i as f64;
        let _ = write!(
            svg,
            r##"<text x="10" y="{:.1}">{}</text><line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#dddddd"/>"##,
            top + 16.0,
            esc(&lane.name),
            top + LANE_HEIGHT - 2.0,
            WIDTH - RIGHT,
            top + LANE_HEIGHT - 2.0
        );
        for s in &lane.spans {
            let (colour, what) = match s.kind {
                SpanKind::Down => (DOWN, "DOWN"),
                SpanKind::HoldsVip => (HOLDS_VIP, "holds the VIP"),
                SpanKind::Stopped => (FAULT, "stopped"),
            };
            let _ = write!(
                svg,
                r#"<rect class="span" x="{:.1}" y="{:.1}" width="{:.1}" height="12" fill="{colour}"><title>{what}: {} to {}</title></rect>"#,
                x(s.from_ms),
                top + 6.0,
                (x(s.to_ms) - x(s.from_ms)).max(2.0),
                secs(s.from_ms),
                secs(s.to_ms)
            );
        }
        for m in &lane.marks {
            mark(&mut svg, m, top, &x);
        }
    }
    svg.push_str("</svg>");

    let verdict_colour = if t.passed { SUCCESS } else { FAILURE };
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>{title}</title>
<style>body{{font-family:sans-serif;margin:16px;color:#222}}h1{{font-size:18px;margin:0 0 4px}}p{{margin:2px 0}}
.verdict{{font-weight:bold;color:{verdict_colour}}}table{{border-collapse:collapse;margin-top:12px;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}.key span{{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}}</style>
</head><body>
<h1>{title}</h1><p>{subtitle}</p>"#,
        title = esc(&t.title),
        subtitle = esc(&t.subtitle),
    );
    for line in &t.verdict {
        let _ = write!(html, r#"<p class="verdict">{}</p>"#, esc(line));
    }
    let _ = write!(
        html,
        r#"<p class="key"><span style="background:{SUCCESS}"></span>connection ok<span style="background:{FAILURE}"></span>connection failed, or a mark past its budget<span style="background:{FAULT};border:1px solid #a50f15"></span>fault<span style="background:{DOWN}"></span>marked DOWN<span style="background:{HOLDS_VIP}"></span>holds the VIP<span style="background:{BUDGET}"></span>budget</p>
{svg}
<table><tr><th>what</th><th>awaited from</th><th>came after</th><th>budget</th><th></th></tr>"#
    );
    for lane in &t.lanes {
        for m in &lane.marks {
            let _ = write!(
                html,
                "<tr><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&lane.name),
                esc(&m.label),
                secs(m.from_ms),
                m.at_ms
                    .map_or("never".to_string(), |a| secs(a.saturating_sub(m.from_ms))),
                m.budget_ms.map_or("-".to_string(), secs),
                if m.within_budget() { "ok" } else { "MISSED" }
            );
        }
    }
    html.push_str("</table>");
    let failed: Vec<_> = t.probes.iter().filter(|p| p.error.is_some()).collect();
    let _ = write!(
        html,
        "<p>{} client connections, {} failed.</p>",
        t.probes.len(),
        failed.len()
    );
    html.push_str("</body></html>\n");
    html
}

/// A measured moment: its budget as a grey bar from when it was awaited, and a diamond when it
/// came, green within the budget, red past it; `never` in red when it did not come.
fn mark(svg: &mut String, m: &Mark, top: f64, x: &impl Fn(u64) -> f64) {
    let y = top + 26.0;
    if let Some(budget) = m.budget_ms {
        let (a, b) = (x(m.from_ms), x(m.from_ms + budget));
        let _ = write!(
            svg,
            r#"<rect class="budget" x="{a:.1}" y="{:.1}" width="{:.1}" height="5" fill="{BUDGET}"><title>{} budget: {}</title></rect>"#,
            y - 2.5,
            (b - a).max(1.0),
            esc(&m.label),
            secs(budget)
        );
    }
    let colour = if m.within_budget() { SUCCESS } else { FAILURE };
    match m.at_ms {
        Some(at) => {
            let cx = x(at);
            let _ = write!(
                svg,
                r#"<polygon class="mark" points="{:.1},{y:.1} {cx:.1},{:.1} {:.1},{y:.1} {cx:.1},{:.1}" fill="{colour}" shape-rendering="geometricPrecision"><title>{} after {}</title></polygon><text x="{:.1}" y="{:.1}" fill="{colour}">{} {}</text>"#,
                cx - 6.0,
                y - 6.0,
                cx + 6.0,
                y + 6.0,
                esc(&m.label),
                secs(at.saturating_sub(m.from_ms)),
                cx + 8.0,
                y + 4.0,
                esc(&m.label),
                secs(at.saturating_sub(m.from_ms))
            );
        }
        None => {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" fill="{FAILURE}">{} never came</text>"#,
                x(m.from_ms) + 4.0,
                y + 4.0,
                esc(&m.label)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::{Lane, ProbePoint, Span, Window};

    pub(crate) fn sample() -> Timeline {
        let mut t = Timeline {
            title: "failover-test --worker w2: drop 3306/tcp (mysql)".into(),
            subtitle: "fault held 5.0 s".into(),
            passed: false,
            verdict: vec!["FAILED: 2 of 200 client connections failed".into()],
            probe_targets: vec!["10.0.0.100:3306".into()],
            probes: (0..200)
                .map(|i| ProbePoint {
                    at_ms: i * 50,
                    took_ms: if (60..62).contains(&i) {
                        3000
                    } else {
                        2 + i % 5
                    },
                    target: 0,
                    error: (60..62)
                        .contains(&i)
                        .then(|| "no first byte within 3s".into()),
                })
                .collect(),
            windows: vec![Window {
                label: "drop on w2".into(),
                from_ms: 1000,
                to_ms: 6000,
            }],
            lanes: vec![Lane {
                name: "lb1 mysql/w2".into(),
                spans: vec![Span {
                    kind: SpanKind::Down,
                    from_ms: 3000,
                    to_ms: 7500,
                }],
                marks: vec![
                    Mark {
                        label: "DOWN".into(),
                        from_ms: 1000,
                        at_ms: Some(3000),
                        budget_ms: Some(3000),
                    },
                    Mark {
                        label: "UP".into(),
                        from_ms: 6000,
                        at_ms: None,
                        budget_ms: Some(3000),
                    },
                ],
            }],
            end_ms: 0,
        };
        t.fit_end();
        t
    }

    #[test]
    fn one_page_with_every_probe_mark_and_window_and_nothing_to_load() {
        let html = render(&sample());
        assert_eq!(html.matches(r#"class="strip ok""#).count(), 198);
        assert_eq!(html.matches(r#"class="strip failed""#).count(), 2);
        assert!(html.contains("drop on w2") && html.contains("UP never came"));
        assert!(html.contains("MISSED") && html.contains("<td>3.0 s</td>"));
        for banned in ["<script", " src=", " href=", "url("] {
            assert!(!html.contains(banned), "{banned}");
        }
        if let Ok(path) = std::env::var("LBCTL_REPORT_SAMPLE") {
            std::fs::write(path, &html).unwrap();
        }
    }
}
