# lbctl daemon: stop or start HAProxy or keepalived for a load-balancer failover test. The
# generated header defines ACTION (stop or start), COMMAND (the user's stop or start command),
# PIDFILE, and the dead man's switch (arm_switch, disarm_switch, switch_action: start the
# daemon unless it runs). `stop` arms the switch first; `start` disarms it.
connection_lost() {
	# lbctl is gone while stopping: put the daemon back now rather than when the switch fires
	[ "$ACTION" = stop ] && switch_action >/dev/null 2>&1 && disarm_switch
	exit 1
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
	stop)
		arm_switch || {
			emit "end daemon"
			return
		}
		old=$(running_pid)
		clock_now
		emit "stopping $CLOCK"
		if ! out=$(sh -c "$COMMAND" 2>&1 </dev/null); then
			switch_action >/dev/null 2>&1
			disarm_switch
			emit "error $(enc "\`$COMMAND\` failed: $out")"
		else
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
