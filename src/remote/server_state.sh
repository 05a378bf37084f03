# HAProxy's server state across reloads. The rendered configuration names a state file
# (`server-state-file`) that every new HAProxy process starts from
# (`load-server-state-from-file global`); this saves it from the running one right before
# every reload, so that a server DOWN, drained, in maintenance or re-weighted stays so,
# instead of starting over (a DOWN server shown UP while checks catch up, a drain undone).

# The state lines worth keeping for the configuration about to be loaded (first file): a
# server whose address or port changed is left out, because HAProxy would take the port from
# the state file over the configuration's (it does not compare), and then starts from its
# configuration instead. Fields of `show servers state` (version 1): 2 backend, 4 server,
# 5 address, 18 DNS name, 19 port.
# shellcheck disable=SC2016 # an awk program, not shell
SERVER_STATE_FILTER='FNR == NR {
	if ($1 ~ /^(global|defaults|frontend|backend|listen|peers|resolvers|userlist|mailers|program|http-errors|ring|cache|fcgi-app)$/) {
		proxy = ($1 == "backend" || $1 == "listen") ? $2 : ""
		next
	}
	if (proxy != "" && $1 == "server" && NF >= 3) {
		address = $3
		if (address ~ /^\[/) {
			end = index(address, "]")
			host = substr(address, 2, end - 2)
			port = substr(address, end + 2)
		} else if (gsub(/:/, ":", address) == 1) {
			end = index(address, ":")
			host = substr(address, 1, end - 1)
			port = substr(address, end + 1)
		} else {
			host = address
			port = "0"
		}
		sub(/^ipv[46]@/, "", host)
		hosts[proxy " " $2] = host
		ports[proxy " " $2] = port
	}
	next
}
FNR == 1 || /^#/ { print; next }
{
	key = $2 " " $4
	if ((key in hosts) && $19 == ports[key] && ($5 == hosts[key] || $18 == hosts[key])) print
}'

# save_server_state SOCKET STATE_FILE CONFIG: HAProxy's state, for the CONFIG it is about to
# load, into STATE_FILE (by rename: a reader never sees half of it). The new file is created
# exclusively (a link planted at its name is refused, never written through) and renamed over
# the old name. Returns 1, leaving STATE_FILE as it was, when HAProxy does not answer.
save_server_state() {
	[ -n "$1" ] && [ -n "$2" ] || return 0
	server_state_begin "$@" || return 1
	server_state_end "$2"
}

# server_state_begin SOCKET STATE_FILE CONFIG: save_server_state's first half, which can run
# in the background: HAProxy's answer, filtered, into STATE_FILE.lbctl-new. Returns 1 when the
# state file's directory is not there and cannot be made.
server_state_begin() {
	case $2 in
	*/*) state_dir=${2%/*} ;;
	*) state_dir=. ;;
	esac
	[ -d "${state_dir:-/}" ] || mkdir -p "$state_dir" 2>/dev/null || return 1
	state_new="$2.lbctl-new"
	# (left only by an apply that was killed: no rm process when there is nothing)
	if [ -e "$state_new" ] || [ -L "$state_new" ]; then rm -f "$state_new"; fi
	socat -t 2 - "UNIX-CONNECT:$1" 2>/dev/null <<LBCTL_SHOW_STATE |
show servers state
LBCTL_SHOW_STATE
		awk "$SERVER_STATE_FILTER" "$3" - 2>/dev/null |
		dd of="$state_new" conv=excl status=none 2>/dev/null
	return 0
}

# server_state_end STATE_FILE: save_server_state's second half, once the first is over: the
# new file renamed over STATE_FILE when it holds a state (its first line, the format's version),
# else removed.
server_state_end() {
	state_new="$1.lbctl-new"
	first=
	[ -L "$state_new" ] || IFS= read -r first <"$state_new" 2>/dev/null
	if [ "$first" = 1 ] && mv -f -T "$state_new" "$1" 2>/dev/null; then
		return 0
	fi
	rm -f "$state_new"
	return 1
}
