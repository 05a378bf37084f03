# lbctl's record of the admin state it set on a load balancer (its format: admin_record.rs),
# written the same way by the admin script (drain, maint, ready, weight) and by apply.

# install_record RECORD FIELD: RECORD replaced by the content of FIELD (base64). The new record
# is written next to it, created exclusively (a link planted at that name is refused, never
# written through), checked (a record always has its header line: an empty one did not arrive
# whole) and renamed into place; its directory is created when missing. On failure, prints
# why and returns 1, leaving RECORD as it was.
install_record() {
	case $1 in
	*/*) dir=${1%/*} ;;
	*) dir=. ;;
	esac
	if [ ! -d "${dir:-/}" ] && ! out=$(mkdir -p "$dir" 2>&1); then
		printf 'cannot create %s: %s\n' "$dir" "$out"
		return 1
	fi
	rm -f "$1.lbctl-new"
	if ! out=$(printf '%s\n' "$2" | base64 -d 2>/dev/null | dd of="$1.lbctl-new" conv=excl status=none 2>&1); then
		rm -f "$1.lbctl-new"
		printf 'cannot write %s: %s\n' "$1.lbctl-new" "$out"
		return 1
	fi
	if [ ! -s "$1.lbctl-new" ]; then
		rm -f "$1.lbctl-new"
		printf "lbctl's record for %s did not arrive whole\n" "$1"
		return 1
	fi
	if ! out=$(mv -f -T "$1.lbctl-new" "$1" 2>&1); then
		rm -f "$1.lbctl-new"
		printf 'cannot write %s: %s\n' "$1" "$out"
		return 1
	fi
}
