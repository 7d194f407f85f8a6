"""python-asyncio server: the classic asyncio streams design, one coroutine per connection
reading with StreamReader and writing with StreamWriter on a single event loop."""

import asyncio

import echo_contract as contract

CHUNK = 64 * 1024


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            # drain() waits while the send buffer is over its high-water mark, so a peer
            # that sends without reading is not buffered without bound: we stop reading.
            await writer.drain()
        # EOF: the peer half-closed and everything it sent has been echoed; close ours.
    except (ConnectionError, OSError):
        pass  # resets and broken pipes are the peer's business, not a server error
    finally:
        writer.close()


async def main() -> None:
    args = contract.parse_server_args(__doc__)
    contract.raise_nofile_limit()
    sock = contract.listen_or_exit(args.host, args.port)
    stopped = contract.stop_signal(asyncio.get_running_loop())
    # backlog is passed again because asyncio calls listen() once more with its own value.
    # asyncio sets TCP_NODELAY on every TCP transport it creates.
    server = await asyncio.start_server(echo, sock=sock, backlog=contract.BACKLOG)
    contract.announce(sock)
    await stopped
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
