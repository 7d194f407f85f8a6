"""The protobuf wire format of the few bench.proto messages, by hand.

proto/bench.proto is the source of truth; this module encodes exactly its messages (and the
two of grpc.health.v1) and nothing more, so the server needs no generated code, no protoc
plug-in and no protobuf runtime on the hot path. Field numbers are checked against the
.proto by the tests (test_bench_wire.py reads proto/bench.proto), so a change there that
this module does not follow fails a test rather than a benchmark.

Decoding follows proto3's rules:
- fields may come in any order, and a later occurrence of a scalar field wins;
- a field this module does not know, or a known number with an unexpected wire type, is
  an unknown field and is skipped (varint, 64-bit, length-delimited, 32-bit, and groups,
  nested ones too);
- anything that cannot be parsed (a truncated varint or length, a varint of more than 10
  bytes, field number 0, wire type 6 or 7, an unmatched end of group) raises WireError.

Encoding writes fields in field-number order and leaves out default values (0, empty), as
every protobuf library does.
"""

from __future__ import annotations

__all__ = [
    "WireError", "encode_varint", "decode_echo_request", "encode_echo_request", "encode_echo_reply",
    "decode_echo_reply", "decode_sign_request", "encode_sign_request", "encode_sign_reply", "decode_sign_reply",
    "decode_public_key_request", "encode_public_key_request", "encode_public_key_reply", "decode_public_key_reply",
    "decode_health_check_request", "encode_health_check_request", "encode_health_check_response", "decode_fields",
]

_MASK64 = (1 << 64) - 1

# Wire types.
VARINT, FIXED64, LEN, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5

# Payloads at least this long are handed on as a memoryview of the request, so a large echo
# is copied once (into the reply) instead of twice; below it a bytes slice is cheaper.
_VIEW_THRESHOLD = 4096


class WireError(ValueError):
    """The bytes are not a valid protobuf message."""


# ---------------------------------------------------------------- varints

def encode_varint(value: int) -> bytes:
    """Base-128 varint of an unsigned 64-bit value; a negative int64 becomes its two's
    complement (10 bytes), as protobuf encodes negative int32, int64 and enum values."""
    if 0 <= value < 0x80:
        return bytes((value,))
    if 1 << 56 <= value < 1 << 63:
        # Nine bytes: every wall-clock timestamp in Unix nanoseconds from 2002 to 2262, so
        # every reply's; unrolled, it costs a third of the loop.
        return bytes((value & 0x7F | 0x80, value >> 7 & 0x7F | 0x80, value >> 14 & 0x7F | 0x80,
                      value >> 21 & 0x7F | 0x80, value >> 28 & 0x7F | 0x80, value >> 35 & 0x7F | 0x80,
                      value >> 42 & 0x7F | 0x80, value >> 49 & 0x7F | 0x80, value >> 56))
    value &= _MASK64
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(buf, pos: int, end: int) -> tuple[int, int]:
    """The varint at buf[pos], as an unsigned 64-bit value, and the position after it."""
    if pos >= end:
        raise WireError("truncated varint")
    b = buf[pos]
    pos += 1
    if b < 0x80:
        return b, pos
    result = b & 0x7F
    shift = 7
    while True:
        if pos >= end:
            raise WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & _MASK64, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")


def _as_int32(value: int) -> int:
    """An enum or int32 field's value: the low 32 bits, signed (protobuf truncates)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def _as_int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


# ---------------------------------------------------------------- the field walker

def _skip(buf, pos: int, end: int, wire_type: int, number: int) -> int:
    """Skips the value of an unknown field whose tag has just been read; returns the position after it."""
    if wire_type == VARINT:
        return _read_varint(buf, pos, end)[1]
    if wire_type == FIXED64:
        pos += 8
    elif wire_type == LEN:
        length, pos = _read_varint(buf, pos, end)
        pos += length
    elif wire_type == FIXED32:
        pos += 4
    elif wire_type == START_GROUP:
        # Everything up to the END_GROUP tag of the same field number, groups nested inside included.
        while True:
            tag, pos = _read_varint(buf, pos, end)
            inner_type, inner_number = tag & 7, tag >> 3
            if inner_number == 0:
                raise WireError("field number 0")
            if inner_type == END_GROUP:
                if inner_number != number:
                    raise WireError(f"end of group {inner_number} inside group {number}")
                return pos
            pos = _skip(buf, pos, end, inner_type, inner_number)
    elif wire_type == END_GROUP:
        raise WireError(f"end of group {number} without its start")
    else:
        raise WireError(f"invalid wire type {wire_type}")
    if pos > end:
        raise WireError("truncated field")
    return pos


def decode_fields(buf) -> list[tuple[int, int, object]]:
    """Every field of a message as (number, wire type, value): an int for varints and fixed
    widths (unsigned), a bytes slice for length-delimited fields, None for groups. For
    tests and tools; the decoders below walk the bytes themselves."""
    fields = []
    pos, end = 0, len(buf)
    while pos < end:
        tag, pos = _read_varint(buf, pos, end)
        wire_type, number = tag & 7, tag >> 3
        if number == 0:
            raise WireError("field number 0")
        if wire_type == VARINT:
            value, pos = _read_varint(buf, pos, end)
        elif wire_type == LEN:
            length, pos = _read_varint(buf, pos, end)
            if pos + length > end:
                raise WireError("truncated length-delimited field")
            value, pos = bytes(buf[pos:pos + length]), pos + length
        elif wire_type in (FIXED64, FIXED32):
            size = 8 if wire_type == FIXED64 else 4
            if pos + size > end:
                raise WireError("truncated fixed-width field")
            value, pos = int.from_bytes(buf[pos:pos + size], "little"), pos + size
        else:
            value, pos = None, _skip(buf, pos, end, wire_type, number)
        fields.append((number, wire_type, value))
    return fields


def _bytes_field(buf, pos: int, end: int, view: bool):
    """The length-delimited value at buf[pos] (its length varint first) and the position after it."""
    length, pos = _read_varint(buf, pos, end)
    stop = pos + length
    if stop > end:
        raise WireError("truncated length-delimited field")
    if view and length >= _VIEW_THRESHOLD:
        return memoryview(buf)[pos:stop], stop
    return buf[pos:stop], stop


def _decode(buf, bytes_number: int, varint_number: int, view: bool = False):
    """The one bytes field and the one varint field a bench message has (either may be
    absent: b"" and 0), every other field skipped."""
    payload = b""
    number_value = 0
    pos, end = 0, len(buf)
    while pos < end:
        # Tags of fields 1-15 are one byte; read them without the general varint call.
        tag = buf[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _read_varint(buf, pos, end)
            if tag > 0xFFFFFFFF:
                raise WireError("field number too large")
        wire_type, number = tag & 7, tag >> 3
        if number == bytes_number and wire_type == LEN:
            payload, pos = _bytes_field(buf, pos, end, view)
        elif number == varint_number and wire_type == VARINT:
            number_value, pos = _read_varint(buf, pos, end)
        elif number == 0:
            raise WireError("field number 0")
        else:
            pos = _skip(buf, pos, end, wire_type, number)
    return payload, number_value


def _len_field(tag: int, value) -> bytes:
    """Tag, length and value of a non-empty bytes field, or nothing for an empty one."""
    n = len(value)
    if n == 0:
        return b""
    if n < 0x80:
        return bytes((tag, n)) + value
    return b"".join((bytes((tag,)), encode_varint(n), value))


# ---------------------------------------------------------------- bench.Echo

def decode_echo_request(buf, view: bool = True):
    """EchoRequest{bytes payload = 1; int64 client_send_unix_ns = 2} -> payload (bytes, or
    a memoryview of buf when long and view is true). The client's timestamp is not used."""
    # The common shape, 0A <one-byte length> <payload> [10 <varint>], without the general walk.
    end = len(buf)
    if end >= 2 and buf[0] == 0x0A and buf[1] < 0x80:
        stop = 2 + buf[1]
        if stop == end:
            return buf[2:stop]
        # The client's timestamp is not needed, only that it is one well-formed varint
        # that ends the message: up to ten bytes, the last without the continuation bit.
        if stop < end - 1 and buf[stop] == 0x10 and end - stop <= 11 and buf[end - 1] < 0x80 \
                and (end - stop == 2 or min(buf[stop + 1:end - 1]) >= 0x80):
            return buf[2:stop]
    return _decode(buf, 1, 2, view)[0]


def decode_echo_request_fields(buf) -> tuple[bytes, int]:
    """(payload, client_send_unix_ns) of an EchoRequest; for tests and tools."""
    payload, ns = _decode(buf, 1, 2)
    return bytes(payload), _as_int64(ns)


def encode_echo_request(payload, client_send_unix_ns: int = 0) -> bytes:
    out = _len_field(0x0A, payload)
    if client_send_unix_ns:
        out += b"\x10" + encode_varint(client_send_unix_ns)
    return out


def encode_echo_reply(payload, server_receive_unix_ns: int) -> bytes:
    """EchoReply{bytes payload = 1; int64 server_receive_unix_ns = 2}."""
    n = len(payload)
    ns = encode_varint(server_receive_unix_ns) if server_receive_unix_ns else b""
    if n == 0:
        return b"\x10" + ns if ns else b""
    head = bytes((0x0A, n)) if n < 0x80 else b"\x0a" + encode_varint(n)
    if ns:
        return b"".join((head, payload, b"\x10", ns))
    return b"".join((head, payload))


def decode_echo_reply(buf) -> tuple[bytes, int]:
    """(payload, server_receive_unix_ns) of an EchoReply; for tests and tools."""
    payload, ns = _decode(buf, 1, 2)
    return bytes(payload), _as_int64(ns)


# ---------------------------------------------------------------- bench.Crypto

def decode_sign_request(buf) -> tuple[int, bytes]:
    """SignRequest{SignatureAlgorithm algorithm = 1; bytes payload = 2} -> (algorithm, payload)."""
    payload, algorithm = _decode(buf, 2, 1)
    return _as_int32(algorithm), payload


def encode_sign_request(algorithm: int, payload) -> bytes:
    head = b"\x08" + encode_varint(algorithm) if algorithm else b""
    return head + _len_field(0x12, payload)


def encode_sign_reply(algorithm: int, signature: bytes, server_receive_unix_ns: int) -> bytes:
    """SignReply{algorithm = 1; bytes signature = 2; int64 server_receive_unix_ns = 3}."""
    head = b"\x08" + encode_varint(algorithm) if algorithm else b""
    tail = b"\x18" + encode_varint(server_receive_unix_ns) if server_receive_unix_ns else b""
    return b"".join((head, _len_field(0x12, signature), tail))


def decode_sign_reply(buf) -> tuple[int, bytes, int]:
    """(algorithm, signature, server_receive_unix_ns) of a SignReply; for tests and tools."""
    algorithm, signature, ns = 0, b"", 0
    for number, wire_type, value in decode_fields(buf):
        if number == 1 and wire_type == VARINT:
            algorithm = _as_int32(value)
        elif number == 2 and wire_type == LEN:
            signature = value
        elif number == 3 and wire_type == VARINT:
            ns = _as_int64(value)
    return algorithm, signature, ns


def decode_public_key_request(buf) -> int:
    """PublicKeyRequest{SignatureAlgorithm algorithm = 1} -> algorithm."""
    # Field 1 is the only varint; no bytes field (number 0 never matches a real field).
    return _as_int32(_decode(buf, -1, 1)[1])


def encode_public_key_request(algorithm: int) -> bytes:
    return b"\x08" + encode_varint(algorithm) if algorithm else b""


def encode_public_key_reply(algorithm: int, subject_public_key_info: bytes) -> bytes:
    """PublicKeyReply{algorithm = 1; bytes subject_public_key_info = 2}."""
    head = b"\x08" + encode_varint(algorithm) if algorithm else b""
    return head + _len_field(0x12, subject_public_key_info)


def decode_public_key_reply(buf) -> tuple[int, bytes]:
    payload, algorithm = _decode(buf, 2, 1)
    return _as_int32(algorithm), bytes(payload)


# ---------------------------------------------------------------- grpc.health.v1

def decode_health_check_request(buf) -> str:
    """HealthCheckRequest{string service = 1} -> service (UTF-8, as proto3 strings must be)."""
    service, _ = _decode(buf, 1, -1)
    try:
        return bytes(service).decode("utf-8")
    except UnicodeDecodeError as e:
        raise WireError(f"service is not UTF-8: {e}") from None


def encode_health_check_request(service: str) -> bytes:
    return _len_field(0x0A, service.encode("utf-8"))


def encode_health_check_response(status: int) -> bytes:
    """HealthCheckResponse{ServingStatus status = 1} (SERVING = 1: 08 01)."""
    return b"\x08" + encode_varint(status) if status else b""
