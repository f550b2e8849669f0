"""Any folder of wav/flac/ogg/aiff/mp3 files (drum one-shots at 44.1 kHz, recordings...) as a Dataset.

Every file is converted to mono float32 at `sample_rate` and trimmed or zero-padded to
`duration`, so items batch together. Hidden files (".DS_Store", macOS "._x.wav") are ignored.
A file that cannot be read never stops an epoch: item i is replaced by the next readable
file (deterministic), counted in `dataset.failed` and warned once per file; inside
`audio_io.no_substitution()` (evaluation) it raises `UnreadableItem` instead.

normalize: None keeps levels; "peak" scales to a peak of 1; "loudness" scales to an RMS of
LOUDNESS_DBFS (plain RMS, not K-weighted LUFS), then lowers the gain if needed so the peak
stays within [-1, 1]. Silent files are left silent.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from diffmoog.data.audio_io import first_readable, is_audio_file, load_audio
from diffmoog.errors import ConfigError, did_you_mean

NORMALIZE = (None, "peak", "loudness")
LOUDNESS_DBFS = -20.0
SILENCE = 1e-8


def normalize_audio(audio: torch.Tensor, mode: str | None) -> torch.Tensor:
    if mode is None or not audio.numel():
        return audio
    samples = audio.numpy()  # numpy: one file is too small for torch's thread pool to pay off
    peak = float(np.abs(samples).max())
    if peak < SILENCE:
        return audio
    if mode == "peak":
        return torch.from_numpy(samples / np.float32(peak))
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    gain = min(10.0 ** (LOUDNESS_DBFS / 20.0) / max(rms, SILENCE), 1.0 / peak)
    return torch.from_numpy(samples * np.float32(gain))


def list_audio_files(root: Path, recursive: bool = True) -> list[Path]:
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in root.glob(pattern)
                  if p.is_file() and is_audio_file(p) and not any(part.startswith(".") for part in p.relative_to(root).parts))


class AudioFolderDataset(Dataset):
    """Items: dict(audio=[samples] float32, path=str, name=str relative path without suffix)."""

    def __init__(self, root, sample_rate: int = 16000, duration: float = 4.0, normalize: str | None = None,
                 recursive: bool = True):
        self.root, self.sample_rate, self.duration = Path(root).expanduser(), int(sample_rate), float(duration)
        if normalize not in NORMALIZE:
            raise ConfigError(f"unknown normalize mode '{normalize}'"
                              f"{did_you_mean(normalize, [m for m in NORMALIZE if m])} (use peak, loudness or None)")
        self.normalize = normalize
        if not self.root.is_dir():
            raise ConfigError(f"{self.root}: audio folder not found")
        self.files = list_audio_files(self.root, recursive)
        if not self.files:
            raise ConfigError(f"{self.root}: no wav/flac/ogg/aiff/mp3 files found")
        self.failed: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        found = first_readable(self.files, index, lambda path: load_audio(path, self.sample_rate, self.duration),
                               str, self.failed, "file")
        if found is None:
            raise ConfigError(f"{self.root}: none of the {len(self.files)} audio files could be read")
        path, audio = found
        name = path.relative_to(self.root).with_suffix("").as_posix()
        return {"audio": normalize_audio(audio, self.normalize), "path": str(path), "name": name}


def collate(items: list[dict]) -> dict:
    return {"audio": torch.stack([item["audio"] for item in items]),
            "path": [item["path"] for item in items], "name": [item["name"] for item in items]}
