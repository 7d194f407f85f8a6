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
  # The runner's own closing line, e.g. 'Passed!  - Failed: 0, Passed: 12, Skipped: 0, Total: 12'
  line=$(grep -E '(Passed|Failed)! +- Failed: +[0-9]+, Passed: +[0-9]+' "$log" | tail -1)
  if [[ -n "$line" ]]; then
    failed=$((failed + $(sed -E 's/.*Failed: +([0-9]+).*/\1/' <<<"$line")))
    passed=$((passed + $(sed -E 's/.*Passed: +([0-9]+).*/\1/' <<<"$line")))
  fi
  if [[ $status -ne 0 && -z "$line" ]]; then broken=$((broken + 1)); echo "test: $project did not build or run" >&2; fi
  if [[ $status -ne 0 && -n "$line" && $(sed -E 's/.*Failed: +([0-9]+).*/\1/' <<<"$line") -eq 0 ]]; then broken=$((broken + 1)); fi
  rm -f "$log"
done
echo "${passed} passed, $((failed + broken)) failed"
[[ $failed -eq 0 && $broken -eq 0 && ${#projects[@]} -gt 0 ]]
