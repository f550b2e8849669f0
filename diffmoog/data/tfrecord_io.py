"""Random access into TFRecord files without TensorFlow (the light `tfrecord` package parses).

A TFRecord file is a sequence of [u64 length][u32 crc][payload][u32 crc]. We find each
record's offset once (seeking, not reading payloads), then read any record by offset, so a
map-style Dataset can fetch item i directly. A file cut short ends at its last whole record.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

HEADER_BYTES = 12  # u64 length + u32 crc of the length
FOOTER_BYTES = 4  # u32 crc of the payload


def record_offsets(path: str | Path) -> tuple[list[tuple[int, int]], bool]:
    """[(payload_offset, payload_length)] for every whole record, and whether the file was cut."""
    offsets, size = [], Path(path).stat().st_size
    with open(path, "rb") as handle:
        position = 0
        while position < size:
            header = handle.read(HEADER_BYTES)
            if len(header) < HEADER_BYTES:
                return offsets, True
            (length,) = struct.unpack("<Q", header[:8])
            end = position + HEADER_BYTES + length + FOOTER_BYTES
            if end > size:
                return offsets, True
            offsets.append((position + HEADER_BYTES, length))
            position = end
            handle.seek(position)
    return offsets, False


def read_payload(path: str | Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        payload = handle.read(length)
    if len(payload) != length:
        raise OSError(f"record at byte {offset} is cut short")
    return payload


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


def write_examples(path: str | Path, examples: list[dict]) -> None:
    """Write examples ({key: (value, "byte"|"float"|"int")}) as a TFRecord file (tests, tools)."""
    from tfrecord.writer import TFRecordWriter

    writer = TFRecordWriter(str(path))
    try:
        for example in examples:
            writer.write(example)
    finally:
        writer.close()
