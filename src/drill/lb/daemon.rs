//! Stopping and starting a daemon on the broken load balancer, the dead man's switch armed
//! around it: the script's header (`daemon.sh` is its body), and its report.

use super::host_report::{self, HostReport};
use crate::{
    drill::dead_mans_switch::{Armed, DeadMansSwitch},
    remote::{self, ReportError},
};

/// The switch's repair: run the start command unless the daemon runs already. The command
/// stands on a line of its own: one that ends in `&` (a daemon started in the background, as
/// the lab's are) followed by `;` would be a syntax error, and the switch would repair nothing.
pub(super) fn start_if_stopped(pidfile: &str, start: &str) -> String {
    format!(
        "pid=$(head -n 1 {} 2>/dev/null); if [ -z \"$pid\" ] || ! kill -0 \"$pid\" 2>/dev/null; then\n{start}\nfi",
        remote::quote(pidfile)
    )
}

/// `stop`: arm the switch, run the stop command, wait (bounded) for the daemon's pid to go.
/// `kill`: the same, but SIGKILL every process of the daemon (the pid file's and every
/// descendant) at once instead of the stop command.
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

pub(super) fn parse(stdout: &[u8]) -> Result<HostReport, ReportError> {
    host_report::parse("daemon", stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repair_is_valid_shell_even_for_a_start_command_ending_in_ampersand() {
        for start in [
            "systemctl start haproxy",
            "setsid haproxy -W </dev/null >/dev/null 2>&1 &",
        ] {
            let repair = start_if_stopped("/run/haproxy.pid", start);
            let checked = std::process::Command::new("sh")
                .args(["-n", "-c", &repair])
                .status()
                .expect("run sh -n");
            assert!(checked.success(), "not valid sh: {repair}");
        }
    }
}
