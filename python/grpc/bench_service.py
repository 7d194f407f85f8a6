"""What the two grpcio servers (server.py: thread pool; aio_server.py: grpc.aio) share:
the command line, the imports that must work, the server options, binding and the ready
line, the signing keys, the health answers, the service and method names and the method table.

Only the pure-Python parts are here; each server holds its own handlers, since a sync
handler returns and raises where an aio one awaits.
"""

from __future__ import annotations

import argparse
import os
import socket
import stat
import sys

PROGRAM = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "server.py"


def fail(message: str, status: int = 1):
    """Says why on stderr and exits at once: once gRPC has started its threads (a bind
    fails after the server exists), a normal interpreter exit can wait on them."""
    print(f"{PROGRAM}: {message}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(status)


def import_grpc():
    """grpc, or a clear exit 1: Debian's python3-grpcio installs into /usr/lib/python3/dist-packages,
    which only Debian's /usr/bin/python3 reads (the pyenv python3 on PATH does not)."""
    try:
        import grpc
    except ImportError as e:
        fail(f"cannot import grpc ({e}): install Debian's python3-grpcio (apt-get install python3-grpcio) "
             f"and run this server with /usr/bin/python3 (this is {sys.executable})")
    return grpc


def import_cryptography():
    try:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
    except ImportError as e:
        fail(f"cannot import cryptography ({e}): install Debian's python3-cryptography "
             f"(apt-get install python3-cryptography) and run this server with /usr/bin/python3 (this is {sys.executable})")
    return hashes, serialization, ec, padding, rsa, utils


# ---------------------------------------------------------------- command line

MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def cpus() -> int:
    """The CPUs this process may run on (taskset's mask), not the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class _Parser(argparse.ArgumentParser):
    """A bad argument is one line on stderr, ``PROGRAM: message``, and status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message}\n")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and 65535")
    return value


def _positive(limit: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"{value} is not between 1 and {limit}")
        return value
    return parse


def parser(description: str) -> _Parser:
    p = _Parser(prog=PROGRAM, description=description)
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, help="TCP port (default 0: the kernel picks)")
    p.add_argument("--unix", metavar="PATH", help="listen on a Unix domain socket instead of TCP")
    p.add_argument("--max-message-bytes", type=_positive(1 << 30), default=MAX_MESSAGE_BYTES,
                   help="largest message received or sent (default 4 MiB); a bigger one ends its call with RESOURCE_EXHAUSTED")
    return p


def resolve(p: _Parser, args: argparse.Namespace) -> None:
    """Checks the address arguments and fills args.bind (grpc's address string) and
    args.family / args.address (for the ready line and bind diagnostics)."""
    if args.unix is not None:
        if args.host is not None or args.port is not None:
            p.error("--unix cannot be combined with --host or --port")
        if not args.unix or "\0" in args.unix:
            p.error("--unix needs a file path")
        if len(os.fsencode(args.unix)) > 107:
            p.error(f"--unix path is {len(os.fsencode(args.unix))} bytes; a Unix socket path is at most 107")
        args.bind = "unix:" + args.unix
        return
    args.host = "127.0.0.1" if args.host is None else args.host
    args.port = 0 if args.port is None else args.port
    try:
        info = socket.getaddrinfo(args.host, args.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except (OSError, UnicodeError) as e:
        p.error(f"cannot resolve --host {args.host}: {e}")
    args.family, address = info[0], info[4]
    args.ip = address[0]
    args.bind = f"[{args.ip}]:{args.port}" if args.family == socket.AF_INET6 else f"{args.ip}:{args.port}"


def server_options(max_message_bytes: int) -> list[tuple[str, int]]:
    return [
        # A bigger message ends its call with RESOURCE_EXHAUSTED (gRPC core checks both ways).
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        # gRPC sets SO_REUSEPORT by default on Linux, so a second server on a taken port would
        # bind silently and share its connections; off, the bind fails as the contract wants.
        ("grpc.so_reuseport", 0),
    ]


def check_unix_path(path: str) -> None:
    """gRPC core unlinks whatever socket file sits at the path before binding, even a live
    server's. Refuse a path where a server answers; a stale socket (nobody answers) is left
    to gRPC to remove; anything that is not a socket makes the bind fail by itself."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        fail(f"cannot listen on unix {path}: {e.strerror}")
    if not stat.S_ISSOCK(mode):
        fail(f"cannot listen on unix {path}: the path exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1)
        probe.connect(path)
    except OSError:
        return
    finally:
        probe.close()
    fail(f"cannot listen on unix {path}: another server is listening there")


def bind(server, args) -> None:
    """Adds the listening port; on failure, exit 1 with the reason (gRPC only says that it
    failed, so the same bind is tried with a plain socket to learn why)."""
    if args.unix is not None:
        check_unix_path(args.unix)
    try:
        port = server.add_insecure_port(args.bind)
    except RuntimeError:
        port = 0  # grpcio 1.51 raises; older versions return 0
    if port == 0:
        fail(f"cannot listen on {'unix ' + args.unix if args.unix is not None else args.bind}: {bind_error(args)}")
    args.bound_port = port


def bind_error(args) -> str:
    if args.unix is not None:
        family, address = socket.AF_UNIX, args.unix
    else:
        family, address = args.family, (args.ip, args.port)
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.bind(address)
    except OSError as e:
        return e.strerror or str(e)
    finally:
        s.close()
    return "gRPC could not bind it (set GRPC_VERBOSITY=debug for its reasons)"


def ready_line(args) -> str:
    if args.unix is not None:
        return f"READY unix {args.unix}"
    host = f"[{args.ip}]" if args.family == socket.AF_INET6 else args.ip
    return f"READY tcp {host}:{args.bound_port}"


def announce(args) -> None:
    sys.stdout.write(ready_line(args) + "\n")
    sys.stdout.flush()


def remove_unix_socket(args) -> None:
    if args.unix is not None:
        try:
            if stat.S_ISSOCK(os.stat(args.unix).st_mode):
                os.unlink(args.unix)
        except OSError:
            pass


# ---------------------------------------------------------------- services

ECHO_SERVICE = "bench.Echo"
CRYPTO_SERVICE = "bench.Crypto"
HEALTH_SERVICE = "grpc.health.v1.Health"

# grpc.health.v1.HealthCheckResponse.ServingStatus
SERVING = 1
# The services Health/Check answers SERVING for ("" is the server as a whole); any other
# name is NOT_FOUND, as the health protocol says.
HEALTHY = frozenset(("", ECHO_SERVICE, CRYPTO_SERVICE, HEALTH_SERVICE))

# bench.SignatureAlgorithm
RSA_PKCS1_SHA256, RSA_PSS_SHA256, ECDSA_P256_SHA256, ECDSA_P384_SHA384 = 1, 2, 3, 4
ALGORITHM_NAMES = {
    RSA_PKCS1_SHA256: "RSA_PKCS1_SHA256",
    RSA_PSS_SHA256: "RSA_PSS_SHA256",
    ECDSA_P256_SHA256: "ECDSA_P256_SHA256",
    ECDSA_P384_SHA384: "ECDSA_P384_SHA384",
}


def unsupported(algorithm: int) -> str:
    name = "SIGNATURE_ALGORITHM_UNSPECIFIED" if algorithm == 0 else str(algorithm)
    return f"unsupported signature algorithm {name}; supported: {', '.join(ALGORITHM_NAMES.values())}"


class SigningKeys:
    """The keys made at start-up: one RSA 2048 key for both paddings, one P-256, one P-384.

    OpenSSL's EVP_PKEY signing is safe from several threads at once (RSA blinding is locked
    inside OpenSSL), and cryptography releases the GIL around it, so one key object serves
    every thread. sign() raises KeyError for an algorithm it does not know."""

    def __init__(self):
        hashes, serialization, ec, padding, rsa, utils = import_cryptography()
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        p256 = ec.generate_private_key(ec.SECP256R1())
        p384 = ec.generate_private_key(ec.SECP384R1())
        decode_dss = utils.decode_dss_signature

        def rsa_signer(pad, hash_algorithm):
            sign = rsa_key.sign
            return lambda data: sign(data, pad, hash_algorithm)

        def ecdsa_signer(key, hash_algorithm, width):
            sign, scheme = key.sign, ec.ECDSA(hash_algorithm)

            def signer(data):
                # cryptography returns DER; the contract wants IEEE P1363, r || s at fixed width.
                r, s = decode_dss(sign(data, scheme))
                return r.to_bytes(width, "big") + s.to_bytes(width, "big")
            return signer

        self.signers = {
            RSA_PKCS1_SHA256: rsa_signer(padding.PKCS1v15(), hashes.SHA256()),
            RSA_PSS_SHA256: rsa_signer(padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256()),
            ECDSA_P256_SHA256: ecdsa_signer(p256, hashes.SHA256(), 32),
            ECDSA_P384_SHA384: ecdsa_signer(p384, hashes.SHA384(), 48),
        }

        def spki(key) -> bytes:
            return key.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        rsa_spki = spki(rsa_key)
        self.public_keys = {
            RSA_PKCS1_SHA256: rsa_spki,
            RSA_PSS_SHA256: rsa_spki,
            ECDSA_P256_SHA256: spki(p256),
            ECDSA_P384_SHA384: spki(p384),
        }


def method_handler(grpc, unary, stream, sign, get_public_key, health_check):
    """The one generic handler both servers register: a dictionary lookup per call for every
    method (grpc.method_handlers_generic_handler would be one handler per service, tried in
    turn). No request_deserializer / response_serializer: gRPC hands each handler the message
    bytes and sends the bytes it returns, so a call costs one decode and one encode."""
    unary_unary, stream_stream = grpc.unary_unary_rpc_method_handler, grpc.stream_stream_rpc_method_handler
    methods = {
        f"/{ECHO_SERVICE}/Unary": unary_unary(unary),
        f"/{ECHO_SERVICE}/Stream": stream_stream(stream),
        f"/{CRYPTO_SERVICE}/Sign": unary_unary(sign),
        f"/{CRYPTO_SERVICE}/GetPublicKey": unary_unary(get_public_key),
        f"/{HEALTH_SERVICE}/Check": unary_unary(health_check),
    }

    class Methods(grpc.GenericRpcHandler):
        def service(self, handler_call_details):
            return methods.get(handler_call_details.method)

    return Methods()
