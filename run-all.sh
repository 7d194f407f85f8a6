#!/usr/bin/env bash
# The one entry point: install what is missing, build the harness, then hand over to it.
#   ./run-all.sh            the default suite (see ./run-all.sh --help)
#   ./run-all.sh test       every test suite
set -euo pipefail
cd "$(dirname "$0")"

./scripts/setup.sh
echo "run-all: building the harness" >&2
dotnet build harness/src/Bench.Harness/Bench.Harness.csproj -c Release -nologo -v quiet -clp:ErrorsOnly >&2

if [[ "${1:-}" == "test" ]]; then
  shift
  exec ./scripts/test.sh "$@"
fi
BENCH_ROOT="$PWD" exec harness/src/Bench.Harness/bin/Release/net10.0/bench "$@"
