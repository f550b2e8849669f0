"""A tiny, valid SoundFont 2 file written from scratch, so the tests need no big font.

RIFF 'sfbk' = LIST INFO (ifil, isng, INAM) + LIST sdta (smpl: 16-bit samples, each followed by
46 zero samples as the spec asks) + LIST pdta (phdr pbag pmod pgen inst ibag imod igen shdr,
each list closed by a terminal record). Every preset has one zone naming its own instrument,
which has one zone: key range, loop mode, release, sample.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 44000  # 100 samples per cycle of A4: loops of whole cycles are seamless
ROOT_KEY = 69  # the samples are recorded at A4 = 440 Hz
KEY_RANGE, INSTRUMENT, RELEASE_VOL_ENV, SAMPLE_MODES, SAMPLE_ID = 43, 41, 38, 54, 53


def sine() -> np.ndarray:
    return np.sin(2 * np.pi * np.arange(4400) / 100)  # 44 cycles of 440 Hz


def saw() -> np.ndarray:
    return 2 * (np.arange(4400) % 100) / 100 - 1


def drum_hit() -> np.ndarray:
    t = np.arange(8800) / SAMPLE_RATE
    return np.random.default_rng(0).uniform(-1, 1, t.size) * np.exp(-t / 0.03)


def silence() -> np.ndarray:
    return np.zeros(4400)


@dataclass
class TinyPreset:
    name: str
    bank: int
    program: int
    wave: str  # a function name above
    keys: tuple = (0, 127)
    loop: bool = True  # sustain by looping the whole sample (a drum hit plays once)
    instrument: str | None = None  # share another preset's instrument (a copy, for the duplicate check)


DEFAULT_PRESETS = (
    TinyPreset("Sine Piano", 0, 0, "sine", (21, 108)),
    TinyPreset("Sine Piano Copy", 17, 0, "sine", instrument="Sine Piano"),
    TinyPreset("Saw Piano", 8, 0, "saw", (48, 72)),
    TinyPreset("Silent Flute", 0, 73, "silence", (60, 62)),
    TinyPreset("Saw Lead", 0, 81, "saw", (60, 72)),
    TinyPreset("Breath Noise", 0, 121, "sine"),
    TinyPreset("Kit", 128, 0, "drum_hit", (35, 40), loop=False),
)


def chunk(tag: bytes, data: bytes) -> bytes:
    return tag + struct.pack("<I", len(data)) + data + b"\0" * (len(data) % 2)


def name20(text: str) -> bytes:
    return text.encode("latin-1")[:19].ljust(20, b"\0")


def write_soundfont(path: Path, presets=DEFAULT_PRESETS) -> Path:
    waves = {p.wave: globals()[p.wave]() for p in presets}
    smpl, shdr, offsets = b"", b"", {}
    for name, wave in waves.items():
        start = len(smpl) // 2
        pcm = np.round(np.asarray(wave) * 0.5 * 32767).astype("<i2")
        smpl += pcm.tobytes() + b"\0" * 92  # 46 zero samples after each sample
        shdr += struct.pack("<20sIIIIIBbHH", name20(name), start, start + len(pcm), start, start + len(pcm),
                            SAMPLE_RATE, ROOT_KEY, 0, 0, 1)
        offsets[name] = len(offsets)
    shdr += struct.pack("<20sIIIIIBbHH", name20("EOS"), 0, 0, 0, 0, 0, 0, 0, 0, 0)

    instruments = [p for p in presets if p.instrument is None]
    inst, ibag, igen = b"", b"", b""
    for number, preset in enumerate(instruments):
        inst += struct.pack("<20sH", name20(preset.name), number)
        ibag += struct.pack("<HH", len(igen) // 4, 0)
        low, high = preset.keys
        igen += struct.pack("<HBB", KEY_RANGE, low, high)  # keyRange comes first
        igen += struct.pack("<HH", SAMPLE_MODES, 1 if preset.loop else 0)
        igen += struct.pack("<Hh", RELEASE_VOL_ENV, -7973)  # 10 ms: the note stops right after note-off
        igen += struct.pack("<HH", SAMPLE_ID, offsets[preset.wave])  # and sampleID last
    inst += struct.pack("<20sH", name20("EOI"), len(instruments))
    ibag += struct.pack("<HH", len(igen) // 4, 0)
    igen += struct.pack("<HH", 0, 0)

    number_of = {p.name: i for i, p in enumerate(instruments)}
    phdr, pbag, pgen = b"", b"", b""
    for number, preset in enumerate(presets):
        phdr += struct.pack("<20sHHHIII", name20(preset.name), preset.program, preset.bank, number, 0, 0, 0)
        pbag += struct.pack("<HH", len(pgen) // 4, 0)
        pgen += struct.pack("<HH", INSTRUMENT, number_of[preset.instrument or preset.name])
    phdr += struct.pack("<20sHHHIII", name20("EOP"), 0, 0, len(presets), 0, 0, 0)
    pbag += struct.pack("<HH", len(pgen) // 4, 0)
    pgen += struct.pack("<HH", 0, 0)
    no_modulators = struct.pack("<HHhHH", 0, 0, 0, 0, 0)

    info = chunk(b"ifil", struct.pack("<HH", 2, 1)) + chunk(b"isng", b"EMU8000\0") + chunk(b"INAM", b"tiny test font\0")
    pdta = b"".join(chunk(tag, data) for tag, data in (
        (b"phdr", phdr), (b"pbag", pbag), (b"pmod", no_modulators), (b"pgen", pgen), (b"inst", inst),
        (b"ibag", ibag), (b"imod", no_modulators), (b"igen", igen), (b"shdr", shdr)))
    body = b"sfbk" + chunk(b"LIST", b"INFO" + info) + chunk(b"LIST", b"sdta" + chunk(b"smpl", smpl)) + \
        chunk(b"LIST", b"pdta" + pdta)
    Path(path).write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return Path(path)
