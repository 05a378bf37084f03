//! Stopping and starting a daemon on the broken load balancer, the dead man's switch armed
//! around it: the script's header (`daemon.sh` is its body), and its report.

use crate::{
    drill::dead_mans_switch::{self, Armed, DeadMansSwitch},
    remote::{self, ReportError},
};

/// The switch's repair: run the start command unless the daemon runs already.
pub(super) fn start_if_stopped(pidfile: &str, start: &str) -> String {
    format!(
        "pid=$(head -n 1 {} 2>/dev/null); if [ -z \"$pid\" ] || ! kill -0 \"$pid\" 2>/dev/null; then {start}; fi",
        remote::quote(pidfile)
    )
}

/// `stop`: arm the switch, run the stop command, wait (bounded) for the daemon's pid to go.
/// `start`: run the start command (only if the daemon is not running), disarm the switch,
/// wait (bounded) for a live pid.
pub(super) fn daemon_script(
    action: &str,
    switch: &DeadMansSwitch,
    armed: Option<&Armed>,
    command: &str,
    pidfile: &str,
) -> String {
    let mut sh = String::new();
    sh.push_str(&format!("ACTION={action}\n"));
    sh.push_str(&format!("COMMAND={}\n", remote::quote(command)));
    sh.push_str(&format!("PIDFILE={}\n", remote::quote(pidfile)));
    sh.push_str(&switch.shell(armed));
    remote::finish_script(sh, DAEMON_SCRIPT)
}

const DAEMON_SCRIPT: &str = concat!(
    include_str!("../../remote/clock.sh"),
    include_str!("daemon.sh")
);

#[derive(Debug, Default)]
pub(super) struct DaemonReport {
    pub armed: Option<Armed>,
    pub error: Option<String>,
    /// The host's clock right before the stop or start command ran.
    pub clock_ms: Option<u64>,
}

pub(super) fn parse(stdout: &[u8]) -> Result<DaemonReport, ReportError> {
    const NAME: &str = "daemon";
    let mut report = DaemonReport::default();
    for frame in remote::frames(NAME, stdout)? {
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
            ["stopping" | "starting", clock] => report.clock_ms = clock.parse().ok(),
            ["end", "daemon"] => return Ok(report),
            _ => return Err(frame.malformed("unknown frame")),
        }
    }
    Err(ReportError::Truncated {
        script: NAME,
        after: None,
    })
}
