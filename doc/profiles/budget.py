#!/usr/bin/env python3
"""CPU budget of one request, from a CPU profile of package bench's HTTP
benchmarks (doc/profiles/profile.sh runs it).

    go tool pprof -raw BINARY PROFILE | python3 doc/profiles/budget.py REQUESTS

Each sample goes to one part of the request: the first frame, walking from
the leaf towards the root, that names a part. A sample whose stack holds
the benchmark's set-up (registering subjects, opening stores) is left out.
REQUESTS is the number of requests the profile covers (the -benchtime Nx
count, plus the one request of testing's first round), so that each part
is also given in microseconds of CPU per request.
"""
import re
import sys

# (part, frame pattern), tried in this order for each frame from the leaf.
PARTS = [
    ("seal (envelope)", r"^domicile/envelope\."),
    ("key lookup (keyring)", r"^domicile/keyring\.|cell\.\(\*Access\)\.dataKey"),
    ("event and leaf", r"^domicile/leaf\.|^domicile/cell\.Entry$|cell\.\(\*Cell\)\.entries|^domicile\.\(\*Event\)"),
    ("store: group commit (writer)", r"^domicile/(sqlite|pebblestore)\.\(\*Store\)\.(run|writer|checkpointer|commitGroup|apply)"),
    ("store: request's own reads and batch", r"^domicile/(sqlite|pebblestore)\."),
    ("store: engine in the background (WAL writes and fsyncs, flushes, compactions)", r"^github\.com/cockroachdb/pebble/|^modernc\.org/sqlite"),
    ("purpose and gate", r"cell\.\(\*Access\)\.(allow|gate|purpose)|^domicile/transfer\."),
    ("auth (token)", r"httpapi\.\(\*Server\)\.Authenticate"),
    ("request body check (JSON)", r"httpapi\.checkJSON|httpapi\.readBody|^domicile\.\(\*Kind\)\.Check"),
    ("locate (residency)", r"^domicile/residency\."),
    ("cell: rest of the access path", r"^domicile/cell\."),
    ("handler: rest (answer JSON, access line)", r"^domicile/httpapi\."),
    ("HTTP server (net/http)", r"^net/http\.\(\*conn\)\.serve"),
    ("load generator (client)", r"^domicile/client\.|^domicile/bench\.|^net/http\.\(\*persistConn\)|^net/http\.\(\*Transport\)"),
    ("garbage collector (shared with the client)", r"^runtime\.(gcBgMarkWorker|bgsweep|bgscavenge)"),
]
SETUP = re.compile(r"createSubject|newHTTPService|prepareRecords|domicile/(sqlite|pebblestore)\.Open|\.CreateSubject")
STORE = re.compile(r"^domicile/(sqlite|pebblestore)\.")
SERVER_EXCLUDED = {"load generator (client)", "garbage collector (shared with the client)", "other"}


def main():
    requests = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    lines = sys.stdin.read().splitlines()
    i = lines.index("Locations")
    samples = []
    for l in lines[:i]:
        m = re.match(r"\s*(\d+)\s+\d+:\s*(.*)$", l)
        if m:
            samples.append((int(m.group(1)), [int(x) for x in m.group(2).split()]))
    funcs = {}
    cur = None
    for l in lines[i + 1:]:
        m = re.match(r"\s*(\d+): 0x[0-9a-f]+ M=\d+ (\S+)", l)
        if m:
            cur = int(m.group(1))
            funcs[cur] = [m.group(2)]
            continue
        m = re.match(r"\s+(\S+) \S+:\d+:\d+ s=\d+$", l)
        if m and cur is not None:
            funcs[cur].append(m.group(1))
        elif not l.startswith(" "):
            cur = None
    pats = [(p, re.compile(r)) for p, r in PARTS]
    counts = {}
    setup = 0
    total = 0
    for n, stack in samples:
        total += n
        # Within a location the first name is the innermost (inlined) one.
        frames = [f for loc in stack for f in funcs.get(loc, [])]
        if any(SETUP.search(f) for f in frames):
            setup += n
            continue
        part = "other"
        for f in frames:
            hit = next((p for p, r in pats if r.search(f)), None)
            if hit:
                part = hit
                break
        if part.startswith("store: engine"):
            # The engine's work inside a store call is that call's: the
            # single writer's group commit, or a request's own read or
            # batch.
            for f in frames:
                if STORE.search(f):
                    part = next(p for p, r in pats if r.search(f))
                    break
        counts[part] = counts.get(part, 0) + n
    server = sum(v for k, v in counts.items() if k not in SERVER_EXCLUDED)
    period_us = 10_000  # pprof's default sampling period, 10 ms
    print(f"samples {total}, set-up left out {setup}, server {server}; requests {requests}")
    print()
    print("| part | share of the server's CPU | µs per request |")
    print("|---|---|---|")
    order = [p for p, _ in PARTS] + ["other"]
    for p in order:
        if p not in counts:
            continue
        share = f"{100 * counts[p] / server:.1f}%" if p not in SERVER_EXCLUDED else "—"
        us = f"{counts[p] * period_us / requests:.1f}" if requests else "—"
        print(f"| {p} | {share} | {us} |")
    if requests:
        print(f"| **server total** | 100% | **{server * period_us / requests:.1f}** |")


if __name__ == "__main__":
    main()
