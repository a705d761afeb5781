#!/usr/bin/env bash
# Starts a deployment of cell processes on this machine, as local.yaml
# beside this script describes it: the router on 127.0.0.1:8700 and the
# cells cn-gz1, eu-fra1 and us-east1 on 127.0.0.1:8701-8703, each process
# with its own data directory under DIR (default ./data-topology) and its
# output in DIR/<name>.log. Ctrl-C stops all four; so does any one of
# them stopping.
#
#   examples/topology/run.sh [DIR]
#
# The router starts first: it makes the control store and the directory
# key that the cells share (--control). In production each cell runs in
# its own jurisdiction instead (doc/deploy.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${1:-./data-topology}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
dep="$here/local.yaml"
bin="$dir/domicile"
(cd "$root" && go build -o "$bin" ./cmd/domicile)

pids=()
stop() {
	trap - EXIT INT TERM
	[ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
	wait || true
}
trap stop EXIT INT TERM

"$bin" serve --router --deployment "$dep" --data "$dir/router" --addr 127.0.0.1:8700 >"$dir/router.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
	[ -s "$dir/router/admin.token" ] && break
	sleep 0.1
done
if [ ! -s "$dir/router/admin.token" ]; then
	echo "the router did not start; see $dir/router.log" >&2
	exit 1
fi
for cell in cn-gz1 eu-fra1 us-east1; do
	"$bin" serve --cell "$cell" --deployment "$dep" --data "$dir/$cell" --control "$dir/router" >"$dir/$cell.log" 2>&1 &
	pids+=($!)
done

cat <<MSG
domicile: router on http://127.0.0.1:8700, cells cn-gz1, eu-fra1, us-east1 on 127.0.0.1:8701-8703
  data and logs: $dir/{router,cn-gz1,eu-fra1,us-east1}{,.log}
  admin token:   ADMIN=\$(cat $dir/router/admin.token)
  then follow the README's walk-through against http://127.0.0.1:8700
Ctrl-C stops all four.
MSG
wait -n
