//! What the scripts that break and repair a load balancer (`daemon.sh`, `isolation.sh`)
//! report: the dead man's switch armed, the host's clock at the break or the repair, an
//! error, and the lbctl rules left.

use crate::{
    drill::dead_mans_switch::{self, Armed},
    remote::{self, ReportError},
};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct HostReport {
    pub armed: Option<Armed>,
    pub error: Option<String>,
    /// The host's clock right before the break (or the start), or right after the repair.
    pub clock_ms: Option<u64>,
    /// Every lbctl failover rule or chain on the host after the script ran.
    pub rules_left: Vec<String>,
}

pub(super) fn parse(name: &'static str, stdout: &[u8]) -> Result<HostReport, ReportError> {
    let mut report = HostReport::default();
    for frame in remote::frames(name, stdout)? {
        let frame = frame?;
        match frame.words.as_slice() {
            ["switch", "armed", kind, id] => {
                report.armed = Some(
                    dead_mans_switch::parse_armed(kind, id)
                        .ok_or_else(|| frame.malformed("unknown switch"))?,
                );
            }
            ["switch-error", message] => {
                report.error = Some(format!(
                    "cannot arm the dead man's switch: {}",
                    frame.text(message)?
                ));
            }
            ["error", message] => report.error = Some(frame.text(message)?),
            ["stopping" | "starting" | "cutting" | "restored", clock] => {
                report.clock_ms = clock.parse().ok()
            }
            ["rule", rule] => report.rules_left.push(frame.text(rule)?),
            ["end", end] if *end == name => return Ok(report),
            _ => return Err(frame.malformed("unknown frame")),
        }
    }
    Err(ReportError::Truncated {
        script: name,
        after: None,
    })
}
