"""`create-data --from-nsynth PATH`: copy a filtered, deterministic NSynth subset into OUT/NAME/SPLIT.

Layout (what the trainer reads for real audio; there are no synth params to write):
  wav_files/<id>.wav   16-bit PCM (--float: 32-bit float) mono at --sample-rate, trimmed/padded
                       to --signal-duration; read it back with AudioFolderDataset(.../wav_files)
  nsynth_labels.csv    id, note_str, nsynth_split, pitch, velocity, instrument(_str), family(_str),
                       source(_str), one 0/1 column per quality
  metadata.json        "source": "nsynth", filters, seed, count, rate, duration... (written last:
                       its presence marks a finished split)

Disjoint splits: when PATH holds several NSynth splits, train/val/test copy from NSynth's own
train/valid/test (instrument-disjoint by NSynth's design). When PATH is one pool (a single
split folder or file, or a folder like the 14-note fixture), the pool is divided by a stable
hash of instrument_str into train/val/test shares (POOL_SHARES), so no note, and no
instrument, can land in two splits. Within its pool a split takes a seeded subset of --size.

Safe and resumable: each wav is written atomically; a finished split is never overwritten
without --force; a stopped run, started again with the same arguments, copies only what is
missing (the plan lives in .progress/run.json until the split is finished). A note whose audio
cannot be read is skipped with a warning: its id stays unused, the CSV lists only written files,
and metadata.json names it under "unreadable".
"""
from __future__ import annotations

import csv
import datetime
import hashlib
import io
import shutil
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from diffmoog import __version__
from diffmoog.data.fileio import os_errors
from diffmoog.data.layout import METADATA, PROGRESS_DIR, WAV_DIR, SplitLayout, id_width, item_id
from diffmoog.data.nsynth import choose_subset, filter_notes, read_note_audio
from diffmoog.data.nsynth_index import available_splits, build_index
from diffmoog.data.nsynth_meta import QUALITIES, Note
from diffmoog.data_gen import fileio, wavfile
from diffmoog.data_gen.prepare import prepare_plan
from diffmoog.errors import ConfigError, DiffmoogError, did_you_mean

LABELS_CSV = "nsynth_labels.csv"
OURS = {WAV_DIR, LABELS_CSV, METADATA, PROGRESS_DIR}  # what --force may delete in a split folder
DEST_TO_NSYNTH = {"train": "train", "val": "valid", "test": "test"}
POOL_SHARES = (("train", 0.8), ("val", 0.9), ("test", 1.0))  # cumulative upper bounds


def hash_position(text: str) -> float:
    """A stable pseudo-random position in [0, 1) for a name (the same on every machine and run)."""
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16) / 2 ** 32


def pool_share(instrument_str: str) -> str:
    """The destination split an instrument belongs to when one pool feeds all splits."""
    position = hash_position(instrument_str)
    return next(split for split, upper in POOL_SHARES if position < upper)


def listed(value) -> list | None:
    """CLI values may arrive as None, "a,b", ["a,b", "c"] or [1, 2]."""
    if value is None:
        return None
    items = value if isinstance(value, (list, tuple)) else [value]
    out = [part.strip() for item in items for part in str(item).split(",") if part.strip()]
    return out or None


def plan_from_args(args) -> dict:
    split = str(getattr(args, "split", None) or "train").lower()
    if split not in DEST_TO_NSYNTH:
        raise ConfigError(f"unknown split '{split}'{did_you_mean(split, DEST_TO_NSYNTH)}")
    pitch_min, pitch_max = getattr(args, "pitch_min", None), getattr(args, "pitch_max", None)
    pitch_range = None
    if pitch_min is not None or pitch_max is not None:
        pitch_range = [int(pitch_min if pitch_min is not None else 0), int(pitch_max if pitch_max is not None else 127)]
    velocities = listed(getattr(args, "velocities", None))
    size = getattr(args, "size", None)
    if size is not None and int(size) < 1:
        raise ConfigError(f"--size must be >= 1, got {size}")
    if getattr(args, "sample_rate", None) is not None and int(args.sample_rate) < 1000:
        raise ConfigError(f"--sample-rate must be >= 1000, got {args.sample_rate}")
    if getattr(args, "signal_duration", None) is not None and not float(args.signal_duration) > 0:
        raise ConfigError(f"--signal-duration must be > 0, got {args.signal_duration}")
    if velocities is not None and not all(v.lstrip("-").isdigit() for v in velocities):
        raise ConfigError(f"--velocities must be MIDI velocities (integers), got {' '.join(velocities)}")
    return {
        "nsynth_root": str(Path(args.from_nsynth).expanduser().resolve()),
        "split": split, "size": None if size is None else int(size), "seed": int(getattr(args, "seed", 0) or 0),
        "sample_rate": int(getattr(args, "sample_rate", None) or 16000),
        "signal_duration": float(getattr(args, "signal_duration", None) or 4.0),
        "filters": {"families": listed(getattr(args, "families", None)),
                    "sources": listed(getattr(args, "sources", None)), "pitch_range": pitch_range,
                    "velocities": None if velocities is None else [int(v) for v in velocities]},
        "format": getattr(args, "nsynth_format", None) or "auto",
        "wav_format": "float32" if getattr(args, "float32", False) else "pcm16",
    }


def select_notes(plan: dict) -> tuple[list[Note], dict]:
    """The notes this split copies, in id order, and how the pool was chosen."""
    splits, fmt = available_splits(plan["nsynth_root"], plan["format"])
    wanted = DEST_TO_NSYNTH[plan["split"]]
    if len(splits) > 1:
        notes, fmt, skips = build_index(plan["nsynth_root"], wanted, fmt)
        pool = {"mode": "nsynth_split", "nsynth_split": wanted}
    else:
        notes, fmt, skips = build_index(plan["nsynth_root"], None, fmt)
        notes = [n for n in notes if pool_share(n.instrument_str) == plan["split"]]
        pool = {"mode": "instrument_hash", "nsynth_split": splits[0] if splits else None,
                "shares": dict(POOL_SHARES)}
    filters = plan["filters"]
    notes = filter_notes(notes, filters["families"], filters["sources"], filters["pitch_range"], filters["velocities"])
    if not notes:
        raise ConfigError(f"{plan['nsynth_root']}: no NSynth notes for split '{plan['split']}' match the filters")
    try:
        notes = choose_subset(notes, plan["size"], plan["seed"])
    except ConfigError as error:
        raise ConfigError(f"{plan['nsynth_root']} ({plan['split']} pool): {error}") from None
    pool.update(format=fmt, skipped=dict(skips.counts))
    return notes, pool


def labels_csv(ids: list[str], notes: list[Note]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "note_str", "nsynth_split", "pitch", "velocity", "instrument", "instrument_str",
                     "family", "family_str", "source", "source_str", *[f"quality.{q}" for q in QUALITIES]])
    for item, n in zip(ids, notes):
        qualities = list(n.qualities) + [0] * (len(QUALITIES) - len(n.qualities))
        writer.writerow([item, n.note_str, n.split, n.pitch, n.velocity, n.instrument, n.instrument_str, n.family,
                         n.family_str, n.source, n.source_str, *qualities[:len(QUALITIES)]])
    return out.getvalue().encode("utf-8")


def to_wav_samples(audio, wav_format: str) -> np.ndarray:
    if wav_format == "float32":
        return audio.numpy().astype(np.float32)
    # Full scale is 32768 (what readers divide by), so int16 notes copy bit-exactly; +1.0 clips to 32767.
    return np.clip(np.round(audio.numpy() * 32768.0), -32768, 32767).astype(np.int16)


def main(args) -> int:
    started = datetime.datetime.now(datetime.timezone.utc)
    plan = plan_from_args(args)
    name = getattr(args, "name", None) or "nsynth"
    if "/" in name or name in (".", ".."):
        raise ConfigError(f"--name must be a plain folder name, got '{name}'")
    layout = SplitLayout(Path(getattr(args, "out", None) or "data") / name / plan["split"])
    force = bool(getattr(args, "force", False))
    if layout.is_finished() and not force:  # before indexing, which can take a while
        raise ConfigError(f"{layout.root} already holds a finished dataset; pass --force to overwrite it")
    notes, pool = select_notes(plan)
    prepare_plan(layout, plan, force, OURS, (layout.wav_dir, layout.progress))
    width = id_width(len(notes))
    ids = [item_id(i, width) for i in range(len(notes))]
    unreadable = {}
    for item, note in tqdm(list(zip(ids, notes)), desc=f"nsynth -> {layout.root}", unit="note",
                           disable=True if getattr(args, "no_progress", False) else None, file=sys.stderr):
        path = layout.wav(item)
        if path.is_file():  # written atomically by an earlier, interrupted run
            continue
        try:
            audio = read_note_audio(note, plan["sample_rate"], plan["signal_duration"])
        except DiffmoogError as error:  # leave a gap in the ids; the CSV lists only written files
            unreadable[note.note_str] = str(error)
            continue
        wavfile.write(path, to_wav_samples(audio, plan["wav_format"]), plan["sample_rate"])
    written = [(item, note) for item, note in zip(ids, notes) if note.note_str not in unreadable]
    if unreadable:
        print(f"warning: skipped {len(unreadable)} unreadable NSynth notes, e.g. "
              f"{next(iter(unreadable.values()))}", file=sys.stderr)
    fileio.write_bytes_atomic(layout.root / LABELS_CSV, labels_csv([i for i, _ in written], [n for _, n in written]))
    finished = datetime.datetime.now(datetime.timezone.utc)
    metadata = {"source": "nsynth", "package_version": __version__, "name": name, **plan, "pool": pool,
                "count": len(written), "unreadable": unreadable, "labels_csv": LABELS_CSV, "synth_params": None,
                "started_at": started.isoformat(), "finished_at": finished.isoformat()}
    fileio.write_json_atomic(layout.root / METADATA, metadata)
    with os_errors(layout.progress):
        shutil.rmtree(layout.progress, ignore_errors=True)
    seconds = (finished - started).total_seconds()
    print(f"copied {len(written)} NSynth notes to {layout.root} in {seconds:.1f} s", file=sys.stderr)
    return 0
