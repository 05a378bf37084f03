# Framing and helpers shared by lbctl's remote scripts.
#
# lbctl reads only the lines of stdout that start with "@@lbctl "; everything else is
# ignored. Every free-form field (paths, file contents, command output, messages) is
# base64 on one line, or "-" when empty, so nothing a file or a command prints can be
# mistaken for a frame or break one.

LBCTL_LOST=0

# enc TEXT: TEXT as one base64 field.
enc() {
	if [ -z "$1" ]; then
		printf '%s' -
	else
		printf '%s' "$1" | base64 -w0
	fi
}

# emit WORDS...: one frame. A failed write means lbctl is no longer listening.
emit() {
	[ "$LBCTL_LOST" = 1 ] && return 0
	printf '@@lbctl %s\n' "$*" || connection_lost
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
