"""One line from `lbctl failover-test --worker ... --json`: detection, recovery, failed probes.

usage: failover_summary.py REPORT.json
prints: failed=<n> attempts=<n> fault_failed=<n> fault_attempts=<n> detect_max_s=<s> recover_max_s=<s>
        detect=<lb:s,...> recover=<lb:s,...> passed=<true|false>
        unnoticed_failed=<n> unnoticed_attempts=<n> noticed_failed=<n> noticed_attempts=<n>
        (the last four: datagrams before every load balancer noticed a broken UDP server, and
        every attempt after, until the fault ended; 0 when the report predates them)
Exits 1 (with the reason on stderr) when the report lacks a field.
"""

import json
import sys


def main():
    with open(sys.argv[1]) as f:
        doc = json.load(f)
    try:
        r = doc["report"]
        total, fault = r["probe"]["total"], r["probe"]["fault"]
        results = r["results"]
        detect = [(x["lb"], x["detected_ms"] / 1000) for x in results]
        recover = [(x["lb"], x["recovered_ms"] / 1000) for x in results if x.get("recovered_ms") is not None]
        fields = {
            "failed": total["failed"],
            "attempts": total["attempts"],
            "fault_failed": fault["failed"],
            "fault_attempts": fault["attempts"],
            "detect_max_s": f"{max(s for _, s in detect):.2f}",
            "recover_max_s": f"{max(s for _, s in recover):.2f}" if recover else "-",
            "detect": ",".join(f"{lb}:{s:.2f}" for lb, s in detect),
            "recover": ",".join(f"{lb}:{s:.2f}" for lb, s in recover) or "-",
            "passed": str(r["passed"]).lower(),
        }
        for phase in ("unnoticed", "noticed"):
            tally = r["probe"].get(phase, {"failed": 0, "attempts": 0})
            fields[f"{phase}_failed"] = tally["failed"]
            fields[f"{phase}_attempts"] = tally["attempts"]
    except (KeyError, TypeError, ValueError) as e:
        print(f"unexpected failover-test report: missing or bad {e}", file=sys.stderr)
        sys.exit(1)
    print(" ".join(f"{k}={v}" for k, v in fields.items()))


if __name__ == "__main__":
    main()
