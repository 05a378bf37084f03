//! The fault `failover-test --worker` puts on a worker: iptables rules that make its
//! NodePorts stop answering, every one tagged with the run's comment so that lbctl (and the
//! dead man's switch) removes exactly its own rules.
//!
//! Plain data in, `sh` text out; stdout in, plain data out.
//!
//! Each rule goes into `iptables`, and into `ip6tables` where the load balancers reach the
//! worker over IPv6 (a server address of its that is one): a rule of one family leaves the
//! other's traffic alone.
//!
//! - `drop`: `raw PREROUTING -p tcp --dport PORT -j DROP` (`-p udp` for a UDP port). The
//!   raw table comes before kube-proxy's DNAT, so NodePort traffic is caught whether the pod
//!   is local or not, and the worker looks powered off: connects, datagrams and checks go
//!   unanswered.
//! - `reject`: `filter INPUT` and `FORWARD` with `-m conntrack --ctorigdstport PORT --ctdir
//!   ORIGINAL -j REJECT --reject-with tcp-reset` (`icmp-port-unreachable` for UDP,
//!   `icmp6-port-unreachable` over IPv6; REJECT is not allowed in raw; the original port
//!   matches after DNAT too, and only the clients' direction is rejected, never the resets
//!   themselves). The worker looks like its service crashed: connects are refused, datagrams
//!   bounce.
//!
//! ```text
//! @@lbctl begin fault 1
//! @@lbctl switch armed systemd UNIT | switch armed setsid PID | switch-error MESSAGE
//! @@lbctl inserted CLOCK | insert-error MESSAGE      (CLOCK: the host's ms since the epoch
//! @@lbctl restored CLOCK OUTPUT                        right before the first rule went in,
//!                                                      or right after the rules came out; -
//!                                                      without GNU date)
//! @@lbctl rule RULE                 (every lbctl-failover rule left, from `iptables -S`;
//!                                     `ip6tables TABLE RULE` for IPv6's)
//! @@lbctl error MESSAGE
//! @@lbctl end fault ok | failed
//! ```

use std::{fmt::Write as _, time::Duration};

use serde::Serialize;

use crate::{
    drill::dead_mans_switch::{self, Armed, DeadMansSwitch},
    remote::{self, ReportError},
};

const SCRIPT: &str = concat!(
    include_str!("../../remote/clock.sh"),
    include_str!("fault.sh")
);
const NAME: &str = "fault";
/// Every rule any lbctl run adds carries a comment starting with this.
pub use crate::drill::run_id::TAG_PREFIX;
/// How long one iptables call may wait for the xtables lock.
const XTABLES_WAIT_SECONDS: u32 = 5;
/// Copies of one rule removed at most (a rule inserted twice by hand, say).
const MAX_COPIES: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Packets vanish: the worker looks powered off, so connects and checks time out.
    Drop,
    /// Connections are reset: the worker looks like its service crashed.
    Reject,
}

/// The address family of the traffic a fault stops, and the program whose rules stop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The family of `address` (an IP address, IPv6 with or without brackets).
    pub fn of(address: &str) -> Family {
        if address.contains(':') {
            Family::V6
        } else {
            Family::V4
        }
    }

    fn tool(self) -> &'static str {
        match self {
            Family::V4 => "iptables",
            Family::V6 => "ip6tables",
        }
    }

    fn port_unreachable(self) -> &'static str {
        match self {
            Family::V4 => "icmp-port-unreachable",
            Family::V6 => "icmp6-port-unreachable",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `lbctl-failover-<run id>`: the comment on every rule of this run.
    pub tag: String,
    pub method: Method,
    pub ports: Vec<u16>,
    pub udp_ports: Vec<u16>,
    /// The families the load balancers reach the worker's servers in (IPv4 when none is
    /// named), each once.
    families: Vec<Family>,
}

/// One iptables (or ip6tables) rule: program, table, chain, and the match and target.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    tool: &'static str,
    table: &'static str,
    chain: &'static str,
    spec: String,
}

impl Fault {
    pub fn new(
        run_id: &str,
        method: Method,
        ports: Vec<u16>,
        udp_ports: Vec<u16>,
        families: &[Family],
    ) -> Fault {
        let mut families = families.to_vec();
        families.sort();
        families.dedup();
        if families.is_empty() {
            families.push(Family::V4);
        }
        Fault {
            tag: format!("{TAG_PREFIX}{run_id}"),
            method,
            ports,
            udp_ports,
            families,
        }
    }

    fn rules(&self) -> Vec<Rule> {
        let comment = format!("-m comment --comment {}", self.tag);
        let mut rules = Vec::new();
        for &family in &self.families {
            let tool = family.tool();
            let ports = self.ports.iter().map(|p| ("tcp", p));
            for (proto, port) in ports.chain(self.udp_ports.iter().map(|p| ("udp", p))) {
                match self.method {
                    Method::Drop => rules.push(Rule {
                        tool,
                        table: "raw",
                        chain: "PREROUTING",
                        spec: format!("-p {proto} --dport {port} {comment} -j DROP"),
                    }),
                    Method::Reject => {
                        let with = match proto {
                            "tcp" => "tcp-reset",
                            _ => family.port_unreachable(),
                        };
                        for chain in ["INPUT", "FORWARD"] {
                            rules.push(Rule {
                                tool,
                                table: "filter",
                                chain,
                                spec: format!(
                                    "-p {proto} -m conntrack --ctorigdstport {port} --ctdir ORIGINAL {comment} -j REJECT --reject-with {with}"
                                ),
                            });
                        }
                    }
                }
            }
        }
        rules
    }

    /// Shell commands that remove every copy of this run's rules; what the dead man's switch
    /// runs, and what a normal restore runs.
    pub fn remove_commands(&self) -> String {
        let mut sh = String::new();
        for r in self.rules() {
            let _ = write!(
                sh,
                "n=0; while [ $n -lt {MAX_COPIES} ] && {} -w {XTABLES_WAIT_SECONDS} -t {} -D {} {} 2>/dev/null; do n=$((n+1)); done; ",
                r.tool, r.table, r.chain, r.spec
            );
        }
        sh.push(':');
        sh
    }

    /// The switch that removes this run's rules by itself `fires_after` from arming.
    pub fn switch(&self, fires_after: Duration) -> DeadMansSwitch {
        DeadMansSwitch {
            tag: self.tag.clone(),
            fires_after,
            action: self.remove_commands(),
        }
    }

    /// Lists the lbctl rules on the host (both families'), and checks that the programs a
    /// fault in `families` needs are there; changes nothing.
    pub fn inspect_script(families: &[Family]) -> String {
        let unused = Fault::new("inspect", Method::Drop, Vec::new(), Vec::new(), families);
        unused.script("inspect", &unused.switch(Duration::ZERO), None)
    }

    /// Arms `switch` first, then inserts the rules; if inserting fails, removes what it
    /// inserted and disarms. If lbctl goes away while it runs, it undoes itself.
    pub fn inject_script(&self, switch: &DeadMansSwitch) -> String {
        self.script("inject", switch, None)
    }

    /// Removes this run's rules and disarms the switch, then lists what is left.
    pub fn restore_script(&self, switch: &DeadMansSwitch, armed: Option<&Armed>) -> String {
        self.script("restore", switch, armed)
    }

    fn script(&self, action: &str, switch: &DeadMansSwitch, armed: Option<&Armed>) -> String {
        let mut sh = String::new();
        let _ = writeln!(sh, "ACTION={action}");
        let _ = writeln!(sh, "FAULT_TAG={}", remote::quote(&self.tag));
        let tools: Vec<_> = self.families.iter().map(|f| f.tool()).collect();
        let _ = writeln!(sh, "TOOLS='{}'", tools.join(" "));
        sh.push_str(&switch.shell(armed));
        sh.push_str("insert_rules() {\n");
        for r in self.rules() {
            let _ = writeln!(
                sh,
                "\t{} -w {XTABLES_WAIT_SECONDS} -t {} -I {} {} || return",
                r.tool, r.table, r.chain, r.spec
            );
        }
        sh.push_str("\t:\n}\nremove_rules() {\n\t");
        sh.push_str(&self.remove_commands());
        sh.push_str("\n}\n");
        remote::finish_script(sh, SCRIPT)
    }
}

/// What a fault script reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultReport {
    pub armed: Option<Armed>,
    pub switch_error: Option<String>,
    pub inserted: bool,
    pub insert_error: Option<String>,
    pub restored: bool,
    /// The host's clock right before the first rule went in, or right after the rules came
    /// out.
    pub clock_ms: Option<u64>,
    /// Every lbctl-failover rule on the host after the script ran (`table rule`).
    pub rules_left: Vec<String>,
    pub ok: bool,
}

pub fn parse(stdout: &[u8]) -> Result<FaultReport, ReportError> {
    let mut report = FaultReport::default();
    let mut ended = false;
    for frame in remote::frames(NAME, stdout)? {
        let frame = frame?;
        match frame.words.as_slice() {
            ["switch", "armed", kind, id] => {
                report.armed = Some(
                    dead_mans_switch::parse_armed(kind, id)
                        .ok_or_else(|| frame.malformed("unknown switch"))?,
                );
            }
            ["switch-error", message] => report.switch_error = Some(frame.text(message)?),
            ["inserted", clock] => {
                report.inserted = true;
                report.clock_ms = clock.parse().ok();
            }
            ["insert-error", message] => report.insert_error = Some(frame.text(message)?),
            ["restored", clock, _output] => {
                report.restored = true;
                report.clock_ms = clock.parse().ok();
            }
            ["rule", rule] => report.rules_left.push(frame.text(rule)?),
            ["error", message] => return Err(ReportError::Host(frame.text(message)?)),
            ["end", "fault", outcome @ ("ok" | "failed")] => {
                report.ok = *outcome == "ok";
                ended = true;
                break;
            }
            _ => return Err(frame.malformed("unknown frame")),
        }
    }
    if !ended {
        return Err(ReportError::Truncated {
            script: NAME,
            after: None,
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_tagged_and_removal_mirrors_insertion() {
        let drop = Fault::new(
            "abc123",
            Method::Drop,
            vec![30306, 30432],
            vec![31820],
            &[Family::V4],
        );
        let remove = drop.remove_commands();
        assert!(remove.contains(
            "-t raw -D PREROUTING -p tcp --dport 30306 -m comment --comment lbctl-failover-abc123 -j DROP"
        ));
        assert!(remove.contains("--dport 30432"));
        let script = drop.inject_script(&drop.switch(Duration::from_secs(40)));
        assert!(script.contains(
            "iptables -w 5 -t raw -I PREROUTING -p tcp --dport 30306 -m comment --comment lbctl-failover-abc123 -j DROP || return"
        ));
        assert!(script.contains(
            "iptables -w 5 -t raw -I PREROUTING -p udp --dport 31820 -m comment --comment lbctl-failover-abc123 -j DROP || return"
        ));
        assert!(remove.contains("-t raw -D PREROUTING -p udp --dport 31820"));
        assert!(script.contains("SWITCH_SECONDS=40"));
        assert!(
            script.contains("TOOLS='iptables'\n"),
            "an IPv4 worker needs no ip6tables"
        );
        assert!(!script.contains("ip6tables -w"));
        assert!(!drop.remove_commands().contains("ip6tables"));
        let reject = Fault::new("x", Method::Reject, vec![30306], vec![31820], &[]);
        let rules = reject.rules();
        assert_eq!(rules.len(), 4);
        assert!(rules[..2].iter().all(|r| r.spec.starts_with("-p tcp ")
            && r.spec.contains("--ctorigdstport 30306")
            && r.spec.ends_with("--reject-with tcp-reset")));
        assert!(rules[2..].iter().all(|r| r.spec.starts_with("-p udp ")
            && r.spec.contains("--ctorigdstport 31820")
            && r.spec.ends_with("--reject-with icmp-port-unreachable")));
    }

    #[test]
    fn a_worker_reached_over_ipv6_gets_ip6tables_rules_too() {
        assert_eq!(Family::of("fd00::21"), Family::V6);
        assert_eq!(Family::of("[fd00::21]"), Family::V6);
        assert_eq!(Family::of("10.0.0.21"), Family::V4);
        let both = [Family::V6, Family::V4, Family::V6];
        let drop = Fault::new("abc", Method::Drop, vec![30306], vec![31820], &both);
        let script = drop.inject_script(&drop.switch(Duration::from_secs(40)));
        for tool in ["iptables", "ip6tables"] {
            assert!(script.contains(&format!(
                "\t{tool} -w 5 -t raw -I PREROUTING -p udp --dport 31820 -m comment --comment lbctl-failover-abc -j DROP || return"
            )));
            assert!(drop.remove_commands().contains(&format!(
                "{tool} -w 5 -t raw -D PREROUTING -p tcp --dport 30306"
            )));
        }
        assert!(script.contains("TOOLS='iptables ip6tables'"));
        let v6 = Fault::new("x", Method::Reject, vec![30306], vec![31820], &[Family::V6]);
        let rules = v6.rules();
        assert_eq!(rules.len(), 4);
        assert!(rules.iter().all(|r| r.tool == "ip6tables"));
        assert!(
            rules[2..]
                .iter()
                .all(|r| r.spec.ends_with("--reject-with icmp6-port-unreachable"))
        );
    }

    #[test]
    fn reports_are_read() {
        let report = parse(
            b"@@lbctl begin fault 1\n@@lbctl switch armed setsid 4242\n@@lbctl inserted 1700000000123\n@@lbctl end fault ok\n",
        )
        .unwrap();
        assert_eq!(report.armed, Some(Armed::Setsid { pid: 4242 }));
        assert!(report.inserted && report.ok);
        assert_eq!(report.clock_ms, Some(1_700_000_000_123));
        let truncated = parse(b"@@lbctl begin fault 1\n@@lbctl switch armed setsid 1\n");
        assert!(matches!(truncated, Err(ReportError::Truncated { .. })));
    }
}
