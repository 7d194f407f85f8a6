"""python-fast client: every connection is a small state machine driven by the event
loop's readiness callbacks (loop.add_reader / add_writer on a non-blocking socket).

No coroutine, future, task or transport per connection: the asyncio streams client spends
most of its time creating and switching those, not on the network (see README.md)."""

from __future__ import annotations

import argparse
import asyncio
import errno
import socket
import time

import echo_contract as contract
from echo_contract import Failure, FirstErrors, MeasuredWindow, Tally

RECV_CHUNK = 256 * 1024
# How often the watchdog looks for connections stuck past --timeout: one sweep is far
# cheaper than arming and cancelling a timer for every step of every connection.
WATCHDOG_PERIOD = 0.25
NEVER = float("inf")


class Run:
    """What the connections of one run share: arguments, loop, schedule and counts."""

    def __init__(self, args: argparse.Namespace, errors: FirstErrors) -> None:
        self.args = args
        self.errors = errors
        self.loop = asyncio.get_running_loop()
        self.address = args.address
        self.family = args.family
        self.tally = Tally(args.payload)
        self.burst = args.workload == "burst"
        self.live: set[Connection] = set()
        self.t0 = self.end = self.last_echo = 0  # persistent schedule, monotonic ns
        self.ns_per_slot = 1e9 / args.rate if args.rate > 0 else 0.0
        self.start_phase(args.connections)

    def start_phase(self, members: int) -> None:
        """A phase (burst; or persistent's opening, then its echoing) ends when each of
        its members has reported once."""
        self.pending = members
        self.phase_done = self.loop.create_future()
        if members == 0:
            self.phase_done.set_result(None)

    def report(self, conn: Connection) -> None:
        if conn.reported is self.phase_done:
            return
        conn.reported = self.phase_done
        self.pending -= 1
        if self.pending == 0:
            self.phase_done.set_result(None)

    def watchdog(self) -> None:
        now = time.monotonic()
        for conn in [c for c in self.live if c.deadline < now]:
            conn.fail(Failure("timeout", f"{conn.step}: no progress within the timeout"))
        self.loop.call_later(WATCHDOG_PERIOD, self.watchdog)


class Connection:
    __slots__ = ("run", "index", "sock", "fd", "k", "request", "sent", "received", "began",
                 "samples", "deadline", "step", "reading", "writing", "closed", "reported")

    def __init__(self, run: Run, index: int) -> None:
        self.run = run
        self.index = index
        self.sock: socket.socket | None = None
        self.k = 0
        self.request = b""
        self.received = bytearray()
        self.samples: list[int] = []
        self.deadline = NEVER
        self.step = "connect"  # connect -> (idle ->) write -> read -> ...
        self.reading = self.writing = self.closed = False
        self.reported = None

    # -- connect
    def start(self) -> None:
        run = self.run
        self.began = time.monotonic_ns()
        self.deadline = time.monotonic() + run.args.timeout
        run.live.add(self)
        try:
            self.sock = sock = socket.socket(run.family, socket.SOCK_STREAM)
            sock.setblocking(False)
            # Requests are small and latency-bound: do not let Nagle hold them back.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            return self.fail(Failure("connect", f"socket: {exc}"))
        self.fd = sock.fileno()
        err = sock.connect_ex(run.address)
        if err == errno.EINPROGRESS:
            self.writing = True
            run.loop.add_writer(self.fd, self.connected)
        else:
            self.connected(err)

    def connected(self, err: int | None = None) -> None:
        if self.writing:
            self.writing = False
            self.run.loop.remove_writer(self.fd)
        if err is None:
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            return self.fail(Failure("connect", f"connect to {self.run.address}: "
                                                f"{errno.errorcode.get(err, err)}"))
        self.reading = True
        self.run.loop.add_reader(self.fd, self.readable)
        if self.run.burst:
            self.send()
        else:
            # Persistent: idle, untimed, until every connection is open.
            self.step = "idle"
            self.deadline = NEVER
            self.run.report(self)

    # -- one request
    def send(self) -> None:
        args = self.run.args
        self.request = contract.payload(self.index, self.k, args.payload)
        self.sent = 0
        self.received.clear()
        self.step = "write"
        self.deadline = time.monotonic() + args.timeout
        self.write()

    def write(self) -> None:
        try:
            self.sent += self.sock.send(memoryview(self.request)[self.sent:] if self.sent else self.request)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            return self.fail(Failure("io", f"write: {exc!r}"))
        if self.sent < len(self.request):
            if not self.writing:
                self.writing = True
                self.run.loop.add_writer(self.fd, self.write)
            return
        if self.writing:
            self.writing = False
            self.run.loop.remove_writer(self.fd)
        if self.step == "write":
            self.step = "read"
            self.deadline = time.monotonic() + self.run.args.timeout

    def readable(self) -> None:
        try:
            data = self.sock.recv(RECV_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            return self.fail(Failure("io", f"read: {exc!r}"))
        expected = self.request
        if not data:
            if self.step not in ("write", "read"):
                return self.fail(Failure("short-read", "the server closed an idle connection"))
            return self.fail(Failure("short-read", f"connection closed after "
                                                   f"{len(self.received)} of {len(expected)} bytes"))
        if self.step not in ("write", "read"):
            return self.fail(Failure("mismatch", f"{len(data)} bytes arrived that were never sent"))
        if not self.received and len(data) == len(expected):
            got = data  # the usual case: the whole echo in one read, no copy
        else:
            self.received += data
            if len(self.received) < len(expected):
                self.deadline = time.monotonic() + self.run.args.timeout
                return
            got = bytes(self.received)
        if got != expected:
            return self.fail(contract.mismatch(expected, got))
        self.verified()

    def verified(self) -> None:
        run = self.run
        done = time.monotonic_ns()
        self.samples.append(done - self.began)
        if run.burst:
            return self.finish(failed=0)
        run.last_echo = max(run.last_echo, done)
        self.k += 1
        self.next_request()

    # -- persistent windows
    def start_window(self) -> None:
        """Starts this connection's part of a window, from request 0 of its schedule."""
        if not self.reading:
            self.reading = True
            self.run.loop.add_reader(self.fd, self.readable)
        self.k = 0
        self.samples = []
        self.next_request()

    # -- persistent schedule
    def next_request(self) -> None:
        run = self.run
        self.step = "idle"
        self.deadline = NEVER
        now = time.monotonic_ns()
        if run.ns_per_slot:
            # Open loop: if late, send at once, but count from the intended slot so a
            # stalled server shows its queueing.
            self.began = contract.slot_ns(run.t0, self.index, self.k, run.args.connections,
                                          run.ns_per_slot)
            if self.began >= run.end:
                return self.rest()
        else:
            if now >= run.end:
                return self.rest()
            self.began = max(now, run.t0)
        self.wait_for_slot()

    def wait_for_slot(self) -> None:
        if self.closed:
            return
        early = self.began - time.monotonic_ns()
        if early > contract.TIMER_SLACK_NS:
            self.run.loop.call_later((early - contract.TIMER_SLACK_NS) / 1e9, self.wait_for_slot)
        elif early > 0:
            self.run.loop.call_soon(self.wait_for_slot)
        else:
            self.send()

    # -- endings
    def fail(self, failure: Failure) -> None:
        if not self.closed:
            self.run.errors.record(failure)
            self.finish(failed=1)

    def finish(self, failed: int) -> None:
        if self.closed:
            return
        self.close()
        self.run.tally.add_connection(self.samples, failed)
        self.run.report(self)

    def rest(self) -> None:
        """Persistent: this connection's part of the window is over; it stays open, idle and
        unwatched: a peer that closes it now is found by its next request (as in the other
        clients), and never counts this window's samples a second time."""
        self.reading = False
        self.run.loop.remove_reader(self.fd)
        self.run.tally.add_connection(self.samples, 0)
        self.run.report(self)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        run = self.run
        run.live.discard(self)
        if self.sock is not None:
            if self.reading:
                run.loop.remove_reader(self.fd)
            if self.writing:
                run.loop.remove_writer(self.fd)
            self.sock.close()


async def main(args: argparse.Namespace, errors: FirstErrors,
               window: MeasuredWindow | None) -> tuple[Tally, int]:
    run = Run(args, errors)
    run.loop.call_later(WATCHDOG_PERIOD, run.watchdog)
    conns = [Connection(run, i) for i in range(args.connections)]
    if run.burst and window:
        window.start()
    start = time.monotonic_ns()
    for conn in conns:
        conn.start()
    await run.phase_done
    if run.burst:
        wall = time.monotonic_ns() - start
        if window:
            window.stop()
        return run.tally, wall

    # Persistent: every connection is open (or failed). The warm-up is the same load on the
    # same connections, its counts dropped; a connection it lost stays lost, and the measured
    # window counts it failed.
    opened = [c for c in conns if not c.closed]
    try:
        if args.warmup > 0:
            measured, run.tally = run.tally, Tally(args.payload)  # keeps the connect failures
            await load(run, opened, args.warmup)
            errors.warmup_failed(run.tally.failed)
            run.tally = measured
            survivors = [c for c in opened if not c.closed]
            for _ in range(len(opened) - len(survivors)):
                run.tally.add_connection([], 1)
            opened = survivors
        window.start()
        await load(run, opened, args.duration)
        window.stop()  # the last in-window echo is in; the connections close after the reading
    finally:
        for conn in conns:
            conn.close()
    return run.tally, (run.last_echo - run.t0) if run.tally.ok else 0


async def load(run: Run, conns: list[Connection], seconds: float) -> None:
    """One window of load on every open connection; they start together a little ahead."""
    run.t0 = time.monotonic_ns() + contract.START_LEAD_NS
    run.end = run.t0 + int(seconds * 1e9)
    run.last_echo = run.t0
    run.start_phase(len(conns))
    for conn in conns:
        conn.start_window()
    await run.phase_done


if __name__ == "__main__":
    contract.run_client(__doc__, main)
