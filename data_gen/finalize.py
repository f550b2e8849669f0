"""Once every shard is complete: check the wavs, join the CSV parts, write metadata.json.

metadata.json is written last, so its presence means "finished"; the progress folder is
removed after it. Any shard's process may finalize; a lock makes sure only one does.
"""
from __future__ import annotations

import os
import re
import shutil

import diffmoog
from diffmoog.data import tables
from diffmoog.data.fileio import DiskError, os_errors
from diffmoog.data.items import MAX_RETRIES, SILENCE_PEAK, disk_samples
from diffmoog.data.layout import chain_json, id_width, item_id, wav_name
from diffmoog.data_gen import wavfile
from diffmoog.data_gen.fileio import temp_name, write_json_atomic
from diffmoog.data_gen.manifest import FileLock, ShardFiles
from diffmoog.data_gen.prepare import utc_now

_SHARD = re.compile(r"shard-(\d+)-of-(\d+)\.json$")


def complete_shard_set(layout, prefer: int) -> list | None:
    """Progress of shards 0..N-1 of one N, all complete (N = `prefer` tried first), or None."""
    counts = sorted({int(m.group(2)) for p in layout.progress.glob("shard-*-of-*.json")
                     if (m := _SHARD.search(p.name))}, key=lambda n: n != prefer)
    for shards in counts:
        files = [ShardFiles(layout.shard_stem(k, shards)) for k in range(shards)]
        progress = [f.load() for f in files]
        if all(p is not None and p.complete for p in progress):
            return list(zip(files, progress))
    return None


def repair_wavs(opts, renderer) -> int:
    """Re-render any wav that is missing or has the wrong length (e.g. lost in a power cut)."""
    width, expected = id_width(opts.size), wavfile.file_size(opts.n_samples, opts.float32)
    with os_errors(opts.layout.wav_dir), os.scandir(opts.layout.wav_dir) as entries:  # one listing, no Paths
        good = {entry.name for entry in entries
                if entry.name.endswith(".wav") and entry.stat(follow_symlinks=False).st_size == expected}
    missing = [index for index in range(opts.size) if wav_name(item_id(index, width)) not in good]
    for index in missing:
        row = disk_samples(renderer.render(index, 1).audio.numpy(), opts.float32)[0]
        wavfile.write(opts.layout.wav(item_id(index, width)), row, opts.sample_rate)
    return len(missing)


def join_parts(path, header: str, parts) -> None:
    tmp = temp_name(path)
    with os_errors(tmp):
        with open(tmp, "wb") as out:
            out.write(header.encode())
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        tmp.replace(path)


def finalize(opts, run: dict, renderer) -> dict | None:
    """Finish the dataset if all shards are done; return its metadata (None if not yet)."""
    layout = opts.layout
    lock = FileLock(layout.progress / "finalize.lock")
    try:
        if not lock.acquire():
            return None  # another shard's process is finalizing right now
    except DiskError:
        if layout.is_finished():
            return None  # another shard's process finished and removed the progress folder
        raise
    try:
        if layout.is_finished():
            return None
        shard_set = complete_shard_set(layout, opts.shard[1])
        if shard_set is None:
            return None
        repaired = repair_wavs(opts, renderer)
        chain = opts.chain
        join_parts(layout.params_csv, tables.header_line(tables.params_header(chain)),
                   [f.params for f, _ in shard_set])
        join_parts(layout.normalized_csv, tables.header_line(tables.normalized_header(chain)),
                   [f.normalized for f, _ in shard_set])
        metadata = build_metadata(opts, run, [p for _, p in shard_set], repaired)
        write_json_atomic(layout.metadata, metadata)
    finally:
        lock.release()
    shutil.rmtree(layout.progress, ignore_errors=True)  # a concurrent shard may be removing it too
    return metadata


def build_metadata(opts, run, progress, repaired: int) -> dict:
    chain = opts.chain
    return {
        "chain_name": chain.name, "chain_source": chain.spec.source, "chain": chain_json(chain),
        "version": diffmoog.__version__, "seed": opts.seed, "split": opts.split,
        "sample_rate": opts.sample_rate, "duration": opts.duration, "note_off": opts.note_off,
        "n_samples": opts.n_samples, "format": opts.format,
        "render": "compiled" if opts.compile else "eager", "count": opts.size,
        "id_width": id_width(opts.size), "shards": len(progress),
        "retried_items": sum(p.retried_items for p in progress),
        "clipped_items": sum(p.clipped_items for p in progress), "repaired_wavs": repaired,
        "silence_policy": {"peak_below": SILENCE_PEAK, "max_retries": MAX_RETRIES,
                           "action": "redraw the item from retry stream r (seed, split, 'retry', r)"},
        "params_columns": tables.params_header(chain), "normalized_columns": tables.normalized_header(chain),
        "elapsed_s": round(sum(p.elapsed_s for p in progress), 3),
        "created": run.get("created"), "finished": utc_now(), "args": opts.args,
    }
