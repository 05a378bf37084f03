# lbctl probe: new TCP connections to the VIP's frontends at a steady rate, from this host,
# each one a success only when its first byte arrives in time. The generated header defines
# TARGETS (how many), TARGET_0.. ("host port"), TIMEOUT (whole seconds per attempt), PERIOD
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

# probe_once SEQ INDEX HOST PORT: one attempt, reported when its first byte (or its end) came
probe_once() {
	start=$(now_ms)
	timeout "$TIMEOUT" socat -u "TCP:$3:$4,connect-timeout=$TIMEOUT" STDOUT 2>/dev/null | {
		if [ "$(head -c 1 | wc -c)" -gt 0 ]; then
			emit "probe $1 $2 $start ok $(now_ms)"
		else
			emit "probe $1 $2 $start fail $(now_ms)"
		fi
	}
}

main() {
	trap connection_lost PIPE
	emit "begin probe 1"
	for tool in socat timeout head wc; do
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
		# shellcheck disable=SC2086,SC2154 # "host port", assigned by the eval
		probe_once "$i" $((i % TARGETS)) $target &
		i=$((i + 1))
		sleep "$PERIOD"
	done
	wait
	rm -f "$STOP_FILE"
	emit "end probe"
}
