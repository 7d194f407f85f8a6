"""python-fast server: asyncio Protocols (callbacks, no streams layer, no task per
connection) on one event loop per CPU in the affinity mask, each loop in its own process
with its own SO_REUSEPORT listening socket so the kernel spreads connections between them."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import echo_contract as contract

# Pause reading once this much echo is waiting to be sent: a peer that sends without
# reading meets back-pressure instead of growing our buffer.
WRITE_HIGH_WATER = 64 * 1024


class Echo(asyncio.Protocol):
    """Echoes in the read callback: no coroutine, no task, no extra buffer per connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)

    def data_received(self, data: bytes) -> None:
        # write() sends at once when the socket has room; only the rest is buffered.
        self.transport.write(data)

    def pause_writing(self) -> None:
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.transport.resume_reading()

    def eof_received(self) -> bool:
        # The peer half-closed: returning False closes the transport, which first sends
        # everything still buffered, so the echo is complete before our FIN.
        return False


async def serve(sock: socket.socket, announce: bool) -> None:
    loop = asyncio.get_running_loop()
    stopped = contract.stop_signal(loop)
    # backlog is passed again because asyncio calls listen() once more with its own value.
    # asyncio sets TCP_NODELAY on every TCP transport it creates.
    server = await loop.create_server(Echo, sock=sock, backlog=contract.BACKLOG)
    if announce:
        contract.announce(sock)
    await stopped
    server.close()


def run_worker(sock: socket.socket) -> None:
    """A forked worker: serves until SIGTERM, or until its parent is gone."""
    parent = os.getppid()

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def orphaned() -> None:
            # An orphan would hold the port forever; the parent owns the lifetime.
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)
            else:
                loop.call_later(1.0, orphaned)

        loop.call_later(1.0, orphaned)
        await serve(sock, announce=False)

    asyncio.run(main())


def main() -> None:
    args = contract.parse_server_args(__doc__)
    contract.raise_nofile_limit()
    workers = contract.cpu_count()
    first = contract.listen_or_exit(args.host, args.port, reuse_port=workers > 1)
    # The other workers bind the port the first socket got (it may have been port 0).
    port = first.getsockname()[1]
    socks = [first] + [contract.listen_or_exit(args.host, port, reuse_port=True)
                       for _ in range(workers - 1)]

    children = []
    for sock in socks[1:]:
        pid = os.fork()
        if pid == 0:
            for other in socks:
                if other is not sock:
                    other.close()
            try:
                run_worker(sock)
            finally:
                os._exit(0)
        children.append(pid)
        # Close the parent's copy, so a worker that dies takes its queue with it and the
        # kernel sends new connections to the workers that are left.
        sock.close()

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
    sys.exit(main())
