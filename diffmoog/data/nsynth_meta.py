"""NSynth's vocabulary and the `Note` record every on-disk form is indexed into."""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from diffmoog.errors import ConfigError, did_you_mean

FAMILIES = ("bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string",
            "synth_lead", "vocal")
SOURCES = ("acoustic", "electronic", "synthetic")
QUALITIES = ("bright", "dark", "distortion", "fast_decay", "long_release", "multiphonic",
             "nonlinear_env", "percussive", "reverb", "tempo-synced")
SPLITS = ("train", "valid", "test")
SPLIT_ALIASES = {"val": "valid", "validation": "valid"}
FORMATS = ("auto", "json", "tfrecord", "tfds")
NSYNTH_RATE_HZ = 16000


@dataclass(frozen=True)
class Note:
    note_str: str
    split: str
    pitch: int
    velocity: int
    instrument: int
    instrument_str: str
    family: int
    family_str: str
    source: int
    source_str: str
    qualities: tuple
    path: str  # wav file, or the TFRecord file holding the note
    offset: int = -1  # payload offset inside a TFRecord file; -1 for a wav
    length: int = 0


def normalize_split(split: str | None) -> str | None:
    if split is None:
        return None
    name = SPLIT_ALIASES.get(str(split).lower(), str(split).lower())
    if name not in SPLITS:
        raise ConfigError(f"unknown NSynth split '{split}'{did_you_mean(split, SPLITS + ('val',))}")
    return name


def split_of(name: str) -> str:
    match = re.search(r"nsynth-(train|valid|test)", name)
    return match.group(1) if match else "all"


class Skips:
    """Counts notes left out of the index, by reason, and warns once with the totals."""

    def __init__(self):
        self.counts: dict[str, int] = {}
        self.examples: dict[str, str] = {}

    def add(self, reason: str, what: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        self.examples.setdefault(reason, what)

    def warn(self, root) -> None:
        if self.counts:
            parts = [f"{n} {reason} (e.g. {self.examples[reason]})" for reason, n in self.counts.items()]
            warnings.warn(f"NSynth at {root}: skipped " + "; ".join(parts), stacklevel=3)


def pick_split(found: dict, split: str | None, root: Path) -> dict:
    """Keep the requested split; a single unnamed pool ("all") serves any split request."""
    if not split or set(found) == {"all"}:
        return found
    if split not in found:
        raise ConfigError(f"{root}: no '{split}' split of NSynth here (found: {', '.join(found) or 'none'})")
    return {split: found[split]}


def note_from_meta(key: str, meta: dict, split: str, path: str, offset: int = -1, length: int = 0) -> Note:
    family = int(meta.get("instrument_family", -1))
    source = int(meta.get("instrument_source", -1))
    return Note(
        note_str=str(meta.get("note_str", key)), split=split, pitch=int(meta["pitch"]),
        velocity=int(meta["velocity"]), instrument=int(meta.get("instrument", -1)),
        instrument_str=str(meta.get("instrument_str", str(key).rsplit("-", 2)[0])),
        family=family, family_str=str(meta.get("instrument_family_str", FAMILIES[family] if 0 <= family < 11 else "")),
        source=source, source_str=str(meta.get("instrument_source_str", SOURCES[source] if 0 <= source < 3 else "")),
        qualities=tuple(int(q) for q in meta.get("qualities", [0] * len(QUALITIES))),
        path=path, offset=offset, length=length)
