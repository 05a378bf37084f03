# lbctl fetch: what a load balancer holds right now, read in one round trip and changing
# nothing on the host, with as few processes as it can (each costs milliseconds). The
# generated header defines LOCK, WANT_VIPS (empty when there are none), sums() (sha256sum
# of the files with a digest) and the lists paths() and vips(), which call fetch_file and
# fetch_vip once per item.

connection_lost() {
	exit 1
}

# fetch_file PATH PATH64 [SHA256]: PATH64 is PATH in base64, ready for the frame. When the
# file's digest is SHA256 (what lbctl would write), only that is said, not the content.
fetch_file() {
	if [ ! -e "$1" ] && [ ! -L "$1" ]; then
		emit "file $2 absent"
	elif [ -d "$1" ]; then
		emit "file $2 unreadable $(enc "$1 is a directory")"
	elif [ -n "$3" ] && case "$SUMS" in *"$NL$3  $1$NL"*) true ;; *) false ;; esac then
		emit "file $2 matches $3"
	elif content=$(base64 -w0 2>&1 <"$1"); then
		emit "file $2 present ${content:--}"
	else
		emit "file $2 unreadable $(enc "$content")"
	fi
}

# fetch_vip ADDRESS NAME64: whether `ip -o addr show` lists ADDRESS.
fetch_vip() {
	case "$ADDRESSES" in
	*" inet $1/"* | *" inet6 $1/"*) emit "vip $2 held" ;;
	*) emit "vip $2 free" ;;
	esac
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

main() {
	trap connection_lost PIPE
	emit "begin fetch 1"
	NL='
'
	# One sha256sum for every file lbctl has a digest for, instead of one per file.
	SUMS="$NL$(sums 2>/dev/null)$NL"
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
	probe_lock
	emit "end fetch"
}
