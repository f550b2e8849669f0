"""tf.train.Example <-> Python, straight from the protobuf wire format (no generated classes).

Registering the `tensorflow.Example` message ourselves (as the `tfrecord` package does) would
clash with TensorFlow's own copy when both are imported in one process ("duplicate symbol
'tensorflow.BytesList'"), so we read and write the few fields NSynth uses by hand:
Example{features=1: Features{feature=1: map<string, Feature>}}, Feature{oneof bytes_list=1,
float_list=2, int64_list=3, each `repeated value = 1`}.
"""
from __future__ import annotations

import numpy as np


def _varint(buf, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf, start: int, end: int):
    """Yield (field number, wire type, value) of one protobuf message in buf[start:end].

    value: an int (varint), a (start, end) span (length-delimited) or raw bytes (fixed).
    """
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = (pos, pos + length), pos + length
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, pos = bytes(buf[pos:pos + width]), pos + width
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > end:
            raise ValueError("protobuf field runs past the end of its message")
        yield number, wire, value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _feature(buf, start: int, end: int):
    """tf.train.Feature: oneof bytes_list=1, float_list=2, int64_list=3, each `repeated value = 1`."""
    for kind, _, (list_start, list_end) in _fields(buf, start, end):
        if kind == 1:
            return [bytes(buf[s:e]) for _, _, (s, e) in _fields(buf, list_start, list_end)]
        values = []
        for _, wire, value in _fields(buf, list_start, list_end):
            if kind == 2:  # packed (wire 2) or one fixed32 (wire 5)
                chunk = buf[value[0]:value[1]] if wire == 2 else value
                values.append(np.frombuffer(chunk, dtype="<f4"))
            elif wire == 2:  # packed varints
                pos, stop = value
                while pos < stop:
                    number, pos = _varint(buf, pos)
                    values.append(np.array([_signed(number)], dtype=np.int64))
            else:
                values.append(np.array([_signed(value)], dtype=np.int64))
        dtype = np.float32 if kind == 2 else np.int64
        return np.concatenate(values).astype(dtype, copy=False) if values else np.zeros(0, dtype)
    return []


def parse_example(payload: bytes) -> dict[str, np.ndarray | list[bytes]]:
    """A serialized tf.train.Example -> {feature: int64/float32 array, or list of bytes}.

    Decoded by hand from the protobuf wire format: registering the `tensorflow.Example`
    message ourselves would clash with TensorFlow's own when both are imported in one process.
    """
    buf = memoryview(payload)
    out = {}
    for number, _, (start, end) in _fields(buf, 0, len(buf)):
        if number != 1:  # Example.features
            continue
        for _, _, (entry_start, entry_end) in _fields(buf, start, end):  # map<string, Feature>
            key, feature = "", None
            for field, _, (s, e) in _fields(buf, entry_start, entry_end):
                if field == 1:
                    key = bytes(buf[s:e]).decode("utf-8")
                elif field == 2:
                    feature = _feature(buf, s, e)
            out[key] = feature if feature is not None else []
    return out


# -- encoding -----------------------------------------------------------------------------
def _encode_varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64: two's complement, 10 bytes
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


def _encode_feature(value, kind: str) -> bytes:
    values = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
    if kind == "byte":
        inner = b"".join(_field(1, bytes(v)) for v in values)
        return _field(1, inner)
    if kind == "float":
        packed = np.asarray(values, dtype="<f4").tobytes()
        return _field(2, _field(1, packed) if len(values) else b"")
    if kind == "int":
        packed = b"".join(_encode_varint(int(v)) for v in values)
        return _field(3, _field(1, packed) if len(values) else b"")
    raise ValueError(f"unknown feature kind '{kind}' (byte, float or int)")


def encode_example(features: dict) -> bytes:
    """{name: (value or list of values, "byte" | "float" | "int")} -> serialized tf.train.Example."""
    entries = b"".join(_field(1, _field(1, name.encode("utf-8")) + _field(2, _encode_feature(value, kind)))
                       for name, (value, kind) in features.items())
    return _field(1, entries)
