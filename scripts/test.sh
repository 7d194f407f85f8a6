#!/usr/bin/env bash
# Runs every test suite in the repository and prints one closing line for the whole:
# 'N passed, N failed'. The suites: every C# test project (each ends in .Tests.csproj; the
# harness's tests build every implementation from source first, as a fresh machine would), the
# Rust tests (cargo test in rust/ and rust/grpc/), the Python unittest suites (python/, python/grpc/) and the Go
# tests (go/grpc/). Arguments go to
# each 'dotnet test'. A suite that fails to build or run counts as one failed.
set -uo pipefail
cd "$(dirname "$0")/.."
# rustup installs cargo per user; a login shell has it on PATH, CI's environment may not.
if [[ -d "$HOME/.cargo/bin" ]]; then PATH="$HOME/.cargo/bin:$PATH"; fi

passed=0 failed=0 broken=0

# Adds one suite's counts: its exit status, then its passed and failed tests as parsed from its output.
tally() {
  local name=$1 status=$2 p=$3 f=$4
  passed=$((passed + p)) failed=$((failed + f))
  if [[ $status -ne 0 && $f -eq 0 ]]; then
    broken=$((broken + 1))
    echo "test: $name did not build or run (exit $status)" >&2
  fi
}

mapfile -t projects < <(find . -name '*.Tests.csproj' -not -path '*/bin/*' -not -path '*/obj/*' | sort)
for project in "${projects[@]}"; do
  echo "test: $project" >&2
  log=$(mktemp)
  dotnet test "$project" -c Release -nologo --logger "console;verbosity=normal" "$@" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  # vstest's closing block: 'Total tests: N', then '     Passed: N' and '     Failed: N' where non-zero.
  read -r p f < <(awk '/^Total tests:/ {seen=1; p=0; f=0} seen && /^ +Passed: / {p=$2} seen && /^ +Failed: / {f=$2} END {print p+0, f+0}' "$log")
  tally "$project" "$status" "$p" "$f"
  rm -f "$log"
done

for folder in rust rust/grpc; do
  echo "test: $folder (cargo test)" >&2
  if command -v cargo >/dev/null; then
    log=$(mktemp)
    (cd "$folder" && cargo test --release --offline --no-fail-fast) 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    # One line per test binary (doc tests too): 'test result: ok. 5 passed; 0 failed; 0 ignored; ...'.
    read -r p f < <(awk '/^test result: / {for (i = 1; i < NF; i++) {if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i}} END {print p+0, f+0}' "$log")
    tally "$folder" "$status" "$p" "$f"
    rm -f "$log"
  else
    tally "$folder (cargo is not on PATH; scripts/setup.sh says how to install it)" 127 0 0
  fi
done

# unittest's closing lines: 'Ran N tests in Xs', then 'OK', 'OK (skipped=S)' or
# 'FAILED (failures=X, errors=Y, skipped=S, unexpected successes=U)'.
unittest_counts() {
  awk '
    /^Ran [0-9]+ tests? in / {ran = $2}
    /^(OK|FAILED)( \(|$)/ {
      bad = 0; skipped = 0; line = $0; sub(/^[A-Z]+ \(?/, "", line); sub(/\)$/, "", line)
      n = split(line, parts, /, /)
      for (i = 1; i <= n; i++) {
        split(parts[i], kv, "=")
        if (kv[1] == "failures" || kv[1] == "errors" || kv[1] == "unexpected successes") bad += kv[2]
        else if (kv[1] == "skipped") skipped += kv[2]
      }
    }
    END {print ran - bad - skipped, bad + 0}' "$1"
}

# The echo runs on the PATH python3; the gRPC servers on Debian's, the only one with grpcio.
for suite in "python python3" "python/grpc /usr/bin/python3"; do
  read -r folder interpreter <<< "$suite"
  echo "test: $folder ($interpreter -m unittest)" >&2
  log=$(mktemp)
  (cd "$folder" && "$interpreter" -m unittest) 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  read -r p f < <(unittest_counts "$log")
  tally "$folder" "$status" "$p" "$f"
  rm -f "$log"
done

# Go builds in GOPATH mode (no module proxy here), as the harness's go builder does.
for folder in go/grpc; do
  echo "test: $folder (go test)" >&2
  log=$(mktemp)
  (cd "$folder" && export GO111MODULE=off GOFLAGS= GOPATH="$PWD/build/_gopath:/usr/share/gocode" && go generate ./... && go test -v ./...) 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  read -r p f < <(awk '/^--- PASS: / {p++} /^--- FAIL: / {f++} END {print p+0, f+0}' "$log")
  tally "$folder" "$status" "$p" "$f"
  rm -f "$log"
done

echo "${passed} passed, $((failed + broken)) failed"
[[ $failed -eq 0 && $broken -eq 0 && ${#projects[@]} -gt 0 ]]
