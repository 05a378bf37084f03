//! HAProxy's runtime API as lbctl reads it: the CSV of `show stat`, typed.
//!
//! Plain text in, plain data out; the remote script that asks the admin socket is in
//! `lb_state.rs`. The CSV is described in HAProxy's management guide, section 9.1: a header
//! line `# pxname,svname,...` names the columns, and fields are quoted only when they hold
//! a comma or a quote. Columns are looked up by name, never by position, because the set of
//! columns after the static ones changes between versions.

use serde::Serialize;

use super::ReportError;

/// One row of `show stat`: a frontend, a backend, a server or a listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatRow {
    /// The proxy: a frontend's or a backend's name (`pxname`).
    pub proxy: String,
    /// `FRONTEND`, `BACKEND`, or the server's name (`svname`).
    pub name: String,
    pub kind: RowKind,
    pub status: RowStatus,
    /// The last health check's result (`L4OK`, `L4TOUT`, `L4CON`, ...), when checked.
    pub check_status: Option<String>,
    /// A check is running right now (HAProxy prefixes the last result with `* `).
    pub check_running: bool,
    /// HAProxy's words for the last check (`Layer4 timeout`), when there are any.
    pub check_desc: Option<String>,
    /// Current sessions (`scur`).
    pub sessions: u64,
    /// The server's `address:port` (`addr`).
    pub address: Option<String>,
    /// A backup server (`bck` is 1 for a server).
    pub backup: bool,
    /// Seconds since the last UP/DOWN transition (`lastchg`).
    pub last_change_s: Option<u64>,
    /// A server's weight as set (`uweight`, else `weight`).
    pub weight: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RowKind {
    Frontend,
    Backend,
    Server,
    Listener,
}

/// A row's `status` field: its state, and how far a pending transition has got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowStatus {
    pub state: RowState,
    /// HAProxy's own text, e.g. `UP 1/2` (UP, one failed check of the two `fall` needs).
    pub text: String,
    /// `Some` while checks are moving the server to the other state: `UP 1/2` is still UP
    /// but failing, `DOWN 1/2` is still DOWN but recovering.
    pub transition: Option<Transition>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Transition {
    pub done: u32,
    pub needed: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowState {
    Up,
    Down,
    /// Disabled by an operator or by a failed DNS resolution.
    Maint,
    /// Takes no new connections but keeps its sessions.
    Drain,
    /// Up, but refusing new load-balanced traffic (agent or `disable-on-404`).
    Nolb,
    /// A server without health checks: HAProxy cannot know.
    NoCheck,
    /// A frontend or listener accepting connections.
    Open,
    /// A frontend or listener not accepting connections.
    Stopped,
    /// Anything this version of lbctl does not know.
    Other,
}

impl RowState {
    pub fn name(self) -> &'static str {
        match self {
            RowState::Up => "UP",
            RowState::Down => "DOWN",
            RowState::Maint => "MAINT",
            RowState::Drain => "DRAIN",
            RowState::Nolb => "NOLB",
            RowState::NoCheck => "no check",
            RowState::Open => "OPEN",
            RowState::Stopped => "STOP",
            RowState::Other => "?",
        }
    }
}

impl RowStatus {
    pub fn parse(text: &str) -> RowStatus {
        let text = text.trim();
        let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
        let state = match word {
            "UP" => RowState::Up,
            "DOWN" => RowState::Down,
            w if w.starts_with("MAINT") => RowState::Maint,
            "DRAIN" => RowState::Drain,
            "NOLB" => RowState::Nolb,
            "no" if rest == "check" => RowState::NoCheck,
            "OPEN" => RowState::Open,
            "STOP" | "FULL" => RowState::Stopped,
            _ => RowState::Other,
        };
        let transition = rest.split_once('/').and_then(|(done, needed)| {
            Some(Transition {
                done: done.trim().parse().ok()?,
                needed: needed.trim().parse().ok()?,
            })
        });
        RowStatus {
            state,
            text: text.to_string(),
            transition,
        }
    }

    /// UP with no failed check pending: what a healthy server shows.
    pub fn steadily_up(&self) -> bool {
        self.state == RowState::Up && self.transition.is_none()
    }
}

/// Reads `show stat` output. Blank lines and lines HAProxy did not format as rows (a
/// truncated last line, say) are errors, so a half-read answer is never taken for a state.
pub fn parse_show_stat(text: &str) -> Result<Vec<StatRow>, ReportError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let header = match lines.next() {
        Some((_, line)) if line.starts_with('#') => line,
        // `show stat` answers with its header first; anything before it is not CSV.
        Some((n, line)) => {
            return Err(ReportError::MalformedStat {
                line: n + 1,
                reason: format!("expected the header line, found `{}`", clip(line)),
            });
        }
        None => return Err(ReportError::NoStatHeader),
    };
    let columns = Columns::from_header(header.trim_start_matches('#').trim())?;
    let mut rows = Vec::new();
    for (n, line) in lines {
        let fields = split_csv(n + 1, line)?;
        rows.push(columns.row(n + 1, &fields)?);
    }
    Ok(rows)
}

/// Where each column lbctl reads sits in this HAProxy's header.
struct Columns {
    pxname: usize,
    svname: usize,
    scur: usize,
    status: usize,
    kind: usize,
    check_status: Option<usize>,
    check_desc: Option<usize>,
    addr: Option<usize>,
    bck: Option<usize>,
    lastchg: Option<usize>,
    weight: Option<usize>,
}

impl Columns {
    fn from_header(header: &str) -> Result<Columns, ReportError> {
        let names: Vec<&str> = header.split(',').map(str::trim).collect();
        let find = |name: &str| names.iter().position(|n| *n == name);
        let need = |name: &'static str| find(name).ok_or(ReportError::MissingStatColumn(name));
        Ok(Columns {
            pxname: need("pxname")?,
            svname: need("svname")?,
            scur: need("scur")?,
            status: need("status")?,
            kind: need("type")?,
            check_status: find("check_status"),
            check_desc: find("check_desc"),
            addr: find("addr"),
            bck: find("bck"),
            lastchg: find("lastchg"),
            weight: find("uweight").or_else(|| find("weight")),
        })
    }

    fn row(&self, line: usize, fields: &[String]) -> Result<StatRow, ReportError> {
        let malformed = |reason: String| ReportError::MalformedStat { line, reason };
        let get = |i: usize| fields.get(i).map(String::as_str).unwrap_or("");
        let opt = |i: Option<usize>| i.map(get).filter(|v| !v.is_empty()).map(str::to_string);
        if fields.len() <= self.status.max(self.kind).max(self.scur) {
            return Err(malformed(format!(
                "{} fields, fewer than the header names",
                fields.len()
            )));
        }
        let kind = match get(self.kind) {
            "0" => RowKind::Frontend,
            "1" => RowKind::Backend,
            "2" => RowKind::Server,
            "3" => RowKind::Listener,
            other => return Err(malformed(format!("unknown row type `{other}`"))),
        };
        let sessions = match get(self.scur) {
            "" => 0,
            n => n
                .parse()
                .map_err(|_| malformed(format!("`scur` is not a number: `{n}`")))?,
        };
        let (check_status, check_running) = match opt(self.check_status) {
            Some(s) => match s.strip_prefix("* ") {
                Some(last) => (Some(last.to_string()), true),
                None => (Some(s), false),
            },
            None => (None, false),
        };
        Ok(StatRow {
            proxy: get(self.pxname).to_string(),
            name: get(self.svname).to_string(),
            kind,
            status: RowStatus::parse(get(self.status)),
            check_status,
            check_running,
            check_desc: opt(self.check_desc),
            sessions,
            address: opt(self.addr),
            backup: kind == RowKind::Server && self.bck.is_some_and(|i| get(i) == "1"),
            last_change_s: opt(self.lastchg).and_then(|v| v.parse().ok()),
            weight: opt(self.weight).and_then(|v| v.parse().ok()),
        })
    }
}

/// One server in `show servers state` (version 1): what HAProxy saves across reloads, and
/// the admin state and weights lbctl sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerState {
    pub backend: String,
    pub server: String,
    pub address: String,
    pub port: u16,
    pub op: OpState,
    /// HAProxy's admin flags (`srv_admin_state`): 0x01 forced maintenance, 0x04 maintenance
    /// from the configuration, 0x08 forced drain, 0x20 maintenance after a failed resolution.
    pub admin_flags: u32,
    /// The weight in use, as set by the configuration or `set server ... weight` (`srv_uweight`).
    pub weight: u32,
    /// The weight in the configuration (`srv_iweight`).
    pub configured_weight: u32,
}

/// A server's operational state, as health checks decide it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpState {
    Stopped,
    Starting,
    Running,
    Stopping,
}

/// Forced into maintenance (`set server ... state maint`).
pub const ADMIN_FORCED_MAINT: u32 = 0x01;
/// In maintenance for any reason (forced, inherited, configured, or a failed resolution).
pub const ADMIN_ANY_MAINT: u32 = 0x27;
/// Forced to drain (`set server ... state drain`).
pub const ADMIN_FORCED_DRAIN: u32 = 0x08;
/// Draining, forced or inherited.
pub const ADMIN_ANY_DRAIN: u32 = 0x18;

impl ServerState {
    /// Takes new traffic: running (or starting to fail), in no maintenance, not draining,
    /// with a weight.
    pub fn takes_traffic(&self) -> bool {
        matches!(self.op, OpState::Running | OpState::Stopping)
            && self.admin_flags & (ADMIN_ANY_MAINT | ADMIN_ANY_DRAIN) == 0
            && self.weight > 0
    }
}

/// Reads `show servers state`: a version line (`1`), a `#` header, then one line per server
/// of space-separated fields in a fixed order.
pub fn parse_servers_state(text: &str) -> Result<Vec<ServerState>, ReportError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    match lines.next() {
        Some((_, "1")) => {}
        Some((_, v)) if v.trim().chars().all(|c| c.is_ascii_digit()) => {
            return Err(ReportError::ServersStateVersion(v.trim().to_string()));
        }
        other => {
            return Err(ReportError::NoServersStateVersion(
                other.map(|(_, l)| clip(l)).unwrap_or_default(),
            ));
        }
    }
    let mut servers = Vec::new();
    for (n, line) in lines {
        if line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let malformed = |reason: &str| ReportError::MalformedServersState {
            line: n + 1,
            reason: format!("{reason}: `{}`", clip(line)),
        };
        if fields.len() < 19 {
            return Err(malformed("fewer than 19 fields"));
        }
        let number = |i: usize| -> Result<u32, ReportError> {
            fields[i].parse().map_err(|_| malformed("not a number"))
        };
        servers.push(ServerState {
            backend: fields[1].to_string(),
            server: fields[3].to_string(),
            address: fields[4].to_string(),
            port: fields[18].parse().map_err(|_| malformed("invalid port"))?,
            op: match fields[5] {
                "0" => OpState::Stopped,
                "1" => OpState::Starting,
                "2" => OpState::Running,
                "3" => OpState::Stopping,
                _ => return Err(malformed("unknown srv_op_state")),
            },
            admin_flags: number(6)?,
            weight: number(7)?,
            configured_weight: number(8)?,
        });
    }
    Ok(servers)
}

/// One CSV line: comma-separated, a field in double quotes when it holds a comma or a
/// quote, a quote inside doubled.
fn split_csv(number: usize, line: &str) -> Result<Vec<String>, ReportError> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, ',') => fields.push(std::mem::take(&mut field)),
            (false, '"') if field.is_empty() => quoted = true,
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (_, c) => field.push(c),
        }
    }
    if quoted {
        return Err(ReportError::MalformedStat {
            line: number,
            reason: format!("unterminated quote in `{}`", clip(line)),
        });
    }
    fields.push(field);
    Ok(fields)
}

fn clip(line: &str) -> String {
    line.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `show stat` on the lab's lb1 after `lbctl apply`: every worker UP.
    const LAB: &str = include_str!("../../tests/inputs/show-stat/lab-steady.csv");
    /// Captured from HAProxy 2.6.12 (the lab's Debian 12 package) running the haproxy.cfg
    /// lbctl renders, with two listeners up and one worker address closed.
    const STEADY: &str = include_str!("../../tests/inputs/show-stat/steady.csv");
    /// The same, one check after the first worker's port started dropping packets.
    const GOING_DOWN: &str = include_str!("../../tests/inputs/show-stat/going-down.csv");
    /// The same, with `disable server mysql/k8s-worker-1`.
    const MAINT: &str = include_str!("../../tests/inputs/show-stat/maint.csv");
    /// The same, one successful check after the second worker came back.
    const RISING: &str = include_str!("../../tests/inputs/show-stat/rising.csv");

    fn server<'a>(rows: &'a [StatRow], proxy: &str, name: &str) -> &'a StatRow {
        rows.iter()
            .find(|r| r.kind == RowKind::Server && r.proxy == proxy && r.name == name)
            .unwrap_or_else(|| panic!("no server {proxy}/{name}"))
    }

    #[test]
    fn the_lab_after_apply() {
        let rows = parse_show_stat(LAB).unwrap();
        let servers: Vec<&StatRow> = rows.iter().filter(|r| r.kind == RowKind::Server).collect();
        assert_eq!(servers.len(), 9);
        assert!(servers.iter().all(|s| s.status.steadily_up()
            && s.check_status.as_deref() == Some("L4OK")
            && !s.backup));
        let w2 = server(&rows, "postgresql", "k8s-worker-2");
        assert_eq!(w2.address.as_deref(), Some("10.77.77.22:30432"));
        let frontends = rows.iter().filter(|r| r.kind == RowKind::Frontend).count();
        assert_eq!(frontends, 4, "stats and one per TCP backend");
    }

    #[test]
    fn steady_state_types_every_row() {
        let rows = parse_show_stat(STEADY).unwrap();
        assert_eq!(rows.len(), 10);
        let w1 = server(&rows, "mysql", "k8s-worker-1");
        assert!(w1.status.steadily_up());
        assert_eq!(w1.check_status.as_deref(), Some("L4OK"));
        assert_eq!(w1.address.as_deref(), Some("127.0.0.1:30306"));
        assert_eq!(w1.sessions, 0);
        let w3 = server(&rows, "mysql", "k8s-worker-3");
        assert_eq!(w3.status.state, RowState::Down);
        assert_eq!(w3.check_status.as_deref(), Some("L4CON"));
        assert_eq!(w3.check_desc.as_deref(), Some("Layer4 connection problem"));
        let unchecked = server(&rows, "redis", "k8s-worker-1");
        assert_eq!(unchecked.status.state, RowState::NoCheck);
        assert_eq!(unchecked.check_status, None);
        assert!(server(&rows, "redis", "k8s-worker-2").backup);
        let fe = rows.iter().find(|r| r.proxy == "fe_mysql").unwrap();
        assert_eq!(
            (fe.kind, fe.status.state),
            (RowKind::Frontend, RowState::Open)
        );
        let be = rows
            .iter()
            .find(|r| r.proxy == "mysql" && r.kind == RowKind::Backend)
            .unwrap();
        assert_eq!(be.status.state, RowState::Up);
    }

    #[test]
    fn a_failing_server_is_still_up_until_fall_checks_failed() {
        let rows = parse_show_stat(GOING_DOWN).unwrap();
        let w1 = server(&rows, "mysql", "k8s-worker-1");
        assert_eq!(w1.status.state, RowState::Up);
        assert_eq!(
            w1.status.transition,
            Some(Transition { done: 1, needed: 2 })
        );
        assert!(!w1.status.steadily_up());
        assert_eq!(w1.check_status.as_deref(), Some("L4TOUT"));
        assert!(w1.check_running);
    }

    #[test]
    fn maintenance_and_recovery() {
        let rows = parse_show_stat(MAINT).unwrap();
        assert_eq!(
            server(&rows, "mysql", "k8s-worker-1").status.state,
            RowState::Maint
        );
        let rows = parse_show_stat(RISING).unwrap();
        let w2 = server(&rows, "mysql", "k8s-worker-2");
        assert_eq!(w2.status.state, RowState::Down);
        assert_eq!(w2.status.text, "DOWN 1/2");
        assert_eq!(
            w2.status.transition,
            Some(Transition { done: 1, needed: 2 })
        );
    }

    #[test]
    fn status_words() {
        assert_eq!(
            RowStatus::parse("MAINT (via be/srv)").state,
            RowState::Maint
        );
        assert_eq!(RowStatus::parse("MAINT(resolution)").state, RowState::Maint);
        assert_eq!(RowStatus::parse("no check").state, RowState::NoCheck);
        assert_eq!(RowStatus::parse("DRAIN").state, RowState::Drain);
        assert_eq!(RowStatus::parse("UP 2/3").transition.unwrap().needed, 3);
        assert_eq!(RowStatus::parse("WHATEVER").state, RowState::Other);
    }

    #[test]
    fn quoted_fields_and_columns_by_name() {
        let text = "# svname,pxname,type,status,scur,check_desc\n\
                    \"a,b\",be,2,UP,3,\"said \"\"hi\"\", then left\"\n";
        let rows = parse_show_stat(text).unwrap();
        assert_eq!(rows[0].name, "a,b");
        assert_eq!(rows[0].proxy, "be");
        assert_eq!(rows[0].sessions, 3);
        assert_eq!(
            rows[0].check_desc.as_deref(),
            Some("said \"hi\", then left")
        );
    }

    #[test]
    fn servers_state_as_haproxy_2_6_prints_it() {
        // b1/s1 drained and DOWN, b1/s2 re-weighted, b2/s1 in maintenance
        let text = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n\
2 b1 1 s1 127.0.0.1 0 8 1 1 0 8 2 0 6 0 0 0 - 39001 - 0 0 - - 0\n\
2 b1 2 s2 127.0.0.1 2 0 7 3 0 1 0 2 0 0 0 0 - 39002 - 0 0 - - 0\n\
3 b2 1 s1 127.0.0.1 0 1 1 1 0 1 0 0 0 0 0 0 - 39003 - 0 0 - - 0\n";
        let servers = parse_servers_state(text).unwrap();
        assert_eq!(servers.len(), 3);
        assert_eq!(servers[0].admin_flags, ADMIN_FORCED_DRAIN);
        assert_eq!(servers[0].op, OpState::Stopped);
        assert_eq!((servers[1].weight, servers[1].configured_weight), (7, 3));
        assert!(servers[1].takes_traffic());
        assert_eq!(
            servers[2].admin_flags & ADMIN_FORCED_MAINT,
            ADMIN_FORCED_MAINT
        );
        assert_eq!(servers[2].port, 39003);
        assert!(parse_servers_state("Unknown command\n").is_err());
        assert!(matches!(
            parse_servers_state("2\n"),
            Err(ReportError::ServersStateVersion(_))
        ));
    }

    #[test]
    fn not_csv_is_an_error() {
        assert_eq!(parse_show_stat(""), Err(ReportError::NoStatHeader));
        assert!(matches!(
            parse_show_stat("Unknown command.\n"),
            Err(ReportError::MalformedStat { line: 1, .. })
        ));
        assert_eq!(
            parse_show_stat("# pxname,svname\n"),
            Err(ReportError::MissingStatColumn("scur"))
        );
        assert!(parse_show_stat("# pxname,svname,scur,status,type\nbe,s,\"x\n").is_err());
    }
}
