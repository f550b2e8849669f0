"""The note pitch of every training item, as the matcher will measure it, for the flow's condition.

The flow is conditioned on the pitch tracker's estimate (not on a label), so training sees the
same input matching gives it, octave slips included. Tracking costs about 25 ms per 4 s sound,
too slow to repeat every epoch: each split folder's pitches are computed once, in chunks, into
`<run>/pitch/<name>-<split>-<hash>.safetensors`, which a killed run picks up where it stopped.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from diffmoog.analysis.pitch import note_pitch

CHUNK = 256  # items per saved chunk (the resume granularity)


def track(audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """`[batch]` f0 in Hz, 0 where the sound has no clear pitch."""
    note = note_pitch(audio.float(), sample_rate)
    return torch.where(note.voiced, note.f0_hz, torch.zeros_like(note.f0_hz)).float()


def cache_file(cache_dir: Path, folder: Path) -> Path:
    """Where one split folder's pitches are kept: named after the folder, with a hash of its full
    path so that two `train` folders never share a file."""
    resolved = str(Path(folder).resolve())
    digest = hashlib.sha1(resolved.encode("utf-8")).hexdigest()[:10]
    return Path(cache_dir) / f"{Path(resolved).parent.name}-{Path(resolved).name}-{digest}.safetensors"


def split_pitches(split, cache_dir: Path, sample_rate: int, progress: bool = True) -> torch.Tensor:
    """`[len(split)]` pitches of a SyntheticSplit's items, in its order. Each split folder it reads
    (a listed folder may repeat, to weight it) is tracked once, into its own file in `cache_dir`."""
    known: dict[str, torch.Tensor] = {}
    out = []
    for folder, part in zip(split.dirs, split.parts):
        key = str(Path(folder).resolve())
        if key not in known:
            known[key] = folder_pitches(part, folder, cache_file(cache_dir, folder), sample_rate, progress)
        out.append(known[key])
    return torch.cat(out)


def folder_pitches(dataset, folder: Path, cache_path: Path, sample_rate: int, progress: bool) -> torch.Tensor:
    """`[len(dataset)]` pitches of one split folder's items, read from / written to `cache_path`."""
    n = len(dataset)
    key = json.dumps({"dataset": str(Path(folder).resolve()), "items": n, "sample_rate": sample_rate})
    pitches, done = torch.zeros(n), 0
    if cache_path.is_file():
        try:
            with safe_open(str(cache_path), "pt") as handle:
                same = (handle.metadata() or {}).get("key") == key
            stored = load_file(str(cache_path))
            if same:
                done = min(n, int(stored["done"]))
                pitches[:done] = stored["f0_hz"][:done]
        except Exception:  # a broken cache is only lost work: recompute it
            done = 0
    if done >= n:
        return pitches
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    with tqdm(total=n, initial=done, desc=f"pitch of {Path(folder).name} items", disable=not progress,
              leave=False) as bar:
        while done < n:
            stop = min(n, done + CHUNK)
            for start in range(done, stop, 64):
                items = [dataset[i]["audio"] for i in range(start, min(stop, start + 64))]
                pitches[start:start + len(items)] = track(torch.stack(items), sample_rate)
                bar.update(len(items))
            done = stop
            tmp = cache_path.with_name(cache_path.name + ".tmp")
            save_file({"f0_hz": pitches.contiguous(), "done": torch.tensor(done)}, str(tmp), metadata={"key": key})
            tmp.replace(cache_path)
    return pitches
