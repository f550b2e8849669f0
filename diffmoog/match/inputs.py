"""Target sounds for matching: files or folders in, validated mono tensors out.

Every problem is a DiffmoogError naming the file: unreadable (from `load_audio`), silent,
or too short to analyse.
"""
from __future__ import annotations

from pathlib import Path

import torch

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


def unique_names(paths: list[Path]) -> list[str]:
    """Output names from file stems; repeated stems get _2, _3... so nothing is overwritten."""
    seen: dict[str, int] = {}
    names = []
    for path in paths:
        stem = path.stem
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    return names
