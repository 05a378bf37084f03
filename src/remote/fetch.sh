# lbctl fetch: what a load balancer holds right now, read in one round trip and changing
# nothing on the host. The generated header defines LOCK, PIDFILE and MASTER_SOCKET (empty
# when not asked for), WANT_VIPS (empty when there are none) and the lists paths() and
# vips(), which call fetch_file PATH and fetch_vip NAME ADDRESS once per item.

connection_lost() {
	exit 1
}

fetch_file() {
	if [ ! -e "$1" ] && [ ! -L "$1" ]; then
		emit "file $(enc "$1") absent"
	elif [ -d "$1" ]; then
		emit "file $(enc "$1") unreadable $(enc "$1 is a directory")"
	elif content=$(base64 -w0 2>&1 <"$1"); then
		emit "file $(enc "$1") present ${content:--}"
	else
		emit "file $(enc "$1") unreadable $(enc "$content")"
	fi
}

fetch_vip() {
	if printf '%s\n' "$ADDRESSES" | grep -qxF -e "$2"; then
		emit "vip $(enc "$1") held"
	else
		emit "vip $(enc "$1") free"
	fi
}

probe_lock() {
	holder=
	[ -e "$LOCK" ] && holder=$(lock_holder "$LOCK")
	if [ -n "$holder" ]; then
		emit "lock held $holder"
	else
		emit "lock free"
	fi
}

probe_haproxy() {
	if [ -n "$PIDFILE" ] && [ -r "$PIDFILE" ]; then
		master=$(head -n 1 "$PIDFILE")
		case $master in
		'' | *[!0-9]*) ;;
		*)
			if [ -d "/proc/$master" ]; then
				emit "haproxy-master $master"
				for status in $(grep -l "^PPid:[[:space:]]*$master\$" /proc/[0-9]*/status 2>/dev/null); do
					child=${status#/proc/}
					emit "haproxy-child ${child%/status}"
				done
			fi
			;;
		esac
	fi
	if [ -n "$MASTER_SOCKET" ]; then
		if ! command -v socat >/dev/null 2>&1; then
			emit "error $(enc "socat is not installed; lbctl needs it to ask the HAProxy master socket $MASTER_SOCKET for its processes")"
		elif processes=$(printf 'show proc\n' | socat -t 2 - "UNIX-CONNECT:$MASTER_SOCKET" 2>&1); then
			emit "haproxy-proc $(enc "$processes")"
		else
			emit "haproxy-proc-error $(enc "$processes")"
		fi
	fi
}

main() {
	trap connection_lost PIPE
	emit "begin fetch 1"
	paths
	ADDRESSES=
	if [ -n "$WANT_VIPS" ]; then
		if command -v ip >/dev/null 2>&1; then
			ADDRESSES=$(ip -o addr show | awk '{ sub("/.*", "", $4); print $4 }')
			vips
		else
			emit "error $(enc "ip (iproute2) is not installed; lbctl needs it to see which addresses the host holds")"
		fi
	fi
	probe_lock
	probe_haproxy
	emit "end fetch"
}
