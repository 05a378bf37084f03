# lbctl fault: break a worker's NodePorts with iptables, and put them back. The generated
# header defines ACTION (inspect, inject or restore), FAULT_TAG (the comment on every rule
# this run adds), TOOLS (iptables, and ip6tables for a worker reached over IPv6), and the
# functions insert_rules and remove_rules (which stop at the first failure and remove every
# copy, respectively), disarm_switch, and, with the dead man's switch's own arm_switch and
# switch_action (whose action is remove_rules' body).

connection_lost() {
	# lbctl is gone: whatever this run changed is put back at once, not when the switch fires
	if [ "$ACTION" = inject ] && [ "$INSERTING" = 1 ]; then
		switch_action >/dev/null 2>&1
		disarm_switch >/dev/null 2>&1
	fi
	exit 1
}

# list_rules: every rule lbctl's failover tests added, by any run, as `table rule` lines
# (`ip6tables table rule` for IPv6's).
list_rules() {
	for tool in iptables ip6tables; do
		command -v "$tool" >/dev/null 2>&1 || continue
		prefix=
		[ "$tool" = ip6tables ] && prefix="ip6tables "
		for table in raw filter; do
			"$tool" -w 5 -t "$table" -S 2>/dev/null | grep -F -e '--comment' |
				grep -F -e 'lbctl-failover-' | sed "s/^/$prefix$table /"
		done
	done
}

report_rules() {
	list_rules | while IFS= read -r rule; do
		emit "rule $(enc "$rule")"
	done
}

main() {
	trap connection_lost PIPE
	INSERTING=0
	emit "begin fault 1"
	for tool in $TOOLS; do
		if ! command -v "$tool" >/dev/null 2>&1; then
			emit "error $(enc "$tool is not installed on this host; lbctl breaks a worker's NodePorts with it")"
			emit "end fault failed"
			return
		fi
		if ! out=$("$tool" -w 5 -t raw -S PREROUTING 2>&1); then
			emit "error $(enc "cannot read $tool rules (is the login root, or ansible_become set?): $out")"
			emit "end fault failed"
			return
		fi
	done
	case $ACTION in
	inspect)
		report_rules
		emit "end fault ok"
		;;
	inject)
		arm_switch || {
			emit "end fault failed"
			return
		}
		INSERTING=1
		# The fault begins with the first rule: the clock is read before it goes in (each rule
		# is an iptables process, tens of milliseconds on a busy host), so that nothing sent
		# while the rules go in counts as sent before the fault.
		clock_now
		if out=$(insert_rules 2>&1); then
			emit "inserted $CLOCK"
			emit "end fault ok"
		else
			switch_action >/dev/null 2>&1
			disarm_switch
			emit "insert-error $(enc "$out")"
			report_rules
			emit "end fault failed"
		fi
		INSERTING=0
		;;
	restore)
		out=$(remove_rules 2>&1)
		clock_now
		disarm_switch
		emit "restored $CLOCK $(enc "$out")"
		report_rules
		emit "end fault ok"
		;;
	esac
}
