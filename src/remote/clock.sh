# clock_now: this host's milliseconds since the epoch into CLOCK, or "-" without GNU date's
# %N; lbctl maps it onto its own clock to time what happened here.
clock_now() {
	CLOCK=$(date +%s%3N 2>/dev/null)
	case $CLOCK in
	'' | *[!0-9]*) CLOCK=- ;;
	esac
}
