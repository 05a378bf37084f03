# lbctl apply: change a load balancer's files atomically, in one round trip.
#
# lock, stage next to the live file, validate the staged file with the service's own check,
# keep the previous file, swap by rename, reload, verify; on any failure after the swap,
# put every previous file back and reload again. Nothing here prints a file's content.
#
# With HOLD set, the script stops once every file is staged and validated, says "ready",
# and goes on to the swap only when lbctl answers "go" on fd 3 (the SSH channel's stdin);
# anything else, or the connection closing, aborts with the host unchanged. lbctl uses it
# to check every host before it changes any.
#
# Every process started costs milliseconds, so the happy path starts only those that do
# the work (flock, base64, the checks, cp, mv, the reloads, socat, one ss): the details of its
# frames come already encoded from lbctl, and the rest is shell builtins.
#
# The generated header defines LOCK, SOCKET (empty when not verified), TCP_PORTS and
# UDP_PORTS (space-separated, possibly empty), COMMAND_TIMEOUT (seconds), CHANGES (how
# many files change), HOLD (empty or 1), the base64 details LOCK64, VERIFY64, NO_CHECK64
# and WAS_ABSENT64, and two lists:
# files() calls "$@" INDEX PATH UMASK CHECK CONTENT PATH64 once per changed file (UMASK
# gives the new file its mode; CHECK is a shell command, empty when there is none; CONTENT
# and PATH64 are base64), and services() calls "$@" NAME RELOAD NAME64 once per service
# with a changed file.

STEP=preflight
PHASE=before-swap
ABORTING=
OUT=
ROLLBACK_OK=1

# fail STEP DETAIL64 COMMAND MESSAGE: the failure that stops this apply.
fail() {
	emit "step $1 failed ${2:--}"
	emit "failure $1 $(enc "$3") $(enc "$4")"
}

# ok STEP [DETAIL64...]: the details are base64 words, read by lbctl as one text.
ok() {
	step=$1
	shift
	emit "step $step ok ${*:--}"
}

# run_cmd COMMAND: runs a user-supplied command, its stdout and stderr in $OUT. The lock's
# descriptor and the channel to lbctl are closed for it, so that a daemon it starts can
# keep neither.
run_cmd() {
	if [ -n "$TIMEOUT" ]; then
		timeout "$COMMAND_TIMEOUT" sh -c "$1" </dev/null >"$OUT" 2>&1 9>&- 3<&-
	else
		sh -c "$1" </dev/null >"$OUT" 2>&1 9>&- 3<&-
	fi
	status=$?
	if [ "$status" -eq 124 ]; then
		printf '(timed out after %s seconds)\n' "$COMMAND_TIMEOUT" >>"$OUT"
	elif [ "$status" -ne 0 ] && [ ! -s "$OUT" ]; then
		printf '(exit status %s, no output)\n' "$status" >"$OUT"
	fi
	return "$status"
}

output() {
	cat "$OUT"
}

preflight() {
	missing=
	need() {
		command -v "$1" >/dev/null 2>&1 || missing="$missing
$1 is not installed on the host; lbctl needs it $2"
	}
	need base64 "to receive files"
	need flock "to keep two applies from running at once"
	[ -n "$SOCKET" ] && need socat "to query the HAProxy runtime socket $SOCKET"
	[ -n "$TCP_PORTS$UDP_PORTS" ] && need ss "(iproute2) to see which ports are listening"
	if [ -n "$missing" ]; then
		fail preflight "" "command -v" "${missing#?}"
		return 1
	fi
	TIMEOUT=
	command -v timeout >/dev/null 2>&1 && TIMEOUT=1
	ok preflight
}

take_lock() {
	if ! { command exec 9>>"$LOCK"; } 2>/dev/null; then
		fail lock "$LOCK64" ": >>$LOCK" "cannot open the apply lock: $({ : >>"$LOCK"; } 2>&1)"
		return 1
	fi
	if ! flock -n 9; then
		holder=$(lock_holder "$LOCK")
		case $holder in
		'' | -) holder= ;;
		*) holder=" (pid $holder)" ;;
		esac
		fail lock "$LOCK64" "flock -n $LOCK" "another lbctl apply$holder is running on this host and holds $LOCK; try again when it has finished"
		return 1
	fi
	printf '%s\n' "$$" >"$LOCK"
	# Commands' output goes next to the lock, which this apply alone holds now.
	OUT="$LOCK.out"
	ok lock "$LOCK64"
}

# parent PATH: sets dir to PATH's directory, as dirname(1) would say, without starting it.
parent() {
	case $1 in
	*/*) dir=${1%/*} ;;
	*) dir=. ;;
	esac
	[ -n "$dir" ] || dir=/
}

# stage INDEX PATH UMASK CHECK CONTENT PATH64
stage() {
	new="$2.lbctl-new"
	if [ -e "$2" ] || [ -L "$2" ]; then
		eval "EXISTED_$1=1"
	else
		eval "EXISTED_$1=0"
	fi
	parent "$2"
	made=
	while [ ! -d "$dir" ]; do
		made=$dir
		parent "$dir"
	done
	if [ -n "$made" ]; then
		parent "$2"
		if ! mkdir -p "$dir" 2>"$OUT"; then
			fail stage "$6" "mkdir -p $dir" "$(output)"
			return 1
		fi
		eval "MADE_$1=\$made"
	fi
	if [ -e "$new" ] || [ -L "$new" ]; then
		rm -f "$new"
	fi
	eval "STAGED_$1=1"
	# The new file takes its mode from the umask, so it is never readable by more.
	umask "$3"
	base64 -d >"$new" 2>"$OUT" <<LBCTL_CONTENT
$5
LBCTL_CONTENT
	status=$?
	umask 077
	if [ "$status" -ne 0 ]; then
		fail stage "$6" "write $new" "$(output)"
		return 1
	fi
	ok stage "$6"
}

# validate INDEX PATH UMASK CHECK CONTENT PATH64
validate() {
	if [ -z "$4" ]; then
		ok validate "$6" "$NO_CHECK64"
	elif run_cmd "$4"; then
		ok validate "$6"
	else
		fail validate "$6" "$4" "$(output)"
		return 1
	fi
}

# hold: with HOLD set, waits for lbctl's go-ahead; anything but "go" aborts.
hold() {
	[ -n "$HOLD" ] || return 0
	emit ready
	answer=
	IFS= read -r answer <&3
	[ "$answer" = go ] && return 0
	fail hold "" "" "lbctl did not go ahead: another host failed, or lbctl stopped"
	return 1
}

# backup INDEX PATH ...: the live file as it is now, for rollback and for the user.
backup() {
	eval "existed=\$EXISTED_$1"
	# shellcheck disable=SC2154 # assigned by the eval
	if [ "$existed" = 1 ]; then
		if ! cp -pP "$2" "$2.lbctl-prev" 2>"$OUT"; then
			fail backup "$6" "cp -pP $2 $2.lbctl-prev" "$(output)"
			return 1
		fi
		ok backup "$6"
	else
		if [ -e "$2.lbctl-prev" ] || [ -L "$2.lbctl-prev" ]; then
			rm -f "$2.lbctl-prev"
		fi
		ok backup "$6" "$WAS_ABSENT64"
	fi
}

swap() {
	if ! mv -f "$2.lbctl-new" "$2" 2>"$OUT"; then
		fail swap "$6" "mv -f $2.lbctl-new $2" "$(output)"
		return 1
	fi
	eval "SWAPPED_$1=1"
	ok swap "$6"
}

# reload NAME RELOAD NAME64
reload() {
	if run_cmd "$2"; then
		ok reload "$3"
	else
		fail reload "$3" "$2" "$(output)"
		return 1
	fi
}

# verify_once: sets PROBLEMS to what is not (yet) as it should be, empty when all is well.
verify_once() {
	PROBLEMS=
	if [ -n "$SOCKET" ]; then
		info=$(socat -t 1 - "UNIX-CONNECT:$SOCKET" 2>&1 <<LBCTL_SHOW_INFO
show info
LBCTL_SHOW_INFO
		)
		case $info in
		*Name:*) ;;
		*) PROBLEMS="${PROBLEMS}the HAProxy runtime socket $SOCKET did not answer \"show info\": ${info:-no answer}$NL" ;;
		esac
	fi
	if [ -n "$TCP_PORTS$UDP_PORTS" ]; then
		SOCKETS=$(ss -Hltun)
		for port in $TCP_PORTS; do
			listening tcp "$port" || PROBLEMS="${PROBLEMS}nothing listens on TCP port $port$NL"
		done
		for port in $UDP_PORTS; do
			listening udp "$port" || PROBLEMS="${PROBLEMS}nothing is bound to UDP port $port$NL"
		done
	fi
}

# listening PROTO PORT: whether $SOCKETS (ss -Hltun: netid, state, queues, local address,
# peer) has a PROTO socket whose local address ends in :PORT.
listening() {
	while read -r netid _ _ _ local _; do
		[ "$netid" = "$1" ] || continue
		case $local in
		*":$2") return 0 ;;
		esac
	done <<LBCTL_SOCKETS
$SOCKETS
LBCTL_SOCKETS
	return 1
}

# verify: reloads finish asynchronously, so look a few times over about three seconds.
verify() {
	[ -z "$SOCKET$TCP_PORTS$UDP_PORTS" ] && return 0
	attempt=1
	while :; do
		verify_once
		[ -z "$PROBLEMS" ] && break
		if [ "$attempt" -ge 6 ]; then
			fail verify "$VERIFY64" "show info via socat; ss -Hltun" "${PROBLEMS%"$NL"}"
			return 1
		fi
		attempt=$((attempt + 1))
		sleep 0.5
	done
	ok verify "$VERIFY64"
}

# restore INDEX PATH ...: the file as it was before this apply. Only what this apply
# staged or swapped is touched: another apply's staged files are not ours to remove.
restore() {
	eval "staged=\${STAGED_$1:-}"
	# shellcheck disable=SC2154 # assigned by the eval
	[ "$staged" = 1 ] && rm -f "$2.lbctl-new"
	eval "swapped=\${SWAPPED_$1:-}"
	eval "existed=\${EXISTED_$1:-}"
	# shellcheck disable=SC2154 # assigned by the eval
	[ "$swapped" = 1 ] || return 0
	if [ "$existed" = 1 ]; then
		if mv -f "$2.lbctl-prev" "$2" 2>"$OUT"; then
			ok rollback "$(enc "restored $2")"
		else
			ROLLBACK_OK=0
			emit "step rollback failed $(enc "cannot restore $2: $(output)")"
		fi
	elif rm -f "$2" 2>"$OUT"; then
		ok rollback "$(enc "removed $2, which did not exist before")"
	else
		ROLLBACK_OK=0
		emit "step rollback failed $(enc "cannot remove $2: $(output)")"
	fi
	return 0
}

# forget_dirs INDEX PATH ...: removes again the directories staging created, if empty.
forget_dirs() {
	eval "made=\${MADE_$1:-}"
	[ -n "$made" ] || return 0
	parent "$2"
	while rmdir "$dir" 2>/dev/null && [ "$dir" != "$made" ]; do
		parent "$dir"
	done
	return 0
}

rollback_reload() {
	if run_cmd "$2"; then
		ok rollback "$(enc "reloaded $1")"
	else
		emit "step rollback failed $(enc "reloading $1 failed: $2: $(output)")"
	fi
	return 0
}

finish() {
	[ -n "$OUT" ] && : >"$OUT"
	emit "end apply $1"
	# An explicit status: a bare exit in a trap action would repeat the status from
	# before the signal.
	if [ "$1" = ok ]; then
		exit 0
	fi
	exit 1
}

# abort: leaves the host as it was and ends the script. Nothing interrupts it once begun.
abort() {
	trap '' HUP INT TERM PIPE
	ABORTING=1
	if [ -n "$OUT" ]; then
		files restore
		if [ "$PHASE" = after-swap ]; then
			services rollback_reload
		fi
		files forget_dirs
		if [ "$PHASE" = after-swap ] && [ "$ROLLBACK_OK" = 1 ]; then
			emit rolled-back
		fi
	fi
	finish failed
}

# The SSH connection died (a failed write, SIGPIPE or SIGHUP) or lbctl was told to stop.
interrupted() {
	# shellcheck disable=SC2034 # read by emit, in common.sh (sent ahead of this script)
	[ "$1" = "the connection to lbctl was lost" ] && LBCTL_LOST=1
	[ -n "$ABORTING" ] && return 0
	fail "$STEP" "" "" "interrupted: $1"
	abort
}

connection_lost() {
	interrupted "the connection to lbctl was lost"
}

main() {
	trap connection_lost HUP PIPE
	trap 'interrupted "terminated by a signal"' INT TERM
	umask 077
	NL='
'
	emit "begin apply 1"
	preflight || abort
	STEP=lock
	take_lock || abort
	# Nothing to change: nothing is reloaded, so there is nothing new to verify either.
	[ "$CHANGES" -eq 0 ] && finish ok
	STEP=stage
	files stage || abort
	STEP=validate
	files validate || abort
	STEP=hold
	hold || abort
	STEP=backup
	files backup || abort
	STEP=swap
	PHASE=after-swap
	files swap || abort
	STEP=reload
	services reload || abort
	STEP=verify
	verify || abort
	finish ok
}
