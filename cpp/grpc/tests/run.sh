#!/usr/bin/env bash
# Behaviour tests of cpp-grpc-server as the harness sees it: arguments, READY line, bind
# errors, Unix sockets, thread count from the affinity mask, SIGTERM/SIGINT, and the protocol
# checks of cpp-grpc-check (health, echo sizes and limit, stream order, signatures) over TCP
# and Unix, for both APIs. Builds what it needs. Run from anywhere: cpp/grpc/tests/run.sh
# A load during SIGTERM needs the C# lean client (CLIENT=path, default: the main checkout's
# build); without it that test is skipped and says so.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null &&
  cmake --build build --parallel >/dev/null &&
  cmake --build build --target cpp-grpc-check >/dev/null || { echo "build failed"; exit 1; }
server=build/cpp-grpc-server
check=build/cpp-grpc-check
client=${CLIENT:-/work/main/csharp/Grpc/Grpc.Client/bin/Release/net10.0/csharp-grpc-client}
scratch=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$scratch"' EXIT
failed=0
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }

# start_server NAME ARGS...: runs the server in the background; sets pid and ready.
start_server() {
  local name=$1; shift
  : >"$scratch/$name.out"  # exists before the background shell opens it
  "$@" >"$scratch/$name.out" 2>"$scratch/$name.err" &
  pid=$!
  ready=""
  for _ in $(seq 300); do
    ready=$(head -n1 "$scratch/$name.out")
    [ -n "$ready" ] && return 0
    kill -0 $pid 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# stop_server SIGNAL: sends it, waits; sets rc and ms (how long the exit took).
stop_server() {
  local t0 t1
  t0=$(date +%s%N)
  kill -"$1" $pid
  wait $pid
  rc=$?
  t1=$(date +%s%N)
  ms=$(( (t1 - t0) / 1000000 ))
}

# Arguments.
for args in "--bogus" "--port 70000" "--port" "--api fast" "--threads 0" "--unix /tmp/x.sock --port 1" "--host="; do
  # shellcheck disable=SC2086
  $server $args >"$scratch/args.out" 2>"$scratch/args.err"
  code=$?
  lines=$(wc -l <"$scratch/args.err")
  if [ $code = 2 ] && [ "$lines" = 1 ] && grep -q '^cpp-grpc-server: ' "$scratch/args.err" && [ ! -s "$scratch/args.out" ]; then
    pass "'$args' is exit 2 with one line: $(cat "$scratch/args.err")"
  else
    fail "'$args': exit $code, stderr: $(cat "$scratch/args.err")"
  fi
done
$server --help >"$scratch/help.out" 2>&1 && grep -q '^usage:' "$scratch/help.out" && pass "--help prints the usage, exit 0" || fail "--help"

for api in async callback; do
  # TCP: READY, protocol checks, SIGTERM.
  if start_server tcp $server --api $api; then
    if [[ "$ready" =~ ^READY\ tcp\ 127\.0\.0\.1:([0-9]+)$ ]] && [ "$(wc -l <"$scratch/tcp.out")" = 1 ]; then
      port=${BASH_REMATCH[1]}
      pass "$api: $ready"
      if $check "127.0.0.1:$port" >"$scratch/check.out" 2>&1; then
        pass "$api: cpp-grpc-check over TCP: $(tail -n1 "$scratch/check.out")"
      else
        fail "$api: cpp-grpc-check over TCP:"; grep -v '^ok' "$scratch/check.out"
      fi
      # A second server on the same port.
      $server --port "$port" >/dev/null 2>"$scratch/busy.err"
      code=$?
      [ $code = 1 ] && grep -q "cpp-grpc-server: cannot listen on 127.0.0.1:$port: Address already in use" "$scratch/busy.err" &&
        pass "$api: port in use is exit 1: $(tail -n1 "$scratch/busy.err")" || fail "$api: port in use: exit $code, $(cat "$scratch/busy.err")"
    else
      fail "$api: ready line '$ready'"
    fi
    stop_server TERM
    [ $rc = 0 ] && [ $ms -lt 1000 ] && pass "$api: SIGTERM idle: exit 0 in $ms ms" || fail "$api: SIGTERM idle: exit $rc in $ms ms"
  else
    fail "$api: no ready line: $(cat "$scratch/tcp.err")"
  fi

  # Unix socket: READY, checks, live socket refused, removed at exit, stale socket replaced.
  sock="$scratch/$api.sock"
  if start_server unix $server --api $api --unix "$sock"; then
    [ "$ready" = "READY unix $sock" ] && pass "$api: $ready" || fail "$api: ready line '$ready'"
    if $check "unix:$sock" >"$scratch/check.out" 2>&1; then
      pass "$api: cpp-grpc-check over a Unix socket: $(tail -n1 "$scratch/check.out")"
    else
      fail "$api: cpp-grpc-check over a Unix socket:"; grep -v '^ok' "$scratch/check.out"
    fi
    $server --unix "$sock" >/dev/null 2>"$scratch/busy.err"
    code=$?
    [ $code = 1 ] && pass "$api: a live socket is exit 1: $(cat "$scratch/busy.err")" || fail "$api: live socket: exit $code"
    stop_server INT
    [ $rc = 0 ] && [ $ms -lt 1000 ] && pass "$api: SIGINT: exit 0 in $ms ms" || fail "$api: SIGINT: exit $rc in $ms ms"
    [ ! -e "$sock" ] && pass "$api: socket file removed at exit" || fail "$api: socket file left behind"
  else
    fail "$api: unix: no ready line: $(cat "$scratch/unix.err")"
  fi
done

/usr/bin/python3 -c "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])" "$scratch/stale.sock"
if start_server stale $server --unix "$scratch/stale.sock" && [ "$ready" = "READY unix $scratch/stale.sock" ]; then
  pass "a stale socket file (nobody answering) is replaced"
  stop_server TERM
else
  fail "stale socket: $(cat "$scratch/stale.err")"
fi
touch "$scratch/plain"
$server --unix "$scratch/plain" >/dev/null 2>"$scratch/plain.err"
code=$?
[ $code = 1 ] && [ -f "$scratch/plain" ] && pass "a path that is not a socket is exit 1 and left alone: $(cat "$scratch/plain.err")" ||
  fail "not a socket: exit $code"

# One completion-queue thread per CPU of the affinity mask.
cpus=$(nproc)
for mask in 0 "0-$((cpus - 1))"; do
  want=$(taskset -c "$mask" nproc)
  if start_server affinity taskset -c "$mask" $server; then
    got=$(cat /proc/$pid/task/*/comm | grep -c '^cq-')
    [ "$got" = "$want" ] && pass "taskset -c $mask: $got completion-queue thread(s)" || fail "taskset -c $mask: $got cq threads, want $want"
    stop_server TERM
  else
    fail "taskset -c $mask: no ready line"
  fi
done

# SIGTERM under load: streams and unary calls running.
if [ -x "$client" ]; then
  for workload in grpc-stream grpc-unary; do
    start_server load $server || { fail "load: no ready line"; continue; }
    port=${ready##*:}
    "$client" --port "$port" --workload $workload --in-flight 64 --duration 20 >"$scratch/load.out" 2>&1 &
    load=$!
    sleep 2
    stop_server TERM
    kill $load 2>/dev/null; wait $load 2>/dev/null
    [ $rc = 0 ] && [ $ms -lt 1000 ] && pass "SIGTERM under $workload load: exit 0 in $ms ms" ||
      fail "SIGTERM under $workload load: exit $rc in $ms ms; $(cat "$scratch/load.err" 2>/dev/null)"
  done
else
  echo "skip SIGTERM under load: no lean client at $client (set CLIENT=)"
fi

# The shutdown watchdog must never have been what ended a server.
if grep -l "exiting anyway" "$scratch"/*.err >/dev/null 2>&1; then
  fail "the shutdown watchdog fired: $(grep -h "exiting anyway" "$scratch"/*.err | head -n1)"
else
  pass "no shutdown needed the watchdog"
fi

[ $failed = 0 ] && echo "all passed" || echo "FAILED: $failed"
[ $failed = 0 ]
