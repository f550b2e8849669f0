"""One note of a SoundFont preset, rendered offline the way NSynth's notes were recorded.

The synthesizer is TinySoundFont (the pip package `tinysoundfont`, MIT): a small C library
with a binary wheel, so `make` installs it without system packages, and it renders far faster
than real time (see benchmarks/soundfont.py). It has no reverb or chorus unit at all, so the
SoundFonts' reverb/chorus sends are ignored: the notes are dry, as asked ("effects off").

A note: silence every voice, note-on at 0 s, note-off at `note_off_s`, render to
`duration_s` (stereo, mixed down to mono float32), then peak-normalise to -1 dBFS (the level
of the shared NSynth-format fixture notes). Rendering is deterministic: the same note gives the
same samples in any process and after any other note, which makes datasets byte-identical
across runs and resumable. (Only `Synth.start`, live playback, would need PyAudio.)
"""
from __future__ import annotations

import numpy as np

from diffmoog.data.items import SILENCE_PEAK
from diffmoog.errors import DiffmoogError

PEAK_DBFS = -1.0
PEAK = np.float32(10 ** (PEAK_DBFS / 20))
MAX_VOICES = 64  # one note of a layered preset uses a few voices; 64 never cuts one off
CHANNEL = 0  # one note at a time, on one MIDI channel (bank 128 selects a drum kit there too)
INSTALL_HINT = ".venv/bin/pip install --no-deps tinysoundfont==0.3.7 (make corpus does it too)"


def tinysoundfont():
    """The tinysoundfont package, or a one-line error saying how to install it."""
    try:
        import tinysoundfont
    except ImportError:
        raise DiffmoogError(f"--from-soundfont needs the tinysoundfont package: {INSTALL_HINT}") from None
    return tinysoundfont


def renderer_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return f"tinysoundfont {version('tinysoundfont')}"
    except PackageNotFoundError:
        return "tinysoundfont"


class NoteRenderer:
    """Renders notes of presets of several SoundFonts (each font loads on first use)."""

    def __init__(self, fonts: list[str], sample_rate: int, duration_s: float, note_off_s: float):
        self.fonts, self.sample_rate = list(fonts), int(sample_rate)
        self.n_samples = int(round(duration_s * sample_rate))
        self.n_held = min(self.n_samples, int(round(note_off_s * sample_rate)))
        self._synths: dict[int, tuple[object, int]] = {}  # font index -> (Synth, SoundFont id)
        self._stereo = np.zeros((self.n_samples, 2), np.float32)
        self._mono = np.zeros(self.n_samples, np.float32)

    def synth(self, index: int) -> tuple[object, int]:
        if index not in self._synths:
            synth = tinysoundfont().Synth(gain=0.0, samplerate=self.sample_rate)
            try:
                font_id = synth.sfload(self.fonts[index], max_voices=MAX_VOICES)
            except Exception as error:  # TinySoundFont says only "could not load"; name the file
                raise DiffmoogError(f"{self.fonts[index]}: TinySoundFont cannot load it ({error})") from None
            self._synths[index] = synth, font_id
        return self._synths[index]

    def render(self, font_index: int, bank: int, program: int, pitch: int, velocity: int) -> np.ndarray:
        """The raw mono note (float32 [n_samples], not normalised): a view of a reused buffer."""
        synth, font_id = self.synth(font_index)
        try:
            synth.program_select(CHANNEL, font_id, bank, program)
        except Exception:
            raise DiffmoogError(f"{self.fonts[font_index]}: no preset for bank {bank} program {program}") from None
        synth.sounds_off(CHANNEL)  # no voice of the previous note may ring into this one
        synth.noteon(CHANNEL, pitch, velocity)
        held, released = self._stereo[:self.n_held], self._stereo[self.n_held:]
        synth.generate(len(held), memoryview(held).cast("B"))
        synth.noteoff(CHANNEL, pitch)
        if len(released):
            synth.generate(len(released), memoryview(released).cast("B"))
        np.add(self._stereo[:, 0], self._stereo[:, 1], out=self._mono)  # 5x faster than mean(axis=1)
        self._mono *= np.float32(0.5)
        return self._mono


def peak_normalised(audio: np.ndarray) -> np.ndarray | None:
    """`audio` scaled to a -1 dBFS peak, or None when it is silent (peak below -60 dBFS)."""
    peak = float(np.max(np.abs(audio)))
    if not peak >= SILENCE_PEAK:  # also catches NaN
        return None
    return audio * (PEAK / np.float32(peak))
