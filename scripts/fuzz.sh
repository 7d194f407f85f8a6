#!/usr/bin/env bash
# Fuzzes the readers of hostile input with afl-fuzz and SharpFuzz (csharp/Fuzz/README.md):
#   scripts/fuzz.sh [TARGET] [--seconds S]     every target, or one, for S seconds each (default 60)
# Builds csharp/Fuzz into its own folder, instruments the assemblies that hold the parsers, then
# runs afl-fuzz on each target from its seed corpus (csharp/Fuzz/corpus/TARGET). Findings land in
# results/fuzz/RUN/TARGET (afl-fuzz's own layout: queue/, crashes/, hangs/, fuzzer_stats). Prints
# per target: executions, corpus size, bitmap coverage and crashes, with each crash replayed so
# its exception shows. Exits 1 when any target crashed or hung.
set -euo pipefail
cd "$(dirname "$0")/.."

target="" seconds=60
while (($#)); do
  case "$1" in
    --seconds) seconds=${2:?--seconds needs a number}; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz: unknown option $1" >&2; exit 2 ;;
    *) target=$1; shift ;;
  esac
done
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || { echo "fuzz: --seconds wants a whole number of seconds, got '$seconds'" >&2; exit 2; }
# afl++ brings clang and LLVM with it: installed here, for fuzzing, not by setup.sh for every user and CI run.
if ! command -v afl-fuzz >/dev/null; then
  if [[ $EUID -ne 0 ]]; then
    echo "fuzz: afl-fuzz is not installed; run as root, or: sudo apt-get install -y afl++" >&2
    exit 1
  fi
  echo "fuzz: installing Debian's afl++" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends afl++ >/dev/null
fi

out=csharp/Fuzz/bin/afl
echo "fuzz: building csharp/Fuzz into $out" >&2
# A clean folder every time: sharpfuzz refuses an assembly it already instrumented.
rm -rf "$out"
nice -n 10 dotnet publish csharp/Fuzz/Fuzz.csproj -c Release -o "$out" -nologo -v quiet -clp:ErrorsOnly >&2
(cd csharp/Fuzz && dotnet tool restore >/dev/null)
# The parsers' assemblies (memif, the gRPC client, the harness) and the CSV library the harness reads runs.csv with.
for dll in Memif.dll csharp-grpc-client.dll bench.dll CsvHelper.dll; do
  (cd csharp/Fuzz && dotnet tool run sharpfuzz "../../$out/$dll")
done

mapfile -t known < <("$out/fuzz" list | awk '{print $1}')
if [[ -n $target ]]; then
  printf '%s\n' "${known[@]}" | grep -qx -- "$target" || { echo "fuzz: no target '$target'; known: ${known[*]}" >&2; exit 2; }
  targets=("$target")
else
  targets=("${known[@]}")
fi

# afl-fuzz's checks of the machine, answered per run instead of by changing the machine:
export AFL_SKIP_BIN_CHECK=1   # the program is .NET: SharpFuzz's fork server speaks afl's protocol, the binary has no afl symbols
export AFL_SKIP_CPUFREQ=1     # the governor is the machine owner's business (and invisible in most VMs)
export AFL_NO_AFFINITY=1      # two shared cores: pinning would fail or fight the other work on them
export AFL_NO_UI=1            # a status line now and then instead of a full-screen display
if [[ $(cat /proc/sys/kernel/core_pattern) == \|* ]]; then
  # Core dumps go to a program here (systemd-coredump, apport), which afl-fuzz refuses by default since
  # it can delay how it sees a crash. SharpFuzz reports an exception through the fork server, not a
  # core dump, so only a native crash of the .NET process is affected. The lasting fix, for root:
  # echo core >/proc/sys/kernel/core_pattern
  echo "fuzz: core_pattern pipes to a program; going on without core dumps (native crashes may be reported late)" >&2
  export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
fi

run=results/fuzz/$(date +%Y%m%d-%H%M%S)
mkdir -p "$run"
summary=()
failed=0
stat() { awk -F' *: *' -v k="$1" '$1 == k {print $2}' "$2"; }
for t in "${targets[@]}"; do
  echo "fuzz: $t for ${seconds}s -> $run/$t" >&2
  # -t: a generous per-input limit, as the first run of a path includes its JIT compilation.
  # -m none: .NET reserves far more address space than it uses.
  status=0
  nice -n 10 afl-fuzz -i "csharp/Fuzz/corpus/$t" -o "$run/$t" -t 5000 -m none -V "$seconds" -- "$out/fuzz" "$t" \
    >"$run/$t.log" 2>&1 || status=$?
  stats=$run/$t/default/fuzzer_stats
  if [[ ! -f $stats ]]; then
    echo "fuzz: afl-fuzz did not start on $t (exit $status); its output:" >&2
    tail -20 "$run/$t.log" >&2
    summary+=("$(printf '%-24s %s' "$t" "afl-fuzz did not start (exit $status, $run/$t.log)")")
    failed=1
    continue
  fi
  crashes=$(stat saved_crashes "$stats") hangs=$(stat saved_hangs "$stats")
  summary+=("$(printf '%-24s %12s %8s %9s %8s %6s %s' "$t" "$(stat execs_done "$stats")" "$(stat corpus_count "$stats")" \
    "$(stat bitmap_cvg "$stats")" "$crashes" "$hangs" "$(stat stability "$stats")")")
  if [[ $status -ne 0 ]]; then
    echo "fuzz: afl-fuzz stopped early on $t (exit $status); the end of its output:" >&2
    tail -5 "$run/$t.log" >&2
    failed=1
  fi
  for crash in "$run/$t/default/crashes/"id:* "$run/$t/default/hangs/"id:*; do
    [[ -e $crash ]] || continue
    failed=1
    echo "fuzz: $crash" >&2
    # Replayed by the uninstrumented build (publish built it first): instrumented code needs afl's map.
    timeout 60 csharp/Fuzz/bin/Release/net10.0/fuzz replay "$t" "$crash" | sed -n '2,6p' >&2 || true
  done
done

printf '\n%-24s %12s %8s %9s %8s %6s %s\n' target execs corpus coverage crashes hangs stability
printf '%s\n' "${summary[@]}"
echo "(coverage: afl's bitmap coverage, the share of its 64 KiB edge map the corpus reaches; findings in $run)"
exit $failed
