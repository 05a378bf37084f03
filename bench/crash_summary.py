"""Crash-drill figures from several `lbctl failover-test --lb ... --json` reports of one method.

usage: crash_summary.py LABEL REPORT.json...
prints one table row: the label, runs passed, the VIP's move in ms (min / median / max) against
its budget, the new holders, and the failed probe connections per phase (summed over the runs:
during the move / while broken / while it moved back / after the tier was whole again), then
each run's total (the phase before the break included).
Exits 1 (with the reason on stderr) when a report lacks a field.
"""

import json
import statistics
import sys


def main():
    label, paths = sys.argv[1], sys.argv[2:]
    moves, holders, totals, passed = [], [], [], 0
    phases = {"during_move": 0, "while_stopped": 0, "restore": 0, "after": 0}
    attempts = 0
    budget = None
    for path in paths:
        with open(path) as f:
            doc = json.load(f)
        try:
            r = doc["report"]
            budget = r["move_budget_ms"]
            if r["vip_moved_ms"] is not None:
                moves.append(r["vip_moved_ms"])
            holders.append(r["new_holder"] or "-")
            probe = r["probe"]
            for phase in phases:
                phases[phase] += probe[phase]["failed"]
            totals.append(probe["total"]["failed"])
            attempts += probe["total"]["attempts"]
            passed += bool(r["passed"])
        except (KeyError, TypeError) as e:
            print(f"unexpected failover-test report {path}: missing or bad {e}", file=sys.stderr)
            sys.exit(1)
    if moves:
        move = f"{min(moves)} / {int(statistics.median(moves))} / {max(moves)}"
    else:
        move = "never"
    print(
        f"{label:<22} {passed}/{len(paths):<6} {move:<18} {budget:<7} "
        f"{','.join(sorted(set(holders))):<10} "
        f"{'/'.join(str(n) for n in phases.values()):<14} "
        f"{','.join(map(str, totals))} of {attempts}"
    )


if __name__ == "__main__":
    main()
