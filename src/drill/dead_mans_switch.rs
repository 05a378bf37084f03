//! A timer left on a host before lbctl breaks something there: if lbctl does not come back
//! to disarm it (a crash, `kill -9`, a lost connection, a laptop lid closed), it runs the
//! repair by itself when it fires.
//!
//! Plain data in, `sh` text out: shell functions that other remote scripts embed. Under
//! systemd the timer is a transient unit (`systemd-run --on-active`), which outlives the SSH
//! session whatever logind does with it; elsewhere it is a `setsid` process group sleeping
//! in the background, detached from the session and its signals.

use std::{fmt::Write as _, time::Duration};

use crate::remote::quote;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadMansSwitch {
    /// Names the timer (the systemd unit, or a word in the process's command line), so that
    /// disarming can never touch anything else.
    pub tag: String,
    /// How long after arming it fires.
    pub fires_after: Duration,
    /// The repair: a shell command list, run by `sh -c` as root.
    pub action: String,
}

/// How a switch was armed, as the host reported it: what disarming needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Armed {
    /// A transient systemd timer unit named after the tag.
    Systemd { unit: String },
    /// A background process group led by `pid`.
    Setsid { pid: u32 },
}

impl DeadMansSwitch {
    /// Shell definitions: `arm_switch` (emits `switch armed systemd UNIT` or
    /// `switch armed setsid PID`, or `switch-error MESSAGE` and returns 1), `disarm_switch`
    /// (for the switch this script armed, or the one `armed` names), and the repair itself as
    /// `switch_action`, so that the normal restore path runs exactly what the switch would.
    pub fn shell(&self, armed: Option<&Armed>) -> String {
        let seconds = self.fires_after.as_secs().max(1);
        let (kind, id) = match armed {
            Some(Armed::Systemd { unit }) => ("systemd", unit.clone()),
            Some(Armed::Setsid { pid }) => ("setsid", pid.to_string()),
            None => ("", String::new()),
        };
        let mut sh = String::new();
        let _ = writeln!(sh, "SWITCH_TAG={}", quote(&self.tag));
        let _ = writeln!(sh, "SWITCH_SECONDS={seconds}");
        let _ = writeln!(sh, "SWITCH_ACTION={}", quote(&self.action));
        let _ = writeln!(sh, "SWITCH_KIND={kind}");
        let _ = writeln!(sh, "SWITCH_ID={}", quote(&id));
        sh.push_str(FUNCTIONS);
        sh
    }
}

const FUNCTIONS: &str = r#"
switch_action() {
	sh -c "$SWITCH_ACTION"
}

arm_switch() {
	if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then
		if out=$(systemd-run --quiet --collect --unit="$SWITCH_TAG" --on-active="${SWITCH_SECONDS}s" \
			--timer-property=AccuracySec=100ms /bin/sh -c "$SWITCH_ACTION" 2>&1); then
			SWITCH_KIND=systemd SWITCH_ID=$SWITCH_TAG
			emit "switch armed systemd $SWITCH_TAG"
			return 0
		fi
		emit "switch-error $(enc "systemd-run failed: $out")"
		return 1
	fi
	if ! command -v setsid >/dev/null 2>&1; then
		emit "switch-error $(enc "neither systemd nor setsid (util-linux) is there to hold lbctl's dead man's switch")"
		return 1
	fi
	# $0 of the sleeping shell is the tag, so that disarming finds it by name.
	setsid sh -c 'trap "" HUP INT; sleep "$1"; sh -c "$2"' "$SWITCH_TAG" "$SWITCH_SECONDS" "$SWITCH_ACTION" \
		</dev/null >/dev/null 2>&1 &
	pid=$!
	if kill -0 "$pid" 2>/dev/null; then
		SWITCH_KIND=setsid SWITCH_ID=$pid
		emit "switch armed setsid $pid"
		return 0
	fi
	emit "switch-error $(enc "the switch process (setsid sh) exited at once")"
	return 1
}

disarm_switch() {
	case $SWITCH_KIND in
	systemd)
		systemctl stop "$SWITCH_ID.timer" >/dev/null 2>&1
		systemctl reset-failed "$SWITCH_ID.timer" "$SWITCH_ID.service" >/dev/null 2>&1
		;;
	setsid)
		# only a process whose command line still names this switch's tag: never a reused pid
		if { tr '\0' ' ' <"/proc/$SWITCH_ID/cmdline"; } 2>/dev/null | grep -qF -e "$SWITCH_TAG"; then
			kill -- "-$SWITCH_ID" 2>/dev/null
		fi
		;;
	*)
		# armed by a script whose report never reached lbctl: find the switch by its tag
		systemctl stop "$SWITCH_TAG.timer" >/dev/null 2>&1
		for cmdline in /proc/[0-9]*/cmdline; do
			pid=${cmdline#/proc/}
			pid=${pid%/cmdline}
			{ tr '\0' ' ' <"$cmdline"; } 2>/dev/null | grep -qF -e "$SWITCH_TAG $SWITCH_SECONDS " || continue
			stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
			# shellcheck disable=SC2086 # state, ppid, pgrp after the command name
			set -- ${stat##*) }
			[ "$3" = "$pid" ] && kill -- "-$pid" 2>/dev/null
		done
		;;
	esac
	return 0
}
"#;

/// Reads a `switch armed KIND ID` frame's words.
pub fn parse_armed(kind: &str, id: &str) -> Option<Armed> {
    match kind {
        "systemd" => Some(Armed::Systemd {
            unit: id.to_string(),
        }),
        "setsid" => id.parse().ok().map(|pid| Armed::Setsid { pid }),
        _ => None,
    }
}
