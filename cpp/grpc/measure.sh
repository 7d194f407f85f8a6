#!/usr/bin/env bash
# A quick pinned measurement outside the harness: the server on cpu0, the load on cpu1, the
# server's CPU time per call read from /proc over the client's measured window.
#   ./measure.sh [--server-args "ARGS"] [--h2load] [-- CLIENT ARGS...]
#   ./measure.sh --server-args "--api callback" -- --workload grpc-unary --in-flight 200 --duration 5
# Needs the built server (cmake --build build) and the prebuilt C# lean client of the main
# checkout (or CLIENT=path); --h2load drives the server with h2load through the harness's adapter.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
main=${BENCH_MAIN:-/work/main}
client=${CLIENT:-$main/csharp/Grpc/Grpc.Client/bin/Release/net10.0/csharp-grpc-client}
bench=${BENCH:-$main/harness/src/Bench.Harness/bin/Release/net10.0/bench}
server_args=""
h2load=0
while [ $# -gt 0 ]; do
  case "$1" in
    --server-args) server_args=$2; shift 2 ;;
    --h2load) h2load=1; shift ;;
    --) shift; break ;;
    *) echo "measure.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

out=$(mktemp); err=$(mktemp)
# shellcheck disable=SC2086
taskset -c 0 "$here/build/cpp-grpc-server" $server_args >"$out" 2>"$err" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$out" "$err"' EXIT
for _ in $(seq 200); do grep -q READY "$out" && break; sleep 0.05; done
port=$(sed -n 's/^READY tcp .*:\([0-9]*\)$/\1/p' "$out")
[ -n "$port" ] || { cat "$err" >&2; exit 1; }

# On-CPU and run-queue-wait nanoseconds of every thread of the server (schedstat's first two
# fields): a long wait means the core was busy with someone else, and the rate says little.
server_cpu_ns() { cat /proc/$server/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%d", s}'; }
server_wait_ns() { cat /proc/$server/task/*/schedstat 2>/dev/null | awk '{s += $2} END {printf "%d", s}'; }

result=$(mktemp)
before=$(server_cpu_ns); waited=$(server_wait_ns)
if [ $h2load = 1 ]; then
  BENCH_ROOT=$main taskset -c 1 "$bench" load-tool h2load --host 127.0.0.1 --port "$port" \
    --workload grpc-unary --connections 2 --in-flight 200 --duration 5 "$@" | tee "$result" | grep RESULT
else
  taskset -c 1 "$client" --host 127.0.0.1 --port "$port" "$@" | tee "$result" | grep RESULT
fi
after=$(server_cpu_ns); waited=$(( $(server_wait_ns) - waited ))
ok=$(sed -n 's/^RESULT ok=\([0-9]*\).*/\1/p' "$result")
wall=$(sed -n 's/.* wall_ns=\([0-9]*\).*/\1/p' "$result")
awk -v ok="$ok" -v wall="$wall" -v cpu=$((after - before)) -v wait="$waited" 'BEGIN {
  printf "rate %.0f/s, server CPU %.2f us per call (over the client run: on CPU %.0f%%, waiting for it %.0f%%)\n",
         ok / (wall / 1e9), cpu / 1000 / ok, 100 * cpu / wall, 100 * wait / wall }'
rm -f "$result"
