"""Where a split's files live (OUT/NAME/SPLIT/...), item ids, shard ranges, and the chain as
metadata.json records it: what create-data writes and the dataset readers read."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

SPLITS = ("train", "val", "test")
PARAMS_CSV = "params_dataset.csv"
NORMALIZED_CSV = "params_normalized.csv"
METADATA = "metadata.json"
WAV_DIR = "wav_files"
PROGRESS_DIR = ".progress"  # resume state; removed once the dataset is finished


def id_width(size: int) -> int:
    return max(6, len(str(max(size - 1, 0))))


def item_id(index: int, width: int = 6) -> str:
    return f"{index:0{width}d}"


def wav_name(item: str) -> str:
    return f"{item}.wav"


def chain_json(chain) -> dict:
    """The raw chain spec as plain JSON types (what metadata.json stores)."""
    return json.loads(json.dumps(chain.spec.raw, default=str))


def shard_range(size: int, shard: int, shards: int) -> tuple[int, int]:
    """Contiguous index range [start, end) of shard `shard` of `shards`."""
    return size * shard // shards, size * (shard + 1) // shards


@dataclass(frozen=True)
class SplitLayout:
    root: Path  # OUT/NAME/SPLIT

    @property
    def wav_dir(self) -> Path:
        return self.root / WAV_DIR

    @property
    def params_csv(self) -> Path:
        return self.root / PARAMS_CSV

    @property
    def normalized_csv(self) -> Path:
        return self.root / NORMALIZED_CSV

    @property
    def metadata(self) -> Path:
        return self.root / METADATA

    @property
    def progress(self) -> Path:
        return self.root / PROGRESS_DIR

    @property
    def run_file(self) -> Path:
        return self.progress / "run.json"

    def wav(self, item: str) -> Path:
        return self.wav_dir / wav_name(item)

    def shard_stem(self, shard: int, shards: int) -> Path:
        return self.progress / f"shard-{shard}-of-{shards}"

    def is_finished(self) -> bool:
        return self.metadata.is_file()
