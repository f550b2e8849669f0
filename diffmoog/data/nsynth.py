"""NSynth as a torch Dataset: json+wav, TFRecord or TFDS-prepared, with filters.

Every form gives the same items (see `NSynthDataset.__getitem__`). Notes are sorted by
(split, note_str), so index i is the same note whichever form the data is stored in.

Odd files: missing wavs and cut/unparseable records are skipped when the index is built
(counted in `dataset.skipped` and warned once). A file that fails only when read (corrupt
payload, NaN samples) never stops an epoch: item i is replaced by the next readable note
(i+1, i+2, ... wrapping), which is deterministic, counted in `dataset.failed` and warned
once per file (per process: DataLoader workers keep their own counts). Stereo, other sample rates and 8/24/32-bit or float files are converted.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from diffmoog.data import tfrecord_io
from diffmoog.data.audio_io import AudioReadError, convert, first_readable, load_audio
from diffmoog.data.nsynth_index import build_index
from diffmoog.data.nsynth_meta import FAMILIES, NSYNTH_RATE_HZ, SOURCES, Note
from diffmoog.errors import ConfigError, did_you_mean


def _names_or_ids(values, known: dict[str, int], what: str) -> set:
    """Filter values given as names or ints -> set of names/ints, checking names."""
    if values is None:
        return None
    if isinstance(values, (str, int)):
        values = [values]
    out = set()
    for value in values:
        text = str(value).strip()
        if text.lstrip("-").isdigit():
            out.add(int(text))
        elif text in known:
            out.add(text)
        else:
            raise ConfigError(f"unknown NSynth {what} '{text}'{did_you_mean(text, known)}")
    return out


def filter_notes(notes: list[Note], families=None, sources=None, pitch_range=None, velocities=None) -> list[Note]:
    """Keep notes matching every given filter (names or ids for families/sources)."""
    family_names = {n.family_str: n.family for n in notes} | {name: i for i, name in enumerate(FAMILIES)}
    source_names = {n.source_str: n.source for n in notes} | {name: i for i, name in enumerate(SOURCES)}
    families = _names_or_ids(families, family_names, "family")
    sources = _names_or_ids(sources, source_names, "source")
    if pitch_range is not None:
        low, high = (int(p) for p in pitch_range)
        if low > high:
            raise ConfigError(f"pitch range {low}-{high} is empty (min > max)")
    if velocities is not None:
        velocities = {int(v) for v in ([velocities] if isinstance(velocities, (int, str)) else velocities)}
    kept = []
    for note in notes:
        if families is not None and note.family_str not in families and note.family not in families:
            continue
        if sources is not None and note.source_str not in sources and note.source not in sources:
            continue
        if pitch_range is not None and not low <= note.pitch <= high:
            continue
        if velocities is not None and note.velocity not in velocities:
            continue
        kept.append(note)
    return kept


def choose_subset(notes: list, size: int | None, seed: int = 0) -> list:
    """A deterministic subset of `size` notes (seeded permutation), kept in index order."""
    if size is None:
        return notes
    if size < 0 or size > len(notes):
        raise ConfigError(f"asked for {size} notes but only {len(notes)} match the filters")
    chosen = np.random.default_rng(seed).permutation(len(notes))[:size]
    return [notes[i] for i in sorted(chosen)]


def read_note_audio(note: Note, sample_rate: int, duration: float | None) -> torch.Tensor:
    """One note's audio from its wav or TFRecord payload; raises AudioReadError."""
    if note.offset < 0:
        return load_audio(note.path, sample_rate, duration)
    where = f"{note.path}@{note.offset}"
    try:
        example = tfrecord_io.parse_example(tfrecord_io.read_payload(note.path, note.offset, note.length))
        samples = example["audio"]
    except Exception as error:  # corrupt payload: reported like an unreadable wav
        raise AudioReadError(where, str(error) or type(error).__name__) from None
    rate = int(example["sample_rate"][0]) if len(example.get("sample_rate", [])) else NSYNTH_RATE_HZ
    return convert(samples, rate, sample_rate, duration, path=where)


class NSynthDataset(Dataset):
    """NSynth notes as dicts of audio [samples] float32 in [-1, 1] plus labels.

    root: a split folder (examples.json + audio/), a parent of nsynth-{train,valid,test}/, a
    folder of *.tfrecord files (or one file), or a TFDS-prepared nsynth folder (any level from
    the data_dir down to nsynth/full/<version>). split: train | valid (or val) | test | None
    (every split found; a single unnamed folder serves any split). families/sources: names or
    ids; pitch_range: inclusive (low, high), e.g. GANSynth's (24, 84); velocities: a list;
    subset: a seeded, deterministic choice of that many notes. format: auto | json |
    tfrecord | tfds.

    Items: audio, pitch, velocity, instrument, instrument_str, family, family_str, source,
    source_str, qualities (int64 [10]), note_str. In a TFDS folder `instrument` is TFDS's
    class index and instrument_str its label name.
    """

    def __init__(self, root, split=None, sample_rate: int = 16000, duration: float = 4.0, families=None,
                 sources=None, pitch_range=None, velocities=None, subset: int | None = None, seed: int = 0,
                 format: str = "auto"):
        self.root, self.sample_rate, self.duration = Path(root), int(sample_rate), float(duration)
        notes, self.format, skips = build_index(root, split, format)
        if not notes:
            raise ConfigError(f"{root}: no readable NSynth notes found")
        self.skipped = dict(skips.counts)
        self.notes = choose_subset(filter_notes(notes, families, sources, pitch_range, velocities), subset, seed)
        if not self.notes:
            raise ConfigError(f"{root}: no NSynth notes match the filters")
        self.failed: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.notes)

    def read_audio(self, note: Note) -> torch.Tensor:
        return read_note_audio(note, self.sample_rate, self.duration)

    def __getitem__(self, index: int) -> dict:
        found = first_readable(self.notes, index, self.read_audio, lambda note: note.note_str, self.failed, "note")
        if found is None:
            raise ConfigError(f"{self.root}: none of the {len(self.notes)} NSynth notes could be read")
        return self._item(*found)

    @staticmethod
    def _item(note: Note, audio: torch.Tensor) -> dict:
        return {"audio": audio, "pitch": note.pitch, "velocity": note.velocity, "instrument": note.instrument,
                "instrument_str": note.instrument_str, "family": note.family, "family_str": note.family_str,
                "source": note.source, "source_str": note.source_str,
                "qualities": torch.tensor(note.qualities, dtype=torch.int64), "note_str": note.note_str}


def collate(items: list[dict]) -> dict:
    """Stack audio [batch, samples]; ints -> int64 [batch]; qualities [batch, 10]; strings -> lists."""
    out = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if isinstance(values[0], torch.Tensor):
            out[key] = torch.stack(values)
        elif isinstance(values[0], (int, np.integer)):
            out[key] = torch.tensor(values, dtype=torch.int64)
        else:
            out[key] = values
    return out
