"""python-fast server: the asyncio event loop's readiness callbacks (loop.add_reader /
add_writer) on non-blocking sockets, with no transport, protocol, coroutine or task per
connection; and one such loop per CPU in the affinity mask, each in its own process with
its own SO_REUSEPORT listening socket, so the kernel spreads connections between them."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import sys

import echo_contract as contract

# One receive buffer per process: the loop runs one callback at a time, and an echo that
# cannot be sent at once is copied out of it before the next read.
CHUNK = 64 * 1024
_buffer = bytearray(CHUNK)
_view = memoryview(_buffer)

# Drain the listen queue on every wake-up (as asyncio does): a 10k burst overflows a queue
# that is emptied slowly, and every dropped SYN costs its client a 1 s retransmit timer.
ACCEPT_BATCH = contract.BACKLOG
# Out of descriptors: stop accepting for a moment instead of spinning on the ready socket.
ACCEPT_RETRY_DELAY = 0.05


class Echo:
    """One connection: read, send back, and while a send is unfinished do not read, so a
    peer that does not read its echo meets back-pressure instead of growing our memory."""

    __slots__ = ("server", "sock", "fd", "unsent")

    def __init__(self, server: Server, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.fd = sock.fileno()
        self.unsent: memoryview | None = None
        server.live.add(self)
        server.loop.add_reader(self.fd, self.readable)

    def readable(self) -> None:
        try:
            received = self.sock.recv_into(_buffer)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return self.close()  # reset by the peer: its business, not a server error
        if not received:
            # EOF: the peer half-closed. Nothing is unsent (we stop reading while anything
            # is), so the echo is complete: close our side.
            return self.close()
        try:
            sent = self.sock.send(_view[:received])
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            return self.close()
        if sent < received:
            self.unsent = memoryview(bytes(_view[sent:received]))
            loop = self.server.loop
            loop.remove_reader(self.fd)
            loop.add_writer(self.fd, self.writable)

    def writable(self) -> None:
        try:
            sent = self.sock.send(self.unsent)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return self.close()
        self.unsent = self.unsent[sent:]
        if not self.unsent:
            self.unsent = None
            loop = self.server.loop
            loop.remove_writer(self.fd)
            loop.add_reader(self.fd, self.readable)

    def close(self) -> None:
        loop = self.server.loop
        if self.unsent is None:
            loop.remove_reader(self.fd)
        else:
            loop.remove_writer(self.fd)
        self.server.live.discard(self)
        self.sock.close()


class Server:
    def __init__(self, listener: socket.socket) -> None:
        self.loop = asyncio.get_running_loop()
        self.listener = listener
        self.live: set[Echo] = set()
        self.warned = False
        self.loop.add_reader(listener.fileno(), self.accept)

    def accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    if not self.warned:
                        print(f"server: accept: {exc}; backing off", file=sys.stderr)
                        self.warned = True
                    self.loop.remove_reader(self.listener.fileno())
                    self.loop.call_later(ACCEPT_RETRY_DELAY, self.loop.add_reader,
                                         self.listener.fileno(), self.accept)
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            Echo(self, sock)

    def close(self) -> None:
        self.loop.remove_reader(self.listener.fileno())
        self.listener.close()
        for conn in list(self.live):
            conn.close()


async def serve(listener: socket.socket, announce: bool, parent: int | None = None) -> None:
    loop = asyncio.get_running_loop()
    contract.report_loop_errors_once(loop)
    stopped = contract.stop_signal(loop)
    server = Server(listener)
    if announce:
        contract.announce(listener)
    if parent is not None:
        def watch_parent() -> None:
            # An orphaned worker would hold the port forever; the parent owns the lifetime.
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
            else:
                loop.call_later(1.0, watch_parent)
        loop.call_later(1.0, watch_parent)
    await stopped
    server.close()


def main() -> None:
    args = contract.parse_server_args(__doc__)
    contract.raise_nofile_limit()
    workers = contract.cpu_count()
    first = contract.listen_or_exit(args.host, args.port, reuse_port=workers > 1)
    # The other workers bind the port the first socket got (it may have been port 0).
    port = first.getsockname()[1]
    listeners = [first] + [contract.listen_or_exit(args.host, port, reuse_port=True)
                           for _ in range(workers - 1)]

    parent = os.getpid()
    children = []
    for listener in listeners[1:]:
        pid = os.fork()
        if pid == 0:
            for other in listeners:
                if other is not listener:
                    other.close()
            try:
                asyncio.run(serve(listener, announce=False, parent=parent))
            finally:
                os._exit(0)
        children.append(pid)
        # Close the parent's copy, so a worker that dies takes its queue with it and the
        # kernel sends new connections to the workers that are left.
        listener.close()

    try:
        asyncio.run(serve(first, announce=True))
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in children:
            os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
