#!/usr/bin/env bash
# A quick pinned measurement outside the harness: server on cpu 0, load on cpu 1, a warm-up
# run first (the JIT needs it), then the measured run, with server CPU per call from /proc.
#   ./measure.sh [--server "ARGS"] [--server-bin PATH] [--client-bin PATH] [--warmup S]
#                [--h2load [--curve S]] [--profile] -- CLIENT-ARGS...
# --curve S: from a cold server, S consecutive 1 s h2load windows, each with its rate and
# server CPU per call (how long the JIT takes to settle), instead of warm-up + 5 s.
# --profile: perf-record the server over the measured run and print where its CPU went, layer by
# layer (profile-layers.py); the server then runs with its JIT's perf map on and W^X off.
# Example: ./measure.sh --server "--defaults" -- --in-flight 64 --duration 5
# (client: --in-flight N calls in flight, --connections N HTTP/2 connections)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
server_bin=$here/Grpc.Server/bin/Release/net10.0/csharp-grpc-server
client_bin=$here/Grpc.Client/bin/Release/net10.0/csharp-grpc-client
server_args="" warmup=10 h2load=0 curve=0 profile=0
while [[ $# -gt 0 && $1 != -- ]]; do
  case $1 in
    --server) server_args=$2; shift 2 ;;
    --server-bin) server_bin=$2; shift 2 ;;
    --client-bin) client_bin=$2; shift 2 ;;
    --curve) curve=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --h2load) h2load=1; shift ;;
    --profile) profile=1; shift ;;
    *) echo "measure.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ ${1:-} == -- ]] && shift

out=$(mktemp -d)
if ((profile)); then
  command -v perf >/dev/null || { echo "measure.sh: --profile needs perf (apt install linux-perf)" >&2; exit 2; }
  export DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0
fi
# shellcheck disable=SC2086
taskset -c 0 "$server_bin" $server_args >"$out/ready" 2>"$out/server.err" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$out"' EXIT
for _ in $(seq 100); do grep -q READY "$out/ready" && break; sleep 0.1; done
read -r _ transport address <"$out/ready"
if [[ $transport == tcp ]]; then target=(--port "${address##*:}"); else target=(--unix "$address"); fi

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
profile_hz=5000
# perf record on the server from here until profile_end; nothing when --profile is off.
profile_start() { ((profile)) || return 0; perf record -q -e cpu-clock -F $profile_hz -g -p "$server" -o "$out/perf.data" 2>/dev/null & recorder=$!; sleep 0.2; }
profile_end() { ((profile)) || return 0; kill -INT "$recorder"; wait "$recorder" || true; "$here/profile-layers.py" "$out/perf.data" "$1" $profile_hz; }

if ((h2load)); then
  # The length-prefixed EchoRequest h2load sends: 100 bytes of the client's pattern.
  python3 -c "
p = bytes(i % 251 for i in range(100)); m = b'\x0a' + bytes([len(p)]) + p
open('$out/body', 'wb').write(b'\x00' + len(m).to_bytes(4, 'big') + m)"
  url=http://${address}/bench.Echo/Unary
  load() { taskset -c 1 h2load -D "$1" -c 2 -m 100 -H 'content-type: application/grpc' -H 'te: trailers' -d "$out/body" "$url"; }
  if ((curve)); then
    for second in $(seq "$curve"); do
      before=$(cpu_ticks $server)
      load 1 >"$out/load"
      after=$(cpu_ticks $server)
      awk -v s="$second" -v t=$((after - before)) -v hz="$hz" '
        /^finished in/ { rate = $4 } /^requests:/ { ok = $8 }
        END { if (ok > 0) printf "  %3d s  %8.0f req/s  %5.1f us of server cpu per call\n", s, rate, t / hz * 1e6 / ok }' "$out/load"
    done
    exit 0
  fi
  load "$warmup" >/dev/null
  profile_start
  before=$(cpu_ticks $server)
  load 5 | tee "$out/load" | grep -E "finished in|requests:"
  ok=$(awk '/^requests:/ {print $8}' "$out/load")
else
  taskset -c 1 "$client_bin" "${target[@]}" "$@" --duration "$warmup" >/dev/null
  profile_start
  before=$(cpu_ticks $server)
  taskset -c 1 "$client_bin" "${target[@]}" "$@" | tee "$out/load" | grep -vE "^(  total|  success|  warm-up|C# gRPC:)"
  ok=$(grep -o 'RESULT ok=[0-9]*' "$out/load" | cut -d= -f2)
fi
after=$(cpu_ticks $server)
awk -v t=$((after - before)) -v hz="$hz" -v ok="$ok" \
  'BEGIN { if (ok > 0) printf "  server cpu    %.1f us per call (%d requests)\n", t / hz * 1e6 / ok, ok }'
profile_end "$ok"
