# lbctl daemon: stop, kill or start HAProxy or keepalived for a load-balancer failover test.
# The generated header defines ACTION (stop, kill or start), COMMAND (the user's stop or start
# command), PIDFILE, and the dead man's switch (arm_switch, disarm_switch, switch_action: start
# the daemon unless it runs). `stop` and `kill` arm the switch first; `start` disarms it.
connection_lost() {
	# lbctl is gone while breaking: put the daemon back now rather than when the switch fires
	case $ACTION in
	stop | kill) switch_action >/dev/null 2>&1 && disarm_switch ;;
	esac
	exit 1
}

# kill_tree PID: SIGKILL the process and every descendant at once, as a crash (or the OOM
# killer taking the lot) would: HAProxy's master and workers, keepalived and its children,
# none of them getting to say or do anything.
kill_tree() {
	all=$1
	level=" $1 "
	while :; do
		next=
		for stat in /proc/[0-9]*/stat; do
			read -r line 2>/dev/null <"$stat" || continue
			rest=${line##*) }
			ppid=${rest#* }
			ppid=${ppid%% *}
			case $level in
			*" $ppid "*)
				pid=${stat#/proc/}
				next="$next ${pid%/stat}"
				;;
			esac
		done
		[ -n "$next" ] || break
		all="$all$next"
		level="$next "
	done
	# Stopped first, so that none of them runs a handler in between: keepalived's children
	# get SIGTERM the moment their parent dies (PR_SET_PDEATHSIG), and would say goodbye.
	# shellcheck disable=SC2086 # a list of pids
	kill -STOP $all
	# shellcheck disable=SC2086
	kill -KILL $all
}

running_pid() {
	pid=$(head -n 1 "$PIDFILE" 2>/dev/null)
	case $pid in
	'' | *[!0-9]*) return 1 ;;
	esac
	kill -0 "$pid" 2>/dev/null && printf '%s\n' "$pid"
}

main() {
	trap connection_lost PIPE
	emit "begin daemon 1"
	case $ACTION in
	stop | kill)
		arm_switch || {
			emit "end daemon"
			return
		}
		old=$(running_pid)
		if [ "$ACTION" = kill ] && [ -z "$old" ]; then
			disarm_switch
			emit "error $(enc "no live pid in $PIDFILE to kill")"
			emit "end daemon"
			return
		fi
		clock_now
		emit "stopping $CLOCK"
		broke=1
		if [ "$ACTION" = kill ]; then
			kill_tree "$old" 2>/dev/null
			COMMAND="kill -KILL $old and its descendants"
		elif ! out=$(sh -c "$COMMAND" 2>&1 </dev/null); then
			broke=0
			switch_action >/dev/null 2>&1
			disarm_switch
			emit "error $(enc "\`$COMMAND\` failed: $out")"
		fi
		if [ $broke = 1 ]; then
			i=0
			while [ -n "$old" ] && kill -0 "$old" 2>/dev/null && [ $i -lt 100 ]; do
				sleep 0.1
				i=$((i + 1))
			done
			if [ -n "$old" ] && kill -0 "$old" 2>/dev/null; then
				emit "error $(enc "\`$COMMAND\` returned, but pid $old (from $PIDFILE) still runs after 10 s")"
			fi
		fi
		;;
	start)
		clock_now
		emit "starting $CLOCK"
		if running_pid >/dev/null || out=$(sh -c "$COMMAND" 2>&1 </dev/null); then
			disarm_switch
			i=0
			while ! running_pid >/dev/null && [ $i -lt 100 ]; do
				sleep 0.1
				i=$((i + 1))
			done
			running_pid >/dev/null || emit "error $(enc "\`$COMMAND\` returned, but no live pid in $PIDFILE after 10 s")"
		else
			emit "error $(enc "\`$COMMAND\` failed: $out")"
		fi
		;;
	esac
	emit "end daemon"
}
