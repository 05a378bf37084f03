# lbctl fetch: what a load balancer holds right now, read in one round trip and changing
# nothing on the host, with as few processes as it can (each costs milliseconds). The
# generated header defines LOCK, MAX_BYTES, RECORD and SOCKET (lbctl's admin record and
# HAProxy's admin socket, empty when not asked), WANT_VIPS (empty when there are none),
# MATCHES_TO_FD3 (empty, or 1: each matching file's PATH64 is also written to fd 3, a line
# each, for an apply script sent along to skip, see remote::fetch_then) and the lists paths(),
# vips() and daemons(), which call fetch_file, fetch_vip and fetch_daemon once per item.

connection_lost() {
	exit 1
}

# locate PATH: what is at PATH, looked at from inside its directory: sets STATE to absent,
# regular (a regular file, its name in name, the shell then inside its directory) or
# unreadable (the reason in REASON). Only a regular file at PATH itself counts: the plan shows
# what apply would replace, and apply never writes through a symbolic link (PATH, or a
# directory on its way) it did not create, so neither is followed here.
locate() {
	cd / || :
	parent "$1"
	name=${1##*/}
	STATE=unreadable
	if [ -z "$name" ]; then
		REASON="$1 is a directory"
		return
	fi
	inside "$dir"
	case $? in
	1) return ;;
	2)
		STATE=absent
		return
		;;
	esac
	if [ -L "$name" ]; then
		REASON="$1 is a symbolic link lbctl did not create; lbctl neither reads nor writes through it: replace it with the file itself, or point the path setting at the real file"
	elif [ ! -e "$name" ]; then
		STATE=absent
	elif [ -d "$name" ]; then
		REASON="$1 is a directory"
	elif [ ! -f "$name" ]; then
		REASON="$1 is not a regular file"
	else
		STATE=regular
	fi
}

# fetch_file PATH PATH64 [SHA256]: PATH64 is PATH in base64, ready for the frame. When the
# file's digest is SHA256 (what lbctl would write), only that is said, not the content; a
# file larger than MAX_BYTES is not read.
fetch_file() {
	locate "$1"
	if [ -n "$SUMMING" ]; then
		# First pass: which files sha256sum may read (no link, no FIFO that would block it).
		if [ "$STATE" = regular ] && [ -n "$3" ]; then
			case $1 in
			*"$NL"*) ;;
			*) SUMMED="$SUMMED$1$NL" ;;
			esac
		fi
		cd / || :
		return
	fi
	case $STATE in
	absent) emit "file $2 absent" ;;
	unreadable) emit "file $2 unreadable $(enc "$REASON")" ;;
	*)
		if [ -n "$3" ] && case "$SUMS" in *"$NL$3  $1$NL"*) true ;; *) false ;; esac then
			emit "file $2 matches $3"
			[ -n "$MATCHES_TO_FD3" ] && printf '%s\n' "$2" >&3
		elif size=$(stat -c %s -- "$name" 2>&1) && [ "$size" -gt "$MAX_BYTES" ]; then
			emit "file $2 unreadable $(enc "$1 is $size bytes, more than lbctl reads ($MAX_BYTES)")"
		elif content=$(base64 -w0 2>&1 <"$name"); then
			emit "file $2 present ${content:--}"
		else
			emit "file $2 unreadable $(enc "$content")"
		fi
		;;
	esac
	cd / || :
}

# parent PATH: sets dir to PATH's directory, as dirname(1) would say.
parent() {
	case $1 in
	*/*) dir=${1%/*} ;;
	*) dir=. ;;
	esac
	[ -n "$dir" ] || dir=/
}

# inside DIR: enters DIR when it is where it says, with no symbolic link on the way (0);
# otherwise sets REASON (1), or says that DIR does not exist (2): then it holds no file.
inside() {
	if ! cd -P -- "$1" 2>/dev/null; then
		[ -e "$1" ] || [ -L "$1" ] || return 2
		REASON="cannot enter $1"
		return 1
	fi
	[ "$PWD" = "$1" ] && return 0
	REASON="$1 resolves to $PWD through a symbolic link; lbctl neither reads nor writes through links it did not create"
	return 1
}

# fetch_vip ADDRESS NAME64: whether `ip -o addr show` lists ADDRESS.
fetch_vip() {
	case "$ADDRESSES" in
	*" inet $1/"* | *" inet6 $1/"*) emit "vip $2 held" ;;
	*) emit "vip $2 free" ;;
	esac
}

# fetch_daemon PIDFILE NAME64: whether the daemon whose pid file is PIDFILE runs (the pid in
# it answers kill -0), for a plan to say which daemon an apply would start. Read once, with
# the shell's own read and kill: a plan is a look at this moment, and starts no process for it.
fetch_daemon() {
	read_pid_now "$1"
	if pid_alive; then
		emit "daemon $2 running"
	else
		emit "daemon $2 stopped"
	fi
}

# Whether anything holds a flock at all: looking for the holder costs a few processes.
any_flock() {
	while read -r _ kind _; do
		[ "$kind" = FLOCK ] && return 0
	done </proc/locks
	return 1
}

probe_lock() {
	holder=
	[ -e "$LOCK" ] && any_flock && holder=$(lock_holder "$LOCK")
	if [ -n "$holder" ]; then
		emit "lock held $holder"
	else
		emit "lock free"
	fi
}

# admin_state: lbctl's admin record and, when it sets anything, HAProxy's servers' state
# (two more processes only then).
admin_state() {
	[ -n "$RECORD" ] || return 0
	active=
	if [ -e "$RECORD" ]; then
		content=$(base64 -w0 <"$RECORD" 2>/dev/null)
		emit "record ${content:--}"
		while read -r _ _ _ attribute value _; do
			case "$attribute $value" in
			'state drain' | 'state maint' | weight\ [0-9]*) active=1 ;;
			esac
		done <"$RECORD"
	else
		emit "record -"
	fi
	[ -n "$active" ] && [ -n "$SOCKET" ] || return 0
	if out=$(printf 'show servers state\n' | socat -t 2 - "UNIX-CONNECT:$SOCKET" 2>&1); then
		emit "servers $(enc "$out")"
	else
		emit "servers-error $(enc "$out")"
	fi
}

main() {
	trap connection_lost PIPE
	emit "begin fetch 1"
	NL='
'
	# One sha256sum for every regular file lbctl has a digest for, instead of one per file.
	SUMMING=1
	SUMMED=
	paths
	SUMMING=
	SUMS=$NL
	if [ -n "$SUMMED" ]; then
		old_ifs=$IFS
		IFS=$NL
		set -f
		# shellcheck disable=SC2086 # one path per line
		SUMS="$NL$(sha256sum -- ${SUMMED%"$NL"} 2>/dev/null)$NL"
		set +f
		IFS=$old_ifs
	fi
	paths
	ADDRESSES=
	if [ -n "$WANT_VIPS" ]; then
		if command -v ip >/dev/null 2>&1; then
			ADDRESSES=$(ip -o addr show)
			vips
		else
			emit "error $(enc "ip (iproute2) is not installed; lbctl needs it to see which addresses the host holds")"
		fi
	fi
	daemons
	probe_lock
	admin_state
	emit "end fetch"
}
