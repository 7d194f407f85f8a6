"""python-grpc-aio: bench.Echo, bench.Crypto and grpc.health.v1.Health/Check on grpcio's
asyncio server (grpc.aio), with the messages encoded by hand (bench_wire.py).

Run it with Debian's interpreter, which is the one that sees python3-grpcio:

    /usr/bin/python3 aio_server.py [--host H] [--port P | --unix PATH] [--sign-threads N]

Prints ``READY tcp 127.0.0.1:PORT`` (or ``READY unix PATH``) once it listens.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from concurrent import futures
from time import time_ns

import bench_service as svc
from bench_wire import (WireError, decode_echo_request, decode_health_check_request, decode_public_key_request,
                        decode_sign_request, encode_echo_reply, encode_health_check_response, encode_public_key_reply,
                        encode_sign_reply)

grpc = svc.import_grpc()
from grpc import aio  # noqa: E402  (after the check that grpc imports at all)


def build_handler(keys: svc.SigningKeys, sign_pool: futures.Executor | None):
    StatusCode = grpc.StatusCode
    EOF = aio.EOF
    signers, public_keys = keys.signers, keys.public_keys

    async def unary(request: bytes, context):
        received = time_ns()
        try:
            payload = decode_echo_request(request)
        except WireError as e:
            await context.abort(StatusCode.INTERNAL, f"cannot parse bench.EchoRequest: {e}")
        return encode_echo_reply(payload, received)

    async def stream(requests, context):
        # context.read()/write() rather than `async for` and `yield`: no async generator
        # between gRPC and the handler.
        read, write = context.read, context.write
        while True:
            request = await read()
            if request is EOF:
                return
            received = time_ns()
            try:
                payload = decode_echo_request(request)
            except WireError as e:
                await context.abort(StatusCode.INTERNAL, f"cannot parse bench.EchoRequest: {e}")
            await write(encode_echo_reply(payload, received))

    if sign_pool is None:
        async def run_signer(signer, payload):
            return signer(payload)
    else:
        # Several CPUs: sign on a pool thread, in parallel with the loop (cryptography
        # releases the GIL while OpenSSL signs).
        async def run_signer(signer, payload):
            return await asyncio.get_running_loop().run_in_executor(sign_pool, signer, payload)

    async def sign(request: bytes, context):
        received = time_ns()
        try:
            algorithm, payload = decode_sign_request(request)
        except WireError as e:
            await context.abort(StatusCode.INTERNAL, f"cannot parse bench.SignRequest: {e}")
        signer = signers.get(algorithm)
        if signer is None:
            await context.abort(StatusCode.INVALID_ARGUMENT, svc.unsupported(algorithm))
        return encode_sign_reply(algorithm, await run_signer(signer, payload), received)

    async def get_public_key(request: bytes, context):
        try:
            algorithm = decode_public_key_request(request)
        except WireError as e:
            await context.abort(StatusCode.INTERNAL, f"cannot parse bench.PublicKeyRequest: {e}")
        spki = public_keys.get(algorithm)
        if spki is None:
            await context.abort(StatusCode.INVALID_ARGUMENT, svc.unsupported(algorithm))
        return encode_public_key_reply(algorithm, spki)

    serving = encode_health_check_response(svc.SERVING)

    async def health_check(request: bytes, context):
        try:
            service = decode_health_check_request(request)
        except WireError as e:
            await context.abort(StatusCode.INTERNAL, f"cannot parse grpc.health.v1.HealthCheckRequest: {e}")
        if service not in svc.HEALTHY:
            await context.abort(StatusCode.NOT_FOUND, f"unknown service {service!r}")
        return serving

    return svc.method_handler(grpc, unary, stream, sign, get_public_key, health_check)


async def serve(args) -> None:
    cpus = svc.cpus()
    sign_threads = args.sign_threads if args.sign_threads is not None else (cpus if cpus > 1 else 0)
    keys = svc.SigningKeys()
    sign_pool = futures.ThreadPoolExecutor(max_workers=sign_threads, thread_name_prefix="sign") if sign_threads else None
    server = aio.server(options=svc.server_options(args.max_message_bytes))
    server.add_generic_rpc_handlers((build_handler(keys, sign_pool),))
    svc.bind(server, args)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    await server.start()
    svc.announce(args)
    print(f"{svc.PROGRAM}: grpcio {grpc.__version__} asyncio server on {args.loop}, "
          f"{f'{sign_threads} signing threads' if sign_threads else 'signing on the loop'}, "
          f"{cpus} CPU(s) in the affinity mask", file=sys.stderr, flush=True)
    await stop.wait()
    # New calls are refused at once; running ones get 0.3 s, then gRPC cancels them.
    try:
        await asyncio.wait_for(server.stop(0.3), 0.6)
    except asyncio.TimeoutError:
        pass
    svc.remove_unix_socket(args)


def choose_loop(kind: str) -> str:
    """uvloop when asked for or, with auto, when installed: it took 10-15% off the server's
    CPU per unary call here (README); gRPC's own work does not change."""
    if kind == "asyncio":
        return kind
    try:
        import uvloop
    except ImportError as e:
        if kind == "uvloop":
            svc.fail(f"--loop uvloop: cannot import uvloop ({e}): install Debian's python3-uvloop")
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return f"uvloop {uvloop.__version__}"


def main() -> None:
    p = svc.parser("bench.Echo, bench.Crypto and health on grpcio's asyncio server")
    p.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                   help="event loop: uvloop (Debian's python3-uvloop) or asyncio's own; auto, the default, takes uvloop when it is installed")
    p.add_argument("--sign-threads", type=int, default=None, metavar="N",
                   help="threads that sign off the event loop (default: the CPUs in the affinity mask when more than one, else 0: sign on the loop)")
    args = p.parse_args()
    if args.sign_threads is not None and not 0 <= args.sign_threads <= 1024:
        p.error(f"--sign-threads {args.sign_threads} is not between 0 and 1024")
    svc.resolve(p, args)
    args.loop = choose_loop(args.loop)
    asyncio.run(serve(args))
    sys.stdout.flush()
    sys.stderr.flush()
    # grpcio's shutdown at interpreter exit can linger on its threads; the server is stopped.
    os._exit(0)


if __name__ == "__main__":
    main()
