"""create(opts): prepare the folder, run this shard, finalize when all shards are done."""
from __future__ import annotations

import time
from dataclasses import dataclass

from diffmoog.data_gen import wavfile
from diffmoog.data_gen.finalize import complete_shard_set, finalize
from diffmoog.data_gen.options import GenOptions
from diffmoog.data_gen.prepare import prepare
from diffmoog.data_gen.shard import ShardWriter, make_renderer


@dataclass
class Result:
    root: str
    generated: int  # sounds rendered by this call
    seconds: float
    finished: bool
    metadata: dict | None
    bytes_on_disk: int

    def summary(self, opts: GenOptions) -> str:
        rate = self.generated / self.seconds if self.seconds > 0 else 0.0
        done = (f"dataset finished: {opts.size} sounds in {self.root}" if self.finished else
                f"shard {opts.shard[0]}/{opts.shard[1]} done in {self.root}; the dataset is finished "
                f"by whichever shard completes last (rerun any shard's command once all are in place)")
        return (f"create-data: {self.generated} sounds in {self.seconds:.1f} s ({rate:.0f} sounds/s), "
                f"{self.bytes_on_disk / 1e6:.1f} MB on disk; {done}")


def create(opts: GenOptions) -> Result:
    began = time.perf_counter()
    run = prepare(opts)
    renderer = make_renderer(opts)
    generated = 0
    if complete_shard_set(opts.layout, opts.shard[1]) is None:
        _, generated = ShardWriter(opts, renderer).run()
    metadata = finalize(opts, run, renderer)
    finished = opts.layout.is_finished()
    return Result(str(opts.layout.root), generated, time.perf_counter() - began, finished, metadata,
                  _bytes_on_disk(opts) if finished else generated * wavfile.file_size(opts.n_samples, opts.float32))


def _bytes_on_disk(opts) -> int:
    layout = opts.layout
    csvs = sum(p.stat().st_size for p in (layout.params_csv, layout.normalized_csv, layout.metadata))
    return csvs + opts.size * wavfile.file_size(opts.n_samples, opts.float32)
