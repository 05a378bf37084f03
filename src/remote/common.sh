# Framing and helpers shared by lbctl's remote scripts.
#
# lbctl reads only the lines of stdout that start with "@@lbctl "; everything else is
# ignored. Every free-form field (paths, file contents, command output, messages) is
# base64 on one line, or "-" when empty, so nothing a file or a command prints can be
# mistaken for a frame or break one.

LBCTL_LOST=0
BEATING=

# enc TEXT: TEXT as one base64 field.
enc() {
	if [ -z "$1" ]; then
		printf '%s' -
	else
		printf '%s' "$1" | base64 -w0
	fi
}

# emit WORDS...: one frame. A failed write means lbctl is no longer listening. The keep-alive
# writer (beat_begin) is gone before it: no frame is ever written beside one of its lines.
emit() {
	[ -z "$BEATING" ] || beat_end
	[ "$LBCTL_LOST" = 1 ] && return 0
	printf '@@lbctl %s\n' "$*" || connection_lost
}

# beat_begin: while the script waits for lbctl's answer on fd 3, holding the apply lock, a
# frame "@@lbctl waiting" on stdout every 5 seconds, which lbctl passes over. lbctl says
# nothing meanwhile, and an idle connection whose other end is gone goes unnoticed by the
# host's sshd for hours (TCP keep-alive): a host cut off from lbctl mid-apply, whose lbctl gave
# up, kept its script waiting, and its lock held, all that time. Data on its way out is noticed:
# TCP retransmits it, and once the cut heals the client host, whose ssh has exited, answers with
# a reset (during a cut of over about 15 minutes, TCP gives up retransmitting); sshd then closes
# the session, fd 3 ends, and the script stops as when lbctl tells it to.
# The writer is a subshell holding neither the lock (fd 9) nor fd 3, its `sleep` on /dev/null,
# so that nothing it leaves keeps the lock or the SSH channel; it writes only while the script
# is blocked in its read, one short line in one write (whole on a pipe); it ends at a failed
# write, when the script's shell is gone, or when killed (beat_stop, beat_end). SIGKILL, as a
# subshell runs its parent's traps until it has cleared them: a SIGTERM in that instant ran
# this script's own trap in the writer, and the writer lived on. Its last `sleep` (holding
# nothing) ends by itself, within 5 s.
beat_begin() {
	{
		while sleep 5 >/dev/null; do
			kill -0 "$$" || exit 0
			printf '@@lbctl waiting\n' || exit 0
		done
	} </dev/null 2>/dev/null 9>&- 3<&- &
	BEATING=$!
}

# beat_stop: the keep-alive writer killed, as soon as the read it was for returns. Waited for
# by beat_end, at the latest before the next frame: meanwhile the script does the work that
# follows, so that the writer's end costs the apply nothing.
beat_stop() {
	[ -z "$BEATING" ] || kill -KILL "$BEATING" 2>/dev/null
}

# beat_end: the keep-alive writer killed, and gone.
beat_end() {
	[ -n "$BEATING" ] || return 0
	kill -KILL "$BEATING" 2>/dev/null
	wait "$BEATING" 2>/dev/null
	BEATING=
}

# read_pid FILE: sets pid to the first line of a daemon's pid file, empty if there is none.
# One that is missing or empty is read again, 5 times 20 ms apart: HAProxy's master removes
# and rewrites its pid file at every reload, and a look in that instant must not find HAProxy
# stopped.
read_pid() {
	for try in 1 2 3 4 5 6; do
		pid=
		IFS= read -r pid 2>/dev/null <"$1"
		[ -n "$pid" ] && return 0
		[ "$try" = 6 ] || sleep 0.02
	done
}

# read_pid_now FILE: read_pid without its retries, for a look at this moment at a daemon that
# no reload of lbctl's is restarting; only a regular file is read (a FIFO would block).
read_pid_now() {
	pid=
	# shellcheck disable=SC2034 # for pid_alive and the caller
	[ -f "$1" ] && IFS= read -r pid 2>/dev/null <"$1"
}

# pid_alive: whether pid (see read_pid) names a live process (0), names none (1), or is no pid
# at all: empty, or not a number (2).
pid_alive() {
	case $pid in
	'' | *[!0-9]*) return 2 ;;
	esac
	kill -0 "$pid" 2>/dev/null || return 1
}

# lock_holder FILE: when some process holds a flock on FILE, the pid the holder wrote
# into it ("-" if none). Looked up in /proc/locks, where a lock is named by the file's
# device and inode, so that nobody has to take the lock just to look at it. One process
# (stat); the shell reads the rest.
lock_holder() {
	id=$(stat -c '%Hd %Ld %i' "$1" 2>/dev/null) || return 0
	# shellcheck disable=SC2086 # split into major, minor, inode
	id=$(printf '%02x:%02x:%s' $id)
	# a line of /proc/locks: "1: FLOCK ADVISORY WRITE PID MAJOR:MINOR:INODE START END" (a
	# process waiting for the lock has "->" before FLOCK)
	while read -r _ kind _ _ _ at _; do
		if [ "$kind" != FLOCK ] || [ "$at" != "$id" ]; then
			continue
		fi
		# the holder writes its pid just after taking the lock: read_pid waits that moment out
		read_pid "$1"
		case $pid in
		'' | *[!0-9]*) printf '%s\n' - ;;
		*) printf '%s\n' "$pid" ;;
		esac
		return 0
	done </proc/locks
}
