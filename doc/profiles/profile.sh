#!/usr/bin/env bash
# Profiles of domicile's record write and read paths, the commands behind
# the hot spots named in doc/performance.md. The service runs in-process
# (httpapi, router, cell, SQLite store, as cmd/domicile wires them) under
# the Go benchmarks of package bench, so the profiles hold the server's
# work without the load generator's. Run from the repository root:
#
#	bash doc/profiles/profile.sh            # writes doc/profiles/*.pprof, *.top.txt, http-*.budget.txt
#	PREFIX=after- HTTP_ONLY=1 bash doc/profiles/profile.sh
#
# Then, for example:
#
#	go tool pprof -top -nodecount 40 doc/profiles/bench.test doc/profiles/http-put.cpu.pprof
#	go tool pprof -http :8080 doc/profiles/bench.test doc/profiles/http-get.cpu.pprof
set -euo pipefail
cd "$(dirname "$0")/../.."
out=doc/profiles
go test -c -o "$out/bench.test" ./bench/
# PREFIX names the files (the budget tables of doc/performance.md compare
# "before" and "after"); DOMICILE_BENCH_STORE picks the store (sqlite or
# pebble) of the in-process benchmarks.
prefix=${PREFIX:-}
prof() { # name benchmark-regexp requests
	# A fixed count (Nx) runs the benchmark once with N=1, then with N:
	# the profile covers N+1 requests, which budget.py divides by.
	"$out/bench.test" -test.run '^$' -test.bench "$2" -test.benchtime "$3x" -test.cpuprofile "$out/$prefix$1.cpu.pprof" >"$out/$prefix$1.bench.txt"
	go tool pprof -top -nodecount 35 "$out/bench.test" "$out/$prefix$1.cpu.pprof" >"$out/$prefix$1.top.txt" 2>/dev/null
	go tool pprof -top -cum -nodecount 45 "$out/bench.test" "$out/$prefix$1.cpu.pprof" >"$out/$prefix$1.cum.txt" 2>/dev/null
	case $1 in http-*)
		go tool pprof -raw "$out/bench.test" "$out/$prefix$1.cpu.pprof" 2>/dev/null | python3 "$out/budget.py" $(($3 + 1)) >"$out/$prefix$1.budget.txt"
	esac
}
prof http-put 'HTTPPutRecord$' ${PUTS:-20000}
prof http-get 'HTTPGetRecord$' ${GETS:-30000}
if [ -z "${HTTP_ONLY:-}" ]; then
	prof cell-put 'CellPutRecord$' 20000
	prof cell-get 'CellGetRecord$' 30000
	prof raw-put 'RawStorePut$' 30000
fi
rm -f "$out/bench.test"
