"""python-asyncio client: the classic asyncio design, a coroutine per connection on
streams (open_connection, StreamWriter.write/drain, StreamReader.readexactly), each step
under asyncio.timeout."""

from __future__ import annotations

import argparse
import asyncio
import time

import echo_contract as contract
from echo_contract import Failure, FirstErrors, MeasuredWindow, Tally


async def echo_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> None:
    # The transport sends in the background while we read; draining before reading would
    # deadlock on a payload larger than the socket buffers, as the server stops reading
    # until we take its echo.
    writer.write(request)
    echoed = await reader.readexactly(len(request))
    await writer.drain()
    if echoed != request:
        raise contract.mismatch(request, echoed)


def classify(exc: BaseException, during: str) -> Failure:
    """Turns whatever a step raised into a Failure of a known kind."""
    if isinstance(exc, Failure):
        return exc
    if isinstance(exc, TimeoutError):
        return Failure("timeout", f"{during}: no progress within the timeout")
    if isinstance(exc, asyncio.IncompleteReadError):
        return Failure("short-read", f"{during}: connection closed after {len(exc.partial)} "
                                     f"of {exc.expected} bytes")
    if during == "connect":
        return Failure("connect", str(exc))
    return Failure("io", f"{during}: {exc!r}")


async def burst(args: argparse.Namespace, errors: FirstErrors,
                window: MeasuredWindow | None) -> tuple[Tally, int]:
    async def one(conn: int) -> int | None:
        began = time.monotonic_ns()
        during = "connect"
        try:
            async with asyncio.timeout(args.timeout):
                reader, writer = await asyncio.open_connection(*args.address[:2])
            during = "echo"
            try:
                async with asyncio.timeout(args.timeout):
                    await echo_once(reader, writer, contract.payload(conn, 0, args.payload))
            finally:
                writer.close()
        except Exception as exc:  # every failure is counted, none stops the others
            errors.record(classify(exc, during))
            return None
        return time.monotonic_ns() - began

    if window:
        window.start()
    start = time.monotonic_ns()
    results = await asyncio.gather(*(one(c) for c in range(args.connections)))
    wall = time.monotonic_ns() - start
    if window:
        window.stop()
    tally = Tally(args.payload)
    for sample in results:
        tally.add_connection([] if sample is None else [sample], int(sample is None))
    return tally, wall


async def wait_until(when_ns: int) -> None:
    delay = when_ns - contract.TIMER_SLACK_NS - time.monotonic_ns()
    if delay > 0:
        await asyncio.sleep(delay / 1e9)
    while time.monotonic_ns() < when_ns:
        await asyncio.sleep(0)


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def persistent(args: argparse.Namespace, errors: FirstErrors,
                     window: MeasuredWindow) -> tuple[Tally, int]:
    """Opens every connection (untimed), warms up, then loads them for the duration. The
    warm-up is the same load on the same connections, its counts dropped; a connection it
    lost stays lost, and the measured window counts it failed."""
    tally = Tally(args.payload)

    async def open_one() -> Streams | None:
        try:
            async with asyncio.timeout(args.timeout):
                return await asyncio.open_connection(*args.address[:2])
        except Exception as exc:
            errors.record(classify(exc, "connect"))
            return None

    opened = await asyncio.gather(*(open_one() for _ in range(args.connections)))
    for _ in range(opened.count(None)):
        tally.add_connection([], 1)
    live = [(c, pair) for c, pair in enumerate(opened) if pair is not None]
    try:
        if args.warmup > 0:
            runs, _, _ = await load(args, errors, live, args.warmup)
            lost = sum(failed for _, failed in runs)
            errors.warmup_failed(lost)
            for _ in range(lost):
                tally.add_connection([], 1)
            live = [conn for conn, (_, failed) in zip(live, runs) if not failed]
        window.start()
        runs, t0, last_echo = await load(args, errors, live, args.duration)
        window.stop()  # the last in-window echo is in; the connections close after the reading
    finally:
        for pair in opened:
            if pair is not None:
                pair[1].close()
    for samples, failed in runs:
        tally.add_connection(samples, failed)
    return tally, (last_echo - t0) if tally.ok else 0


async def load(args: argparse.Namespace, errors: FirstErrors, live: list[tuple[int, Streams]],
               seconds: float) -> tuple[list[tuple[list[int], int]], int, int]:
    """One window of load on every live connection, all starting together at t0. Returns
    each connection's (samples, failed), t0 and the last verified echo."""
    t0 = time.monotonic_ns() + contract.START_LEAD_NS
    end = t0 + int(seconds * 1e9)
    last_echo = t0
    ns_per_slot = 1e9 / args.rate if args.rate > 0 else 0.0

    async def run(conn: int, reader: asyncio.StreamReader,
                  writer: asyncio.StreamWriter) -> tuple[list[int], int]:
        nonlocal last_echo
        samples: list[int] = []
        await wait_until(t0)
        for k in range(1 << 62):
            if ns_per_slot:
                # Open loop: if late, send at once, but count from the intended slot so
                # a stalled server shows its queueing.
                began = contract.slot_ns(t0, conn, k, args.connections, ns_per_slot)
                if began >= end:
                    break
                await wait_until(began)
            else:
                began = time.monotonic_ns()
                if began >= end:
                    break
            try:
                async with asyncio.timeout(args.timeout):
                    await echo_once(reader, writer, contract.payload(conn, k, args.payload))
            except Exception as exc:
                # The stream is out of step after a failure: this connection is done.
                errors.record(classify(exc, "echo"))
                return samples, 1
            done = time.monotonic_ns()
            samples.append(done - began)
            last_echo = max(last_echo, done)
        return samples, 0

    runs = await asyncio.gather(*(run(c, *pair) for c, pair in live))
    return runs, t0, last_echo


async def main(args: argparse.Namespace, errors: FirstErrors,
               window: MeasuredWindow | None) -> tuple[Tally, int]:
    return await (burst if args.workload == "burst" else persistent)(args, errors, window)


if __name__ == "__main__":
    contract.run_client(__doc__, main)
