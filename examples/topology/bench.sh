#!/usr/bin/env bash
# Measures writes and reads through the router of a deployment of cell
# processes beside the same mixes against the embedded runtime (one
# process, every cell), interleaved, ROUNDS times (default 3), and prints
# one line per run and the ratio router / embedded of each round.
#
#   examples/topology/bench.sh [ROUNDS] [DURATION] [WORKERS]
#
# Each router run starts a fresh router and three cells (local.yaml's
# deployment, on the ports PORT..PORT+3, default 18700) in a temporary
# directory, makes an app token through the router, and drives it with
# `domicile bench --server`; each embedded run is `domicile bench
# --local`. Everything shares this machine's CPUs, as doc/performance.md
# says. BIN overrides the binary (default: built from this checkout).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rounds=${1:-3}
duration=${2:-8s}
workers=${3:-64}
port=${PORT:-18700}
work=$(mktemp -d)
bin=${BIN:-}
if [ -z "$bin" ]; then
	bin="$work/domicile"
	(cd "$root" && go build -o "$bin" ./cmd/domicile)
fi
pids=()
stop() {
	[ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
	wait 2>/dev/null || true
	pids=()
}
trap 'stop; rm -rf "$work"' EXIT INT TERM

# topology starts the router and three cells in $work/top, and sets APP.
topology() {
	rm -rf "$work/top"
	mkdir -p "$work/top"
	sed -e "s/127.0.0.1:8701/127.0.0.1:$((port + 1))/; s/127.0.0.1:8702/127.0.0.1:$((port + 2))/; s/127.0.0.1:8703/127.0.0.1:$((port + 3))/" \
		"$here/local.yaml" >"$work/top/local.yaml"
	"$bin" serve --router --deployment "$work/top/local.yaml" --data "$work/top/router" --addr "127.0.0.1:$port" >"$work/top/router.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 1 100); do [ -s "$work/top/router/admin.token" ] && break; sleep 0.1; done
	for cell in cn-gz1 eu-fra1 us-east1; do
		"$bin" serve --cell "$cell" --deployment "$work/top/local.yaml" --data "$work/top/$cell" --control "$work/top/router" >"$work/top/$cell.log" 2>&1 &
		pids+=($!)
	done
	for p in 1 2 3; do
		for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$((port + p))/healthz" >/dev/null && break; sleep 0.1; done
	done
	APP=$(curl -fs -X POST "http://127.0.0.1:$port/v1/tokens" -H "Authorization: Bearer $(cat "$work/top/router/admin.token")" \
		-H 'Content-Type: application/json' -d '{"role":"app","jurisdiction":"CN"}' | jq -r .token)
}

# run TARGET MIX prints the throughput of one run.
run() {
	local out="$work/$1-$2.json"
	if [ "$1" = router ]; then
		topology
		"$bin" bench --server "http://127.0.0.1:$port" --token "$APP" --mix "$2" --workers "$workers" --duration "$duration" --warmup 3s --json "$out" >/dev/null 2>"$work/bench.err" || { cat "$work/bench.err" "$work/top/"*.log >&2; exit 1; }
		stop
	else
		"$bin" bench --local --binary "$bin" --mix "$2" --workers "$workers" --duration "$duration" --warmup 3s --json "$out" >/dev/null 2>"$work/bench.err" || { cat "$work/bench.err" "$work/top/"*.log >&2; exit 1; }
	fi
	jq -r '.runs[-1] | "\(.ops_per_second) \(.server.cpu_us_per_op // 0)"' "$out"
}

for r in $(seq 1 "$rounds"); do
	for mix in write read; do
		e=$(run embedded "$mix"); x=$(run router "$mix")
		et=${e%% *}; xt=${x%% *}
		printf 'round %d %-5s embedded %6.0f/s (%4.0f µs cpu/req)  router %6.0f/s (router %4.0f µs cpu/req)  ratio %.2f\n' "$r" "$mix" "$et" "${e#* }" "$xt" "${x#* }" "$(echo "$xt / $et" | bc -l)"
	done
done
