"""Index NSynth on disk, in any of its three forms, as one sorted list of `Note` records.

Forms: the official json+wav release (`examples.json` + `audio/`, a split folder or a parent
of nsynth-{train,valid,test}/), the official TFRecord release (`*.tfrecord`), and a
TFDS-prepared `nsynth` folder (dataset_info.json + `nsynth-<split>.tfrecord-*` shards).
None of them needs TensorFlow.
"""
from __future__ import annotations

import json
from pathlib import Path

from diffmoog.data.nsynth_meta import FORMATS, SPLITS, Note, Skips, normalize_split, note_from_meta, pick_split, split_of
from diffmoog.data.nsynth_records import (index_records, official_meta, tfds_dir, tfds_dirs, tfds_files,
                                          tfds_meta_reader, tfrecord_files)
from diffmoog.errors import ConfigError, did_you_mean


def detect_format(root: Path) -> str:
    if not root.exists():
        raise ConfigError(f"{root}: NSynth folder not found")
    if root.is_file():
        return "tfrecord"
    if (root / "examples.json").is_file() or any(root.glob("nsynth-*/examples.json")):
        return "json"
    if list(root.glob("*.tfrecord")):
        return "tfrecord"
    if tfds_dirs(root):
        return "tfds"
    raise ConfigError(f"{root}: no NSynth data found (expected examples.json + audio/, "
                      "*.tfrecord files, or a TFDS-prepared nsynth folder)")


def is_nsynth_root(root: str | Path) -> bool:
    """True when `root` holds NSynth in any form (what a caller choosing a loader needs)."""
    try:
        detect_format(Path(root).expanduser())
    except ConfigError:
        return False
    return True


def _json_split_dirs(root: Path, split: str | None) -> dict[str, Path]:
    if (root / "examples.json").is_file():
        dirs = {split_of(root.name): root}
    else:
        dirs = {name: root / f"nsynth-{name}" for name in SPLITS if (root / f"nsynth-{name}" / "examples.json").is_file()}
    return pick_split(dirs, split, root)


def index_json(root: Path, split: str | None, skips: Skips) -> list[Note]:
    notes = []
    for split_name, folder in _json_split_dirs(root, split).items():
        try:
            with open(folder / "examples.json", encoding="utf-8") as handle:
                examples = json.load(handle)
        except (OSError, ValueError) as error:
            raise ConfigError(f"{folder / 'examples.json'}: cannot read: {error}") from None
        audio_dir = folder / "audio"
        present = {p.name for p in audio_dir.iterdir()} if audio_dir.is_dir() else set()
        for key, meta in examples.items():
            if f"{key}.wav" not in present:
                skips.add("notes without a wav file", str(audio_dir / f"{key}.wav"))
                continue
            try:
                notes.append(note_from_meta(key, meta, split_name, str(audio_dir / f"{key}.wav")))
            except (KeyError, TypeError, ValueError):
                skips.add("notes with malformed metadata", key)
    return notes


def available_splits(root: str | Path, fmt: str = "auto") -> tuple[list[str], str]:
    """The NSynth splits under `root` ("all" for one unnamed pool), without indexing notes."""
    root = Path(root).expanduser()
    fmt = detect_format(root) if fmt == "auto" else fmt
    if fmt == "json":
        found = _json_split_dirs(root, None)
    elif fmt == "tfrecord":
        found = tfrecord_files(root, None)
    else:
        found = tfds_files(tfds_dir(root) if root.is_dir() else root, None)
    return list(found), fmt


def build_index(root: str | Path, split: str | None = None, fmt: str = "auto") -> tuple[list[Note], str, Skips]:
    """All readable notes under `root`, sorted by (split, note_str), the format used, and skips."""
    root = Path(root).expanduser()
    if fmt not in FORMATS:
        raise ConfigError(f"unknown NSynth format '{fmt}'{did_you_mean(fmt, FORMATS)}")
    split = normalize_split(split)
    fmt = detect_format(root) if fmt == "auto" else fmt
    skips = Skips()
    if fmt == "json":
        notes = index_json(root, split, skips)
    elif fmt == "tfrecord":
        notes = index_records(tfrecord_files(root, split), official_meta, skips, "official")
    else:
        folder = tfds_dir(root) if root.is_dir() else root
        to_meta, kind = tfds_meta_reader(folder)
        notes = index_records(tfds_files(folder, split), to_meta, skips, kind)
    skips.warn(root)
    return sorted(notes, key=lambda n: (n.split, n.note_str)), fmt, skips
