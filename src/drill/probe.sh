# lbctl probe: new TCP connections to the VIP's frontends at a steady rate, from this host,
# each one a success only when its first byte arrives in time; to a UDP frontend, a datagram
# from a new source port, a success only when a reply that begins as expected arrives within
# a second. The generated header defines TARGETS (how many), TARGET_0.. ("host port tcp", or
# "host port udp PAYLOAD EXPECT" with printf formats, EXPECT - for any reply), TIMEOUT (whole
# seconds per TCP attempt), PERIOD
# (seconds between attempts, for sleep), MAX_ATTEMPTS, MAX_MS (the whole run's limit) and
# STOP_FILE (lbctl creates it to end the run early). Attempts start in the background, so a
# slow one never delays the next.

connection_lost() {
	: >"$STOP_FILE"
	exit 1
}

now_ms() {
	date +%s%3N
}

# probe_once SEQ INDEX HOST PORT PROTO [PAYLOAD EXPECT]: one attempt, reported when its first
# byte or reply (or its end) came
probe_once() {
	start=$(now_ms)
	# HOST as socat takes it: an IPv6 address in brackets
	host=$3
	case $host in
	*:*) host="[$host]" ;;
	esac
	if [ "$5" = udp ]; then
		probe_datagram "$@"
		return
	fi
	timeout "$TIMEOUT" socat -u "TCP:$host:$4,connect-timeout=$TIMEOUT" STDOUT 2>/dev/null | {
		if [ "$(head -c 1 | wc -c)" -gt 0 ]; then
			emit "probe $1 $2 $start ok $(now_ms)"
		else
			emit "probe $1 $2 $start fail $(now_ms)"
		fi
	}
}

# probe_datagram SEQ INDEX HOST PORT udp PAYLOAD EXPECT (host: HOST as probe_once made it for
# socat): socat sends the datagram from a new source port, hands the first reply to dd (fd 3)
# and is ended by it; silence ends it after a second.
probe_datagram() {
	LBCTL_PAYLOAD=$6
	export LBCTL_PAYLOAD
	# shellcheck disable=SC2016 # LBCTL_PAYLOAD and PPID are for the shell socat starts
	reply=$({ socat -T 1 "UDP:$host:$4" \
		'SYSTEM:printf "$LBCTL_PAYLOAD"; dd bs=65536 count=1 >&3 2>/dev/null; kill $PPID' \
		2>/dev/null; } 3>&1; echo .)
	reply=${reply%.}
	prefix=
	# shellcheck disable=SC2059 # the format is lbctl's escaping of the expected bytes
	[ "$7" = - ] || prefix=$(printf "$7" && echo .)
	case $reply in
	'') emit "probe $1 $2 $start fail $(now_ms)" ;;
	"${prefix%.}"*) emit "probe $1 $2 $start ok $(now_ms)" ;;
	*) emit "probe $1 $2 $start fail $(now_ms)" ;;
	esac
}

main() {
	trap connection_lost PIPE
	emit "begin probe 1"
	for tool in socat timeout head wc dd; do
		if ! command -v "$tool" >/dev/null 2>&1; then
			emit "error $(enc "$tool is not installed on this host; lbctl's remote probe needs socat and coreutils")"
			emit "end probe"
			return
		fi
	done
	case $(now_ms) in
	*N* | '')
		emit "error $(enc "date here has no milliseconds (+%3N); lbctl's remote probe needs GNU date")"
		emit "end probe"
		return
		;;
	esac
	rm -f "$STOP_FILE"
	base=$(now_ms)
	emit "started $base"
	i=0
	while [ "$i" -lt "$MAX_ATTEMPTS" ] && [ ! -e "$STOP_FILE" ] && [ $(($(now_ms) - base)) -lt "$MAX_MS" ]; do
		eval "target=\$TARGET_$((i % TARGETS))"
		# shellcheck disable=SC2086,SC2154 # "host port proto ...", assigned by the eval
		probe_once "$i" $((i % TARGETS)) $target &
		i=$((i + 1))
		sleep "$PERIOD"
	done
	wait
	rm -f "$STOP_FILE"
	emit "end probe"
}
