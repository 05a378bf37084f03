# lbctl apply: change a load balancer's files atomically, in one round trip.
#
# lock, stage next to the live file, validate the staged file with the service's own check,
# keep the previous file, swap by rename, reload, verify; on any failure after the swap,
# put every previous file back and reload again. Nothing here prints a file's content.
#
# With HOLD set, the script stops once every file is staged and validated, says "ready",
# and goes on to the swap only when lbctl answers "go" on fd 3 (the SSH channel's stdin);
# anything else, or the connection closing, aborts with the host unchanged. lbctl uses it
# to check every host before it changes any. While it waits, it says so every few seconds
# ("@@lbctl waiting", see beat_begin), so that a connection lost meanwhile ends it.
#
# Every process started costs milliseconds, so the happy path starts only those that do
# the work (flock, base64, dd, one sha256sum, the checks, ln, mv, the reloads, socat, one
# ss): the details of its frames come already encoded from lbctl, and the rest is shell
# builtins, HAProxy's answers included (read by the shell, not by sed).
#
# Files are never reached through a symbolic link this script did not create, even where
# the service's user may write into the directory: each file operation first enters the
# file's directory one component at a time with `cd -P`, checking that the physical path is
# the one asked for (a link anywhere on the way is refused), then works on bare names there,
# so a directory renamed meanwhile cannot send it elsewhere. The staged file is created with
# O_CREAT|O_EXCL (`dd conv=excl`), which fails on anything already there, a link included;
# the previous file is kept as a hard link to the live one (`ln -f`, which never follows a
# link at its target name either: it links under a temporary name and renames that over it); swaps and restores are renames (`mv -T`), which replace a name
# rather than write through it. A live file that is itself a symbolic link is refused.
#
# The generated header defines INVENTORY_NAME (the host's name in lbctl's inventory, for
# what the script tells the user), LOCK, SOCKET (empty when not verified), MASTER (HAProxy's
# master CLI socket, empty when unknown: see fresh), TCP_PORTS and UDP_PORTS
# (space-separated, possibly empty), DAEMONS (how many daemons pid_files lists),
# COMMAND_TIMEOUT (seconds), CHANGES (how many files change), HOLD (empty or 1), SPECULATIVE
# (empty or 1, see below), the base64
# details LOCK64, VERIFY64, NO_CHECK64 and WAS_ABSENT64, and three lists:
# files() calls "$@" INDEX PATH UMASK CHECK CONTENT PATH64 SHA256 EXEC once per changed file
# (UMASK gives the new file its mode, EXEC is x for a program, made 0755; CHECK is a shell
# command, empty when there is none; CONTENT and PATH64 are base64; SHA256 is the content's
# digest), services() calls "$@" NAME RELOAD NAME64 WHAT PIDFILE START STOP DAEMON PATH...
# once per service with a changed file (WHAT and PIDFILE name the daemon its reload needs
# running, both empty when the reload needs none: see alive; START and STOP start and stop
# its daemon, whose pid file is DAEMON, where this apply installs it: see installing, all
# three empty when lbctl never starts it; the PATHs are the service's changed files), and
# pid_files() calls "$@" WHAT PATH once per daemon that must run after the reloads.
#
# SPECULATIVE: the script was sent along with the fetch, before lbctl knew which files change
# (remote::fetch_then), and lists every managed file; the fetch named those that already hold
# what lbctl would write in LBCTL_MATCHED (a PATH64 per line), and files() and services() leave
# them (and a service all of whose files are among them) out: their lines start with a
# `matched PATH64` test. CHANGES then counts what is left; when nothing is, the script ends
# before it takes the lock.
#
# The admin state (drain, maint, weights) lasts across the apply. The header also defines
# STATE_FILE and HAPROXY_CONFIG: HAProxy's state is saved into its server-state-file right
# before every HAProxy reload (the rollback's too; the apply's own is begun at the go-ahead,
# beside the swap: see begin_saving), for the new process to start from;
# PEERS_SECTION (1 unless the configuration HAProxy is reloaded with has no peers section:
# see resynced);
# RECORD (lbctl's record on the host), RECORD64 (what it holds after the apply, or -: left
# alone) and ADMIN64 (";"-separated runtime API commands, or -): after the verify, the record
# is written and the commands put HAProxy's admin state back where a reload could not carry
# it (a server whose address or port changed). A nginx stream file comes with its servers
# already marked as lbctl's record asks (`down`, `weight=N`: see templates/nginx-marks.sh).

STEP=preflight
OLD_PID=
FRESH_INFO=
OLD_FAILED=
REFUSED=
TAUGHT=
SAVING=
RESYNCING=
HAPROXY_STAGED=
LISTING=
PHASE=before-swap
ABORTING=
OUT=
ROLLBACK_OK=1
STAGED_SUMS=
STARTING=
STARTED=

# matched PATH64: the fetch before a speculative script found that file holding what lbctl
# would write.
matched() {
	case "$NL$LBCTL_MATCHED$NL" in
	*"$NL$1$NL"*) return 0 ;;
	esac
	return 1
}

counted() {
	CHANGES=$((CHANGES + 1))
}

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
	need dd "(coreutils) to create files without following links"
	need sha256sum "(coreutils) to check what it received"
	need flock "to keep two applies from running at once"
	[ -n "$SOCKET" ] && need socat "to query the HAProxy runtime socket $SOCKET"
	[ -n "$TCP_PORTS$UDP_PORTS" ] && need ss "(iproute2) to see which ports are listening"
	need awk "to keep servers' state across the reload"
	if [ -n "$missing" ]; then
		fail preflight "" "command -v" "${missing#?}"
		return 1
	fi
	services alive || return 1
	services installing
	TIMEOUT=
	command -v timeout >/dev/null 2>&1 && TIMEOUT=1
	ok preflight
}

# alive NAME RELOAD NAME64 WHAT PIDFILE PATH...: the daemon WHAT, whose reload acts on its
# running process (systemd's reload, HAProxy's master CLI), runs: PIDFILE names a live
# process (running, as verify asks). Asked here, while every host is still being checked:
# found only at the reload, in the one-host-at-a-time part, the hosts before this one would
# have changed already. Not asked when the reload needs no running process (no PIDFILE), nor
# when none of the service's files exists yet: lbctl is installing it.
alive() {
	[ -n "$5" ] || return 0
	what=$4
	pidfile=$5
	service=$1
	how=$2
	shift 8
	any_exists "$@" || return 0
	PROBLEMS=
	running "$what" "$pidfile"
	[ -n "$PROBLEMS" ] || return 0
	fail preflight "" "kill -0 \$(cat $pidfile)" "${PROBLEMS%"$NL"}, and reloading it (\`$how\`) needs it running: start it (e.g. \`systemctl start $service\`) and apply again, or leave this host out with \`--limit 'all:!$INVENTORY_NAME'\`"
	return 1
}

# installing NAME RELOAD NAME64 WHAT PIDFILE START STOP DAEMON PATH...: adds NAME to STARTING
# when this apply installs the service (none of its files exists yet) and its daemon, which
# lbctl knows how to start (START), does not run, as on a fresh host: Debian's keepalived does
# not start without a configuration, and reloading a daemon that does not run fails. Such a
# service is started after the swap rather than reloaded (reload), verified to run
# (verify_once), and stopped again by a rollback (rollback_reload).
installing() {
	[ -n "$6" ] || return 0
	service=$1
	pidfile=$8
	shift 8
	any_exists "$@" && return 0
	# read once: no reload of lbctl's restarts a service it has not installed
	read_pid_now "$pidfile"
	pid_alive || STARTING="$STARTING $service "
	return 0
}

# any_exists PATH...: whether any of the PATHs exists (a dangling link included).
any_exists() {
	for path in "$@"; do
		if [ -e "$path" ] || [ -L "$path" ]; then
			return 0
		fi
	done
	return 1
}

# among NAME LIST: whether NAME is a word of LIST.
among() {
	case " $2 " in
	*" $1 "*) return 0 ;;
	esac
	return 1
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

# at PATH [create]: enters PATH's directory and sets name to the file's name there. The
# directory is entered from / one component at a time, each checked to be the directory
# asked for and not a link to one elsewhere; with "create", missing directories are made
# on the way and the first one made is recorded in made. Fails (with the reason in $OUT)
# when a component is a link or not a directory.
at() {
	name=${1##*/}
	parent "$1"
	rest=${dir#/}
	cd / || return 1
	here=
	while [ -n "$rest" ]; do
		part=${rest%%/*}
		case $rest in
		*/*) rest=${rest#*/} ;;
		*) rest= ;;
		esac
		here="$here/$part"
		if [ -L "$part" ]; then
			printf '%s is a symbolic link; lbctl does not write through links it did not create\n' "$here" >"$OUT"
			return 1
		fi
		# Directories readable by all, as /etc's are: the files' own modes guard them, and
		# daemons running as their own user (HAProxy's checks) must reach theirs.
		if [ "$2" = create ] && [ ! -e "$part" ]; then
			(umask 022 && mkdir -- "$part") 2>"$OUT" || return 1
			[ -n "$made" ] || made=$here
		fi
		if ! cd -P -- "$part" 2>"$OUT"; then
			return 1
		fi
		if [ "$PWD" != "$here" ]; then
			printf '%s resolves to %s; lbctl does not write through links it did not create\n' "$here" "$PWD" >"$OUT"
			return 1
		fi
	done
}

# home: back to where the script started, for the commands it runs.
home() {
	cd -- "$START" 2>/dev/null || cd /
}

# stage INDEX PATH UMASK CHECK CONTENT PATH64 SHA256 EXEC
stage() {
	made=
	if ! at "$2" create; then
		[ -n "$made" ] && eval "MADE_$1=\$made"
		fail stage "$6" "enter the directory of $2" "$(output)"
		home
		return 1
	fi
	[ -n "$made" ] && eval "MADE_$1=\$made"
	if [ -L "$name" ]; then
		fail stage "$6" "test -L $2" "$2 is a symbolic link lbctl did not create: replace it with the file itself, or point the path setting at the real file"
		home
		return 1
	fi
	if [ -e "$name" ]; then
		if [ ! -f "$name" ]; then
			fail stage "$6" "test -f $2" "$2 exists and is not a regular file"
			home
			return 1
		fi
		eval "EXISTED_$1=1"
	else
		eval "EXISTED_$1=0"
	fi
	# A leftover (or planted) staging name is removed, never written through.
	if [ -e "$name.lbctl-new" ] || [ -L "$name.lbctl-new" ]; then
		rm -f -- "$name.lbctl-new"
	fi
	eval "STAGED_$1=1"
	[ "$2" != "$HAPROXY_CONFIG" ] || HAPROXY_STAGED=1
	# The new file takes its mode from the umask, so it is never readable by more; dd
	# creates it exclusively: if anything took the name meanwhile, nothing is written.
	umask "$3"
	base64 -d <<LBCTL_CONTENT | dd of="$name.lbctl-new" conv=excl status=none 2>"$OUT"
$5
LBCTL_CONTENT
	status=$?
	umask 077
	if [ "$status" -eq 0 ] && [ "$8" = x ]; then
		chmod 755 "$name.lbctl-new" 2>"$OUT" || status=$?
	fi
	home
	if [ "$status" -ne 0 ]; then
		fail stage "$6" "write $2.lbctl-new" "$(output)"
		return 1
	fi
	STAGED_SUMS="$STAGED_SUMS$7  $2.lbctl-new$NL"
	ok stage "$6"
}

# check_staged: every staged file holds exactly what lbctl sent (one sha256sum for all).
check_staged() {
	if ! printf '%s' "$STAGED_SUMS" | sha256sum -c --quiet >"$OUT" 2>&1; then
		fail stage "" "sha256sum -c" "a staged file is not what lbctl sent: $(output)"
		return 1
	fi
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

# haproxy_reloads NAME ...: sets RELOADS_HAPROXY when NAME is haproxy (called by services).
haproxy_reloads() {
	[ "$1" = haproxy ] && RELOADS_HAPROXY=1
	return 0
}

# resynced: before an HAProxy reload, its stick tables (sticky backends, rate limits) pass to
# the new process only from an old one that has finished its own resync: reloaded earlier, it
# teaches nothing and the entries are lost on this host. A process that could not learn from
# its predecessor (the previous configuration had no peers, or was itself reloaded too early)
# takes up to twice 5 s to give up waiting; any other is done within milliseconds of its
# start. Waited for (at most 12 s) before the go-ahead, on every host at once, so that the
# rollout's one-host-at-a-time part does not ask; sets TAUGHT when the process has peers.
# Only a new process with a peers section of its own learns anything: without one
# (PEERS_SECTION empty), there is nothing to wait for and HAProxy is not asked. Run by
# resync_begin, where HAProxy reloads and has a runtime socket.
resynced() {
	# The process that answers now, which verify waits to see replaced, and how many reloads
	# HAProxy's master has refused so far (see fresh): asked here, on every host at once, rather
	# than in the one-host-at-a-time part. Where the master CLI is there, one request to it
	# gives both (`@1` passes a command to its worker).
	if master_cli; then
		answer=$(socat -t 2 - "UNIX-CONNECT:$MASTER" 2>/dev/null <<LBCTL_SHOW_PROC
show proc; @1 show info
LBCTL_SHOW_PROC
		)
		failed_count "$answer"
		OLD_FAILED=$COUNT
		case $answer in
		*"${NL}Pid: "*)
			OLD_PID=${answer#*"${NL}Pid: "}
			OLD_PID=${OLD_PID%%"$NL"*}
			;;
		esac
	fi
	case $OLD_PID in
	'' | *[!0-9]*)
		answering
		OLD_PID=$ANSWERING_PID
		;;
	esac
	[ -n "$PEERS_SECTION" ] || return 0
	wait_peers 3 120 || :
	TAUGHT=$PEERS
}

# resync_begin: resynced, in the background while the staged files are checked (haproxy -c
# takes 15 to 30 ms, and resynced, a few socat, about 10 more), its answers written to
# $OUT.resynced, next to the lock. RESYNCING is the job's pid. The job keeps neither the
# lock, nor lbctl's channel, nor this script's traps and output.
resync_begin() {
	RESYNCING=
	RELOADS_HAPROXY=
	services haproxy_reloads
	[ -n "$RELOADS_HAPROXY" ] && [ -n "$SOCKET" ] || return 0
	{
		trap - HUP INT TERM PIPE
		resynced
		printf '%s\n%s\n%s\n' "$OLD_PID" "$OLD_FAILED" "$TAUGHT" >"$OUT.resynced"
	} </dev/null >/dev/null 2>&1 9>&- 3<&- &
	RESYNCING=$!
}

# resync_end: resync_begin's answers (none when the job could not write them).
resync_end() {
	[ -n "$RESYNCING" ] || return 0
	wait "$RESYNCING"
	RESYNCING=
	[ -f "$OUT.resynced" ] && [ ! -L "$OUT.resynced" ] || return 0
	{
		IFS= read -r OLD_PID
		IFS= read -r OLD_FAILED
		IFS= read -r TAUGHT
	} <"$OUT.resynced"
	: >"$OUT.resynced"
}

# resync_stop: the job stopped, for an apply that ends before its go-ahead.
resync_stop() {
	[ -n "$RESYNCING" ] || return 0
	kill "$RESYNCING" 2>/dev/null
	wait "$RESYNCING"
	RESYNCING=
}

# hold: with HOLD set, waits for lbctl's go-ahead; anything but "go" aborts, the input's end
# too: lbctl stopped, or its connection is gone, which the keep-alives written meanwhile make
# sshd notice (see beat_begin).
hold() {
	[ -n "$HOLD" ] || return 0
	emit ready
	beat_begin
	answer=
	IFS= read -r answer <&3
	beat_stop
	[ "$answer" = go ] && return 0
	fail hold "" "" "lbctl did not go ahead: another host failed, or lbctl stopped"
	return 1
}

# backup INDEX PATH ...: the live file as it is now, for rollback and for the user: a
# second name for it (a hard link), made where nothing is, never through a link.
backup() {
	eval "existed=\$EXISTED_$1"
	if ! at "$2"; then
		fail backup "$6" "enter the directory of $2" "$(output)"
		home
		return 1
	fi
	# shellcheck disable=SC2154 # assigned by the eval
	if [ "$existed" = 1 ]; then
		# -f replaces the previous apply's backup (a link there included: the new link
		# is made under a temporary name and renamed over it, never written through).
		if ! ln -f -P -T -- "$name" "$name.lbctl-prev" 2>"$OUT"; then
			home
			fail backup "$6" "ln -f -P -T $2 $2.lbctl-prev" "$(output)"
			return 1
		fi
		home
		ok backup "$6"
	else
		if [ -e "$name.lbctl-prev" ] || [ -L "$name.lbctl-prev" ]; then
			rm -f -- "$name.lbctl-prev"
		fi
		home
		ok backup "$6" "$WAS_ABSENT64"
	fi
}

swap() {
	if ! at "$2" || ! mv -f -T -- "$name.lbctl-new" "$name" 2>"$OUT"; then
		home
		fail swap "$6" "mv -f -T $2.lbctl-new $2" "$(output)"
		return 1
	fi
	home
	eval "SWAPPED_$1=1"
	ok swap "$6"
}

# save_state NAME: before HAProxy reloads, its servers' state, for the new process: the
# saving begun before the swap (begin_saving) finished, when there is one, else all of it now.
save_state() {
	[ "$1" = haproxy ] && [ -n "$STATE_FILE" ] && [ -n "$SOCKET" ] || return 0
	if [ -n "$SAVING" ]; then
		wait "$SAVING"
		SAVING=
		server_state_end "$STATE_FILE" || :
		return 0
	fi
	save_server_state "$SOCKET" "$STATE_FILE" "$HAPROXY_CONFIG" || :
}

# begin_saving: right after the go-ahead, save_state's slow half (HAProxy's answer, filtered
# for the configuration about to be loaded) begun in the background, so that the backup and
# the swap cost the rollout no time of their own. That configuration is read through fd 8,
# opened on the staged file before the swap renames it. SAVING is the job's pid.
begin_saving() {
	SAVING=
	[ -n "$RELOADS_HAPROXY" ] && [ -n "$STATE_FILE" ] && [ -n "$SOCKET" ] || return 0
	config=$HAPROXY_CONFIG
	[ -z "$HAPROXY_STAGED" ] || config=$config.lbctl-new
	{
		server_state_begin "$SOCKET" "$STATE_FILE" /dev/fd/8 9>&- 3<&- &
		SAVING=$!
	} 8<"$config" 2>/dev/null
	return 0
}

# forget_saving: a saving begun for a reload that does not come (the apply stopped before
# it): waited for, and its file removed. A rollback saves the state for the configuration it
# puts back.
forget_saving() {
	[ -n "$SAVING" ] || return 0
	wait "$SAVING"
	SAVING=
	rm -f "$STATE_FILE.lbctl-new"
}

# answering: asks the HAProxy process answering on the admin socket for `show info`: sets
# HAPROXY_INFO to its answer and ANSWERING_PID to its pid (both empty when none answers). One
# process, socat; the shell reads the pid out of the answer.
answering() {
	HAPROXY_INFO=$(socat -t 2 - "UNIX-CONNECT:$SOCKET" 2>/dev/null <<LBCTL_SHOW_INFO
show info
LBCTL_SHOW_INFO
	)
	ANSWERING_PID=
	case $HAPROXY_INFO in
	*"${NL}Pid: "*)
		ANSWERING_PID=${HAPROXY_INFO#*"${NL}Pid: "}
		ANSWERING_PID=${ANSWERING_PID%%"$NL"*}
		;;
	esac
}

# still_old: whether the process answering on the admin socket now is OLD_PID's (see
# answering).
still_old() {
	answering
	[ "$ANSWERING_PID" = "$OLD_PID" ]
}

# master_cli: whether HAProxy's master CLI socket MASTER is there to ask (a socket, not a
# link).
master_cli() {
	[ -n "$MASTER" ] && [ -S "$MASTER" ] && [ ! -L "$MASTER" ]
}

# failed_count ANSWER: sets COUNT to how many reloads HAProxy's master has refused since its
# last good one, from its CLI's `show proc` (the master's row: "PID master RELOADS [failed: N]
# UPTIME VERSION", HAProxy 2.5 and later); empty when ANSWER has no such count.
failed_count() {
	COUNT=
	case $1 in
	*" master "*"[failed: "*)
		COUNT=${1#*"[failed: "}
		COUNT=${COUNT%%"]"*}
		case $COUNT in
		'' | *[!0-9]*) COUNT= ;;
		esac
		;;
	esac
}

# peers_done MASK: whether every peers section of the HAProxy answering on the admin socket
# has the resync flags MASK set (`show peers`, a section's line: "0x...: [date] id=NAME ...
# flags=0x..."): 1 once it has learned from the process it replaced, 2 once from the other
# peers (or neither is needed any more, or timed out after 5 s each). Sets PEERS when the
# process has any peers section. No answer or no section: nothing to wait for.
peers_done() {
	PEERS=
	answer=$(printf 'show peers\n' | socat -t 2 - "UNIX-CONNECT:$SOCKET" 2>/dev/null) || return 0
	case $answer in
	*flags=*) ;;
	*) return 0 ;;
	esac
	for flags in $(printf '%s\n' "$answer" | sed -n 's/^0x[0-9a-f]*: \[.*\] id=.* flags=\(0x[0-9a-fA-F]*\) .*/\1/p'); do
		PEERS=1
		[ $((flags & $1)) -eq "$1" ] || return 1
	done
	return 0
}

# wait_peers MASK TENTHS: waits, at most TENTHS tenths of a second, for peers_done MASK.
wait_peers() {
	tries=0
	until peers_done "$1"; do
		[ "$tries" -lt "$2" ] || return 1
		sleep 0.1
		tries=$((tries + 1))
	done
}

# reload NAME RELOAD NAME64
reload() {
	save_state "$1"
	if [ "$1" = haproxy ] && [ -n "$SOCKET" ]; then
		# The process answering now has stick tables (see resynced): it is asked again, in
		# case it is not the one asked before the go-ahead.
		if [ -n "$TAUGHT" ]; then
			wait_peers 3 120 || :
			TAUGHT=$PEERS
		fi
		# keep_admin and tables_taught must talk to the new process: note the one answering
		# now, in case it is not the one asked before the go-ahead
		if [ -n "$TAUGHT" ] || [ "$ADMIN64" != - ]; then
			answering
			OLD_PID=$ANSWERING_PID
		fi
	fi
	if among "$1" "$STARTING"; then
		# installed by this apply, and not running: started, not reloaded (see installing)
		if run_cmd "$6"; then
			STARTED="$STARTED $1 "
			ok reload "$3" "$STARTED64"
		else
			fail reload "$3" "$6" "$(output)"
			return 1
		fi
	elif run_cmd "$2"; then
		ok reload "$3"
	else
		fail reload "$3" "$2" "$(output)"
		return 1
	fi
}

# started_running NAME RELOAD NAME64 WHAT PIDFILE START STOP DAEMON ...: adds to PROBLEMS
# unless the daemon that this apply started for NAME runs.
started_running() {
	among "$1" "$STARTED" || return 0
	running "$1" "$8"
}

# list_sockets: starts listing the listening sockets (ss, into $OUT.sockets, next to the
# lock) in the background; LISTING is its pid.
list_sockets() {
	ss -Hltun >"$OUT.sockets" 2>&1 </dev/null 9>&- 3<&- &
	LISTING=$!
}

# verify_once: sets PROBLEMS to what is not (yet) as it should be, empty when all is well.
# The listening sockets are listed while the runtime socket is asked: two processes at once,
# not one after the other. Right after fresh, the runtime socket's answer is the one fresh got
# (FRESH_INFO), and the listing is the one verify started as fresh began, when it did (see
# verify), else ss runs alone.
verify_once() {
	PROBLEMS=
	listing=
	if [ -n "$TCP_PORTS$UDP_PORTS" ]; then
		[ -n "$LISTING" ] || list_sockets
		listing=$LISTING
		LISTING=
	fi
	if [ -n "$SOCKET" ]; then
		if [ -n "$FRESH_INFO" ]; then
			# what HAProxy said a moment ago, at the end of fresh's wait
			info=$FRESH_INFO
			FRESH_INFO=
		else
			info=$(socat -t 1 - "UNIX-CONNECT:$SOCKET" 2>&1 <<LBCTL_SHOW_INFO
show info
LBCTL_SHOW_INFO
			)
		fi
		case $info in
		*"${NL}Pid: $OLD_PID$NL"*)
			# the old process still takes connections, with the old configuration
			[ -z "$OLD_PID" ] || PROBLEMS="${PROBLEMS}HAProxy still answers from its process before the reload (pid $OLD_PID): the new configuration does not run (did HAProxy's master refuse it? its log says why)$NL"
			;;
		*Name:*) ;;
		*) PROBLEMS="${PROBLEMS}the HAProxy runtime socket $SOCKET did not answer \"show info\": ${info:-no answer}$NL" ;;
		esac
	fi
	if [ -n "$listing" ]; then
		wait "$listing"
		for port in $TCP_PORTS; do
			listening tcp "$port" || PROBLEMS="${PROBLEMS}nothing listens on TCP port $port$NL"
		done
		for port in $UDP_PORTS; do
			listening udp "$port" || PROBLEMS="${PROBLEMS}nothing is bound to UDP port $port$NL"
		done
	fi
	pid_files running
	[ -z "$STARTED" ] || services started_running
}

# running WHAT PATH: adds to PROBLEMS unless PATH names a live process.
running() {
	read_pid "$2"
	pid_alive
	# shellcheck disable=SC2154 # set by read_pid (common.sh)
	case $? in
	0) ;;
	1) PROBLEMS="${PROBLEMS}$1 is not running: pid $pid in $2 is gone$NL" ;;
	*) PROBLEMS="${PROBLEMS}$1 is not running: no pid in $2$NL" ;;
	esac
	return 0
}

# listening PROTO PORT: whether $OUT.sockets (ss -Hltun: netid, state, queues, local
# address, peer) has a PROTO socket whose local address ends in :PORT.
listening() {
	while read -r netid _ _ _ local _; do
		[ "$netid" = "$1" ] || continue
		case $local in
		*":$2") return 0 ;;
		esac
	done <"$OUT.sockets"
	return 1
}

# fresh: after an HAProxy reload, waits (asking again at once for the first dozen answers,
# then every 10 ms, then every 50 ms, at most about 8 s) until the process answering on the
# admin socket is no longer the one from before (OLD_PID): until then, that one still takes
# new connections with the old configuration. A new process usually answers 20 to 40 ms after
# the reload, and every host of a rollout waits for the one before it: asking one `socat`
# after the other (3 to 5 ms each) sees the new process a few milliseconds after it answers,
# where a `sleep` between them made that 10 to 15 ms. If none answers (HAProxy's master
# refused the file), verify_once says so and the apply is rolled back. The new process's
# answer is kept (FRESH_INFO) for verify_once's first look, which then does not ask again.
# Where HAProxy's master CLI is there to ask (MASTER), a refusal ends the wait sooner: past
# the first 0.2 s, the master is asked every quarter of a second how many reloads it has
# refused, and one more than before the reload sets REFUSED (it says so about 1.5 s after the
# reload, once it has re-executed itself; a new process that answers meanwhile ends the wait
# as before).
fresh() {
	[ -n "$OLD_PID" ] && [ -n "$RELOADS_HAPROXY" ] || return 0
	tries=0
	while still_old && [ "$tries" -lt 176 ]; do
		if [ "$tries" -ge 20 ]; then
			sleep 0.05
		elif [ "$tries" -ge 12 ]; then
			sleep 0.01
		fi
		tries=$((tries + 1))
		if [ "$tries" -ge 20 ] && [ $((tries % 5)) -eq 0 ] && refused; then
			return 0
		fi
	done
	case $HAPROXY_INFO in
	*Name:*) FRESH_INFO=$HAPROXY_INFO ;;
	esac
}

# refused: whether HAProxy's master has refused more reloads than before this one (OLD_FAILED,
# asked by resynced); sets REFUSED to the count.
refused() {
	[ -n "$OLD_FAILED" ] || return 1
	# no answer while the master re-executes itself for the reload
	failed_count "$(socat -t 1 - "UNIX-CONNECT:$MASTER" 2>/dev/null <<LBCTL_SHOW_PROC
show proc
LBCTL_SHOW_PROC
	)"
	[ -n "$COUNT" ] && [ "$COUNT" -gt "$OLD_FAILED" ] || return 1
	REFUSED=$COUNT
}

# verify: reloads finish asynchronously, so look a few times over about three seconds, soon
# at first (a reload usually takes some milliseconds) and then less often: every host of a
# rollout waits for the one before it, so a short first wait matters. A reloaded HAProxy is
# verified once its new process answers (fresh). While fresh waits for it (20 to 40 ms), the
# sockets are listed already (ss takes about 9 ms of CPU): a port that the new process binds
# and the old one did not may be missing from that early listing, and then the first look,
# which uses it, is at once followed by a look of its own; a port the old process listened on
# is passed on to the new one (or the new one does not start, and fresh says so).
verify() {
	[ -z "$SOCKET$TCP_PORTS$UDP_PORTS$STARTED" ] && [ "$DAEMONS" -eq 0 ] && return 0
	LISTING=
	if [ -n "$TCP_PORTS$UDP_PORTS" ] && [ -n "$OLD_PID" ] && [ -n "$RELOADS_HAPROXY" ]; then
		list_sockets
	fi
	fresh
	if [ -n "$REFUSED" ]; then
		[ -z "$LISTING" ] || wait "$LISTING"
		fail verify "$VERIFY64" "show proc via socat" "HAProxy's master refused the new configuration (its 'show proc' counts $REFUSED failed reload(s) since the last good one) and its process from before the reload (pid $OLD_PID) still runs the old one: its log says why"
		return 1
	fi
	if [ -n "$LISTING" ]; then
		verify_once
		if [ -z "$PROBLEMS" ]; then
			ok verify "$VERIFY64"
			return 0
		fi
	fi
	for wait in 0.02 0.05 0.1 0.2 0.4 0.8 1.5 -; do
		verify_once
		[ -z "$PROBLEMS" ] && break
		if [ "$wait" = - ]; then
			fail verify "$VERIFY64" "show info via socat; ss -Hltun" "${PROBLEMS%"$NL"}"
			return 1
		fi
		sleep "$wait"
	done
	ok verify "$VERIFY64"
}

# restore INDEX PATH ...: the file as it was before this apply. Only what this apply
# staged or swapped is touched: another apply's staged files are not ours to remove.
restore() {
	eval "staged=\${STAGED_$1:-}"
	eval "swapped=\${SWAPPED_$1:-}"
	eval "existed=\${EXISTED_$1:-}"
	# shellcheck disable=SC2154 # assigned by the eval
	[ "$staged" = 1 ] || return 0
	if ! at "$2"; then
		home
		ROLLBACK_OK=0
		emit "step rollback failed $(enc "cannot enter the directory of $2: $(output)")"
		return 0
	fi
	rm -f -- "$name.lbctl-new"
	# shellcheck disable=SC2154 # assigned by the eval
	if [ "$swapped" != 1 ]; then
		home
		return 0
	fi
	if [ "$existed" = 1 ]; then
		if mv -f -T -- "$name.lbctl-prev" "$name" 2>"$OUT"; then
			home
			ok rollback "$(enc "restored $2")"
		else
			home
			ROLLBACK_OK=0
			emit "step rollback failed $(enc "cannot restore $2: $(output)")"
		fi
	elif rm -f -- "$name" 2>"$OUT"; then
		home
		ok rollback "$(enc "removed $2, which did not exist before")"
	else
		home
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

# rollback_reload NAME RELOAD NAME64 WHAT PIDFILE START STOP DAEMON: the service reloaded with
# the file put back, or, where this apply installed it and started its daemon (see
# installing), that daemon stopped. A failure here means the previous configuration is on disk
# but not what runs (or nothing runs: a daemon that died before the apply cannot be reloaded),
# so the host is not rolled back.
rollback_reload() {
	if among "$1" "$STARTING"; then
		# its file is removed again: the daemon this apply started (if its start got that
		# far) is stopped, as it was before
		PROBLEMS=
		running "$1" "$8"
		[ -n "$PROBLEMS" ] && return 0
		if run_cmd "$7"; then
			# a stop command may only signal it: it ends within 3 s
			tries=0
			while [ -z "$PROBLEMS" ] && [ "$tries" -lt 30 ]; do
				sleep 0.1
				tries=$((tries + 1))
				running "$1" "$8"
			done
			if [ -n "$PROBLEMS" ]; then
				ok rollback "$(enc "stopped $1, which this apply had started")"
			else
				ROLLBACK_OK=0
				emit "step rollback failed $(enc "$1, which this apply had started, still runs 3 s after $7")"
			fi
		else
			ROLLBACK_OK=0
			emit "step rollback failed $(enc "stopping $1 failed: $7: $(output)")"
		fi
		return 0
	fi
	save_state "$1"
	if run_cmd "$2"; then
		ok rollback "$(enc "reloaded $1")"
	else
		ROLLBACK_OK=0
		emit "step rollback failed $(enc "reloading $1 failed: $2: $(output)")"
	fi
	return 0
}

# tables_taught: after a reload that replaced a process holding stick tables, waits (at most
# 5 s) for the new process to have learned them from the old one, so that the next host is
# reloaded, and clients reach this one, with the entries in place. Not a failure if it takes
# longer: HAProxy goes on learning from the other peers.
tables_taught() {
	[ -n "$TAUGHT" ] || return 0
	tries=0
	while still_old && [ "$tries" -lt 30 ]; do
		sleep 0.1
		tries=$((tries + 1))
	done
	wait_peers 1 50 || :
}

# keep_admin: lbctl's record written, and the admin state it holds put back where the
# reload could not carry it. The configuration is in place by now: a problem here is
# reported, not rolled back.
keep_admin() {
	[ "$RECORD64" != - ] || [ "$ADMIN64" != - ] || return 0
	problems=
	[ "$RECORD64" = - ] || problems=$(install_record "$RECORD" "$RECORD64")
	if [ "$ADMIN64" != - ] && [ -n "$SOCKET" ]; then
		# The old process may still answer on the socket for a moment after the reload: the
		# commands are for the new one (waited for up to 3 s).
		tries=0
		while [ -n "$OLD_PID" ] && still_old && [ "$tries" -lt 30 ]; do
			sleep 0.1
			tries=$((tries + 1))
		done
		answer=$({
			printf '%s\n' "$ADMIN64" | base64 -d
			echo
		} | socat -t 5 - "UNIX-CONNECT:$SOCKET" 2>&1)
		answer=$(printf '%s\n' "$answer" | grep -v '^[[:space:]]*$')
		[ -z "$answer" ] || problems="${problems:+$problems; }HAProxy refused: $answer"
		save_state haproxy
	fi
	if [ -n "$problems" ]; then
		emit "step admin failed $(enc "$problems")"
	else
		emit "step admin ok $(enc "$RECORD")"
	fi
}

finish() {
	forget_saving
	[ -n "$OUT" ] && : >"$OUT"
	[ -n "$OUT" ] && [ -s "$OUT.sockets" ] && : >"$OUT.sockets"
	[ -n "$OUT" ] && [ -s "$OUT.resynced" ] && : >"$OUT.resynced"
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
	beat_end
	resync_stop
	forget_saving
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
	START=$PWD
	emit "begin apply 1"
	if [ -n "$SPECULATIVE" ]; then
		CHANGES=0
		files counted
		[ "$CHANGES" -eq 0 ] && finish ok
	fi
	preflight || abort
	STEP=lock
	take_lock || abort
	# Nothing to change: nothing is reloaded, so there is nothing new to verify either.
	[ "$CHANGES" -eq 0 ] && finish ok
	STEP=stage
	files stage || abort
	check_staged || abort
	STEP=validate
	resync_begin
	files validate || abort
	resync_end
	STEP=hold
	hold || abort
	begin_saving
	STEP=backup
	files backup || abort
	STEP=swap
	PHASE=after-swap
	files swap || abort
	STEP=reload
	services reload || abort
	STEP=verify
	verify || abort
	tables_taught
	keep_admin
	finish ok
}
