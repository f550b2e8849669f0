"""Random access into TFRecord files without TensorFlow.

A TFRecord file is a sequence of [u64 length][u32 masked crc32c][payload][u32 masked crc32c].
We find each record's offset once (seeking, not reading payloads), then read any record by
offset, so a map-style Dataset can fetch item i directly. A file cut short ends at its last
whole record; a payload whose checksum does not match is reported as corrupt.
"""
from __future__ import annotations

import struct
from pathlib import Path

import crc32c

from diffmoog.data.tf_example import encode_example, parse_example  # noqa: F401  (re-exported)

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


def masked_crc(data: bytes) -> int:
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_payload(path: str | Path, offset: int, length: int) -> bytes:
    """One record's payload, checked against its crc32c (raises OSError when corrupt)."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        payload = handle.read(length + FOOTER_BYTES)
    if len(payload) != length + FOOTER_BYTES:
        raise OSError(f"record at byte {offset} is cut short")
    payload, (stored,) = payload[:length], struct.unpack("<I", payload[length:])
    if masked_crc(payload) != stored:
        raise OSError(f"record at byte {offset} fails its checksum (corrupt data)")
    return payload


def write_examples(path: str | Path, examples: list[dict]) -> None:
    """Write examples ({name: (value, "byte" | "float" | "int")}) as a TFRecord file (tests, tools)."""
    with open(path, "wb") as handle:
        for example in examples:
            payload = encode_example(example)
            length = struct.pack("<Q", len(payload))
            handle.write(length + struct.pack("<I", masked_crc(length)))
            handle.write(payload + struct.pack("<I", masked_crc(payload)))
