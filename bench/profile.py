"""Where one `lbctl apply` spends its time, per host, from its own `--json` report.

usage: profile.py JSON_REPORT WALL_S FRESH_LOGIN_S MUX_SESSION_S

lbctl times every host's steps itself (`timing` in the report): the SSH connect (next to
nothing when an earlier run's master was kept, --ssh-persist), the fetch script's round trip,
then for a changed host the check phase (stage and check on the host, until it is ready) and
the apply phase (from the go-ahead: swap, reload, verify). `prepare_seconds` is lbctl's own
work before any host (load, render). WALL_S is the run's wall time measured outside.
"""

import json
import sys


def main():
    report, wall = sys.argv[1], float(sys.argv[2])
    login, mux = float(sys.argv[3] or 0), float(sys.argv[4] or 0)
    with open(report) as f:
        data = json.load(f)
    hosts = data.get("hosts", [])
    prepare = data.get("prepare_seconds", 0.0)
    print(f"wall {wall:.3f}s; lbctl before any host (load, render): {prepare:.3f}s")
    print(f"{'host':<10} {'vip':<4} {'conn':>7} {'kept':<5} {'fetch':>7} {'check':>7} {'apply':>7}")
    sums = {"connect": 0.0, "fetch": 0.0, "check": 0.0, "apply": 0.0}
    kept = 0
    slowest = {"connect+fetch": 0.0, "check": 0.0}
    for h in hosts:
        t = h.get("timing", {})
        c, f = t.get("connect", 0.0), t.get("fetch", 0.0)
        chk, app = t.get("check"), t.get("apply")
        kept += bool(t.get("reused_connection"))
        sums["connect"] += c
        sums["fetch"] += f
        sums["check"] += chk or 0.0
        sums["apply"] += app or 0.0
        slowest["connect+fetch"] = max(slowest["connect+fetch"], c + f)
        slowest["check"] = max(slowest["check"], chk or 0.0)
        fmt = lambda v: f"{v:.3f}" if v is not None else "-"
        print(
            f"{h['host']:<10} {'yes' if h.get('holds_vip') else '':<4} {c:>7.3f} "
            f"{'yes' if t.get('reused_connection') else 'no':<5} {f:>7.3f} {fmt(chk):>7} {fmt(app):>7}"
        )
    n = max(len(hosts), 1)
    print(
        f"per host (mean of {len(hosts)}): connect {sums['connect'] / n:.3f}s "
        f"({kept} of {len(hosts)} over a kept master; a fresh `ssh host true` takes {login:.3f}s), "
        f"fetch {sums['fetch'] / n:.3f}s, check {sums['check'] / n:.3f}s, apply {sums['apply'] / n:.3f}s "
        f"(an empty command over an open master takes {mux:.3f}s)"
    )
    print(
        f"critical path: prepare {prepare:.3f}s + slowest connect+fetch {slowest['connect+fetch']:.3f}s "
        f"+ slowest check {slowest['check']:.3f}s + waves of apply; "
        f"the rest of the wall ({max(wall - prepare - slowest['connect+fetch'] - slowest['check'], 0):.3f}s) "
        "is the waves, the plan output and process start and exit"
    )


if __name__ == "__main__":
    main()
