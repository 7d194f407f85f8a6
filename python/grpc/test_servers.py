"""Both servers as processes, driven by a grpcio client: the contract's behaviour.

Run in this folder:  /usr/bin/python3 -m unittest test_servers -v
(needs Debian's python3-grpcio and python3-cryptography, so /usr/bin/python3; skipped
under an interpreter without grpc). About 20 s: each server class starts its server once
for the service tests and a few more times for start-up, bind and signal cases.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import bench_wire as w

try:
    import grpc
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, utils
except ImportError:  # the pyenv python3: nothing to test with
    grpc = None

HERE = os.path.dirname(os.path.abspath(__file__))
MiB = 1 << 20
STARTUP_S = 30  # RSA key generation on a loaded machine


def start(script: str, *args: str, env=None) -> tuple[subprocess.Popen, str]:
    """Starts a server; returns it and its ready line (or its exit, if it exits first)."""
    proc = subprocess.Popen([sys.executable, script, *args], cwd=HERE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    ready, _, _ = select.select([proc.stdout], [], [], STARTUP_S)
    line = proc.stdout.readline().strip() if ready else ""
    return proc, line


def stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> tuple[int, float]:
    """Signals the server; returns its exit status and how long it took to exit."""
    started = time.monotonic()
    proc.send_signal(sig)
    try:
        status = proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        status = proc.wait()
    took = time.monotonic() - started
    proc.stdout.close()
    proc.stderr.close()
    return status, took


class ServerContract:
    """Mixed into one TestCase per server; SCRIPT names it."""

    SCRIPT = ""

    @classmethod
    def setUpClass(cls):
        if grpc is None:
            raise unittest.SkipTest("needs grpc and cryptography: run with /usr/bin/python3")
        cls.proc, line = start(cls.SCRIPT)
        assert line.startswith("READY tcp 127.0.0.1:"), f"ready line {line!r}"
        cls.port = int(line.rsplit(":", 1)[1])
        cls.channel = grpc.insecure_channel(f"127.0.0.1:{cls.port}", options=[
            ("grpc.max_receive_message_length", 16 * MiB), ("grpc.max_send_message_length", 16 * MiB)])
        grpc.channel_ready_future(cls.channel).result(timeout=10)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        status, took = stop(cls.proc)
        assert status == 0, f"exit status {status}"

    def call(self, method: str, request: bytes) -> bytes:
        return self.channel.unary_unary(method)(request, timeout=20)

    def assertStatus(self, code, method: str, request: bytes):
        with self.assertRaises(grpc.RpcError) as raised:
            self.call(method, request)
        self.assertEqual(raised.exception.code(), code, raised.exception.details())
        return raised.exception.details()

    # ------------------------------------------------------------ echo

    def test_unary_echoes_every_size(self):
        for n in (0, 1, 100, 65536, MiB, 4 * MiB - 64):
            payload = bytes((i + n) % 251 for i in range(n)) if n <= MiB else os.urandom(n)
            with self.subTest(n=n):
                before = time.time_ns()
                payload_back, received = w.decode_echo_reply(self.call("/bench.Echo/Unary", w.encode_echo_request(payload, before)))
                self.assertEqual(payload_back, payload)
                self.assertTrue(before <= received <= time.time_ns(), received)

    def test_larger_than_4_MiB_is_resource_exhausted(self):
        self.assertStatus(grpc.StatusCode.RESOURCE_EXHAUSTED, "/bench.Echo/Unary", w.encode_echo_request(bytes(4 * MiB)))
        # and the server goes on
        self.assertEqual(w.decode_echo_reply(self.call("/bench.Echo/Unary", w.encode_echo_request(b"ok")))[0], b"ok")

    def test_stream_answers_each_request_in_order(self):
        requests = [w.encode_echo_request(bytes([i % 256]) * (1 + i * 97 % 70000)) for i in range(200)]
        replies = list(self.channel.stream_stream("/bench.Echo/Stream")(iter(requests), timeout=30))
        self.assertEqual([w.decode_echo_reply(r)[0] for r in replies], [w.decode_echo_request_fields(r)[0] for r in requests])

    def test_stream_is_ping_pong(self):
        # One reply per request before the next is sent: the server must not wait for more.
        call_requests: list[bytes] = []
        ready = threading.Semaphore(0)

        def requests():
            for i in range(20):
                yield w.encode_echo_request(b"%d" % i)
                ready.acquire()
        replies = self.channel.stream_stream("/bench.Echo/Stream")(requests(), timeout=20)
        for i, reply in enumerate(replies):
            call_requests.append(w.decode_echo_reply(reply)[0])
            ready.release()
        self.assertEqual(call_requests, [b"%d" % i for i in range(20)])

    def test_many_streams_at_once(self):
        # 64 concurrent bidirectional streams, each ping-pong: a thread-pool server must hold them all.
        results = [None] * 64

        def run(k):
            def requests():
                for i in range(10):
                    yield w.encode_echo_request(b"%d-%d" % (k, i))
            results[k] = [w.decode_echo_reply(r)[0] for r in self.channel.stream_stream("/bench.Echo/Stream")(requests(), timeout=30)]
        threads = [threading.Thread(target=run, args=(k,)) for k in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, [[b"%d-%d" % (k, i) for i in range(10)] for k in range(64)])

    def test_malformed_request_is_internal(self):
        details = self.assertStatus(grpc.StatusCode.INTERNAL, "/bench.Echo/Unary", b"\x0a\x05ab")
        self.assertIn("EchoRequest", details)

    def test_unknown_method_is_unimplemented(self):
        self.assertStatus(grpc.StatusCode.UNIMPLEMENTED, "/bench.Echo/Nope", b"")

    # ------------------------------------------------------------ crypto

    def test_signatures_verify_with_the_served_keys(self):
        payload = b"the payload to sign" * 5
        for algorithm in (1, 2, 3, 4):
            with self.subTest(algorithm=algorithm):
                served, der = w.decode_public_key_reply(self.call("/bench.Crypto/GetPublicKey", w.encode_public_key_request(algorithm)))
                self.assertEqual(served, algorithm)
                key = serialization.load_der_public_key(der)
                before = time.time_ns()
                echoed, signature, received = w.decode_sign_reply(self.call("/bench.Crypto/Sign", w.encode_sign_request(algorithm, payload)))
                self.assertEqual(echoed, algorithm)
                self.assertTrue(before <= received <= time.time_ns())
                if algorithm == 1:
                    self.assertEqual(key.key_size, 2048)
                    key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
                elif algorithm == 2:
                    key.verify(signature, payload, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
                else:
                    width, curve, hash_algorithm = (32, ec.SECP256R1, hashes.SHA256()) if algorithm == 3 else (48, ec.SECP384R1, hashes.SHA384())
                    self.assertIsInstance(key.curve, curve)
                    self.assertEqual(len(signature), 2 * width)  # IEEE P1363 r || s, not DER
                    r, s = int.from_bytes(signature[:width], "big"), int.from_bytes(signature[width:], "big")
                    key.verify(utils.encode_dss_signature(r, s), payload, ec.ECDSA(hash_algorithm))

    def test_pss_salt_is_32_bytes(self):
        _, der = w.decode_public_key_reply(self.call("/bench.Crypto/GetPublicKey", w.encode_public_key_request(2)))
        key = serialization.load_der_public_key(der)
        _, signature, _ = w.decode_sign_reply(self.call("/bench.Crypto/Sign", w.encode_sign_request(2, b"x")))
        key.verify(signature, b"x", padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
        with self.assertRaises(Exception):
            key.verify(signature, b"x", padding.PSS(padding.MGF1(hashes.SHA256()), 20), hashes.SHA256())

    def test_one_rsa_key_for_both_paddings(self):
        spki = [w.decode_public_key_reply(self.call("/bench.Crypto/GetPublicKey", w.encode_public_key_request(a)))[1] for a in (1, 2)]
        self.assertEqual(spki[0], spki[1])

    def test_unknown_algorithm_is_invalid_argument(self):
        for algorithm in (0, 5, -1):
            with self.subTest(algorithm=algorithm):
                self.assertIn("unsupported signature algorithm",
                              self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, "/bench.Crypto/Sign", w.encode_sign_request(algorithm, b"x")))
                self.assertStatus(grpc.StatusCode.INVALID_ARGUMENT, "/bench.Crypto/GetPublicKey", w.encode_public_key_request(algorithm))

    # ------------------------------------------------------------ health

    def test_health(self):
        for service in ("", "bench.Echo", "bench.Crypto", "grpc.health.v1.Health"):
            with self.subTest(service=service):
                self.assertEqual(self.call("/grpc.health.v1.Health/Check", w.encode_health_check_request(service)), b"\x08\x01")
        self.assertStatus(grpc.StatusCode.NOT_FOUND, "/grpc.health.v1.Health/Check", w.encode_health_check_request("bench.Nope"))

    # ------------------------------------------------------------ the process

    def test_sigterm_and_sigint_exit_0_within_a_second_under_load(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(sig=sig):
                proc, line = start(self.SCRIPT)
                port = int(line.rsplit(":", 1)[1])
                channel = grpc.insecure_channel(f"127.0.0.1:{port}")
                stream = channel.stream_stream("/bench.Echo/Stream")
                stopping = threading.Event()

                def load():
                    try:
                        for _ in stream(iter(lambda: w.encode_echo_request(b"x" * 100), None), timeout=30):
                            if stopping.is_set():
                                break
                    except grpc.RpcError:
                        pass
                threads = [threading.Thread(target=load, daemon=True) for _ in range(8)]
                for t in threads:
                    t.start()
                time.sleep(1)
                status, took = stop(proc, sig)
                stopping.set()
                channel.close()
                self.assertEqual(status, 0)
                self.assertLess(took, 1.0)

    def test_bad_arguments_exit_2_with_one_line(self):
        for args in (["--port", "x"], ["--port", "70000"], ["--bogus"], ["--unix", "/tmp/x", "--port", "1"],
                     ["--host", "no.such.host.invalid"]):
            with self.subTest(args=args):
                result = subprocess.run([sys.executable, self.SCRIPT, *args], cwd=HERE, capture_output=True, text=True, timeout=30)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertEqual(result.stdout, "")
                lines = result.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, result.stderr)
                self.assertTrue(lines[0].startswith(f"{self.SCRIPT}: "), lines[0])

    def test_a_taken_port_exits_1(self):
        result = subprocess.run([sys.executable, self.SCRIPT, "--port", str(self.port)], cwd=HERE, capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.stdout, "")
        self.assertIn("Address already in use", result.stderr)

    def test_unix_socket(self):
        with tempfile.TemporaryDirectory() as scratch:
            path = os.path.join(scratch, "bench.sock")
            stale = socket.socket(socket.AF_UNIX)
            stale.bind(path)  # a socket file nobody answers on, as a killed server leaves
            stale.close()
            proc, line = start(self.SCRIPT, "--unix", path)
            try:
                self.assertEqual(line, f"READY unix {path}")
                # a second server on a live path is refused, and leaves the first alone
                result = subprocess.run([sys.executable, self.SCRIPT, "--unix", path], cwd=HERE, capture_output=True, text=True, timeout=60)
                self.assertEqual(result.returncode, 1)
                self.assertIn("another server is listening there", result.stderr)
                with grpc.insecure_channel(f"unix:{path}") as channel:
                    reply = channel.unary_unary("/bench.Echo/Unary")(w.encode_echo_request(b"over unix"), timeout=10)
                self.assertEqual(w.decode_echo_reply(reply)[0], b"over unix")
            finally:
                status, _ = stop(proc)
            self.assertEqual(status, 0)
            self.assertFalse(os.path.exists(path), "the socket file is removed at exit")

    def test_missing_grpc_is_reported(self):
        env = dict(os.environ, PYTHONPATH=os.path.join(HERE, "no-grpc-here"))
        result = subprocess.run([sys.executable, "-S", "-c", f"import sys; sys.argv=['{self.SCRIPT}']; sys.path.insert(0, '.'); exec(open('{self.SCRIPT}').read())"],
                                cwd=HERE, capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(result.returncode, 1)
        self.assertIn("python3-grpcio", result.stderr)


class ThreadPoolServer(ServerContract, unittest.TestCase):
    SCRIPT = "server.py"


class AioServer(ServerContract, unittest.TestCase):
    SCRIPT = "aio_server.py"


if __name__ == "__main__":
    unittest.main()
