# lbctl lb-state: what a load balancer is doing right now, read in one round trip and
# changing nothing: which VIPs it holds, whether its daemons run, HAProxy's own view of its
# servers, which UDP servers nginx keeps out, and the host's clock right after looking (so that
# lbctl can time a change by when the host saw it, not by when the answer crossed the
# network). The generated header defines SOCKET and STAT_COMMAND (SOCKET empty when not asked),
# UDP_LIVE (nginx's stream file, empty when not asked) and UDP_APPLIED (the UDP health
# watcher's record of the servers out of nginx), WANT_VIPS (empty when there are none) and the
# lists vips() and daemons(), which call state_vip NAME ADDRESS and state_daemon NAME PIDFILE
# once per item, RECORD (lbctl's admin record, empty when not asked) and udp_peers(), which
# calls state_udp PEER.

connection_lost() {
	exit 1
}

state_vip() {
	if printf '%s\n' "$ADDRESSES" | grep -qxF -e "$2"; then
		emit "vip $(enc "$1") held"
	else
		emit "vip $(enc "$1") free"
	fi
}

state_daemon() {
	read_pid "$2"
	pid_alive
	# shellcheck disable=SC2154 # set by read_pid (common.sh)
	case $? in
	0) emit "daemon $1 running $pid" ;;
	1) emit "daemon $1 stopped $pid" ;;
	*) emit "daemon $1 stopped -" ;;
	esac
}

state_stat() {
	if ! command -v socat >/dev/null 2>&1; then
		emit "stat-error $(enc "socat is not installed; lbctl needs it to ask HAProxy's runtime socket $SOCKET")"
	elif [ ! -S "$SOCKET" ]; then
		emit "stat-error $(enc "$SOCKET is not a socket: is HAProxy running with lbctl's configuration?")"
	elif out=$(printf '%s\n' "$STAT_COMMAND" | socat -t 2 - "UNIX-CONNECT:$SOCKET" 2>&1); then
		clock_now
		emit "stat $(enc "$out")"
	else
		emit "stat-error $(enc "$out")"
	fi
}

# state_udp ADDRESS:PORT: how many connected UDP sockets have that peer (nginx opens one per
# client flow it proxies there).
state_udp() {
	count=$(ss -Hun dst "$1" 2>/dev/null | grep -c .)
	emit "udp $(enc "$1") ${count:-0}"
}

state_record() {
	if [ -e "$RECORD" ]; then
		content=$(base64 -w0 <"$RECORD" 2>/dev/null)
		emit "record ${content:--}"
	else
		emit "record -"
	fi
}

# state_udp_down: the UDP servers out of nginx, by lbctl's UDP health watcher or by `lbctl
# drain|maint`: as the watcher recorded them once nginx's reload took effect (UDP_APPLIED), or
# before it ever did, the marks of nginx's stream file.
state_udp_down() {
	if [ -e "$UDP_APPLIED" ]; then
		if marked=$(cat "$UDP_APPLIED" 2>&1); then
			emit "udp-down $(enc "$marked")"
		else
			emit "udp-down-error $(enc "$marked")"
		fi
		return
	fi
	if [ ! -e "$UDP_LIVE" ]; then
		emit "udp-down-error $(enc "$UDP_LIVE does not exist: has lbctl's UDP health watcher run?")"
		return
	fi
	# file_marks: nginx-marks.sh's, whose marks the watcher and `lbctl drain|maint` write
	if marks=$(file_marks "$UDP_LIVE" 2>&1); then
		marked=$(printf '%s\n' "$marks" |
			awk '{ for (i = 2; i <= NF; i++) if ($i == "down") { print $1; break } }')
		emit "udp-down $(enc "$marked")"
	else
		emit "udp-down-error $(enc "$marks")"
	fi
}

# state_udp_weights: the weight nginx gives each UDP server of its stream file, one
# "backend/server N" a line: the last `weight=` of the server's line (`lbctl weight` marks
# one after the configured one; nginx takes the last), else nginx's default, 1.
state_udp_weights() {
	[ -r "$UDP_LIVE" ] || return 0
	if weights=$(awk '{
		at = index($0, "; # lbctl:")
		if (!at) next
		split(substr($0, at + 10), tag, " ")
		n = split(substr($0, 1, at - 1), words, " ")
		weight = 1
		for (i = 1; i <= n; i++) if (words[i] ~ /^weight=[0-9]+$/) weight = substr(words[i], 8)
		print tag[1], weight
	}' "$UDP_LIVE" 2>&1); then
		emit "udp-weights $(enc "$weights")"
	fi
}

main() {
	trap connection_lost PIPE
	CLOCK=-
	emit "begin lb-state 1"
	if [ -n "$WANT_VIPS" ]; then
		if command -v ip >/dev/null 2>&1; then
			ADDRESSES=$(ip -o addr show | awk '{ sub("/.*", "", $4); print $4 }')
			clock_now
			vips
		else
			emit "error $(enc "ip (iproute2) is not installed; lbctl needs it to see which addresses the host holds")"
		fi
	fi
	daemons
	[ -z "$SOCKET" ] || state_stat
	udp_peers
	[ -z "$RECORD" ] || state_record
	[ -z "$UDP_LIVE" ] || state_udp_down
	[ -z "$UDP_LIVE" ] || state_udp_weights
	[ "$CLOCK" = - ] || emit "clock $CLOCK"
	emit "end lb-state"
}
