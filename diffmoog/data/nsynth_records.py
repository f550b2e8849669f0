"""Index NSynth notes stored in TFRecord files: the official release and TFDS-prepared folders.

Records are parsed by `tfrecord_io` (no TensorFlow). Indexing reads every record once, which
for the 289k-note train file means reading it all; the index is therefore cached as JSON
under $DIFFMOOG_CACHE_DIR (default ~/.cache/diffmoog), keyed by each file's path, size and
mtime, so a changed file is indexed again. A cache that cannot be written is skipped.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

from diffmoog.data import tfrecord_io
from diffmoog.data.nsynth_meta import FAMILIES, QUALITIES, SOURCES, SPLITS, Note, Skips, note_from_meta, pick_split, split_of
from diffmoog.errors import ConfigError

CACHE_VERSION = 1


def tfds_dirs(root: Path) -> list[Path]:
    patterns = ("dataset_info.json", "*/dataset_info.json", "*/*/dataset_info.json", "*/*/*/dataset_info.json")
    return sorted({p.parent for pattern in patterns for p in root.glob(pattern)})


def _text(value) -> str:
    return value[0].decode("utf-8") if isinstance(value, list) and value else ""


def official_meta(example: dict) -> dict:
    meta = {key: int(example[key][0]) for key in ("pitch", "velocity", "instrument", "instrument_family",
                                                  "instrument_source") if key in example and len(example[key])}
    for key in ("note_str", "instrument_str", "instrument_family_str", "instrument_source_str"):
        if key in example:
            meta[key] = _text(example[key])
    if "qualities" in example:
        meta["qualities"] = example["qualities"].tolist()
    return meta


def tfrecord_files(root: Path, split: str | None) -> dict[str, list[Path]]:
    files = [root] if root.is_file() else sorted(root.glob("*.tfrecord"))
    out: dict[str, list[Path]] = {}
    for path in files:
        out.setdefault(split_of(path.name), []).append(path)
    return pick_split(out, split, root)


def cache_dir() -> Path:
    return Path(os.environ.get("DIFFMOOG_CACHE_DIR") or Path.home() / ".cache" / "diffmoog") / "nsynth-index"


def _cache_file(path: Path, kind: str) -> Path:
    stat = path.stat()
    key = f"{CACHE_VERSION}|{kind}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return cache_dir() / f"{hashlib.sha1(key.encode()).hexdigest()}.json"


def _load_cached(cache: Path):
    try:
        return json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _store(cache: Path, entry: dict) -> None:
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.part")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(entry), encoding="utf-8")
        os.replace(tmp, cache)
    except OSError:  # read-only home, full disk: indexing still worked, only the cache is lost
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def _scan_file(path: Path, to_meta) -> dict:
    """Notes (as dicts, without split) and skip reasons of one TFRecord file."""
    rows, skipped = [], []
    offsets, cut = tfrecord_io.record_offsets(path)
    if cut:
        skipped.append(["records cut short at the end of a file", str(path)])
    for offset, length in offsets:
        try:
            meta = to_meta(tfrecord_io.parse_example(tfrecord_io.read_payload(path, offset, length)))
            note = note_from_meta(meta.get("note_str", f"{path.name}@{offset}"), meta, "", str(path), offset, length)
            rows.append(asdict(note))
        except Exception:  # a corrupt record must not stop indexing the rest
            skipped.append(["corrupt or unparseable records", f"{path}@{offset}"])
    return {"notes": rows, "skipped": skipped}


def index_records(files: dict[str, list[Path]], to_meta, skips: Skips, kind: str) -> list[Note]:
    """Notes of every TFRecord file, through the per-file index cache."""
    notes = []
    for split_name, paths in files.items():
        for path in paths:
            cache = _cache_file(path, kind)
            entry = _load_cached(cache)
            if entry is None:
                entry = _scan_file(path, to_meta)
                _store(cache, entry)
            for reason, what in entry["skipped"]:
                skips.add(reason, what)
            notes += [Note(**{**row, "split": split_name, "qualities": tuple(row["qualities"])})
                      for row in entry["notes"]]
    return notes


def tfds_dir(root: Path) -> Path:
    dirs = tfds_dirs(root)
    if len(dirs) > 1:
        full = [d for d in dirs if d.parent.name == "full"]
        if len(full) != 1:
            raise ConfigError(f"{root}: several TFDS datasets found ({', '.join(map(str, dirs))}); pass one of them")
        dirs = full
    return dirs[0]


def _tfds_labels(folder: Path, name: str) -> list[str]:
    for candidate in (folder / f"{name}.labels.txt", folder / f"instrument-{name}.labels.txt"):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8").splitlines()
    return []


def tfds_meta_reader(folder: Path):
    """Return example -> meta for TFDS's flattened nsynth features ("instrument/family", ...),
    and a cache key for it (the label names decide instrument_str)."""
    instruments = _tfds_labels(folder, "label")
    families = _tfds_labels(folder, "family") or list(FAMILIES)
    sources = _tfds_labels(folder, "source") or list(SOURCES)
    labels_key = hashlib.sha1("\n".join(instruments + families + sources).encode()).hexdigest()

    def to_meta(example: dict) -> dict:
        label = int(example["instrument/label"][0])
        family, source = int(example["instrument/family"][0]), int(example["instrument/source"][0])
        return {"note_str": _text(example["id"]), "pitch": int(example["pitch"][0]),
                "velocity": int(example["velocity"][0]), "instrument": label,
                "instrument_str": instruments[label] if label < len(instruments) else str(label),
                "instrument_family": family, "instrument_family_str": families[family],
                "instrument_source": source, "instrument_source_str": sources[source],
                "qualities": [int(example[f"qualities/{q}"][0]) if f"qualities/{q}" in example else 0
                              for q in QUALITIES]}
    return to_meta, f"tfds:{labels_key}"


def tfds_files(folder: Path, split: str | None) -> dict[str, list[Path]]:
    out = {}
    for name in SPLITS:
        paths = sorted(folder.glob(f"*-{name}.tfrecord*"))
        if paths:
            out[name] = paths
    return pick_split(out, split, folder)
