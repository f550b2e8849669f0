"""Typed, validated create-data settings (from argparse or from Python)."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

import diffmoog
from diffmoog.data.layout import SPLITS, SplitLayout, chain_json
from diffmoog.errors import ConfigError, did_you_mean
from diffmoog.spec import MAX_BATCH_SAMPLES, length_problem


@dataclass
class GenOptions:
    chain: diffmoog.Chain
    size: int
    split: str = "train"
    name: str | None = None  # default: the chain name in lower case
    out: Path = Path("data")
    sample_rate: int | None = None  # None: the chain's own
    duration: float | None = None
    note_off: float | None = None
    batch_size: int = 64
    seed: int = 0
    device: str | None = None  # None: cuda when available
    workers: int = 1  # wav-writing threads (see cli.py --workers)
    shard: tuple[int, int] = (0, 1)
    force: bool = False
    float32: bool = False
    compile: bool = False
    progress_bar: bool = True
    args: dict = field(default_factory=dict)  # the command line, recorded in metadata.json

    def __post_init__(self):
        spec = self.chain.spec
        # Where the name came from, so an error blames the flag or the chain file's `name:`.
        self._name_origin = "--name" if self.name is not None else f"{spec.source}: key 'name'"
        self.name = self.chain.name.lower() if self.name is None else self.name
        self.out = Path(self.out)
        self.sample_rate = int(spec.sample_rate if self.sample_rate is None else self.sample_rate)
        self.duration = float(spec.duration if self.duration is None else self.duration)
        self.note_off = float(spec.note_off if self.note_off is None else self.note_off)
        self.device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._validate()

    def _validate(self):
        def positive(value, flag, minimum=1):
            if value < minimum:
                raise ConfigError(f"{flag} must be >= {minimum}, got {value}")
        if self.split not in SPLITS:
            raise ConfigError(f"--split must be one of {', '.join(SPLITS)}, got '{self.split}'"
                              f"{did_you_mean(self.split, SPLITS)}")
        positive(self.size, "--size")
        positive(self.batch_size, "--batch-size")
        positive(self.workers, "--workers")
        positive(self.sample_rate, "--sample-rate", 1000)
        if not self.duration > 0 or self.note_off < 0:
            raise ConfigError(f"--signal-duration must be > 0 and --note-off >= 0, got "
                              f"{self.duration:g} and {self.note_off:g}")
        too_long = length_problem(self.duration, self.sample_rate)
        if too_long:
            raise ConfigError(f"--signal-duration/--sample-rate: {too_long}")
        fits = max(1, MAX_BATCH_SAMPLES // self.n_samples)
        if self.batch_size > fits:
            print(f"create-data: note: --batch-size {self.batch_size} -> {fits}, so one batch of "
                  f"{self.duration:g} s sounds stays under {MAX_BATCH_SAMPLES:,} samples", file=sys.stderr)
            self.batch_size = fits
        if not self.name or any(c in self.name for c in "/\\") or self.name in (".", ".."):
            raise ConfigError(f"{self._name_origin} must be a plain folder name, got '{self.name}'")
        shard, shards = self.shard
        if not 0 <= shard < shards:
            raise ConfigError(f"--shard must be i/N with 0 <= i < N, got {shard}/{shards}")
        if self.device not in ("cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise ConfigError(f"--device must be cpu or cuda, got '{self.device}'")
        if str(self.device).startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError("--device cuda was asked for, but CUDA is not available here")

    @property
    def layout(self) -> SplitLayout:
        return SplitLayout(self.out / self.name / self.split)

    @property
    def n_samples(self) -> int:
        return int(round(self.duration * self.sample_rate))

    @property
    def format(self) -> str:
        return "float32" if self.float32 else "pcm16"

    def identity(self) -> dict:
        """Everything that decides the bytes written; a resume must match it exactly."""
        return {"chain": chain_json(self.chain), "split": self.split, "seed": self.seed,
                "size": self.size, "sample_rate": self.sample_rate, "duration": self.duration,
                "note_off": self.note_off, "format": self.format, "version": diffmoog.__version__,
                "render": "compiled" if self.compile else "eager"}
