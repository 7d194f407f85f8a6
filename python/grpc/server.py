"""python-grpc: bench.Echo, bench.Crypto and grpc.health.v1.Health/Check on grpcio's
thread-pool server (grpc.server), with the messages encoded by hand (bench_wire.py).

Run it with Debian's interpreter, which is the one that sees python3-grpcio:

    /usr/bin/python3 server.py [--host H] [--port P | --unix PATH] [--threads N]

Prints ``READY tcp 127.0.0.1:PORT`` (or ``READY unix PATH``) once it listens.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from concurrent import futures
from time import time_ns

import bench_service as svc
from bench_wire import (WireError, decode_echo_request, decode_health_check_request, decode_public_key_request,
                        decode_sign_request, encode_echo_reply, encode_health_check_response, encode_public_key_reply,
                        encode_sign_reply)

grpc = svc.import_grpc()

# Threads beyond the CPUs: a bidirectional stream holds a pool thread for its whole life in
# grpcio's sync server, so the pool must be as large as the streams the suite opens at once
# (200 in flight), or the rest wait in its queue until a stream ends. A unary call holds a
# thread only while it runs, and the executor starts a new thread only when none is idle.
STREAM_THREADS = 256


def build_handler(keys: svc.SigningKeys):
    StatusCode = grpc.StatusCode
    signers, public_keys = keys.signers, keys.public_keys

    def unary(request: bytes, context):
        received = time_ns()
        try:
            payload = decode_echo_request(request)
        except WireError as e:
            context.abort(StatusCode.INTERNAL, f"cannot parse bench.EchoRequest: {e}")
        return encode_echo_reply(payload, received)

    def stream(requests, context):
        for request in requests:
            received = time_ns()
            try:
                payload = decode_echo_request(request)
            except WireError as e:
                context.abort(StatusCode.INTERNAL, f"cannot parse bench.EchoRequest: {e}")
            yield encode_echo_reply(payload, received)

    def sign(request: bytes, context):
        received = time_ns()
        try:
            algorithm, payload = decode_sign_request(request)
        except WireError as e:
            context.abort(StatusCode.INTERNAL, f"cannot parse bench.SignRequest: {e}")
        signer = signers.get(algorithm)
        if signer is None:
            context.abort(StatusCode.INVALID_ARGUMENT, svc.unsupported(algorithm))
        return encode_sign_reply(algorithm, signer(payload), received)

    def get_public_key(request: bytes, context):
        try:
            algorithm = decode_public_key_request(request)
        except WireError as e:
            context.abort(StatusCode.INTERNAL, f"cannot parse bench.PublicKeyRequest: {e}")
        spki = public_keys.get(algorithm)
        if spki is None:
            context.abort(StatusCode.INVALID_ARGUMENT, svc.unsupported(algorithm))
        return encode_public_key_reply(algorithm, spki)

    serving = encode_health_check_response(svc.SERVING)

    def health_check(request: bytes, context):
        try:
            service = decode_health_check_request(request)
        except WireError as e:
            context.abort(StatusCode.INTERNAL, f"cannot parse grpc.health.v1.HealthCheckRequest: {e}")
        if service not in svc.HEALTHY:
            context.abort(StatusCode.NOT_FOUND, f"unknown service {service!r}")
        return serving

    return svc.method_handler(grpc, unary, stream, sign, get_public_key, health_check)


def main() -> None:
    p = svc.parser("bench.Echo, bench.Crypto and health on grpcio's thread-pool server")
    p.add_argument("--threads", type=svc._positive(100_000), default=None,
                   help=f"handler threads (default: CPUs in the affinity mask + {STREAM_THREADS}, see the README)")
    args = p.parse_args()
    svc.resolve(p, args)
    threads = args.threads or svc.cpus() + STREAM_THREADS

    keys = svc.SigningKeys()
    pool = futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc-handler")
    server = grpc.server(pool, handlers=(build_handler(keys),), options=svc.server_options(args.max_message_bytes))
    svc.bind(server, args)

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    server.start()
    svc.announce(args)
    print(f"{svc.PROGRAM}: grpcio {grpc.__version__} thread-pool server, {threads} handler threads, "
          f"{svc.cpus()} CPU(s) in the affinity mask", file=sys.stderr, flush=True)
    while not stop.wait(3600):
        pass
    # New calls are refused at once; running ones get 0.3 s, then gRPC cancels them. The
    # process then leaves without joining the pool's threads (concurrent.futures would wait
    # for every one at exit), so SIGTERM to exit stays well under a second.
    server.stop(grace=0.3).wait(0.6)
    svc.remove_unix_socket(args)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
