//! `failover-test --lb HOST --method isolate`: cut the load balancer off the network, the way
//! a partition or a pulled cable does, and put it back.
//!
//! Every packet in and out is dropped (`filter INPUT` and `OUTPUT`, IPv4 and IPv6: VRRP,
//! clients, peers, health checks), and so is ARP (an `arptables` chain named after the run),
//! so the host can no longer answer for the VIP either. Three things pass: loopback, lbctl's
//! own SSH connection (read from `SSH_CONNECTION`: lbctl keeps watching the host and puts it
//! back through it), and the ARP (or IPv6 neighbour discovery) that connection needs with its
//! next hop. Every iptables rule carries the comment `lbctl-failover-<run id>`; removal
//! deletes exactly those, and the chain. A dead man's switch armed first removes them by
//! itself if lbctl does not come back.
//!
//! Plain data in, `sh` text out; stdout in, plain data out.
//!
//! ```text
//! @@lbctl begin isolation 1
//! @@lbctl switch armed systemd UNIT | switch armed setsid PID | switch-error MESSAGE
//! @@lbctl cutting CLOCK               (the host's ms since the epoch right before the rules,
//! @@lbctl restored CLOCK               or right after their removal; - without GNU date)
//! @@lbctl rule RULE                   (every lbctl-failover rule or chain left)
//! @@lbctl error MESSAGE
//! @@lbctl end isolation
//! ```

use std::fmt::Write as _;

use super::host_report::{self, HostReport};
use crate::{drill::dead_mans_switch::DeadMansSwitch, remote};

const SCRIPT: &str = concat!(
    include_str!("../../remote/clock.sh"),
    include_str!("isolation.sh")
);
const NAME: &str = "isolation";
/// How long one iptables call may wait for the xtables lock.
const XTABLES_WAIT_SECONDS: u32 = 5;

/// Shell commands that remove every rule and the ARP chain tagged `tag`: what the dead man's
/// switch runs, and what a normal restore runs.
pub(super) fn remove_commands(tag: &str) -> String {
    let mut sh = String::new();
    let _ = write!(
        sh,
        "for t in iptables ip6tables; do command -v $t >/dev/null 2>&1 || continue; \
         for c in INPUT OUTPUT; do $t -w {XTABLES_WAIT_SECONDS} -S $c 2>/dev/null | \
         grep -F -e '--comment {tag}' | while read -r r; do \
         $t -w {XTABLES_WAIT_SECONDS} -D ${{r#-A }}; done; done; done; \
         if command -v arptables >/dev/null 2>&1; then \
         arptables -D INPUT -j {tag} 2>/dev/null; arptables -D OUTPUT -j {tag} 2>/dev/null; \
         arptables -F {tag} 2>/dev/null; arptables -X {tag} 2>/dev/null; fi; :"
    );
    sh
}

/// Arms `switch` first, then cuts the host off; if that fails, removes what went in and
/// disarms. If lbctl goes away while it runs, it undoes itself.
pub(super) fn isolate_script(tag: &str, switch: &DeadMansSwitch) -> String {
    script("isolate", tag, switch, None)
}

/// Removes the rules and disarms the switch, then lists what is left.
pub(super) fn restore_script(
    tag: &str,
    switch: &DeadMansSwitch,
    armed: Option<&crate::drill::dead_mans_switch::Armed>,
) -> String {
    script("restore", tag, switch, armed)
}

fn script(
    action: &str,
    tag: &str,
    switch: &DeadMansSwitch,
    armed: Option<&crate::drill::dead_mans_switch::Armed>,
) -> String {
    let mut sh = String::new();
    let _ = writeln!(sh, "ACTION={action}");
    let _ = writeln!(sh, "TAG={}", remote::quote(tag));
    let _ = writeln!(sh, "XTW={XTABLES_WAIT_SECONDS}");
    // sudo does not pass SSH_CONNECTION on; lbctl's root shell gets it as its argument
    sh.push_str("PEER=${SSH_CONNECTION:-${1:-}}\n");
    sh.push_str(&switch.shell(armed));
    remote::finish_script(sh, SCRIPT)
}

pub(super) fn parse(stdout: &[u8]) -> Result<HostReport, remote::ReportError> {
    host_report::parse(NAME, stdout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn removal_deletes_only_this_runs_rules_and_chain() {
        let remove = remove_commands("lbctl-failover-abc123");
        assert!(remove.contains("grep -F -e '--comment lbctl-failover-abc123'"));
        assert!(remove.contains("arptables -X lbctl-failover-abc123"));
        let switch = DeadMansSwitch {
            tag: "lbctl-failover-abc123".into(),
            fires_after: Duration::from_secs(30),
            action: remove.clone(),
        };
        let script = isolate_script("lbctl-failover-abc123", &switch);
        assert!(script.contains("ACTION=isolate"));
        assert!(script.contains("SWITCH_SECONDS=30"));
        assert!(script.contains("PEER=${SSH_CONNECTION:-${1:-}}"));
    }

    #[test]
    fn reports_are_read() {
        let report = parse(
            b"@@lbctl begin isolation 1\n@@lbctl switch armed setsid 77\n@@lbctl cutting 1700000000001\n@@lbctl end isolation\n",
        )
        .unwrap();
        assert_eq!(report.clock_ms, Some(1_700_000_000_001));
        assert!(report.error.is_none() && report.armed.is_some());
    }
}
