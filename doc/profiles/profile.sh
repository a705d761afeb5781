#!/usr/bin/env bash
# Profiles of domicile's record write and read paths, the commands behind
# the hot spots named in doc/performance.md. The service runs in-process
# (httpapi, router, cell, SQLite store, as cmd/domicile wires them) under
# the Go benchmarks of package bench, so the profiles hold the server's
# work without the load generator's. Run from the repository root:
#
#	bash doc/profiles/profile.sh            # writes doc/profiles/*.pprof and *.top.txt
#
# Then, for example:
#
#	go tool pprof -top -nodecount 40 doc/profiles/bench.test doc/profiles/http-put.cpu.pprof
#	go tool pprof -http :8080 doc/profiles/bench.test doc/profiles/http-get.cpu.pprof
set -euo pipefail
cd "$(dirname "$0")/../.."
out=doc/profiles
go test -c -o "$out/bench.test" ./bench/
prof() { # name benchmark-regexp
	"$out/bench.test" -test.run '^$' -test.bench "$2" -test.benchtime 5s -test.cpuprofile "$out/$1.cpu.pprof" >"$out/$1.bench.txt"
	go tool pprof -top -nodecount 35 "$out/bench.test" "$out/$1.cpu.pprof" >"$out/$1.top.txt" 2>/dev/null
	go tool pprof -top -cum -nodecount 45 "$out/bench.test" "$out/$1.cpu.pprof" >"$out/$1.cum.txt" 2>/dev/null
}
prof http-put 'HTTPPutRecord$'
prof http-get 'HTTPGetRecord$'
prof cell-put 'CellPutRecord$'
prof cell-get 'CellGetRecord$'
prof raw-put 'RawStorePut$'
rm -f "$out/bench.test"
