"""Small pieces the sound-design CLIs share: CPU threads, checking flags and output paths,
writing wavs and presets, warnings and the error exit."""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from pathlib import Path
from typing import Callable

import soundfile as sf
import torch

from diffmoog.errors import ConfigError, DiffmoogError
from diffmoog.match.inputs import SILENCE_PEAK
from diffmoog.preset import save_preset
from diffmoog.match.refine import RANDOM_POOL_PER_RESTART
from diffmoog.spec import MAX_BATCH_SAMPLES

# The most sounds one morph or vary run writes (each a wav and a preset): far beyond any
# listening session, and it keeps a typo (--n 1000000) from filling the disk.
MAX_OUTPUTS = 1000


class Parser(argparse.ArgumentParser):
    """argparse with its errors as one line (`prog: error: ...`, exit 2), like every other
    mistake the CLIs report; `--help` still prints the usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def set_threads(device: str) -> None:
    """One intra-op thread on CPU: these renders are small tensors, and on a busy 2-core
    machine extra threads spin-wait (measured 50x slower refinement steps with 2 threads)."""
    if torch.device(device).type == "cpu":
        torch.set_num_threads(1)


def check_device(device: str) -> str:
    """A torch device this machine has, or a ConfigError naming --device."""
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"--device: '{device}' is not a device (cpu, cuda, cuda:0...)") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    if kind not in ("cpu", "cuda"):
        raise ConfigError(f"--device {device}: only cpu and cuda devices are supported")
    return device


def _text(value) -> str:
    """A flag's value as typed: integers in full (2147483647, not 2.14748e+09), floats short."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def check_number(flag: str, value, minimum=None, maximum=None, *, above=None) -> None:
    """Refuse a numeric flag that is not finite, below `minimum` (or not above `above`) or
    beyond `maximum`, with a ConfigError naming the flag. None (flag not given) passes."""
    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{flag} must be a finite number, got {value}")
    if minimum is not None and maximum is not None and not minimum <= value <= maximum:
        raise ConfigError(f"{flag} must be in {_text(minimum)} .. {_text(maximum)}, got {_text(value)}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{flag} must be >= {_text(minimum)}, got {_text(value)}")
    if above is not None and value <= above:
        raise ConfigError(f"{flag} must be > {_text(above)}, got {_text(value)}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{flag} must be <= {_text(maximum)}, got {_text(value)}")


def check_refine_flags(refine_steps: int, restarts: int, checkpoint, lr: float | None = None) -> None:
    """The matching flags diffmoog-match and diffmoog-morph share, checked before any work."""
    check_number("--refine-steps", refine_steps, 0)
    check_number("--restarts", restarts, 1)
    check_number("--lr", lr, above=0, maximum=1.0)  # a step beyond the whole [0, 1] range is a typo
    if checkpoint is None and refine_steps == 0:
        raise ConfigError("without --checkpoint, refinement is the matcher: give --refine-steps > 0")


def check_restarts(restarts: int, chain) -> None:
    """The restarts render as one batch (with a pool of random starts before them): refuse a
    count whose batch would exceed spec.MAX_BATCH_SAMPLES for this chain's sound length."""
    samples = int(round(chain.spec.duration * chain.sample_rate))
    most = max(MAX_BATCH_SAMPLES // (RANDOM_POOL_PER_RESTART * max(samples, 1)), 1)
    if restarts > most:
        raise ConfigError(f"--restarts {restarts}: too many for chain {chain.name} ({samples:,} samples per "
                          f"sound, rendered {RANDOM_POOL_PER_RESTART} per restart in one batch); at most {most}")


def _check_parent(path: Path, flag: str) -> None:
    """The nearest existing folder above `path` is a folder we may write in."""
    for parent in (path.parent, *path.parent.parents):
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{flag} {path}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ConfigError(f"{flag} {path}: no permission to write in {parent}")
            return


def check_output_file(path: str | Path, flag: str = "-o", suffix: str | None = None) -> Path:
    """Check before any work that `path` can be written as a file; a ConfigError naming it if not."""
    path = Path(path)
    if suffix and path.suffix.lower() != suffix:
        raise ConfigError(f"{flag} {path}: the output is a {suffix} file; give a name ending in {suffix}")
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: is a folder; give a file name")
    _check_parent(path, flag)
    return path


def check_output_dir(path: str | Path, flag: str = "-o") -> Path:
    """Check before any work that `path` is (or can be made) a folder we may write in."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"{flag} {path}: is a file, not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigError(f"{flag} {path}: no permission to write in this folder")
    else:
        _check_parent(path, flag)
    return path


def check_not_input(outputs: list[Path], inputs: list[str | Path], flag: str = "-o") -> None:
    """Refuse outputs that would overwrite one of the inputs (say, varying var_00.preset.yaml
    into its own folder)."""
    sources = {Path(p).resolve() for p in inputs}
    for out in outputs:
        if Path(out).resolve() in sources:
            raise ConfigError(f"{flag}: writing {out} would overwrite an input; choose another output")


@contextlib.contextmanager
def writing(path: Path):
    """An OS error while writing `path` (disk full, permissions changed) -> one-line ConfigError."""
    try:
        yield
    except OSError as error:
        raise ConfigError(f"{path}: cannot write: {error.strerror or error}") from None


def mkdir(path: Path) -> Path:
    with writing(path):
        path.mkdir(parents=True, exist_ok=True)
    return path


def write_wav(path: str | Path, audio: torch.Tensor, sample_rate: int) -> Path:
    """Mono float32 wav; written beside and renamed, so a crash never leaves half a file.
    Audio with NaN/inf samples is refused (nothing written)."""
    path = Path(path)
    samples = audio.detach().reshape(-1).cpu().float()
    if not bool(torch.isfinite(samples).all()):
        raise ConfigError(f"{path}: the render has NaN/inf samples; nothing written")
    mkdir(path.parent)
    tmp = path.with_name(path.name + ".tmp.wav")
    try:
        with writing(path):
            sf.write(str(tmp), samples.numpy(), int(sample_rate), subtype="FLOAT")
            clear_peak_time(tmp)
            tmp.replace(path)
    except (sf.LibsndfileError, RuntimeError) as error:  # soundfile's own errors (not OSError)
        raise ConfigError(f"{path}: cannot write: {error}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return path


def clear_peak_time(path: Path) -> None:
    """Zero the time stamp libsndfile writes into a float wav's PEAK chunk (seconds since 1970,
    at writing), so the same sound is the same bytes: a seeded run can be compared file by file.
    Walks the RIFF chunks; a file without a PEAK chunk is left as it is."""
    with open(path, "r+b") as f:
        header = f.read(12)
        if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return
        position, end = 12, 8 + int.from_bytes(header[4:8], "little")
        while position + 8 <= end:
            f.seek(position)
            chunk = f.read(8)
            if len(chunk) < 8:
                return
            size = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"PEAK" and size >= 8:
                f.seek(position + 12)  # after the chunk header and the 4-byte version
                f.write(bytes(4))
                return
            position += 8 + size + (size & 1)  # chunks are padded to an even size


def silence_problem(audio: torch.Tensor) -> str | None:
    """Why `audio` is silent (peak below -80 dBFS, as for match targets), or None."""
    peak = float(audio.detach().abs().max()) if audio.numel() else 0.0
    if peak < SILENCE_PEAK:
        return f"the render is silent (peak {peak:.1e}, below -80 dBFS)"
    return None


def render_and_save(out: Path, stem: str, chain, params: dict, source: str,
                    warn: Callable[[str], None] | None = None,
                    pitch: dict | None = None) -> tuple[torch.Tensor, Path]:
    """Render one preset to `out/<stem>.wav` and save it as `out/<stem>.preset.yaml` (with
    `pitch`, the preset's pitch record, when given): (its audio, the wav's path). A silent render
    is written, and reported through `warn`."""
    with torch.no_grad():
        audio = chain.render(params)[0]
    wav = write_wav(out / f"{stem}.wav", audio, chain.sample_rate)
    preset = out / f"{stem}.preset.yaml"
    with writing(preset):
        save_preset(preset, chain, params, source=source, pitch=pitch)
    silent = silence_problem(audio)
    if silent and warn is not None:
        warn(f"{wav}: {silent}")
    return audio, wav


def warner(prog: str) -> Callable[[str], None]:
    """A `warn(message)` that prints `prog: warning: message` to stderr."""
    def warn(message: str) -> None:
        print(f"{prog}: warning: {message}", file=sys.stderr)
    return warn


def fail(prog: str, error: DiffmoogError) -> int:
    print(f"{prog}: error: {error}", file=sys.stderr)
    return 2
