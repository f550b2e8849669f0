"""Generate one shard: render batches, write wavs on worker threads, append CSV rows, record progress.

The main thread only renders: while it renders batch k+1, worker threads write batch k's
wavs and a committer thread then appends its CSV rows and saves the manifest (numpy, file
I/O and the synth's kernels release the GIL). At most two batches are alive at once, so
memory does not grow with --size. Per sound: a row conversion and four syscalls (open,
write, close, rename); CSV text and the manifest are once per batch.
"""
from __future__ import annotations

import contextlib
import inspect
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tqdm import tqdm

from diffmoog.data import tables
from diffmoog.data.fileio import os_errors
from diffmoog.data.items import ItemRenderer, pcm16_into
from diffmoog.data.layout import id_width, item_id, shard_range, wav_name
from diffmoog.data_gen import wavfile
from diffmoog.data_gen.manifest import FileLock, ShardFiles, ShardProgress
from diffmoog.errors import DiffmoogError


def make_renderer(opts) -> ItemRenderer:
    if opts.compile and "compiled" not in inspect.signature(opts.chain.render).parameters:
        raise DiffmoogError("--compile needs Chain.render(compiled=True), which this diffmoog version lacks")
    return ItemRenderer(opts.chain, opts.seed, opts.split, opts.sample_rate, opts.duration,
                        opts.note_off, opts.device, compiled=opts.compile, pad_to=opts.batch_size)


def write_rows(folder: wavfile.WavFolder, names, rows, peaks, float32: bool) -> None:
    """Convert a chunk of rows one at a time into one reused file image and write each."""
    data, samples = folder.image()
    scratch = None if float32 else np.empty(samples.shape, np.float32)
    for name, row, peak in zip(names, rows, peaks):
        if float32:
            samples[:] = row
        else:
            pcm16_into(row, samples, scratch, peak)
        folder.write(name, data)


def _remove_stale_temps(opts, start: int, end: int) -> None:
    """Temp files of a killed run in this shard's id range (other shards may be writing theirs)."""
    width = id_width(opts.size)
    with os_errors(opts.layout.wav_dir):
        for path in opts.layout.wav_dir.glob(".*.wav.part"):
            index = path.name[1:].split(".")[0]
            if index.isdigit() and len(index) == width and start <= int(index) < end:
                path.unlink(missing_ok=True)


class ShardWriter:
    def __init__(self, opts, renderer: ItemRenderer | None = None):
        self.opts = opts
        self.layout = opts.layout
        self.shard, self.shards = opts.shard
        self.files = ShardFiles(self.layout.shard_stem(self.shard, self.shards))
        self.renderer = renderer or make_renderer(opts)
        self.width = id_width(opts.size)

    def run(self) -> tuple[ShardProgress, int]:
        """Finish this shard; return its progress and how many sounds this call generated."""
        lock = FileLock(self.files.lock_path).require(f"shard {self.shard}/{self.shards} of {self.layout.root}")
        try:
            return self._run()
        finally:
            lock.release()

    def _run(self):
        start, end = shard_range(self.opts.size, self.shard, self.shards)
        progress = self.files.load() or ShardProgress(self.shard, self.shards, start, end)
        progress = self.files.resume_point(progress)
        _remove_stale_temps(self.opts, start, end)
        first = start + progress.done
        bar = tqdm(total=end - start, initial=progress.done, unit="snd", smoothing=0.1, mininterval=0.5,
                   desc=f"{self.opts.name}/{self.opts.split}" + (f" {self.shard}/{self.shards}" if self.shards > 1 else ""),
                   disable=not self.opts.progress_bar, dynamic_ncols=True)
        folder = wavfile.WavFolder(self.layout.wav_dir, self.opts.n_samples, self.opts.sample_rate, self.opts.float32)
        with open_parts(self.files) as (params_f, normal_f), folder, ThreadPoolExecutor(self.opts.workers) as pool, \
                ThreadPoolExecutor(1) as committer:
            pending, self._clock = None, time.perf_counter()
            for index in range(first, end, self.opts.batch_size):
                job = self._submit(pool, folder, index, min(self.opts.batch_size, end - index))
                if pending:
                    pending.result()  # batch k-1 committed (or its DiskError raised) before k may be
                pending = committer.submit(self._commit, job, progress, params_f, normal_f, bar)
            if pending:
                pending.result()
        bar.close()
        return progress, end - first

    def _submit(self, pool, folder, index: int, count: int):
        batch = self.renderer.render(index, count)
        ids = [item_id(i, self.width) for i in range(index, index + count)]
        names, rows, peaks = [wav_name(i) for i in ids], batch.audio.numpy(), batch.peak.tolist()
        step = -(-count // self.opts.workers)
        futures = [pool.submit(write_rows, folder, names[j:j + step], rows[j:j + step], peaks[j:j + step],
                               self.opts.float32)
                   for j in range(0, count, step)]
        return futures, batch, ids

    def _commit(self, job, progress, params_f, normal_f, bar):
        """Wavs, then CSV rows, then the manifest: a kill anywhere leaves a resumable state."""
        futures, batch, ids = job
        params_text, normal_text = tables.rows(self.opts.chain, batch.params, batch.retries.numpy(), ids)
        for future in futures:
            future.result()  # re-raises a DiskError naming the wav
        with os_errors(self.files.params):
            params_f.write(params_text.encode())
            params_f.flush()
            normal_f.write(normal_text.encode())
            normal_f.flush()
        progress.done += len(batch)
        progress.params_bytes, progress.normalized_bytes = params_f.tell(), normal_f.tell()
        progress.retried_items += int((batch.retries > 0).sum())
        progress.clipped_items += int((batch.peak > 1.0).sum()) if not self.opts.float32 else 0
        now = time.perf_counter()
        progress.elapsed_s += now - self._clock
        self._clock = now
        self.files.save(progress)
        bar.update(len(batch))


@contextlib.contextmanager
def open_parts(files: ShardFiles):
    """The shard's two CSV part files, opened for appending."""
    with os_errors(files.params):
        params = open(files.params, "ab")
    with params:
        with os_errors(files.normalized):
            normalized = open(files.normalized, "ab")
        with normalized:
            yield params, normalized
