"""What every Python echo design shares: the contract's command lines, the listening
socket, the ready line, signals, the payload pattern, failures, the open-loop schedule
and the client's report (samples file, human line, RESULT line, exit status).

Each design keeps only what makes it that design: how it serves a connection, and how its
client drives connections.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import os
import resource
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

# Ask for the largest backlog; the kernel clamps it to net.core.somaxconn. A 10k burst
# arrives faster than one Python loop accepts, and a short queue turns that into SYN retries.
BACKLOG = 65535

# The payload pattern: byte j of request k on connection c is (c + k + j) mod 251. A prime
# modulus keeps neighbouring requests and connections different, so stale echoes fail.
MODULUS = 251


# ---------------------------------------------------------------- command lines

# More connections than one client could ever open (ports and descriptors run out far
# sooner); the bound keeps a typo from building millions of objects up front.
MAX_CONNECTIONS = 1_000_000
# Every connection holds a request and its echo of this size.
MAX_PAYLOAD = 256 << 20


def _positive_int_at_most(limit: int, unit: str = ""):
    """An argparse type: a whole number from 1 to limit."""
    def parse(text: str) -> int:
        value = _positive_int(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"must be at most {limit}{unit}")
        return value
    return parse


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be between 0 and 65535")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _seconds_or_zero(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be 0 or a positive number of seconds")
    return value


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be 0 (closed loop) or a positive rate")
    return value


class _Parser(argparse.ArgumentParser):
    """Reports a bad argument the contract's way: one line on stderr, ``PROGRAM: message``,
    and status 2 (argparse's own way adds the usage; it is one ``--help`` away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message}\n")


def parse_server_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    """Parses ``[--host HOST] [--port PORT]``; exits 2 with one line on bad input."""
    parser = _Parser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port, default=0)
    return parser.parse_args(argv)


def parse_client_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    parser = _Parser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=_port, required=True)
    parser.add_argument("--connections", type=_positive_int_at_most(MAX_CONNECTIONS), default=10000)
    parser.add_argument("--payload", type=_positive_int_at_most(MAX_PAYLOAD, " bytes"), default=100, help="bytes per request")
    parser.add_argument("--workload", choices=("burst", "persistent"), default="burst")
    parser.add_argument("--duration", type=_seconds, default=5.0, help="persistent only")
    parser.add_argument("--rate", type=_rate, default=0.0,
                        help="persistent only: total requests/s; 0 is closed loop")
    parser.add_argument("--samples", default=None, help="file for raw u64 LE nanoseconds")
    parser.add_argument("--timeout", type=_seconds, default=30.0)
    parser.add_argument("--warmup", type=_seconds_or_zero, default=0.0,
                        help="seconds of unrecorded load before the measured window")
    args = parser.parse_args(argv)
    if args.port == 0:
        parser.error("--port must be between 1 and 65535")
    # Resolve once: a name would otherwise be looked up again for every connection.
    try:
        info = socket.getaddrinfo(args.host, args.port, type=socket.SOCK_STREAM)[0]
    except OSError as exc:
        parser.error(f"cannot resolve --host {args.host}: {exc}")
    args.family, args.address = info[0], info[4]
    return args


# ---------------------------------------------------------------- process set-up

def raise_nofile_limit(needed: int = 0) -> None:
    """Raises the soft RLIMIT_NOFILE to the hard limit: 10,000 sockets do not fit in the
    usual soft limit of 1024. Warns when even the hard limit is below ``needed``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as exc:
            print(f"cannot raise the open-file limit: {exc}", file=sys.stderr)
    if needed and soft != resource.RLIM_INFINITY and soft < needed:
        print(f"the open-file limit ({soft}) is below the {needed} descriptors needed; "
              "raise the hard limit (ulimit -Hn)", file=sys.stderr)


def cpu_count() -> int:
    """CPUs this process may run on (its affinity mask, as set by taskset)."""
    return len(os.sched_getaffinity(0))


def listen(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    """A bound, listening, non-blocking TCP socket. Raises OSError with the reason."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        # Lets a rerun bind the port while the last run's connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def listen_or_exit(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    try:
        return listen(host, port, reuse_port)
    except OSError as exc:
        print(f"server: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        sys.exit(1)


def announce(sock: socket.socket) -> None:
    """The contract's ready line; the harness waits for it before starting a client."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"READY tcp {shown}:{port}", flush=True)


def report_loop_errors_once(loop: asyncio.AbstractEventLoop) -> None:
    """Prints each kind of event-loop error once, in one line. A server out of descriptors
    would otherwise print a full traceback for every failed accept, thousands a second."""
    seen: set[str] = set()

    def handler(_: asyncio.AbstractEventLoop, context: dict) -> None:
        message = context.get("message", "event loop error")
        if message not in seen:
            seen.add(message)
            exc = context.get("exception")
            print(f"server: {message}" + (f": {exc!r}" if exc else "") +
                  " (repeats are not shown)", file=sys.stderr)

    loop.set_exception_handler(handler)


def stop_signal(loop: asyncio.AbstractEventLoop) -> asyncio.Future:
    """A future that completes on SIGTERM or SIGINT. Install it before the ready line so a
    signal sent right after it is not lost."""
    stopped = loop.create_future()

    def stop() -> None:
        if not stopped.done():
            stopped.set_result(None)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)
    return stopped


# ---------------------------------------------------------------- payloads and failures

_tiles = bytes(range(MODULUS))


def payload(conn: int, request: int, size: int) -> bytes:
    """Request ``request`` of connection ``conn``: a slice of the repeating 0..250 pattern."""
    global _tiles
    if len(_tiles) < size + MODULUS:
        _tiles = bytes(range(MODULUS)) * (size // MODULUS + 2)
    start = (conn + request) % MODULUS
    return _tiles[start:start + size]


class Failure(Exception):
    """A failed request, with its kind (the first of each kind is printed)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def mismatch(expected: bytes, got: bytes) -> Failure:
    at = next((i for i, (a, b) in enumerate(zip(expected, got)) if a != b), min(len(expected), len(got)))
    return Failure("mismatch", f"echo differs at byte {at} (sent {len(expected)} bytes, got {len(got)})")


class FirstErrors:
    """Prints the first failure of each kind to stderr; the rest are only counted."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def record(self, failure: Failure) -> None:
        if failure.kind not in self._seen:
            self._seen.add(failure.kind)
            print(f"client: first {failure.kind} failure: {failure}", file=sys.stderr)

    @staticmethod
    def warmup_failed(count: int) -> None:
        """Warm-up failures are left out of RESULT; this says how many there were (if any)."""
        if count:
            print(f"client: warm-up: {count} requests failed", file=sys.stderr)


# ---------------------------------------------------------------- client report

@dataclass(frozen=True)
class CpuTime:
    """CPU time this process has used, all threads, in microseconds."""

    user_us: int = 0
    sys_us: int = 0

    @staticmethod
    def now() -> CpuTime:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return CpuTime(round(usage.ru_utime * 1e6), round(usage.ru_stime * 1e6))


class MeasuredWindow:
    """The measured window. start() prints MEASURING, where the harness takes its first
    readings of the server's CPU and the cores' busy time, so the client's own start-up,
    warm-up and connects stay out of every CPU figure; RESULT reports the client's CPU
    between start() and stop()."""

    def __init__(self) -> None:
        self._start = self._stop = CpuTime()

    def start(self) -> None:
        print("MEASURING", flush=True)
        self._start = CpuTime.now()

    def stop(self) -> None:
        self._stop = CpuTime.now()

    @property
    def cpu(self) -> CpuTime:
        return CpuTime(self._stop.user_us - self._start.user_us, self._stop.sys_us - self._start.sys_us)


@dataclass
class Tally:
    """The counts behind the RESULT line."""

    payload: int
    ok: int = 0
    failed: int = 0
    conn_min: int | None = None
    conn_max: int = 0
    samples: array.array = field(default_factory=lambda: array.array("Q"))

    def add_connection(self, samples: list[int], failed: int) -> None:
        ok = len(samples)
        self.ok += ok
        self.failed += failed
        self.conn_min = ok if self.conn_min is None else min(self.conn_min, ok)
        self.conn_max = max(self.conn_max, ok)
        self.samples.extend(samples)

    def write_samples(self, path: str) -> None:
        samples = self.samples
        if sys.byteorder != "little":
            samples = array.array("Q", samples)
            samples.byteswap()
        with open(path, "wb") as out:
            samples.tofile(out)

    def print(self, clients: int, wall_ns: int, cpu: CpuTime) -> None:
        avg_ms = sum(self.samples) / len(self.samples) / 1e6 if self.samples else 0.0
        print(f"Python: {clients} clients, total time = {wall_ns / 1e6:.2f} ms, "
              f"avg latency = {avg_ms:.4f} ms/client")
        print(f"RESULT ok={self.ok} failed={self.failed} wall_ns={wall_ns} "
              f"bytes={self.ok * self.payload} conn_min={self.conn_min or 0} "
              f"conn_max={self.conn_max} cpu_user_us={cpu.user_us} cpu_sys_us={cpu.sys_us}", flush=True)


# Loop timers fire on the selector's millisecond-rounded poll, which would add up to a couple
# of milliseconds of the client's own lateness to every open-loop sample. Clients sleep
# until this much before a slot, then yield to the loop until the slot arrives.
TIMER_SLACK_NS = 2_000_000

# Persistent runs start every connection together, this far after the last one opened,
# so none sends before all are scheduled.
START_LEAD_NS = 20_000_000


def slot_ns(t0: int, conn: int, request: int, connections: int, ns_per_slot: float) -> int:
    """Open loop: when connection ``conn`` of N intends to send request k, t0 + (i + kN)/R."""
    return t0 + int((conn + request * connections) * ns_per_slot)


# Runs what --workload names and returns the tally and the wall time. It starts and stops the
# window around the measured part; none (the warm-up burst) means nothing is measured.
Workload = Callable[[argparse.Namespace, FirstErrors, "MeasuredWindow | None"], Awaitable["tuple[Tally, int]"]]


def warmup_burst_connections(connections: int) -> int:
    """The burst warm-up opens a tenth of the connections: enough to run every code path
    once, at a tenth of the ephemeral ports the measured burst needs."""
    return max(1, connections // 10)


async def measure(args: argparse.Namespace, workload: Workload) -> tuple[Tally, int, CpuTime]:
    errors = FirstErrors()
    if args.workload == "burst" and args.warmup > 0:
        # An unrecorded burst of a tenth of the connections first: the same code, warm.
        warmup = argparse.Namespace(**vars(args))
        warmup.connections = warmup_burst_connections(args.connections)
        tally, _ = await workload(warmup, errors, None)
        errors.warmup_failed(tally.failed)
    window = MeasuredWindow()
    tally, wall_ns = await workload(args, errors, window)
    return tally, wall_ns, window.cpu


def run_client(description: str, workload: Workload) -> None:
    """The whole client: parse, warm up, run the workload, report, exit 0 or 1 (2 for bad
    args)."""
    args = parse_client_args(description)
    raise_nofile_limit(args.connections + 64)
    tally, wall_ns, cpu = asyncio.run(measure(args, workload))
    try:
        tally.print(args.connections, wall_ns, cpu)
    except BrokenPipeError:
        # Nobody reads stdout any more; keep the exit from printing a second error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        print("client: stdout closed before the result was printed", file=sys.stderr)
        sys.exit(1)
    if args.samples:
        try:
            tally.write_samples(args.samples)
        except OSError as exc:
            print(f"client: cannot write samples to {args.samples}: {exc}", file=sys.stderr)
            sys.exit(1)
    sys.exit(0 if tally.failed == 0 else 1)
