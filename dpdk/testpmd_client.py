#!/usr/bin/env python3
"""Load client for the dpdk-testpmd reference row: testpmd in io mode with --tx-first.

    testpmd_client.py --memif-socket PATH [--payload BYTES] [--workload memif-polling]
                      [--duration S] [--samples PATH] [--in-flight BURST] [--timeout S]
                      [--role slave|master] [--connections 1] [--warmup S]

testpmd sends one burst of --in-flight frames (default 32, at most 512) of --payload bytes
and from then on sends back whatever it receives; the macswap server on the other end does
the same, so that burst circulates: --in-flight is the frames in flight. --connections counts
transport connections, and testpmd has one memif connection: only 1 is accepted. Packets/s comes from testpmd's own port counters, read
from its once-a-second statistics: ok = frames received between the first and the last
report of the run, wall_ns = the time between those reports. testpmd measures no per-frame
latency, so the samples file (if asked for) is written empty.
"""

import queue
import re
import sys
import time

import testpmd_common as tp

USAGE = ("usage: testpmd_client.py --memif-socket PATH [--payload BYTES] [--workload memif-polling] "
         "[--duration S] [--samples PATH] [--in-flight BURST] [--timeout S] [--role slave|master] [--connections 1] [--warmup S]")
MAX_BURST = 512
NIC_RX = re.compile(r"^\s*RX-packets:\s+(\d+)\s+RX-missed")
FORWARDING = re.compile(r"packet forwarding - ports=")
ACCUMULATED = re.compile(r"Accumulated forward statistics")
FWD_RX = re.compile(r"^\s*RX-packets:\s+(\d+)\s+RX-dropped")


def result(ok, failed, wall_ns, payload):
    print(f"RESULT ok={ok} failed={failed} wall_ns={wall_ns} bytes={ok * payload} conn_min={ok} conn_max={ok}", flush=True)


def main():
    known = {"memif-socket", "payload", "workload", "duration", "samples", "connections", "in-flight", "timeout", "role", "rate",
             "warmup"}
    values = tp.parse_args(sys.argv[1:], known, USAGE)
    path = values.get("memif-socket") or tp.fail_usage("--memif-socket is required", USAGE)
    payload = tp.number(values, "payload", 64, int, 60, 9000, USAGE)
    duration = tp.number(values, "duration", 5.0, float, 0.001, 86400, USAGE)
    timeout = tp.number(values, "timeout", 30.0, float, 0.1, 3600, USAGE)
    # Forwarding for this long before the first counted report: the frames circulate, the peer warms up.
    warmup = tp.number(values, "warmup", 0.0, float, 0, 86400, USAGE)
    if values.get("connections", "1") != "1":
        tp.fail_usage(f"--connections must be 1, not '{values['connections']}': testpmd opens one memif connection; "
                      "for more load use --in-flight N (frames in flight)", USAGE)
    burst = tp.number(values, "in-flight", 32, int, 1, 1 << 30, USAGE)
    if burst > MAX_BURST:
        print(f"testpmd wrapper: {burst} frames in flight exceed testpmd's largest burst; using {MAX_BURST}", file=sys.stderr)
        burst = MAX_BURST
    if tp.number(values, "rate", 0.0, float, 0, 1e12, USAGE) != 0:
        tp.fail_usage("--rate is not supported: testpmd forwards closed-loop", USAGE)
    workload = values.get("workload", "memif-polling")
    if workload not in ("memif-polling", "memif-interrupt"):
        tp.fail_usage(f"workload must be memif-polling, got '{workload}'", USAGE)
    if workload == "memif-interrupt":
        print("testpmd wrapper: DPDK's memif PMD always polls; running polling", file=sys.stderr)
    role = values.get("role", "slave")
    if role not in ("master", "slave"):
        tp.fail_usage(f"--role must be master or slave, got '{role}'", USAGE)
    if "samples" in values:
        open(values["samples"], "wb").close()  # no per-frame latency from testpmd

    if role == "slave":
        # DPDK's client connects once: wait for the master's socket first.
        deadline = time.monotonic() + timeout
        while not tp.socket_listening(path):
            if time.monotonic() > deadline:
                print(f"testpmd wrapper: no memif master listening on {path}", file=sys.stderr)
                result(0, 1, 0, payload)
                return 1
            time.sleep(0.05)
    else:
        tp.remove_stale_socket(path)

    args = ["--forward-mode=io", "--tx-first", f"--txpkts={payload}", f"--burst={burst}"]
    pmd_role = "client" if role == "slave" else "server"
    pmd = tp.Testpmd(tp.testpmd_command(pmd_role, path, args), tp.file_prefix(pmd_role))
    first = last = None  # (time, rx packets) of the first and latest statistics report
    forwarding_at = None
    end = None
    give_up = time.monotonic() + timeout
    while True:
        now = time.monotonic()
        if end is not None and now >= end:
            break
        if forwarding_at is None and now > give_up:
            print(f"testpmd wrapper: testpmd did not start forwarding within {timeout:g} s", file=sys.stderr)
            break
        try:
            item = pmd.next_line(timeout=0.05)
        except queue.Empty:
            continue
        if item is None:
            break
        at, line = item
        if forwarding_at is None and FORWARDING.search(line):
            forwarding_at = at
            # Reports come once a second from the start; the link may come up a report or two
            # late, so allow a few seconds beyond --duration for the measured span to fill.
            end = at + warmup + max(duration, 1.0) + 4.0
        m = NIC_RX.match(line)
        if m and forwarding_at is not None and at >= forwarding_at + warmup:
            sample = (at, int(m.group(1)))
            if first is None:
                first = sample if sample[1] > 0 else None
            else:
                last = sample
                if last[0] - first[0] >= max(duration, 1.0) - 0.1:
                    break  # --duration measured between two reports
    stopped_at = time.monotonic()
    status = pmd.stop()

    # Fallback when the once-a-second reports were too few (a busy machine delays them): the
    # totals testpmd prints as it stops, over the time from forwarding start to the stop.
    if (first is None or last is None or last[1] <= first[1]) and forwarding_at is not None:
        total = None
        in_summary = False
        while True:
            try:
                item = pmd.next_line(timeout=1.0)
            except queue.Empty:
                break
            if item is None:
                break
            in_summary = in_summary or bool(ACCUMULATED.search(item[1]))
            m = FWD_RX.match(item[1])
            if in_summary and m:
                total = int(m.group(1))
        if total:
            first, last = (forwarding_at, 0), (stopped_at, total)
            print("testpmd wrapper: too few statistics reports; using testpmd's totals at stop", file=sys.stderr)

    if first is None or last is None or last[1] <= first[1]:
        print(f"testpmd wrapper: no traffic measured (testpmd status {status})", file=sys.stderr)
        result(0, 1, 0, payload)
        return 1
    ok = last[1] - first[1]
    wall_ns = int((last[0] - first[0]) * 1e9)
    print(f"DPDK testpmd: {payload} B frames, burst {burst}, io --tx-first: {ok} received in "
          f"{wall_ns / 1e9:.3f} s = {ok / (wall_ns / 1e9) / 1e6:.3f} Mpps", flush=True)
    result(ok, 0, wall_ns, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
