"""Index NSynth on disk, in any of its three forms, as one sorted list of `Note` records.

Forms: the official json+wav release, the official TFRecord release (`nsynth-*.tfrecord`),
and a TFDS-prepared `nsynth` directory (dataset_info.json + `nsynth-<split>.tfrecord-*`
shards). Both TFRecord forms are read with the light `tfrecord` package, never TensorFlow.
"""
from __future__ import annotations

import json
import re
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from diffmoog.data import tfrecord_io
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


def _split_of(name: str) -> str:
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


# -- format detection ---------------------------------------------------------------------
def _tfds_dirs(root: Path) -> list[Path]:
    patterns = ("dataset_info.json", "*/dataset_info.json", "*/*/dataset_info.json", "*/*/*/dataset_info.json")
    return sorted({p.parent for pattern in patterns for p in root.glob(pattern)})


def detect_format(root: Path) -> str:
    if not root.exists():
        raise ConfigError(f"{root}: NSynth folder not found")
    if root.is_file():
        return "tfrecord"
    if (root / "examples.json").is_file() or any(root.glob("nsynth-*/examples.json")):
        return "json"
    if list(root.glob("*.tfrecord")):
        return "tfrecord"
    if _tfds_dirs(root):
        return "tfds"
    raise ConfigError(f"{root}: no NSynth data found (expected examples.json + audio/, "
                      "*.tfrecord files, or a TFDS-prepared nsynth folder)")


# -- json + wav ---------------------------------------------------------------------------
def _json_split_dirs(root: Path, split: str | None) -> dict[str, Path]:
    if (root / "examples.json").is_file():
        dirs = {_split_of(root.name): root}
    else:
        dirs = {name: root / f"nsynth-{name}" for name in SPLITS if (root / f"nsynth-{name}" / "examples.json").is_file()}
    return _pick_split(dirs, split, root)


def _pick_split(found: dict, split: str | None, root: Path) -> dict:
    """Keep the requested split; a single unnamed pool ("all") serves any split request."""
    if not split or set(found) == {"all"}:
        return found
    if split not in found:
        raise ConfigError(f"{root}: no '{split}' split of NSynth here (found: {', '.join(found) or 'none'})")
    return {split: found[split]}


def _note_from_meta(key: str, meta: dict, split: str, path: str, offset: int = -1, length: int = 0) -> Note:
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
                notes.append(_note_from_meta(key, meta, split_name, str(audio_dir / f"{key}.wav")))
            except (KeyError, TypeError, ValueError):
                skips.add("notes with malformed metadata", key)
    return notes


# -- official TFRecord --------------------------------------------------------------------
def _text(value) -> str:
    return value[0].decode("utf-8") if isinstance(value, list) and value else ""


def _official_meta(example: dict) -> dict:
    meta = {key: int(example[key][0]) for key in ("pitch", "velocity", "instrument", "instrument_family",
                                                  "instrument_source") if key in example and len(example[key])}
    for key in ("note_str", "instrument_str", "instrument_family_str", "instrument_source_str"):
        if key in example:
            meta[key] = _text(example[key])
    if "qualities" in example:
        meta["qualities"] = example["qualities"].tolist()
    return meta


def _tfrecord_files(root: Path, split: str | None) -> dict[str, list[Path]]:
    files = [root] if root.is_file() else sorted(root.glob("*.tfrecord"))
    out: dict[str, list[Path]] = {}
    for path in files:
        out.setdefault(_split_of(path.name), []).append(path)
    return _pick_split(out, split, root)


def index_records(files: dict[str, list[Path]], to_meta, skips: Skips) -> list[Note]:
    notes = []
    for split_name, paths in files.items():
        for path in paths:
            offsets, cut = tfrecord_io.record_offsets(path)
            if cut:
                skips.add("records cut short at the end of a file", str(path))
            for offset, length in offsets:
                try:
                    meta = to_meta(tfrecord_io.parse_example(tfrecord_io.read_payload(path, offset, length)))
                    notes.append(_note_from_meta(meta.get("note_str", f"{path.name}@{offset}"), meta,
                                                 split_name, str(path), offset, length))
                except Exception:  # a corrupt record must not stop indexing the rest
                    skips.add("unparseable records", f"{path}@{offset}")
    return notes


# -- TFDS-prepared ------------------------------------------------------------------------
def _tfds_dir(root: Path) -> Path:
    dirs = _tfds_dirs(root)
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
    """Return example -> meta for TFDS's flattened nsynth features ("instrument/family", ...)."""
    instruments = _tfds_labels(folder, "label")
    families = _tfds_labels(folder, "family") or list(FAMILIES)
    sources = _tfds_labels(folder, "source") or list(SOURCES)

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
    return to_meta


def _tfds_files(folder: Path, split: str | None) -> dict[str, list[Path]]:
    out = {}
    for name in SPLITS:
        paths = sorted(folder.glob(f"*-{name}.tfrecord*"))
        if paths:
            out[name] = paths
    return _pick_split(out, split, folder)


def available_splits(root: str | Path, fmt: str = "auto") -> tuple[list[str], str]:
    """The NSynth splits under `root` ("all" for one unnamed pool), without indexing notes."""
    root = Path(root).expanduser()
    fmt = detect_format(root) if fmt == "auto" else fmt
    if fmt == "json":
        found = _json_split_dirs(root, None)
    elif fmt == "tfrecord":
        found = _tfrecord_files(root, None)
    else:
        found = _tfds_files(_tfds_dir(root) if root.is_dir() else root, None)
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
        notes = index_records(_tfrecord_files(root, split), _official_meta, skips)
    else:
        folder = _tfds_dir(root) if root.is_dir() else root
        notes = index_records(_tfds_files(folder, split), tfds_meta_reader(folder), skips)
    skips.warn(root)
    return sorted(notes, key=lambda n: (n.split, n.note_str)), fmt, skips


def note_to_row(note: Note) -> dict:
    row = asdict(note)
    row["qualities"] = list(note.qualities)
    return row
