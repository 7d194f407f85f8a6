#!/usr/bin/env bash
# The one entry point: install what is missing, build the harness, then hand over to it.
#   ./run-all.sh            the default suite (see ./run-all.sh --help)
#   ./run-all.sh test       every test suite
#   ./run-all.sh fuzz [TARGET] [--seconds S]   afl-fuzz on the readers of hostile input (scripts/fuzz.sh)
#   ./run-all.sh testbed up [--hosts N] [--rate RATE] | down   hosts in network namespaces on this machine (scripts/testbed.sh)
set -euo pipefail
cd "$(dirname "$0")"
# rustup installs cargo per user; a login shell has it on PATH, CI's environment may not.
if [[ -d "$HOME/.cargo/bin" ]]; then PATH="$HOME/.cargo/bin:$PATH"; fi

./scripts/setup.sh
# The test bed is a script of its own: it needs no harness.
if [[ "${1:-}" == "testbed" ]]; then
  shift
  exec ./scripts/testbed.sh "$@"
fi
echo "run-all: building the harness" >&2
dotnet build harness/src/Bench.Harness/Bench.Harness.csproj -c Release -nologo -v quiet -clp:ErrorsOnly >&2

if [[ "${1:-}" == "test" ]]; then
  shift
  exec ./scripts/test.sh "$@"
fi
if [[ "${1:-}" == "fuzz" ]]; then
  shift
  exec ./scripts/fuzz.sh "$@"
fi
BENCH_ROOT="$PWD" exec harness/src/Bench.Harness/bin/Release/net10.0/bench "$@"
