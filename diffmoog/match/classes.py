"""Class-conditional generation: a table of labelled real notes' conditions for a flow checkpoint.

    diffmoog-generate --build-classes NSYNTH_SPLIT [--per-class 64] [--checkpoint FLOW] [--classes-out PATH]
    diffmoog-generate --family brass | --kind snare [--guidance 2] ...

Why conditions of labelled audio rather than a class-conditional model: the flow (train/flow.py)
is a posterior over presets given a sound's embedding and pitch, so "a brass preset" is the
posterior given a brass note. Conditioning on the embedding of real labelled notes needs no
retraining, its labels come from real data (NSynth families, GM drum names), and the condition
is the very input the posterior was trained on (the encoder's embedding of a 4 s sound plus
the tracker's pitch), not a new one it would have to learn. Classifier-free guidance
(v_null + w (v_cond - v_null), w = --guidance) then pushes the sample toward what that note
implies beyond the prior.

The table (`<checkpoint>/classes.safetensors` by default) holds, for every label, up to
--per-class notes chosen by a seeded permutation: `<group>/<label>/condition` `[n, size]`
(`model.condition(audio, pitch)`) and `<group>/<label>/pitch_hz` `[n]` (the tracker's pitch, 0
for a note with no clear pitch, e.g. most drums). Groups: `family` (NSynth's
`instrument_family_str`, `drum` for drum kits) and `kind` (drum notes only, from the GM drum
name an examples.json entry gives as `drum`, mapped by `DRUM_KINDS`). The metadata (JSON
strings) names the labels, the notes used, the source split and the checkpoint's fingerprint,
so a table built for another checkpoint is refused rather than silently mis-read.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from diffmoog import rng
from diffmoog.errors import ConfigError, did_you_mean
from diffmoog.match.common import writing

TABLE_NAME = "classes.safetensors"
GROUPS = ("family", "kind")
FORMAT = "diffmoog-classes-1"
BATCH = 16  # notes embedded at once: 16 x 4 s keeps memory small and the progress bar moving
SILENCE_PEAK = 1e-4  # -80 dBFS, as for match targets: a silent note carries no class
# GM percussion names (General MIDI key map, as SoundFont drum kits name them) -> a drum kind.
# Only clear-cut drum-kit pieces: hand percussion (congas, bongos, cowbell, shakers) has no kind.
DRUM_KINDS = {
    "kick": ("Acoustic Bass Drum", "Bass Drum 1", "Bass Drum 2", "Kick"),
    "snare": ("Acoustic Snare", "Electric Snare", "Side Stick", "Snare"),
    "hat": ("Closed Hi-Hat", "Pedal Hi-Hat", "Open Hi-Hat", "Closed Hi Hat", "Pedal Hi Hat", "Open Hi Hat"),
    "tom": ("Low Floor Tom", "High Floor Tom", "Low Tom", "Low-Mid Tom", "Hi-Mid Tom", "High Tom"),
    "cymbal": ("Crash Cymbal 1", "Crash Cymbal 2", "Ride Cymbal 1", "Ride Cymbal 2", "Ride Bell",
               "Chinese Cymbal", "Splash Cymbal"),
    "clap": ("Hand Clap", "Clap"),
}
_KIND_OF = {name.lower(): kind for kind, names in DRUM_KINDS.items() for name in names}


def drum_kind(name) -> str | None:
    """The kind of a GM drum name ('Acoustic Snare' -> 'snare'), or None (not a kit piece)."""
    return _KIND_OF.get(str(name).strip().lower()) if name else None


def default_table(checkpoint: str) -> Path:
    return Path(checkpoint) / TABLE_NAME


def fingerprint(checkpoint: str) -> str:
    """A short hash of the checkpoint's weights: the conditions are that encoder's embeddings."""
    digest = hashlib.sha256()
    with open(Path(checkpoint) / "model.safetensors", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def _drum_names(notes) -> dict[str, str]:
    """note_str -> GM drum name, from the `drum` field of each json split's examples.json (the
    NSynth index keeps only the official fields)."""
    names: dict[str, str] = {}
    for folder in sorted({Path(note.path).parent.parent for note in notes if note.offset < 0}):
        meta_path = folder / "examples.json"
        if not meta_path.is_file():
            continue
        try:
            examples = json.loads(meta_path.read_text())
        except (OSError, ValueError) as error:
            raise ConfigError(f"{meta_path}: cannot read: {error}") from None
        for key, meta in examples.items():
            if isinstance(meta, dict) and meta.get("drum"):
                names[str(meta.get("note_str", key))] = str(meta["drum"])
    return names


def labelled_notes(notes) -> dict[tuple[str, str], list]:
    """(group, label) -> notes, in index order."""
    drums = _drum_names(notes)
    out: dict[tuple[str, str], list] = {}
    for note in notes:
        if note.family_str:
            out.setdefault(("family", note.family_str), []).append(note)
        kind = drum_kind(drums.get(note.note_str))
        if kind is not None:
            out.setdefault(("kind", kind), []).append(note)
    return dict(sorted(out.items()))


def build_table(model, chain, split: str, per_class: int, seed: int, checkpoint: str, out: Path,
                progress: bool = True) -> dict:
    """Embed up to `per_class` seeded notes per label of the NSynth `split` and write the table
    to `out` (beside, then renamed: never half a file). Returns the metadata written."""
    from diffmoog.data.nsynth import NSynthDataset

    duration = float(chain.spec.duration)
    dataset = NSynthDataset(split, sample_rate=chain.sample_rate, duration=duration)
    groups = labelled_notes(dataset.notes)
    total = sum(min(per_class, len(v)) for v in groups.values())
    tensors, chosen = {}, {}
    with torch.no_grad(), tqdm(total=total, desc="embedding labelled notes", unit="note", file=sys.stderr,
                               disable=not progress) as bar:
        for (group, label), notes in groups.items():
            # A seeded permutation per label, so a label's notes do not depend on the others'.
            order = np.random.default_rng(rng.stable_seed("classes", seed, group, label)).permutation(len(notes))
            kept_notes, audios = [], []
            for index in order:
                if len(kept_notes) == per_class:
                    break
                audio = dataset.read_audio(notes[index])
                if float(audio.abs().max()) < SILENCE_PEAK:
                    continue
                kept_notes.append(notes[index])
                audios.append(audio)
            if not kept_notes:
                bar.update(min(per_class, len(notes)))
                continue
            conditions, pitches = [], []
            for start in range(0, len(audios), BATCH):
                audio = torch.stack(audios[start:start + BATCH])
                pitch = model.estimate_pitch(audio).float()  # the tracker, as matching and training use
                conditions.append(model.condition(audio, pitch).float())
                pitches.append(pitch)
                bar.update(len(audio))
            bar.update(min(per_class, len(notes)) - len(kept_notes))  # silent ones skipped
            tensors[f"{group}/{label}/condition"] = torch.cat(conditions).contiguous()
            tensors[f"{group}/{label}/pitch_hz"] = torch.cat(pitches).contiguous()
            chosen[f"{group}/{label}"] = [note.note_str for note in kept_notes]
    if not tensors:
        raise ConfigError(f"--build-classes {split}: no audible labelled notes (instrument_family_str) found")
    labels = {group: sorted(key.split("/", 1)[1] for key in chosen if key.startswith(group + "/"))
              for group in GROUPS}
    metadata = {"format": FORMAT, "checkpoint": str(Path(checkpoint).resolve()),
                "fingerprint": fingerprint(checkpoint), "source": str(Path(split).resolve()),
                "per_class": str(per_class), "seed": str(seed),
                "labels": json.dumps(labels), "notes": json.dumps(chosen)}
    with writing(out.parent):
        out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with writing(out):
        try:
            save_file(tensors, str(tmp), metadata=metadata)
            tmp.replace(out)
        finally:
            tmp.unlink(missing_ok=True)
    return metadata


class ClassTable:
    """A built table, read back: `rows(group, label)` -> (conditions `[n, size]`, pitches `[n]`,
    note names)."""

    def __init__(self, path: Path, checkpoint: str, condition_size: int, flag: str):
        self.path = Path(path)
        build = f"diffmoog-generate --build-classes NSYNTH_SPLIT --checkpoint {checkpoint}"
        if not self.path.is_file():
            raise ConfigError(f"{flag}: no class table at {self.path}; build one with {build}")
        try:
            with safe_open(str(self.path), "pt") as handle:
                self.metadata = dict(handle.metadata() or {})
            self.tensors = load_file(str(self.path))
            self.labels = {g: list(v) for g, v in json.loads(self.metadata["labels"]).items()}
            self.notes = json.loads(self.metadata["notes"])
        except (SafetensorError, OSError, KeyError, ValueError) as error:
            raise ConfigError(f"{self.path}: not a class table ({error}); rebuild it with {build}") from None
        if self.metadata.get("format") != FORMAT:
            raise ConfigError(f"{self.path}: not a class table (format {self.metadata.get('format')!r}); "
                              f"rebuild it with {build}")
        if self.metadata.get("fingerprint") != fingerprint(checkpoint):
            raise ConfigError(f"{self.path}: built for another checkpoint ({self.metadata.get('checkpoint')}); "
                              f"rebuild it with {build}")
        sizes = {t.shape[-1] for k, t in self.tensors.items() if k.endswith("/condition")}
        if sizes != {condition_size}:
            raise ConfigError(f"{self.path}: conditions of size {sorted(sizes)}, the checkpoint's are "
                              f"{condition_size}; rebuild it with {build}")

    def check(self, group: str, label: str) -> None:
        known = self.labels.get(group, [])
        if label in known:
            return
        other = next((g for g in GROUPS if g != group and label in self.labels.get(g, [])), None)
        hint = f"; '{label}' is a --{other}" if other else did_you_mean(label, known)
        listing = "; ".join(f"{g}: {', '.join(self.labels.get(g, [])) or 'none'}" for g in GROUPS)
        raise ConfigError(f"--{group} '{label}' is not in the class table {self.path}{hint} ({listing})")

    def rows(self, group: str, label: str):
        self.check(group, label)
        key = f"{group}/{label}"
        return self.tensors[f"{key}/condition"], self.tensors[f"{key}/pitch_hz"], self.notes[key]

    def pick(self, group: str, label: str, seed: int, index: int) -> tuple[torch.Tensor, float, str]:
        """Preset `index`'s condition `[1, size]`, pitch (0: none) and note: a seeded choice that
        depends only on (seed, label, index)."""
        conditions, pitches, names = self.rows(group, label)
        row = rng.stable_seed("class-pick", seed, group, label, index) % len(names)
        return conditions[row:row + 1].clone(), float(pitches[row]), names[row]
