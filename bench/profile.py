"""Where one `lbctl apply` spends its time, per host, from `strace -f -tt -e trace=execve`.

usage: profile.py STRACE_FILE JSON_REPORT HOSTS_INI FRESH_LOGIN_S MUX_SESSION_S [MASTERS]

MASTERS, when given, is `ps -eo args` of the SSH masters already running before the traced
run (lbctl reuses them for --ssh-persist seconds): they name the socket and host of sessions
the trace has no master for.

lbctl drives OpenSSH through the openssh crate: per host one master `ssh -M -f` (TCP connect,
key exchange, authentication; its first process exits once the master is up) and then one
short-lived `ssh -S <socket>` client per remote script, multiplexed over the master. Every one
of those is an execve in the trace, with its exit, so the trace shows per host: how long the
connection took, how many scripts ran and how long each took (remote work plus one round trip),
and what is left for lbctl itself (loading, rendering, diffing, waiting its turn).
"""

import json
import re
import sys
from collections import defaultdict

LINE = re.compile(r"^(\d+)\s+(\d\d):(\d\d):(\d\d\.\d+)\s+(.*)$")
EXEC = re.compile(r'execve\("([^"]+)", \[(.*?)\]')
SOCKET = re.compile(r'"-S", "([^"]+)"')
IPV4 = re.compile(r'"(?:[^"@]+@)?(\d+\.\d+\.\d+\.\d+)"')


def seconds(h, m, s):
    return int(h) * 3600 + int(m) * 60 + float(s)


def main():
    trace, report, hosts_ini = sys.argv[1], sys.argv[2], sys.argv[3]
    login, mux = float(sys.argv[4] or 0), float(sys.argv[5] or 0)
    name_of = {}
    with open(hosts_ini) as f:
        for line in f:
            m = re.match(r"^(\S+)\s.*\bansible_host=(\S+)", line)
            if m:
                name_of[m.group(2)] = m.group(1)
    starts, ends, argv = {}, {}, {}
    first = last = None
    with open(trace) as f:
        for raw in f:
            m = LINE.match(raw.rstrip("\n"))
            if not m:
                continue
            pid, rest = int(m.group(1)), m.group(5)
            t = seconds(m.group(2), m.group(3), m.group(4))
            first = t if first is None else first
            last = t
            e = EXEC.search(rest)
            if e:  # the first attempt of a PATH search starts the clock
                starts.setdefault(pid, t)
                argv[pid] = e.group(2)
            elif "+++ exited with" in rest or "+++ killed by" in rest:
                ends[pid] = t
    hosts = {}
    with open(report) as f:
        for h in json.load(f).get("hosts", []):
            hosts[h["host"]] = h
    # every ssh process belongs to one host: a master (-M) names the host and its control
    # socket; a multiplexed client names only the socket
    host_of_socket = {}
    reused = set()
    if len(sys.argv) > 6 and sys.argv[6]:
        with open(sys.argv[6]) as f:
            for line in f:
                words = line.split()
                if "-M" in words and "-S" in words:
                    ips = [w for w in words if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", w)]
                    if ips:
                        host_of_socket[words[words.index("-S") + 1]] = ips[-1]
                        reused.add(ips[-1])
    for pid, args in argv.items():
        sock = SOCKET.search(args)
        ip = IPV4.findall(args)
        if '"-M"' in args and sock and ip:
            host_of_socket[sock.group(1)] = ip[-1]
    per_host = defaultdict(lambda: {"connect": [], "sessions": [], "timeline": [], "span": [None, None]})
    for pid, args in argv.items():
        sock = SOCKET.search(args)
        if not sock or sock.group(1) not in host_of_socket or pid not in ends:
            continue
        addr = host_of_socket[sock.group(1)]
        dur = ends[pid] - starts[pid]
        if '"-O"' in args:  # a control command to the master (e.g. exit), not a script
            kind = "exit"
        elif '"-M"' in args:
            kind = "connect"
        else:
            kind = "sessions"
        per_host[addr].setdefault(kind, []).append(dur)
        per_host[addr]["timeline"].append((starts[pid], dur, kind))
        span = per_host[addr]["span"]
        span[0] = starts[pid] if span[0] is None else min(span[0], starts[pid])
        span[1] = ends[pid] if span[1] is None else max(span[1], ends[pid])
    total = (last - first) if first is not None else 0.0
    kept = len([a for a in per_host if a in reused and not per_host[a]["connect"]])
    print(
        f"trace: {total:.3f}s from lbctl's exec to its exit; {len(per_host)} hosts talked to, "
        f"{kept} over a master connection kept from an earlier run"
    )
    print("per host, times since lbctl started: c=SSH connect (master up), s=script (one multiplexed session), e=master told to exit")
    print(f"{'host':<8} {'in ssh':>7} {'report':>7}  timeline (start+duration, s)")
    connect_sum = session_sum = 0.0
    for addr in sorted(per_host, key=lambda a: per_host[a]["span"][0]):
        d = per_host[addr]
        c = sum(d["connect"])
        s = sum(d["sessions"])
        connect_sum += c
        session_sum += s
        name = name_of.get(addr, addr)
        secs = hosts.get(name, {}).get("seconds")
        line = " ".join(
            f"{k[0]}@{start - first:.3f}+{dur:.3f}" for start, dur, k in sorted(d["timeline"])
        )
        print(f"{name:<8} {c + s:>7.3f} {(f'{secs:.3f}' if secs is not None else '-'):>7}  {line}")
    n = max(len(per_host), 1)
    scripts = sum(len(d["sessions"]) for d in per_host.values())
    print(
        f"sums over hosts: connect {connect_sum:.3f}s ({connect_sum / n:.3f}s per host; a fresh "
        f"`ssh host true` takes {login:.3f}s), {scripts} scripts {session_sum:.3f}s "
        f"({session_sum / max(scripts, 1):.3f}s each; an empty multiplexed session takes {mux:.3f}s)"
    )
    if total > 0:
        busy = max((d["span"][1] for d in per_host.values()), default=first) - min(
            (d["span"][0] for d in per_host.values()), default=first
        )
        print(
            f"wall {total:.3f}s: {busy:.3f}s between the first SSH connect and the last script's end, "
            f"{total - busy:.3f}s in lbctl alone before and after (load, render, diff, report)"
        )

if __name__ == "__main__":
    main()
