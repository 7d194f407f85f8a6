#!/usr/bin/env bash
# Runs every C# test project in the repository (each ends in .Tests.csproj) and prints one
# closing line for the whole: 'N passed, N failed'. The harness's tests build every
# implementation from source first, as a fresh machine would.
set -uo pipefail
cd "$(dirname "$0")/.."

mapfile -t projects < <(find . -name '*.Tests.csproj' -not -path '*/bin/*' -not -path '*/obj/*' | sort)
passed=0 failed=0 broken=0
for project in "${projects[@]}"; do
  echo "test: $project" >&2
  log=$(mktemp)
  dotnet test "$project" -c Release -nologo --logger "console;verbosity=normal" "$@" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  # vstest's closing block: 'Total tests: N', then '     Passed: N' and '     Failed: N' where non-zero.
  read -r p f < <(awk '/^Total tests:/ {seen=1; p=0; f=0} seen && /^ +Passed: / {p=$2} seen && /^ +Failed: / {f=$2} END {print p+0, f+0}' "$log")
  passed=$((passed + p)) failed=$((failed + f))
  if [[ $status -ne 0 && $f -eq 0 ]]; then
    broken=$((broken + 1))
    echo "test: $project did not build or run (exit $status)" >&2
  fi
  rm -f "$log"
done
echo "${passed} passed, $((failed + broken)) failed"
[[ $failed -eq 0 && $broken -eq 0 && ${#projects[@]} -gt 0 ]]
