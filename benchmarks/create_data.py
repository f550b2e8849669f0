"""Benchmark create-data: sounds/s and peak RSS per chain, printed as JSON.

Runs the real console script (as a user would) into a temporary folder, once per chain, and
reads the child's peak RSS from os.wait4. `sounds_per_s` is the generation rate (from
metadata.json: rendering + writing, without Python/torch start-up); `wall_sounds_per_s`
includes start-up. Targets (issue 3): >= 1000 sounds/s for REDUCED_SIMPLE_OSC at 4 s/16 kHz,
peak RSS < 2 GB at any size.

--pipeline-only adds a run with the render stubbed out (everything else as in create-data),
reporting CPU ms per sound (all threads) and the kernel's share of it. Most of that kernel
time is creating the wav files; on ext4 without a journal (this machine) it grows with the
number of files deleted nearby in the last ~10 s (ext4 skips recently freed inodes one by
one), so a /tmp shared with running test suites is slow and noisy: compare runs with
--tmp-dir, and leave ~10 s between runs (each one deletes its own files at the end).

    python benchmarks/create_data.py --size 3000
    python benchmarks/create_data.py --size 2000 --chains REDUCED_SIMPLE_OSC --pipeline-only
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from diffmoog.spec import builtin_chains


def create_data_cmd() -> list[str]:
    script = Path(sys.executable).parent / "create-data"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "diffmoog.data_gen.cli"]


def bench(chain: str, args, out: Path) -> dict:
    if chain.upper() not in builtin_chains():
        return {"chain": chain, "skipped": f"chain {chain} is not in this checkout (built-in: {sorted(builtin_chains())})"}
    cmd = create_data_cmd() + ["-c", chain, "--size", str(args.size), "-o", str(out), "-sd", str(args.duration),
                               "-sr", str(args.sample_rate), "-bs", str(args.batch_size), "--no-progress"]
    cmd += (["--workers", str(args.workers)] if args.workers else []) + (["--compile"] if args.compile else [])
    logs = out / f"{chain.lower()}.log"
    began = time.perf_counter()
    with open(logs, "w+") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
        _, _, usage = os.wait4(proc.pid, 0)  # the child's own peak RSS (ru_maxrss, KiB on Linux)
        proc.returncode = 0  # reaped by wait4; keep Popen from waiting again
        wall = time.perf_counter() - began
        log.seek(0)
        lines = log.read().strip().splitlines() or ["no output"]
    result = {"chain": chain, "command": " ".join(cmd), "size": args.size}
    meta_path = out / chain.lower() / "train" / "metadata.json"
    if not meta_path.is_file():
        return {**result, "error": lines[-1]}
    meta = json.loads(meta_path.read_text())
    return {**result, "sounds_per_s": round(args.size / meta["elapsed_s"], 1),
            "wall_sounds_per_s": round(args.size / wall, 1), "generation_s": meta["elapsed_s"], "wall_s": round(wall, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "retried_items": meta["retried_items"],
            "clipped_items": meta["clipped_items"], "summary": lines[-1]}


def pipeline_only(args) -> dict:
    """The pipeline without the synth: render replaced by a precomputed tone (in this process).

    Shows what batching, PCM conversion, wav writing, CSV and manifest cost at this size, i.e.
    the ceiling create-data reaches once rendering is fast.
    """
    import resource

    import torch

    import diffmoog
    from diffmoog.data_gen.create import create
    from diffmoog.native import keep_freed_buffers
    from diffmoog.data_gen.options import GenOptions
    from diffmoog.data_gen import shard

    keep_freed_buffers()  # as the create-data CLI does

    n = int(round(args.duration * args.sample_rate))
    # One batch of distinct tones, made once: the stub costs ~nothing (no per-batch torch op,
    # whose intra-op threads would spin and bill their CPU to the pipeline).
    tones = 0.5 * torch.sin(torch.arange(n) * 0.05) * torch.linspace(0.5, 1.5, args.batch_size)[:, None]

    def render(params, **_):
        return tones[:params["seed"].shape[0]]

    make = shard.make_renderer
    shard.make_renderer = lambda opts: setattr(r := make(opts), "_render", render) or r
    import diffmoog.data_gen.create as create_module
    create_module.make_renderer = shard.make_renderer
    tmp = Path(tempfile.mkdtemp(prefix="bench_pipeline_", dir=args.tmp_dir))
    try:
        opts = GenOptions(chain=diffmoog.Chain.load("REDUCED_SIMPLE_OSC"), size=args.size, out=tmp,
                          sample_rate=args.sample_rate, duration=args.duration, batch_size=args.batch_size,
                          progress_bar=False, **({"workers": args.workers} if args.workers else {}))
        before = resource.getrusage(resource.RUSAGE_SELF)
        began = time.perf_counter()
        result = create(opts)
        seconds = time.perf_counter() - began
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        kernel = after.ru_stime - before.ru_stime
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"chain": "pipeline only (REDUCED_SIMPLE_OSC layout, render stubbed)", "size": args.size,
            "sounds_per_s": round(args.size / seconds, 1), "generation_s": round(seconds, 2),
            "cpu_ms_per_sound": round(1000 * cpu / args.size, 3),  # all threads; less load-dependent than sounds/s
            "kernel_ms_per_sound": round(1000 * kernel / args.size, 3),  # of which in the kernel (file creation)
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "mb_on_disk": round(result.bytes_on_disk / 1e6, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=3000)
    p.add_argument("--chains", nargs="*", default=["REDUCED_SIMPLE_OSC", "MODULAR"])
    p.add_argument("--duration", type=float, default=4.0)
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, help="create-data --workers (default: its own default)")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--tmp-dir", help="where the datasets are written (default: the system temp folder)")
    p.add_argument("--pipeline-only", action="store_true", help="also measure the pipeline with a stubbed render")
    p.add_argument("--pipeline-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.pipeline_child:
        print(json.dumps(pipeline_only(args)))
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench_create_data_", dir=args.tmp_dir))
    try:
        results = [bench(chain, args, tmp) for chain in args.chains]
        if args.pipeline_only:  # a child process, so its peak RSS is its own
            child = subprocess.run([sys.executable, __file__, "--pipeline-child", *sys.argv[1:]],
                                   capture_output=True, text=True)
            results.append(json.loads(child.stdout) if child.returncode == 0 else {"error": child.stderr[-500:]})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({"benchmark": "create_data", "cpu_count": os.cpu_count(), "duration_s": args.duration,
                      "sample_rate": args.sample_rate, "batch_size": args.batch_size, "workers": args.workers,
                      "tmp_dir": args.tmp_dir or tempfile.gettempdir(),
                      "compile": args.compile, "targets": {"REDUCED_SIMPLE_OSC_sounds_per_s": 1000, "peak_rss_mb": 2048},
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
