"""The presets of a SoundFont (SF2, or SF3 whose preset data is the same) and the keys each can play.

A preset's playable keys are not stored anywhere as such: a preset is a list of zones, each
naming an instrument for a key range, and an instrument is a list of zones, each naming a
sample for a key range. So the keys are the union, over the preset's zones, of the zone's
range intersected with the keys its instrument has samples for. TinySoundFont does not expose
zones, so this reads the "pdta" chunk itself (SoundFont 2.04 spec, section 7): only the
header records, bags and generators are needed, never the sample data (which is most of the file,
and is skipped with a seek).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from pathlib import Path

from diffmoog.data.fileio import os_errors
from diffmoog.errors import DiffmoogError

KEY_RANGE, INSTRUMENT, SAMPLE_ID = 43, 41, 53  # generator operators
ALL_KEYS = (0, 127)
# record layouts of the pdta sub-chunks we read (each list ends with a terminal record)
RECORDS = {b"phdr": "<20sHHHIII", b"pbag": "<HH", b"pgen": "<HH", b"inst": "<20sH", b"ibag": "<HH", b"igen": "<HH"}


class SoundFontError(DiffmoogError):
    """A file that is not a readable SoundFont."""


@dataclass(frozen=True)
class Preset:
    name: str
    bank: int
    program: int
    keys: frozenset  # MIDI keys some zone of the preset plays
    copies: tuple = ()  # (bank, program) of later presets with the very same zones, left out


def read_presets(path: Path) -> list[Preset]:
    """The presets of `path`, sorted by (bank, program).

    Only the first definition of a (bank, program) counts (as in synthesizers). A preset whose
    zones are exactly those of an earlier one (same instruments, same generators: e.g. the
    "Expr." copies in MuseScore's fonts) sounds the same, so it is listed in `copies` of the
    first one rather than rendered twice.
    """
    tables = {tag: list(struct.iter_unpack(fmt, data)) for tag, fmt, data in _records(path, _pdta(path))}
    missing = sorted(tag.decode() for tag in RECORDS if tag not in tables)
    if missing:
        raise SoundFontError(f"{path}: corrupt SoundFont: no '{missing[0]}' records in its 'pdta' chunk")
    try:
        instrument_keys = [_zone_keys(tables[b"ibag"], tables[b"igen"], *bags, SAMPLE_ID)
                           for bags in _bag_ranges(tables[b"inst"], 1)]
        presets, zones = {}, {}
        for record, (first, end) in zip(tables[b"phdr"], _bag_ranges(tables[b"phdr"], 3)):
            name, program, bank = record[0], record[1], record[2]
            keys = _zone_keys(tables[b"pbag"], tables[b"pgen"], first, end, INSTRUMENT, instrument_keys)
            if (bank, program) not in presets:
                presets[bank, program] = Preset(_text(name), bank, program, frozenset(keys))
                zones[bank, program] = _zone_generators(tables[b"pbag"], tables[b"pgen"], first, end)
    except (IndexError, ValueError) as error:
        raise SoundFontError(f"{path}: corrupt SoundFont: inconsistent preset data ({error})") from None
    first_with = {}
    for key in sorted(presets):
        first_with.setdefault(zones[key], []).append(key)
    return sorted((replace(presets[keys[0]], copies=tuple(keys[1:])) for keys in first_with.values()),
                  key=lambda preset: (preset.bank, preset.program))


def _pdta(path: Path) -> bytes:
    """The body of the LIST 'pdta' chunk, found by walking the top-level RIFF chunks."""
    with os_errors(path), open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"sfbk":
            raise SoundFontError(f"{path}: not a SoundFont (no RIFF 'sfbk' header)")
        end = 8 + struct.unpack("<I", head[4:8])[0]
        position = 12
        while position + 12 <= end:
            f.seek(position)
            chunk, size, kind = struct.unpack("<4sI4s", f.read(12).ljust(12, b"\0"))
            if chunk == b"LIST" and kind == b"pdta":
                body = f.read(size - 4)
                if len(body) != size - 4:
                    break
                return body
            position = _next_chunk(f, position + 8 + size, size)
    raise SoundFontError(f"{path}: corrupt SoundFont: no complete 'pdta' chunk (the file may be cut short)")


def _next_chunk(f, after: int, size: int) -> int:
    """Where the chunk after one of `size` bytes starts: RIFF pads odd sizes to even, but some
    SF3 writers (MuseScore's fonts) leave the pad byte out, so look for a chunk id at `after`."""
    if size % 2 == 0:
        return after
    f.seek(after)
    return after if f.read(4) == b"LIST" else after + 1


def _records(path: Path, pdta: bytes):
    position = 0
    while position + 8 <= len(pdta):
        tag, size = struct.unpack_from("<4sI", pdta, position)
        data = pdta[position + 8:position + 8 + size]
        if tag in RECORDS:
            width = struct.calcsize(RECORDS[tag])
            if len(data) != size or size % width or size < 2 * width:  # at least one record + the terminal
                raise SoundFontError(f"{path}: corrupt SoundFont: bad '{tag.decode()}' chunk ({size} bytes)")
            yield tag, RECORDS[tag], data
        position += 8 + size + (size & 1)


def _bag_ranges(headers: list, bag_field: int) -> list[tuple[int, int]]:
    """[first, end) bag indices of each header record; the terminal record only closes the last range."""
    return [(headers[i][bag_field], headers[i + 1][bag_field]) for i in range(len(headers) - 1)]


def _zone_keys(bags: list, gens: list, first: int, end: int, target: int, target_keys=None) -> set[int]:
    """Keys covered by the zones bags[first:end] that name a `target` (an instrument or a sample).

    A first zone without a target is the global zone: its key range is the default of the others.
    With `target_keys`, a zone's range is intersected with the keys of the instrument it names.
    """
    if not 0 <= first <= end < len(bags):
        raise IndexError(f"zone index {end} out of range")
    default, keys = ALL_KEYS, set()
    for bag in range(first, end):
        generators = {oper: amount for oper, amount in gens[bags[bag][0]:bags[bag + 1][0]]}
        low, high = _key_range(generators.get(KEY_RANGE)) or default
        if target not in generators:
            if bag == first:
                default = _key_range(generators.get(KEY_RANGE)) or ALL_KEYS
            continue
        zone = set(range(low, min(high, 127) + 1))
        keys |= zone & target_keys[generators[target]] if target_keys is not None else zone
    return keys


def _zone_generators(bags: list, gens: list, first: int, end: int) -> tuple:
    return tuple(tuple(gens[bags[bag][0]:bags[bag + 1][0]]) for bag in range(first, end))


def _key_range(amount: int | None) -> tuple[int, int] | None:
    return None if amount is None else (amount & 0xFF, amount >> 8)  # lo byte, hi byte


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("latin-1").strip()
