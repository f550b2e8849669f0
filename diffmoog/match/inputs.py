"""Target sounds for matching: files or folders in, validated mono tensors out.

Every problem is a DiffmoogError naming the file: unreadable (from `load_audio`), silent,
or too short to analyse.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from diffmoog.analysis.pitch import midi_to_hz
from diffmoog.data.audio_io import fit_length, is_audio_file, load_audio
from diffmoog.errors import DiffmoogError

MIN_SAMPLES = 2048  # the longest analysis window of the spectral loss
SILENCE_PEAK = 1e-4  # -80 dBFS


class InputError(DiffmoogError):
    """An input sound cannot be matched; the message names the file."""


def find_inputs(paths: list[str | Path]) -> list[Path]:
    """Files as given, folders expanded to their audio files (sorted, recursively)."""
    found = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and is_audio_file(p))
            if not files:
                raise InputError(f"{path}: folder holds no audio files (.wav .flac .ogg .aiff)")
            found.extend(files)
        elif path.exists():
            found.append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    return found


def load_target(path: str | Path, sample_rate: int, duration_s: float) -> torch.Tensor:
    """Read `path` as mono at `sample_rate`, trimmed or zero-padded to `duration_s`."""
    audio = load_audio(path, sample_rate)  # raises AudioReadError naming the path
    if audio.shape[-1] < MIN_SAMPLES:
        raise InputError(f"{path}: too short to match ({audio.shape[-1]} samples at {sample_rate} Hz; "
                         f"need at least {MIN_SAMPLES}, {MIN_SAMPLES / sample_rate:.3f} s)")
    audio = fit_length(audio, int(round(duration_s * sample_rate)))
    peak = float(audio.abs().max())
    if peak < SILENCE_PEAK:
        raise InputError(f"{path}: silent (peak {peak:.1e}, below -80 dBFS within the first "
                         f"{duration_s:g} s); nothing to match")
    return audio


def metadata_pitch_hz(path: Path, cache: dict | None = None) -> float | None:
    """The MIDI pitch (as Hz) an NSynth-layout examples.json records for this sound, or None.

    NSynth keeps `examples.json` beside the `audio/` folder (keys are file stems, values
    hold "pitch"); the file's own folder is tried too. An unreadable or odd examples.json
    counts as no metadata (the caller falls back to the audio estimate)."""
    cache = {} if cache is None else cache
    for folder in (path.parent, path.parent.parent):
        meta_path = folder / "examples.json"
        if meta_path not in cache:
            try:
                cache[meta_path] = json.loads(meta_path.read_text()) if meta_path.is_file() else None
            except (OSError, ValueError):
                cache[meta_path] = None
        meta = cache[meta_path]
        entry = meta.get(path.stem) if isinstance(meta, dict) else None
        pitch = entry.get("pitch") if isinstance(entry, dict) else None
        if isinstance(pitch, (int, float)) and not isinstance(pitch, bool) and 0 <= pitch <= 127:
            return float(midi_to_hz(float(pitch)))
    return None


def unique_names(paths: list[Path]) -> list[str]:
    """Output names from file stems; repeated stems get _2, _3... so nothing is overwritten."""
    seen: dict[str, int] = {}
    names = []
    for path in paths:
        stem = path.stem
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    return names
