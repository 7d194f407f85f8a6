#!/usr/bin/env python3
"""Where a .NET server's CPU goes, by layer: reads a `perf record -e cpu-clock -F HZ` file of the
server (run with DOTNET_PerfMapEnabled=1, so JIT-compiled methods have names) and prints each
layer's share and its microseconds per call.  measure.sh --profile runs it.
Usage: profile-layers.py PERF_DATA CALLS HZ"""
import re
import subprocess
import sys
from collections import Counter

# First match wins; the text matched is "DSO SYMBOL" as perf prints them. Framework code still
# running its shipped ReadyToRun image has no method name, only its DLL, which names the layer too.
LAYERS = [
    ("kernel", lambda s: "[k]" in s),
    ("Kestrel HTTP/2 (frames, HPACK, streams, flow control)", lambda s: "Kestrel.Core" in s and re.search(r"Http2|HPack|Hpack", s)),
    ("Kestrel HTTP common (request and response features, headers)", lambda s: "Kestrel.Core" in s),
    ("Kestrel socket transport and System.Net.Sockets", lambda s: "Transport.Sockets" in s or "System.Net.Sockets" in s),
    ("System.IO.Pipelines", lambda s: "System.IO.Pipelines" in s),
    ("the services and their generated messages", lambda s: "GrpcBench" in s or "csharp-grpc-server" in s),
    ("grpc-dotnet and protobuf", lambda s: "Grpc." in s or "Google.Protobuf" in s),
    ("ASP.NET Core hosting, routing, HttpContext", lambda s: "Microsoft.AspNetCore" in s or "Microsoft.Extensions" in s),
    ("CoreLib (tasks, thread pool, memory, collections)", lambda s: re.search(r"System\.(Private\.CoreLib|Runtime|Collections|Linq|Threading)", s)),
    ("runtime: GC, allocation, stubs, type checks (libcoreclr)", lambda s: "libcoreclr" in s or "] stub " in s),
    ("JIT (background recompilation)", lambda s: "libclrjit" in s),
    ("libc and System.Native", lambda s: re.search(r"libc\.so|libSystem\.Native|ld-linux|\[vdso\]|libm\.so", s)),
]


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    data, calls, hz = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    report = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym", "-g", "none", "--stdio", "-n"],
                            capture_output=True, text=True, check=True).stdout
    layers, total = Counter(), 0
    for line in report.splitlines():
        m = re.match(r"\s*[\d.]+%\s+(\d+)\s+(.*\[[.k]\].*)$", line)
        if not m:
            continue
        samples, text = int(m.group(1)), m.group(2)
        layers[next((name for name, match in LAYERS if match(text)), "other code")] += samples
        total += samples
    if total == 0 or calls <= 0:
        sys.exit("profile-layers: no samples or no calls to divide by")
    print(f"  {total / hz:.2f} s of server CPU sampled, {total / hz * 1e6 / calls:.2f} us per call:")
    print("  | layer | us per call | share |")
    print("  | --- | --- | --- |")
    for name, samples in layers.most_common():
        print(f"  | {name} | {samples / hz * 1e6 / calls:.2f} | {100 * samples / total:.0f}% |")


if __name__ == "__main__":
    main()
