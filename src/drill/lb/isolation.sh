# lbctl isolation: cut a load balancer off the network for a failover test, and put it back.
# The generated header defines ACTION (isolate or restore), TAG (the run's rule comment and
# ARP chain), XTW (iptables' lock wait), PEER (lbctl's SSH connection: client address and
# port, this host's address and port), and the dead man's switch (arm_switch, disarm_switch,
# switch_action: remove every rule tagged TAG).

connection_lost() {
	# lbctl is gone while cutting the host off: put it back now, not when the switch fires
	if [ "$ACTION" = isolate ]; then
		switch_action >/dev/null 2>&1
		disarm_switch >/dev/null 2>&1
	fi
	exit 1
}

# report_rules: every rule or chain an lbctl failover test added, by any run.
report_rules() {
	for t in iptables ip6tables arptables; do
		command -v "$t" >/dev/null 2>&1 || continue
		"$t" -S 2>/dev/null | grep -F -e 'lbctl-failover-' | while IFS= read -r rule; do
			emit "rule $(enc "$t $rule")"
		done
	done
}

# cut: the DROP rules first, then in front of them the few exceptions, so that nothing but
# the exceptions passes from the first rule on. Stops at the first failure.
cut() {
	# shellcheck disable=SC2086 # PEER is four words
	set -- $PEER
	cip=${1:-} cport=${2:-} sip=${3:-} sport=${4:-}
	if [ -z "$sport" ]; then
		echo "cannot tell lbctl's own SSH connection (SSH_CONNECTION is empty), which must stay open"
		return 1
	fi
	case $sip in
	*:*) own=ip6tables ;;
	*) own=iptables ;;
	esac
	command -v "$own" >/dev/null 2>&1 || {
		echo "$own is not installed"
		return 1
	}
	if [ "$own" = iptables ] && ! command -v arptables >/dev/null 2>&1; then
		echo "arptables is not installed: the host would still answer ARP for the VIP (install arptables, or iptables' arptables-nft)"
		return 1
	fi
	for t in iptables ip6tables; do
		command -v "$t" >/dev/null 2>&1 || continue
		"$t" -w "$XTW" -I INPUT 1 -m comment --comment "$TAG" -j DROP || return 1
		"$t" -w "$XTW" -I OUTPUT 1 -m comment --comment "$TAG" -j DROP || return 1
		"$t" -w "$XTW" -I INPUT 1 -i lo -m comment --comment "$TAG" -j ACCEPT || return 1
		"$t" -w "$XTW" -I OUTPUT 1 -o lo -m comment --comment "$TAG" -j ACCEPT || return 1
	done
	"$own" -w "$XTW" -I INPUT 1 -p tcp -s "$cip" --sport "$cport" -d "$sip" --dport "$sport" \
		-m comment --comment "$TAG" -j ACCEPT || return 1
	"$own" -w "$XTW" -I OUTPUT 1 -p tcp -s "$sip" --sport "$sport" -d "$cip" --dport "$cport" \
		-m comment --comment "$TAG" -j ACCEPT || return 1
	# the next hop toward lbctl: the host must still find it to answer on the connection
	nh=$(ip route get "$cip" 2>/dev/null | sed -n 's/.* via \([^ ]*\).*/\1/p')
	[ -n "$nh" ] || nh=$cip
	if [ "$own" = iptables ]; then
		arptables -N "$TAG" || return 1
		arptables -A "$TAG" -s "$nh" -d "$sip" -j RETURN || return 1
		arptables -A "$TAG" -s "$sip" -d "$nh" -j RETURN || return 1
		arptables -A "$TAG" -j DROP || return 1
		arptables -I INPUT 1 -j "$TAG" || return 1
		arptables -I OUTPUT 1 -j "$TAG" || return 1
	else
		for dir in INPUT OUTPUT; do
			for type in neighbour-solicitation neighbour-advertisement; do
				ip6tables -w "$XTW" -I "$dir" 1 -p ipv6-icmp --icmpv6-type "$type" \
					-m comment --comment "$TAG" -j ACCEPT || return 1
			done
		done
	fi
}

main() {
	trap connection_lost PIPE
	emit "begin isolation 1"
	case $ACTION in
	isolate)
		arm_switch || {
			emit "end isolation"
			return
		}
		clock_now
		emit "cutting $CLOCK"
		if ! out=$(cut 2>&1); then
			switch_action >/dev/null 2>&1
			disarm_switch
			emit "error $(enc "cannot cut the host off: $out")"
			report_rules
		fi
		;;
	restore)
		switch_action >/dev/null 2>&1
		clock_now
		disarm_switch
		emit "restored $CLOCK"
		report_rules
		;;
	esac
	emit "end isolation"
}
