"""Tests of the hand-written protobuf encoding (bench_wire.py).

Run in this folder:  /usr/bin/python3 -m unittest test_bench_wire -v
(the pyenv python3 runs them too; the cross-checks against the protobuf library need
Debian's python3-protobuf and protoc, and are skipped without them).

Three kinds of checks: exact bytes for known messages; the field numbers and types in
proto/bench.proto, so this module cannot drift from the single source of truth; and
round trips against the real protobuf runtime, with the messages built at test time from
proto/bench.proto by protoc (into a temporary directory, never beside the sources).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import tempfile
import unittest

import bench_wire as w

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.normpath(os.path.join(HERE, "..", "..", "proto", "bench.proto"))


def _proto_text() -> str:
    with open(PROTO, encoding="utf-8") as f:
        return f.read()


def _messages_in_proto() -> dict[str, dict[str, tuple[str, int]]]:
    """{message: {field: (type, number)}} read from proto/bench.proto."""
    text = re.sub(r"//[^\n]*", "", _proto_text())
    messages = {}
    for name, body in re.findall(r"\bmessage\s+(\w+)\s*\{([^}]*)\}", text):
        messages[name] = {f: (t, int(n)) for t, f, n in re.findall(r"(\w+)\s+(\w+)\s*=\s*(\d+)\s*;", body)}
    return messages


class Varints(unittest.TestCase):
    def test_known_encodings(self):
        cases = {1 << 56: b"\x80" * 8 + b"\x01", 1_700_000_000_123_456_789: None, 0: b"\x00", 1: b"\x01", 127: b"\x7f", 128: b"\x80\x01", 300: b"\xac\x02",
                 16383: b"\xff\x7f", 16384: b"\x80\x80\x01", (1 << 63) - 1: b"\xff" * 8 + b"\x7f",
                 -1: b"\xff" * 9 + b"\x01"}
        for value, encoded in cases.items():
            with self.subTest(value=value):
                if encoded is None:  # the loop's answer, against the unrolled nine bytes
                    encoded = bytes(((value >> (7 * i)) & 0x7F) | (0x80 if value >> (7 * (i + 1)) else 0) for i in range(9))
                self.assertEqual(w.encode_varint(value), encoded)

    def test_round_trip(self):
        rng = random.Random(7)
        for value in [0, 1, 2**7 - 1, 2**7, 2**14, 2**21, 2**28, 2**35, 2**42, 2**49, 2**56, 2**63 - 1, 2**64 - 1] + \
                [rng.getrandbits(rng.randint(1, 64)) for _ in range(2000)]:
            data = b"\x10" + w.encode_varint(value)  # as field 2 of an EchoRequest
            self.assertEqual(w.decode_echo_request_fields(data)[1] % (1 << 64), value)

    def test_varint_limits(self):
        with self.assertRaisesRegex(w.WireError, "longer than 10"):
            w.decode_echo_request_fields(b"\x10" + b"\xff" * 10 + b"\x01")
        with self.assertRaisesRegex(w.WireError, "truncated varint"):
            w.decode_echo_request_fields(b"\x10\xff\xff")
        with self.assertRaisesRegex(w.WireError, "truncated varint"):
            w.decode_echo_request_fields(b"\x10")
        # The same through the shortcut for the common shape (payload, then the timestamp).
        for bad in (b"\x0a\x01a\x10", b"\x0a\x01a\x10\xff", b"\x0a\x01a\x10" + b"\xff" * 10 + b"\x01",
                    b"\x0a\x01a\x10\x80\x01\x80"):
            with self.subTest(bad=bad):
                with self.assertRaises(w.WireError):
                    w.decode_echo_request(bad)
        for good in (b"\x0a\x01a\x10\x00", b"\x0a\x01a\x10" + b"\xff" * 9 + b"\x01", b"\x0a\x01a\x10\x80\x01\x18\x01"):
            with self.subTest(good=good):
                self.assertEqual(w.decode_echo_request(good), b"a")
        # A value wider than 64 bits keeps its low 64 bits, as protobuf does.
        self.assertEqual(w.decode_echo_request_fields(b"\x10" + b"\xff" * 9 + b"\x7f")[1], -1)


class EchoMessages(unittest.TestCase):
    def test_request_shapes(self):
        self.assertEqual(w.decode_echo_request(b""), b"")
        self.assertEqual(w.decode_echo_request(b"\x0a\x03abc"), b"abc")
        self.assertEqual(w.decode_echo_request(b"\x0a\x03abc\x10\x05"), b"abc")
        self.assertEqual(w.decode_echo_request(b"\x10\x05\x0a\x03abc"), b"abc")  # any field order
        self.assertEqual(w.decode_echo_request(b"\x10\x05"), b"")
        self.assertEqual(w.decode_echo_request_fields(b"\x0a\x03abc\x10\x05"), (b"abc", 5))

    def test_last_occurrence_wins(self):
        self.assertEqual(w.decode_echo_request(b"\x0a\x01a\x0a\x02bc"), b"bc")
        self.assertEqual(w.decode_echo_request_fields(b"\x10\x01\x10\x02"), (b"", 2))

    def test_every_payload_length_decodes(self):
        for n in list(range(0, 300)) + [4095, 4096, 4097, 16383, 16384, 65536, 1 << 20]:
            payload = bytes((i * 7 + n) % 251 for i in range(n))
            for ns in (0, 1, 1_700_000_000_123_456_789):
                with self.subTest(n=n, ns=ns):
                    data = w.encode_echo_request(payload, ns)
                    self.assertEqual(bytes(w.decode_echo_request(data)), payload)
                    self.assertEqual(w.decode_echo_request_fields(data), (payload, ns))

    def test_large_payload_is_a_view_of_the_request(self):
        data = w.encode_echo_request(b"x" * 65536)
        self.assertIsInstance(w.decode_echo_request(data), memoryview)
        self.assertIsInstance(w.decode_echo_request(data, view=False), bytes)
        self.assertIsInstance(w.decode_echo_request(w.encode_echo_request(b"x" * 100)), bytes)

    def test_reply_bytes(self):
        self.assertEqual(w.encode_echo_reply(b"abc", 5), b"\x0a\x03abc\x10\x05")
        self.assertEqual(w.encode_echo_reply(b"", 5), b"\x10\x05")
        self.assertEqual(w.encode_echo_reply(b"", 0), b"")
        self.assertEqual(w.encode_echo_reply(b"abc", 0), b"\x0a\x03abc")
        big = bytes(200)
        self.assertEqual(w.encode_echo_reply(big, 1), b"\x0a\xc8\x01" + big + b"\x10\x01")
        self.assertEqual(w.encode_echo_reply(memoryview(big), 1), b"\x0a\xc8\x01" + big + b"\x10\x01")

    def test_reply_round_trip(self):
        for n in (0, 1, 127, 128, 100_000):
            payload = os.urandom(n)
            self.assertEqual(w.decode_echo_reply(w.encode_echo_reply(payload, 1_700_000_000_000_000_000)),
                             (payload, 1_700_000_000_000_000_000))


class UnknownFields(unittest.TestCase):
    """Fields the message does not have, and known numbers with another wire type, are skipped."""

    UNKNOWN = [
        b"\x18\x96\x01",                       # field 3, varint
        b"\x21" + bytes(8),                    # field 4, fixed64
        b"\x2a\x03xyz",                        # field 5, length-delimited
        b"\x35" + bytes(4),                    # field 6, fixed32
        b"\x3b\x08\x01\x12\x01a\x3c",          # field 7, a group holding a varint and a bytes field
        b"\x3b\x43\x08\x01\x44\x3c",           # field 7, a group nested in a group
        b"\xf8\xff\xff\xff\x0f\x00",           # field 536870911 (the largest), varint
        b"\x09" + bytes(8),                    # field 1 as fixed64: the wrong wire type
        b"\x12\x02zz",                         # field 2 as bytes: the wrong wire type
    ]

    def test_skipped_anywhere(self):
        for unknown in self.UNKNOWN:
            with self.subTest(unknown=unknown):
                for data in (unknown + b"\x0a\x03abc\x10\x05", b"\x0a\x03abc" + unknown + b"\x10\x05",
                             b"\x0a\x03abc\x10\x05" + unknown):
                    self.assertEqual(bytes(w.decode_echo_request(data)), b"abc")
                    self.assertEqual(w.decode_echo_request_fields(data), (b"abc", 5))
                    self.assertEqual(w.decode_sign_request(b"\x08\x03" + unknown + b"\x12\x01p"), (3, b"p"))

    def test_wrong_type_does_not_replace_the_field(self):
        self.assertEqual(bytes(w.decode_echo_request(b"\x0a\x01a\x08\x05")), b"a")  # field 1 as varint

    def test_malformed(self):
        bad = {
            b"\x0a\x05abc": "truncated",                        # length past the end
            b"\x0a": "truncated",                               # length missing
            b"\x0a\x80": "truncated",                           # length varint cut short
            b"\x00\x01": "field number 0",
            b"\x0e": "invalid wire type 6",                     # field 1, wire type 6
            b"\x0f": "invalid wire type 7",
            b"\x21\x00\x00": "truncated",                       # fixed64 cut short
            b"\x35\x00": "truncated",                           # fixed32 cut short
            b"\x3c": "without its start",                       # end of group 7 alone
            b"\x3b\x08\x01": "truncated",                       # group never ended
            b"\x3b\x44": "end of group 8 inside group 7",
            b"\x80\x80\x80\x80\x80\x01": "too large",           # a tag wider than 32 bits
        }
        for data, reason in bad.items():
            with self.subTest(data=data):
                with self.assertRaisesRegex(w.WireError, reason):
                    w.decode_echo_request(data)
                with self.assertRaises(w.WireError):
                    w.decode_sign_request(data)


class CryptoAndHealthMessages(unittest.TestCase):
    def test_sign_request(self):
        self.assertEqual(w.decode_sign_request(b"\x08\x01\x12\x03abc"), (1, b"abc"))
        self.assertEqual(w.decode_sign_request(b"\x12\x03abc\x08\x04"), (4, b"abc"))
        self.assertEqual(w.decode_sign_request(b""), (0, b""))
        # Enums are int32: a negative value is ten bytes on the wire and stays negative.
        self.assertEqual(w.decode_sign_request(b"\x08" + w.encode_varint(-3)), (-3, b""))
        self.assertEqual(w.decode_sign_request(w.encode_sign_request(2, b"payload")), (2, b"payload"))

    def test_sign_reply(self):
        self.assertEqual(w.encode_sign_reply(3, b"sig", 7), b"\x08\x03\x12\x03sig\x18\x07")
        self.assertEqual(w.decode_sign_reply(w.encode_sign_reply(4, bytes(96), 1_700_000_000_000_000_000)),
                         (4, bytes(96), 1_700_000_000_000_000_000))

    def test_public_key(self):
        self.assertEqual(w.decode_public_key_request(b"\x08\x02"), 2)
        self.assertEqual(w.decode_public_key_request(b""), 0)
        self.assertEqual(w.decode_public_key_request(b"\x12\x01x\x08\x03"), 3)
        self.assertEqual(w.encode_public_key_reply(1, b"der"), b"\x08\x01\x12\x03der")
        self.assertEqual(w.decode_public_key_reply(w.encode_public_key_reply(3, bytes(91))), (3, bytes(91)))

    def test_health(self):
        self.assertEqual(w.encode_health_check_response(1), b"\x08\x01")
        self.assertEqual(w.decode_health_check_request(b""), "")
        self.assertEqual(w.decode_health_check_request(b"\x0a\x0abench.Echo"), "bench.Echo")
        self.assertEqual(w.decode_health_check_request(w.encode_health_check_request("bench.Crypto")), "bench.Crypto")
        with self.assertRaisesRegex(w.WireError, "UTF-8"):
            w.decode_health_check_request(b"\x0a\x01\xff")


class FieldNumbersMatchTheProto(unittest.TestCase):
    """The numbers and types this module hard-codes, against proto/bench.proto."""

    EXPECTED = {
        "EchoRequest": {"payload": ("bytes", 1), "client_send_unix_ns": ("int64", 2)},
        "EchoReply": {"payload": ("bytes", 1), "server_receive_unix_ns": ("int64", 2)},
        "SignRequest": {"algorithm": ("SignatureAlgorithm", 1), "payload": ("bytes", 2)},
        "SignReply": {"algorithm": ("SignatureAlgorithm", 1), "signature": ("bytes", 2), "server_receive_unix_ns": ("int64", 3)},
        "PublicKeyRequest": {"algorithm": ("SignatureAlgorithm", 1)},
        "PublicKeyReply": {"algorithm": ("SignatureAlgorithm", 1), "subject_public_key_info": ("bytes", 2)},
    }

    def test_messages(self):
        self.assertEqual(_messages_in_proto(), self.EXPECTED)

    def test_algorithms(self):
        import bench_service as svc
        text = _proto_text()
        enum = dict((name, int(n)) for name, n in re.findall(r"(\w+)\s*=\s*(\d+)\s*;", text.split("enum SignatureAlgorithm", 1)[1].split("}", 1)[0]))
        self.assertEqual(enum.pop("SIGNATURE_ALGORITHM_UNSPECIFIED"), 0)
        self.assertEqual(enum, {name: number for number, name in svc.ALGORITHM_NAMES.items()})


def _protobuf_classes():
    """The bench messages as classes of the real protobuf runtime, built from proto/bench.proto
    by protoc at test time; None when protoc or python3-protobuf is missing."""
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    except ImportError:
        return None
    protoc = shutil.which("protoc")
    if protoc is None:
        return None
    with tempfile.TemporaryDirectory() as scratch:
        out = os.path.join(scratch, "bench.pb")
        subprocess.run([protoc, f"--proto_path={os.path.dirname(PROTO)}", f"--descriptor_set_out={out}", os.path.basename(PROTO)], check=True)
        with open(out, "rb") as f:
            files = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)

    def cls(name):
        d = pool.FindMessageTypeByName(f"bench.{name}")
        if hasattr(message_factory, "GetMessageClass"):
            return message_factory.GetMessageClass(d)
        return message_factory.MessageFactory(pool).GetPrototype(d)
    return {name: cls(name) for name in FieldNumbersMatchTheProto.EXPECTED}


class AgainstTheProtobufRuntime(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pb = _protobuf_classes()
        if cls.pb is None:
            raise unittest.SkipTest("needs protoc and python3-protobuf (Debian's /usr/bin/python3)")

    def test_echo(self):
        rng = random.Random(3)
        for n in (0, 1, 100, 127, 128, 65536, 1 << 20):
            payload = rng.randbytes(n)
            for ns in (0, 1, 1_700_000_000_123_456_789, -5):
                request = self.pb["EchoRequest"](payload=payload, client_send_unix_ns=ns).SerializeToString()
                self.assertEqual(bytes(w.decode_echo_request(request)), payload)
                self.assertEqual(w.decode_echo_request_fields(request), (payload, ns))
                self.assertEqual(w.encode_echo_request(payload, ns), request)
                reply = self.pb["EchoReply"].FromString(w.encode_echo_reply(payload, ns))
                self.assertEqual((reply.payload, reply.server_receive_unix_ns), (payload, ns))
                self.assertEqual(w.encode_echo_reply(payload, ns),
                                 self.pb["EchoReply"](payload=payload, server_receive_unix_ns=ns).SerializeToString())

    def test_crypto(self):
        for algorithm in (0, 1, 2, 3, 4, 99, -1):
            request = self.pb["SignRequest"](algorithm=algorithm, payload=b"to sign").SerializeToString()
            self.assertEqual(w.decode_sign_request(request), (algorithm, b"to sign"))
            self.assertEqual(w.encode_sign_request(algorithm, b"to sign"), request)
            reply = self.pb["SignReply"].FromString(w.encode_sign_reply(algorithm, b"s" * 256, 42))
            self.assertEqual((reply.algorithm, reply.signature, reply.server_receive_unix_ns), (algorithm, b"s" * 256, 42))
            request = self.pb["PublicKeyRequest"](algorithm=algorithm).SerializeToString()
            self.assertEqual(w.decode_public_key_request(request), algorithm)
            reply = self.pb["PublicKeyReply"].FromString(w.encode_public_key_reply(algorithm, b"d" * 294))
            self.assertEqual((reply.algorithm, reply.subject_public_key_info), (algorithm, b"d" * 294))

    def test_unknown_fields_from_a_newer_schema(self):
        # A message of another type parsed as EchoRequest: SignReply has field 1 as a varint
        # (the wrong type for payload), 2 as bytes (wrong for the int64) and 3 unknown.
        data = self.pb["SignReply"](algorithm=3, signature=b"sig", server_receive_unix_ns=9).SerializeToString()
        parsed = self.pb["EchoRequest"].FromString(data)
        self.assertEqual(w.decode_echo_request_fields(data), (parsed.payload, parsed.client_send_unix_ns))


if __name__ == "__main__":
    unittest.main()
