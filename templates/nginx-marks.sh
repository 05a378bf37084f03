# Marks on nginx stream upstream servers: nginx has no runtime API, so a server taken out of
# rotation is marked in the file (`down`, or a `weight=N` of its own) and nginx reloaded.
# Shared by every script that writes lbctl's nginx stream configuration (apply, admin), and
# meant for anything else on the host that takes a server out (a health watcher adds its own
# "KEY down" lines to the marks it passes).
#
# lbctl's template ends every upstream server line with a tag naming backend and server:
#     server 10.0.0.2:31820 max_fails=1 fail_timeout=10s; # lbctl:wireguard/k8s-worker-2
# A marked line has the marks before the ";" and again after the tag, so that the line as
# rendered can always be recovered (lbctl's plan compares that, not the marks):
#     server 10.0.0.2:31820 max_fails=1 fail_timeout=10s down; # lbctl:wireguard/k8s-worker-2 down

# record_marks RECORD: the marks lbctl's admin record asks for, one "BACKEND/SERVER WORDS" a
# line. A drained or maintained server is down (nginx cannot drain); a weight of its own is
# weight=N, and a weight of 0 is down (nginx takes at least 1).
record_marks() {
	[ -r "$1" ] || return 0
	awk '$1 == "nginx" && NF >= 5 {
		key = $2 "/" $3
		if ($4 == "state" && ($5 == "drain" || $5 == "maint")) down[key] = 1
		if ($4 == "weight" && $5 != "-") {
			if ($5 == 0) down[key] = 1
			else weight[key] = $5
		}
	}
	END {
		for (key in weight) if (!(key in down)) print key, "weight=" weight[key]
		for (key in down) print key, "down"
	}' "$1"
}

# mark_servers MARKS CONF: CONF with every tagged line carrying the marks MARKS (a file of
# "KEY WORDS" lines) gives it, and no others, on stdout.
mark_servers() {
	awk -v marks_file="$1" 'BEGIN {
		while ((getline line < marks_file) > 0) {
			split(line, words, " ")
			key = words[1]
			rest = substr(line, length(key) + 2)
			if (key != "" && rest != "") marks[key] = rest
		}
	}
	{
		at = index($0, "; # lbctl:")
		if (!at) { print; next }
		head = substr($0, 1, at - 1)
		tail = substr($0, at + 10)
		space = index(tail, " ")
		if (space) { key = substr(tail, 1, space - 1); old = substr(tail, space) }
		else { key = tail; old = "" }
		n = length(old)
		if (n && substr(head, length(head) - n + 1) == old) head = substr(head, 1, length(head) - n)
		new = (key in marks) ? " " marks[key] : ""
		print head new "; # lbctl:" key new
	}' "$2"
}

# file_marks CONF: the marks CONF's tagged lines carry now, one "KEY WORDS" a line.
file_marks() {
	awk '{
		at = index($0, "; # lbctl:")
		if (!at) next
		tail = substr($0, at + 10)
		if (index(tail, " ")) print tail
	}' "$1"
}
