"""Robust audio reading: any wav/flac/ogg/aiff/mp3 -> float32 mono in [-1, 1] at one sample rate.

Odd files are converted, not rejected: stereo is averaged to mono, other sample rates are
resampled (julius), 8/16/24/32-bit integer and float encodings are scaled by soundfile to
[-1, 1] exactly once (DiffMoog divided int16 by 32768 twice and trained on near-silence),
and truncated files give the samples that are there. Files that cannot be decoded at all,
hold no samples, or hold NaN/inf raise `AudioReadError`, which names the path.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from diffmoog.errors import DiffmoogError

RESAMPLER_REACH = 256  # input frames past the kept window that a sinc resampler may look at
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")


class AudioReadError(DiffmoogError):
    """An audio file could not be read; the message names the file."""

    def __init__(self, path: str | Path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: cannot read audio: {reason}")


class UnreadableItem(DiffmoogError):
    """Raised by `first_readable` inside `no_substitution()`: entry `key` could not be read."""

    def __init__(self, key: str, reason: str):
        self.key, self.reason = str(key), str(reason)
        super().__init__(self.reason)


# True: an unreadable entry is replaced by the next readable one (training keeps batch shapes);
# False inside `no_substitution()` (evaluation scores exactly the items asked for).
_SUBSTITUTE = contextvars.ContextVar("diffmoog_substitute_unreadable", default=True)


@contextlib.contextmanager
def no_substitution():
    """Within this block, datasets built on `first_readable` raise `UnreadableItem` for an
    unreadable item instead of serving a copy of the next readable one."""
    token = _SUBSTITUTE.set(False)
    try:
        yield
    finally:
        _SUBSTITUTE.reset(token)


@functools.lru_cache(maxsize=16)
def _resampler(old_hz: int, new_hz: int):
    import julius  # light, but only needed when rates differ

    return julius.ResampleFrac(old_hz, new_hz)


def resample(audio: torch.Tensor, old_hz: int, new_hz: int) -> torch.Tensor:
    """Resample along the last axis (band-limited sinc, julius)."""
    if int(old_hz) == int(new_hz):
        return audio
    resampler = _resampler(int(old_hz), int(new_hz)).to(audio.device)
    if audio.device.type != "cpu" or torch.get_num_threads() == 1:
        return resampler(audio)
    # One file is a small convolution: intra-op threads only add overhead (measured 5-10x
    # slower with 2 threads on a busy 2-core machine), so run it on one thread.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return resampler(audio)
    finally:
        torch.set_num_threads(threads)


def fit_length(audio: torch.Tensor, num_samples: int) -> torch.Tensor:
    """Trim or zero-pad the last axis to exactly `num_samples`."""
    length = audio.shape[-1]
    if length >= num_samples:
        return audio[..., :num_samples]
    return torch.nn.functional.pad(audio, (0, num_samples - length))


def num_samples_for(duration_s: float, sample_rate: int) -> int:
    return int(round(float(duration_s) * int(sample_rate)))


def to_unit_range(audio: np.ndarray) -> np.ndarray:
    """Keep float audio inside [-1, 1].

    A float file hotter than full scale is divided by its peak (clipping would distort it);
    the tiny sinc overshoot a resampler adds to an already full-scale file is clamped.
    """
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > 1.01:
        audio = audio / np.float32(peak)
    return np.clip(audio, -1.0, 1.0, out=audio if audio.flags.writeable else None)


def convert(samples: np.ndarray, file_rate: int, sample_rate: int, duration: float | None = None,
            mono: bool = True, path: str | Path = "<array>") -> torch.Tensor:
    """Decoded samples ([frames] or [frames, channels], float) -> tensor at `sample_rate`.

    Returns [samples] when mono, else [channels, samples]. Per-file work stays in numpy
    (one thread, microseconds); only resampling goes through torch.
    """
    data = np.asarray(samples, dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    if data.shape[0] == 0:
        raise AudioReadError(path, "the file holds no samples")
    if not np.isfinite(data).all():
        raise AudioReadError(path, "the file holds NaN or infinite samples")
    if mono:
        data = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)
    else:
        data = data.T
    data = np.ascontiguousarray(data, dtype=np.float32)
    if int(file_rate) != int(sample_rate):
        data = resample(torch.from_numpy(data), file_rate, sample_rate).numpy()
    data = to_unit_range(data)
    if duration is not None:
        wanted = num_samples_for(duration, sample_rate)
        if data.shape[-1] >= wanted:
            data = data[..., :wanted]
        else:
            width = [(0, 0)] * (data.ndim - 1) + [(0, wanted - data.shape[-1])]
            data = np.pad(data, width)
    return torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))


def load_audio(path: str | Path, sample_rate: int, duration: float | None = None,
               mono: bool = True) -> torch.Tensor:
    """Read an audio file as float32 in [-1, 1] at `sample_rate`.

    `duration` (seconds) trims or zero-pads; None keeps the file's length. Returns [samples]
    when `mono` (channels averaged), else [channels, samples]. Raises `AudioReadError`.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioReadError(path, "no such file" if not path.exists() else "not a file")
    try:
        with sf.SoundFile(str(path)) as handle:
            file_rate = handle.samplerate
            # Read only what `duration` keeps (plus the resampler's reach), not a whole long recording.
            frames = -1 if duration is None else math.ceil(float(duration) * file_rate) + RESAMPLER_REACH
            # float32 from soundfile is already scaled to [-1, 1) for every integer width.
            data = handle.read(frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as error:
        raise AudioReadError(path, str(error).replace(f"'{path}'", "file").strip()) from None
    except OSError as error:
        raise AudioReadError(path, error.strerror or str(error)) from None
    return convert(data, int(file_rate), sample_rate, duration, mono, path)


def is_audio_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in AUDIO_EXTENSIONS


def first_readable(entries: list, index: int, read, key, failed: dict[str, str], what: str):
    """(entry, read(entry)) for entries[index], or for the next entry that reads, wrapping around;
    None if none does. An unreadable entry warns once, recorded in `failed` under key(entry)
    (a dataset keeps serving instead of killing a long run over one bad file).

    Inside `no_substitution()` only entries[index] is tried; if it cannot be read it is recorded
    in `failed` and `UnreadableItem` is raised (evaluation skips and counts it)."""
    if not -len(entries) <= index < len(entries):
        raise IndexError(f"{what} {index} of {len(entries)}")  # ends plain `for item in dataset` loops
    index %= len(entries)
    if not _SUBSTITUTE.get():  # inside no_substitution(): this entry or an error, never another one
        entry = entries[index]
        try:
            return entry, read(entry)
        except DiffmoogError as error:
            failed[key(entry)] = str(error)
            raise UnreadableItem(key(entry), str(error)) from None
    for step in range(len(entries)):
        entry = entries[(index + step) % len(entries)]
        try:
            return entry, read(entry)
        except DiffmoogError as error:
            if key(entry) not in failed:
                failed[key(entry)] = str(error)
                warnings.warn(f"{error}; using the next readable {what} instead "
                              f"({len(failed)} unreadable so far)", stacklevel=3)
    return None
