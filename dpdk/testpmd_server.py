#!/usr/bin/env python3
"""Echo server for the dpdk-testpmd reference row: testpmd in macswap mode on one memif end.

    testpmd_server.py --memif-socket PATH [--role master|slave] [--mode polling|interrupt]

master (default): testpmd is the memif server and listens on PATH; READY once its port is up.
slave: testpmd is the memif client. DPDK's client connects once, at start, with no retry, so
this wrapper prints READY at once (as the contract asks of a slave) and starts testpmd when a
master listens on PATH, starting it again if the link drops, until SIGTERM.
"""

import queue
import re
import sys
import threading
import time

import testpmd_common as tp

USAGE = "usage: testpmd_server.py --memif-socket PATH [--role master|slave] [--mode polling|interrupt]"
PORT_UP = re.compile(r"^Port 0: [0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}")


def ready(path):
    print(f"READY memif {path}", flush=True)


def run_master(path, stop):
    """Runs testpmd as memif server until SIGTERM.

    DPDK 22.11's memif server can crash (SIGSEGV) when its client goes away while it forwards
    (seen here whenever the io --tx-first client stops); the harness asked for a server that
    outlives its clients, so a testpmd that dies is started again, and said so on stderr.
    """
    announced = False
    while not stop.is_set():
        tp.remove_stale_socket(path)
        pmd = tp.Testpmd(tp.testpmd_command("server", path, ["--forward-mode=macswap"]), tp.file_prefix("server"))
        # testpmd creates the socket when it probes the device but registers the interface only
        # when the port starts ("Port 0: <mac>"); a peer arriving in between hears "ID not found".
        deadline = time.monotonic() + 60
        port_up = False
        while not stop.is_set():
            try:
                item = pmd.next_line(timeout=0.2)
            except queue.Empty:
                item = ()
            if item is None:
                break
            if not port_up and item and PORT_UP.match(item[1]) and tp.socket_listening(path):
                port_up = True
                if not announced:
                    ready(path)
                    announced = True
            if not port_up and time.monotonic() > deadline:
                print("testpmd wrapper: testpmd did not start its port within 60 s", file=sys.stderr)
                pmd.stop()
                return 1
        status = pmd.stop()
        if stop.is_set():
            break
        if not port_up:
            print(f"testpmd wrapper: testpmd exited with status {status} before its port came up", file=sys.stderr)
            return 1
        print(f"testpmd wrapper: testpmd exited with status {status} (DPDK's memif server may crash when its "
              "client leaves); starting it again", file=sys.stderr, flush=True)
        stop.wait(0.2)
    return 0


def run_slave(path, stop):
    ready(path)
    while not stop.is_set():
        if not tp.socket_listening(path):
            stop.wait(0.1)
            continue
        pmd = tp.Testpmd(tp.testpmd_command("client", path, ["--forward-mode=macswap"]), tp.file_prefix("client"))
        while not stop.is_set() and pmd.process.poll() is None:
            stop.wait(0.2)
        pmd.stop()
        if not stop.is_set():
            print("testpmd wrapper: testpmd exited; restarting when the master listens again", file=sys.stderr)
            stop.wait(0.5)
    return 0


def main():
    values = tp.parse_args(sys.argv[1:], {"memif-socket", "role", "mode"}, USAGE)
    path = values.get("memif-socket") or tp.fail_usage("--memif-socket is required", USAGE)
    role = values.get("role", "master")
    if role not in ("master", "slave"):
        tp.fail_usage(f"--role must be master or slave, got '{role}'", USAGE)
    if values.get("mode", "polling") not in ("polling", "interrupt"):
        tp.fail_usage("--mode must be polling or interrupt", USAGE)
    if values.get("mode") == "interrupt":
        print("testpmd wrapper: DPDK's memif PMD always polls; --mode interrupt has no effect", file=sys.stderr)
    stop = threading.Event()
    tp.install_stop_handler(stop)
    return run_master(path, stop) if role == "master" else run_slave(path, stop)


if __name__ == "__main__":
    sys.exit(main())
