"""Reading parameter-labelled sounds: from a create-data folder, or rendered on the fly.

Both give the same items: audio float32 [samples], params float32 [chain.vector_size] (the
normalised flat vector), physical float32 [n_free_params] (categoricals as the choice index),
seed int64 (the item's noise key, so `chain.render(chain.from_vector(params, seed))` re-renders
it exactly), id "000042". OnTheFlyDataset item i equals what create-data writes for index i.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from diffmoog.chain import Chain
from diffmoog.data import layout as files
from diffmoog.data.fileio import read_json
from diffmoog.data.items import ItemRenderer, from_pcm16, noise_keys, to_pcm16
from diffmoog.data.layout import chain_json, id_width, item_id
from diffmoog.data.tables import vector_columns
from diffmoog.errors import DiffmoogError
from diffmoog.spec import without_pitch_marks


def physical_matrix(chain: Chain, params: dict) -> torch.Tensor:
    """[batch, n_free_params] float32 physical values (categoricals as choice index)."""
    physical = chain.to_physical(params)
    return torch.stack([physical[k].to(torch.float32) for k in chain.param_keys], dim=-1)


def first_difference(a, b, path: str = "") -> str | None:
    """The dotted path of the first place two JSON-like values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if not path and key in ("name", "description"):
                continue  # cosmetic: a renamed copy of the same chain still matches
            found = first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
            if found:
                return found
        return None
    return None if a == b else (path or "<chain>")


def collate_batch(items: list[dict]) -> dict:
    """Stack dataset items into batch tensors (ids stay a list)."""
    return {"audio": torch.stack([it["audio"] for it in items]),
            "params": torch.stack([it["params"] for it in items]),
            "physical": torch.stack([it["physical"] for it in items]),
            "seed": torch.stack([it["seed"] for it in items]),
            "id": [it["id"] for it in items]}


class ParamsDataset(Dataset):
    """A finished create-data split folder (OUT/NAME/SPLIT)."""

    def __init__(self, split_dir, chain: Chain | None = None):
        self.root = Path(split_dir)
        meta_path = self.root / files.METADATA
        if not meta_path.is_file():
            why = ("is still being generated (or was interrupted): rerun its create-data command"
                   if (self.root / files.PROGRESS_DIR).is_dir() else "is not a create-data dataset (no metadata.json)")
            raise DiffmoogError(f"{self.root} {why}")
        self.metadata = read_json(meta_path)
        if "chain" not in self.metadata:
            raise DiffmoogError(f"{meta_path}: no 'chain' entry; not a synthetic create-data dataset")
        own = Chain.from_dict(self.metadata["chain"], source=str(meta_path))
        if chain is not None:
            # Pitch marks change nothing in the data: a dataset made before a chain marked its
            # oscillators `pitch: note` (or after) still matches it.
            where = first_difference(without_pitch_marks(chain_json(chain)),
                                     without_pitch_marks(self.metadata["chain"]))
            if where:
                raise DiffmoogError(f"{self.root}: the given chain '{chain.name}' differs from the dataset's "
                                    f"'{own.name}' at '{where}'")
        self.chain = chain or own
        self.sample_rate = int(self.metadata["sample_rate"])
        self.duration = float(self.metadata["duration"])
        self.note_off = float(self.metadata["note_off"])
        self.ids, self.params = self._read_normalized()
        self.physical, retries = self._read_physical()
        self.seeds = noise_keys(self.chain, int(self.metadata["seed"]), self.metadata["split"],
                                [int(i) for i in self.ids], retries)

    @property
    def render_kwargs(self) -> dict:
        """sample_rate/duration/note_off to render predictions comparable to this data."""
        return {"sample_rate": self.sample_rate, "duration": self.duration, "note_off": self.note_off}

    def _rows(self, name: str) -> tuple[list[str], list[list[str]]]:
        path = self.root / name
        try:
            with open(path, newline="") as f:
                reader = csv.reader(f)
                header = next(reader)
                return header, list(reader)
        except (OSError, StopIteration) as err:
            raise DiffmoogError(f"{path}: cannot read ({getattr(err, 'strerror', None) or 'empty file'})") from None

    def _read_normalized(self) -> tuple[list[str], torch.Tensor]:
        header, rows = self._rows(files.NORMALIZED_CSV)
        want = ["id", *vector_columns(self.chain)]
        if header != want:
            raise DiffmoogError(f"{self.root / files.NORMALIZED_CSV}: columns {header[1:]} do not match the chain's {want[1:]}")
        ids = [r[0] for r in rows]
        values = np.array([r[1:] for r in rows], dtype=np.float32).reshape(len(rows), len(want) - 1)
        return ids, torch.from_numpy(values)

    def _read_physical(self) -> torch.Tensor:
        header, rows = self._rows(files.PARAMS_CSV)
        where = {name: j for j, name in enumerate(header)}
        out = np.zeros((len(rows), len(self.chain.free_params)), dtype=np.float32)
        for col, fp in enumerate(self.chain.free_params):
            if fp.key not in where:
                raise DiffmoogError(f"{self.root / files.PARAMS_CSV}: missing column '{fp.key}'")
            raw = [r[where[fp.key]] for r in rows]
            out[:, col] = [fp.param.choice_index(v) for v in raw] if fp.param.is_categorical else np.array(raw, np.float64)
        if [r[0] for r in rows] != self.ids:
            raise DiffmoogError(f"{self.root}: the two params CSVs list different ids")
        retries = [int(r[where["retries"]]) for r in rows] if "retries" in where else [0] * len(rows)
        return torch.from_numpy(out), retries

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict:
        path = self.root / files.WAV_DIR / f"{self.ids[index]}.wav"
        try:
            audio, _ = sf.read(path, dtype="float32")
        except (OSError, RuntimeError) as err:
            raise DiffmoogError(f"{path}: cannot read ({err})") from None
        return {"audio": torch.from_numpy(audio), "params": self.params[index],
                "physical": self.physical[index], "seed": self.seeds[index], "id": self.ids[index]}


class OnTheFlyDataset(IterableDataset):
    """Render batches straight from the chain, no disk (torchsynth-style); use batch_size=None
    in a DataLoader. Batch b holds items b*batch_size...; batches are split round-robin over
    DDP ranks (`shard=(rank, world)`) and then over DataLoader workers.

    pcm16=True quantises audio exactly as the 16-bit wav files do, so item i equals what
    ParamsDataset reads from a create-data folder with the same chain, seed and split
    (and `compiled` matching the folder's metadata "render").
    """

    def __init__(self, chain: Chain, size: int, seed: int = 0, split: str = "train", batch_size: int = 64,
                 sample_rate: int | None = None, duration: float | None = None, note_off: float | None = None,
                 shard: tuple[int, int] | None = None, pcm16: bool = True, device: str = "cpu",
                 compiled: bool = False):
        super().__init__()
        self.chain, self.size, self.batch_size, self.pcm16 = chain, int(size), int(batch_size), pcm16
        self.shard = shard or (0, 1)
        if not 0 <= self.shard[0] < self.shard[1]:
            raise DiffmoogError(f"shard must be (rank, world) with 0 <= rank < world, got {self.shard}")
        self.renderer = ItemRenderer(chain, seed, split, sample_rate, duration, note_off, device,
                                     compiled=compiled, pad_to=self.batch_size)
        self.width = id_width(self.size)

    def _my_batches(self) -> range:
        rank, world = self.shard
        n_batches = -(-self.size // self.batch_size)
        return range(rank, n_batches, world)

    def __len__(self) -> int:
        return len(self._my_batches())

    def __iter__(self):
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for b in self._my_batches()[worker::workers]:
            start = b * self.batch_size
            yield self.batch(start, min(self.batch_size, self.size - start))

    def batch(self, start: int, count: int) -> dict:
        rendered = self.renderer.render(start, count)
        audio = rendered.audio
        if self.pcm16:
            audio = torch.from_numpy(from_pcm16(to_pcm16(audio.numpy())))
        return {"audio": audio, "params": self.chain.to_vector(rendered.params),
                "physical": physical_matrix(self.chain, rendered.params), "seed": rendered.params["seed"],
                "id": [item_id(i, self.width) for i in range(start, start + count)]}
