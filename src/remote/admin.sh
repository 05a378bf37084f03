# lbctl admin: drain, maint, ready and weights on one load balancer, in one round trip and,
# for HAProxy, without a reload; and lbctl's record of what it set.
#
# Phase 1, looking: takes the apply lock (waiting up to LOCK_WAIT seconds for an apply to
# end), reports lbctl's record, HAProxy's `show servers state` and the marks in nginx's
# stream file, says "ready" and waits on fd 3 (the SSH channel's stdin) for lbctl, which
# decides once every load balancer has answered; it holds the lock meanwhile, and says it
# still waits every few seconds, so that a connection lost meanwhile ends it (see beat_begin).
# Phase 2, changing: lbctl answers "go" and three lines: the runtime API commands
# (";"-separated) and the new record, each base64 or "-", and "1" when nginx's marks are to be
# redone. Anything else, or the channel closing, ends the script with the host unchanged.
# Then: the commands go to HAProxy's admin socket; the record is written (next to itself,
# then renamed); nginx's stream file is re-marked from the record and, if that changed it,
# checked, swapped and nginx reloaded (the old file put back if any of that fails); HAProxy's state is saved for its next start; and the servers' state
# is reported again.
#
# The generated header defines LOCK, LOCK_WAIT, COMMAND_TIMEOUT (seconds), SOCKET (empty: no
# HAProxy), CONFIG (HAProxy's configuration file), STATE_FILE (its server-state-file),
# RECORD, NGINX_CONF (empty: no nginx), NGINX_CHECK and NGINX_RELOAD (shell commands; the
# check reads "$NGINX_CONF.lbctl-new").

connection_lost() {
	# shellcheck disable=SC2034 # read by emit (common.sh)
	LBCTL_LOST=1
	stop failed
}

stop() {
	trap '' HUP INT TERM PIPE
	beat_end
	[ -n "$TMP" ] && rm -f "$TMP"
	[ -n "$NGINX_CONF" ] && rm -f "$NGINX_CONF.lbctl-new"
	emit "end admin $1"
	if [ "$1" = ok ]; then
		exit 0
	fi
	exit 1
}

fail() {
	emit "error $(enc "$1")"
	stop failed
}

# run COMMAND: a user's command (check, reload), its output in OUT; the lock's descriptor and
# the channel to lbctl are closed for it, so that a daemon it starts keeps neither.
run() {
	if command -v timeout >/dev/null 2>&1; then
		OUT=$(timeout "$COMMAND_TIMEOUT" sh -c "$1" </dev/null 2>&1 9>&- 3<&-)
	else
		OUT=$(sh -c "$1" </dev/null 2>&1 9>&- 3<&-)
	fi
}

servers_state() {
	printf 'show servers state\n' | socat -t 2 - "UNIX-CONNECT:$SOCKET" 2>&1
}

look() {
	missing=
	for need in base64 dd flock ${SOCKET:+socat} awk; do
		command -v "$need" >/dev/null 2>&1 || missing="$missing $need"
	done
	[ -z "$missing" ] || fail "not installed on the host:$missing (lbctl needs them to set servers' state)"
	if ! { command exec 9>>"$LOCK"; } 2>/dev/null; then
		fail "cannot open the apply lock $LOCK: $({ : >>"$LOCK"; } 2>&1)"
	fi
	if ! flock -w "$LOCK_WAIT" 9; then
		holder=$(lock_holder "$LOCK")
		case $holder in
		'' | -) holder= ;;
		*) holder=" (pid $holder)" ;;
		esac
		fail "an lbctl apply$holder has held $LOCK for over $LOCK_WAIT s; try again when it has finished"
	fi
	printf '%s\n' "$$" >"$LOCK"
	if [ -e "$RECORD" ]; then
		content=$(base64 -w0 <"$RECORD" 2>&1) || fail "cannot read $RECORD: $content"
		emit "record ${content:--}"
	else
		emit "record -"
	fi
	if [ -n "$SOCKET" ]; then
		if [ ! -S "$SOCKET" ]; then
			emit "servers-error $(enc "$SOCKET is not a socket: is HAProxy running with lbctl's configuration?")"
		elif out=$(servers_state); then
			emit "servers $(enc "$out")"
		else
			emit "servers-error $(enc "$out")"
		fi
	fi
	if [ -n "$NGINX_CONF" ]; then
		if [ -r "$NGINX_CONF" ]; then
			emit "nginx-marks $(enc "$(file_marks "$NGINX_CONF")")"
		else
			emit "nginx-absent"
		fi
	fi
}

# decode FIELD FILE: a base64 field of lbctl's answer into FILE ("-": empty), created
# exclusively: a link planted at its name is refused, never written through.
decode() {
	if [ "$1" = - ]; then
		dd of="$2" conv=excl status=none </dev/null 2>/dev/null
	else
		printf '%s\n' "$1" | base64 -d 2>/dev/null | dd of="$2" conv=excl status=none 2>/dev/null
	fi
}

change_runtime() {
	[ "$1" = - ] && return 0
	rm -f "$TMP"
	decode "$1" "$TMP" || fail "lbctl's commands are not base64"
	commands=$(cat "$TMP")
	# One connection for every command: each answers with an empty line when it worked.
	answer=$(printf '%s\n' "$commands" | socat -t 5 - "UNIX-CONNECT:$SOCKET" 2>&1)
	status=$?
	answer=$(printf '%s\n' "$answer" | grep -v '^[[:space:]]*$')
	if [ "$status" -ne 0 ] || [ -n "$answer" ]; then
		emit "command-error $(enc "${answer:-socat exit status $status}")"
		FAILED=1
	fi
}

write_record() {
	[ "$1" = - ] && return 0
	if out=$(install_record "$RECORD" "$1"); then
		emit "record-written"
	else
		emit "record-error $(enc "$out")"
		FAILED=1
	fi
}

# remark_nginx: nginx's stream file marked as the record says; reloaded only if that changed
# it, and put back as it was if nginx does not take it.
remark_nginx() {
	[ -n "$NGINX_CONF" ] && [ -r "$NGINX_CONF" ] || return 0
	staged="$NGINX_CONF.lbctl-new"
	if [ -L "$NGINX_CONF" ]; then
		emit "nginx failed $(enc "$NGINX_CONF is a symbolic link lbctl did not create")"
		FAILED=1
		return 0
	fi
	rm -f "$TMP" "$staged"
	record_marks "$RECORD" | dd of="$TMP" conv=excl status=none 2>/dev/null
	# Created exclusively (never through a link), with the live file's mode.
	if ! out=$(mark_servers "$TMP" "$NGINX_CONF" 2>&1 | dd of="$staged" conv=excl status=none 2>&1) ||
		! out=$(chmod "$(stat -c %a "$NGINX_CONF")" "$staged" 2>&1) ||
		{ [ -s "$NGINX_CONF" ] && [ ! -s "$staged" ] && out="nothing came out"; }; then
		emit "nginx failed $(enc "cannot mark $NGINX_CONF: $out")"
		FAILED=1
		return 0
	fi
	if cmp -s "$staged" "$NGINX_CONF"; then
		rm -f "$staged"
		emit "nginx unchanged"
		return 0
	fi
	if ! run "$NGINX_CHECK"; then
		emit "nginx failed $(enc "nginx -t refused the marked $NGINX_CONF: $OUT")"
		FAILED=1
		return 0
	fi
	rm -f "$NGINX_CONF.lbctl-prev"
	ln -P -T "$NGINX_CONF" "$NGINX_CONF.lbctl-prev" 2>/dev/null
	if ! out=$(mv -f -T "$staged" "$NGINX_CONF" 2>&1); then
		emit "nginx failed $(enc "cannot replace $NGINX_CONF: $out")"
		FAILED=1
		return 0
	fi
	if run "$NGINX_RELOAD"; then
		emit "nginx reloaded"
	else
		why=$OUT
		mv -f -T "$NGINX_CONF.lbctl-prev" "$NGINX_CONF" 2>/dev/null && run "$NGINX_RELOAD"
		emit "nginx failed $(enc "reloading nginx failed ($NGINX_RELOAD), the previous file is back: $why")"
		FAILED=1
	fi
}

change() {
	beat_begin
	answer=
	IFS= read -r answer <&3
	beat_stop
	[ "$answer" = go ] || stop stopped
	commands=
	new_record=
	remark=
	IFS= read -r commands <&3
	IFS= read -r new_record <&3
	IFS= read -r remark <&3
	trap '' HUP INT TERM
	TMP="$LOCK.admin"
	rm -f "$TMP"
	[ -n "$SOCKET" ] && change_runtime "${commands:--}"
	write_record "${new_record:--}"
	[ "$remark" = 1 ] && remark_nginx
	if [ -n "$SOCKET" ] && [ -n "$STATE_FILE" ]; then
		if save_server_state "$SOCKET" "$STATE_FILE" "$CONFIG"; then
			emit "state-saved"
		else
			emit "state-error $(enc "HAProxy did not answer \"show servers state\"; $STATE_FILE is as it was")"
		fi
	fi
	if [ -n "$SOCKET" ] && out=$(servers_state); then
		emit "after $(enc "$out")"
	fi
	if [ "$FAILED" = 1 ]; then
		stop failed
	fi
	stop ok
}

main() {
	trap connection_lost HUP PIPE
	trap 'stop failed' INT TERM
	umask 077
	TMP=
	FAILED=
	emit "begin admin 1"
	look
	emit ready
	change
}
