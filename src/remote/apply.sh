# lbctl apply: change a load balancer's files atomically, in one round trip.
#
# lock, stage next to the live file, validate the staged file with the service's own check,
# keep the previous file, swap by rename, reload, verify; on any failure after the swap,
# put every previous file back and reload again. Nothing here prints a file's content.
#
# The generated header defines LOCK, SOCKET (empty when not verified), TCP_PORTS and
# UDP_PORTS (space-separated, possibly empty), COMMAND_TIMEOUT (seconds), CHANGES (how
# many files change) and two lists:
# files() calls "$@" INDEX PATH MODE CHECK CONTENT once per changed file (CHECK is a shell
# command, empty when there is none; CONTENT is base64), and services() calls
# "$@" NAME RELOAD once per service with a changed file.

STEP=preflight
PHASE=before-swap
ABORTING=
WORK=
ROLLBACK_OK=1

# fail STEP DETAIL COMMAND MESSAGE: the failure that stops this apply.
fail() {
	emit "step $1 failed $(enc "$2")"
	emit "failure $1 $(enc "$3") $(enc "$4")"
}

ok() {
	emit "step $1 ok $(enc "$2")"
}

# run_cmd COMMAND: runs a user-supplied command, its stdout and stderr in $WORK/out. The
# lock's descriptor is closed for it, so that a daemon it starts cannot keep the lock.
run_cmd() {
	if command -v timeout >/dev/null 2>&1; then
		timeout "$COMMAND_TIMEOUT" sh -c "$1" </dev/null >"$WORK/out" 2>&1 9>&-
	else
		sh -c "$1" </dev/null >"$WORK/out" 2>&1 9>&-
	fi
	status=$?
	if [ "$status" -eq 124 ]; then
		printf '(timed out after %s seconds)\n' "$COMMAND_TIMEOUT" >>"$WORK/out"
	elif [ "$status" -ne 0 ] && [ ! -s "$WORK/out" ]; then
		printf '(exit status %s, no output)\n' "$status" >"$WORK/out"
	fi
	return "$status"
}

output() {
	cat "$WORK/out"
}

preflight() {
	missing=
	need() {
		command -v "$1" >/dev/null 2>&1 || missing="$missing
$1 is not installed on the host; lbctl needs it $2"
	}
	need base64 "to receive files"
	need flock "to keep two applies from running at once"
	need mktemp "for its scratch directory"
	[ -n "$SOCKET" ] && need socat "to query the HAProxy runtime socket $SOCKET"
	[ -n "$TCP_PORTS$UDP_PORTS" ] && need ss "(iproute2) to see which ports are listening"
	if [ -n "$missing" ]; then
		fail preflight "" "command -v" "${missing#?}"
		return 1
	fi
	if ! WORK=$(mktemp -d "${TMPDIR:-/tmp}/lbctl.XXXXXX" 2>&1); then
		fail preflight "" "mktemp -d" "$WORK"
		WORK=
		return 1
	fi
	ok preflight ""
}

take_lock() {
	if ! (: >>"$LOCK") 2>"$WORK/out"; then
		fail lock "$LOCK" ": >>$LOCK" "cannot open the apply lock: $(output)"
		return 1
	fi
	command exec 9>>"$LOCK"
	if ! flock -n 9; then
		holder=$(lock_holder "$LOCK")
		case $holder in
		'' | -) holder= ;;
		*) holder=" (pid $holder)" ;;
		esac
		fail lock "$LOCK" "flock -n $LOCK" "another lbctl apply$holder is running on this host and holds $LOCK; try again when it has finished"
		return 1
	fi
	printf '%s\n' "$$" >"$LOCK"
	ok lock "$LOCK"
}

# stage INDEX PATH MODE CHECK CONTENT
stage() {
	new="$2.lbctl-new"
	if [ -e "$2" ] || [ -L "$2" ]; then
		eval "EXISTED_$1=1"
	else
		eval "EXISTED_$1=0"
	fi
	dir=$(dirname "$2")
	made=
	while [ ! -d "$dir" ]; do
		made=$dir
		dir=$(dirname "$dir")
	done
	if [ -n "$made" ]; then
		if ! mkdir -p "$(dirname "$2")" 2>"$WORK/out"; then
			fail stage "$2" "mkdir -p $(dirname "$2")" "$(output)"
			return 1
		fi
		eval "MADE_$1=\$made"
	fi
	rm -f "$new"
	eval "STAGED_$1=1"
	if ! (umask 077 && printf '%s' "$5" | base64 -d >"$new") 2>"$WORK/out" ||
		! chmod "$3" "$new" 2>>"$WORK/out"; then
		fail stage "$2" "write $new" "$(output)"
		return 1
	fi
	ok stage "$2"
}

# validate INDEX PATH MODE CHECK CONTENT
validate() {
	if [ -z "$4" ]; then
		ok validate "$2 (no check command)"
	elif run_cmd "$4"; then
		ok validate "$2"
	else
		fail validate "$2" "$4" "$(output)"
		return 1
	fi
}

# backup INDEX PATH ...: the live file as it is now, for rollback and for the user.
backup() {
	eval "existed=\$EXISTED_$1"
	if [ "$existed" = 1 ]; then
		if ! cp -pP "$2" "$2.lbctl-prev" 2>"$WORK/out"; then
			fail backup "$2" "cp -pP $2 $2.lbctl-prev" "$(output)"
			return 1
		fi
		ok backup "$2"
	else
		rm -f "$2.lbctl-prev"
		ok backup "$2 (did not exist)"
	fi
}

swap() {
	if ! mv -f "$2.lbctl-new" "$2" 2>"$WORK/out"; then
		fail swap "$2" "mv -f $2.lbctl-new $2" "$(output)"
		return 1
	fi
	eval "SWAPPED_$1=1"
	ok swap "$2"
}

# reload NAME RELOAD
reload() {
	if run_cmd "$2"; then
		ok reload "$1"
	else
		fail reload "$1" "$2" "$(output)"
		return 1
	fi
}

# verify_once: prints what is not (yet) as it should be, nothing when all is well.
verify_once() {
	if [ -n "$SOCKET" ]; then
		info=$(printf 'show info\n' | socat -t 1 - "UNIX-CONNECT:$SOCKET" 2>&1)
		case $info in
		*Name:*) ;;
		*) printf 'the HAProxy runtime socket %s did not answer "show info": %s\n' "$SOCKET" "${info:-no answer}" ;;
		esac
	fi
	if [ -n "$TCP_PORTS" ]; then
		listening=$(ss -Hltn | awk '{ sub(".*:", "", $4); print $4 }')
		for port in $TCP_PORTS; do
			printf '%s\n' "$listening" | grep -qx "$port" || printf 'nothing listens on TCP port %s\n' "$port"
		done
	fi
	if [ -n "$UDP_PORTS" ]; then
		bound=$(ss -Hlun | awk '{ sub(".*:", "", $4); print $4 }')
		for port in $UDP_PORTS; do
			printf '%s\n' "$bound" | grep -qx "$port" || printf 'nothing is bound to UDP port %s\n' "$port"
		done
	fi
}

# verify: reloads finish asynchronously, so look a few times over about three seconds.
verify() {
	[ -z "$SOCKET$TCP_PORTS$UDP_PORTS" ] && return 0
	what=
	[ -n "$SOCKET" ] && what="runtime socket $SOCKET"
	[ -n "$TCP_PORTS" ] && what="$what${what:+, }tcp $TCP_PORTS"
	[ -n "$UDP_PORTS" ] && what="$what${what:+, }udp $UDP_PORTS"
	attempt=1
	while :; do
		problems=$(verify_once)
		[ -z "$problems" ] && break
		if [ "$attempt" -ge 6 ]; then
			fail verify "$what" "show info via socat; ss -Hltn; ss -Hlun" "$problems"
			return 1
		fi
		attempt=$((attempt + 1))
		sleep 0.5
	done
	ok verify "$what"
}

# restore INDEX PATH ...: the file as it was before this apply. Only what this apply
# staged or swapped is touched: another apply's staged files are not ours to remove.
restore() {
	eval "staged=\${STAGED_$1:-}"
	[ "$staged" = 1 ] && rm -f "$2.lbctl-new"
	eval "swapped=\${SWAPPED_$1:-}"
	eval "existed=\${EXISTED_$1:-}"
	[ "$swapped" = 1 ] || return 0
	if [ "$existed" = 1 ]; then
		if mv -f "$2.lbctl-prev" "$2" 2>"$WORK/out"; then
			ok rollback "restored $2"
		else
			ROLLBACK_OK=0
			emit "step rollback failed $(enc "cannot restore $2: $(output)")"
		fi
	elif rm -f "$2" 2>"$WORK/out"; then
		ok rollback "removed $2, which did not exist before"
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
	dir=$(dirname "$2")
	while rmdir "$dir" 2>/dev/null && [ "$dir" != "$made" ]; do
		dir=$(dirname "$dir")
	done
	return 0
}

rollback_reload() {
	if run_cmd "$2"; then
		ok rollback "reloaded $1"
	else
		emit "step rollback failed $(enc "reloading $1 failed: $2: $(output)")"
	fi
	return 0
}

finish() {
	[ -n "$WORK" ] && rm -rf "$WORK"
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
	if [ -n "$WORK" ]; then
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
