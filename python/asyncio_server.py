"""python-asyncio server: the classic asyncio streams design, one coroutine per connection
reading with StreamReader and writing with StreamWriter on a single event loop."""

import asyncio

import echo_contract as contract

CHUNK = 64 * 1024
# On SIGTERM, how long open connections get to wind down before the loop is closed.
SHUTDOWN_GRACE = 0.5


class EchoServer:
    def __init__(self) -> None:
        self.open: set[asyncio.StreamWriter] = set()
        self.all_closed = asyncio.Event()
        self.all_closed.set()

    async def echo(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open.add(writer)
        self.all_closed.clear()
        try:
            while data := await reader.read(CHUNK):
                writer.write(data)
                # drain() waits while the send buffer is over its high-water mark, so a
                # peer that sends without reading is not buffered without bound.
                await writer.drain()
            # EOF: the peer half-closed and everything it sent has been echoed; close ours.
        except (ConnectionError, OSError):
            pass  # resets and broken pipes are the peer's business, not a server error
        finally:
            writer.close()
            self.open.discard(writer)
            if not self.open:
                self.all_closed.set()

    async def drop_all(self) -> None:
        """Ends every connection so each handler returns normally. Leaving them to
        asyncio.run's cancellation would log a traceback per connection (asyncio streams
        report a cancelled handler as an unhandled exception) and take seconds at 10k."""
        for writer in list(self.open):
            writer.transport.abort()
        try:
            async with asyncio.timeout(SHUTDOWN_GRACE):
                await self.all_closed.wait()
        except TimeoutError:
            pass


async def main() -> None:
    args = contract.parse_server_args(__doc__)
    contract.raise_nofile_limit()
    sock = contract.listen_or_exit(args.host, args.port)
    loop = asyncio.get_running_loop()
    contract.report_loop_errors_once(loop)
    stopped = contract.stop_signal(loop)
    echo = EchoServer()
    # asyncio sets TCP_NODELAY on every TCP transport it creates. It also calls listen()
    # again with its `backlog`, which doubles as how many accepts it tries per wake-up.
    # Python 3.11 does not stop that loop on EMFILE: with a backlog of 65535, running out of
    # descriptors schedules 65535 retries a second and the server never recovers. So keep
    # asyncio's default for the loop and give the kernel queue its full length afterwards.
    server = await asyncio.start_server(echo.echo, sock=sock)
    sock.listen(contract.BACKLOG)
    contract.announce(sock)
    await stopped
    server.close()
    await echo.drop_all()


if __name__ == "__main__":
    asyncio.run(main())
