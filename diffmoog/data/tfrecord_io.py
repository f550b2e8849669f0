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


def parse_example(payload: bytes) -> dict[str, np.ndarray | list[bytes]]:
    """A serialized tf.train.Example -> {feature: int64/float32 array, or list of bytes}."""
    from tfrecord import example_pb2  # protobuf only; no TensorFlow

    example = example_pb2.Example()
    example.ParseFromString(payload)
    out = {}
    for key, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        if kind == "bytes_list":
            out[key] = list(feature.bytes_list.value)
        elif kind == "float_list":
            out[key] = np.asarray(feature.float_list.value, dtype=np.float32)
        elif kind == "int64_list":
            out[key] = np.asarray(feature.int64_list.value, dtype=np.int64)
        else:
            out[key] = []
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
