"""Streaming latency: milliseconds to render one block (batch 1) with Chain.stream, per chain.

    python benchmarks/stream.py [--block-size 512] [--seconds 4] [--threads 1] [--chains A B]

Prints JSON: per chain the median / p95 / max block latency in ms (wall clock), the median
CPU time per block (what it costs without waiting for a busy core), and the budget (the
block's duration; real time at 44.1 kHz is 11.6 ms per 512 samples). The target is
< 1 ms median per 512-sample block. Each chain renders its own sample rate; one warm-up
note precedes the timed one.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from diffmoog.chain import Chain
from diffmoog.spec import builtin_chains


def time_blocks(chain: Chain, block_size: int, seconds: float, seed: int) -> tuple[list[float], list[float]]:
    """(wall ms, CPU ms) per block. CPU time (this process) is what a block costs; wall
    time adds waiting for a core, which dominates on a shared, busy machine."""
    params = chain.sample(1, seed=seed)
    for _ in range(2):  # the first pass warms caches and lazy inits; keep the second
        wall, cpu = [], []
        blocks = chain.stream(params, block_size, duration=seconds, note_off=0.75 * seconds)
        while True:
            start, start_cpu = time.perf_counter(), time.process_time()
            try:
                next(blocks)
            except StopIteration:
                break
            wall.append((time.perf_counter() - start) * 1000.0)
            cpu.append((time.process_time() - start_cpu) * 1000.0)
    return wall, cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--block-size", type=int, default=512)
    p.add_argument("--seconds", type=float, default=4.0, help="note length streamed per chain")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chains", nargs="*", default=None, help="default: every built-in chain")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for name in args.chains or list(builtin_chains()):
        chain = Chain.load(name)
        times, cpu = time_blocks(chain, args.block_size, args.seconds, args.seed)
        times = sorted(times)
        results[chain.name] = {
            "sample_rate": chain.sample_rate,
            "blocks": len(times),
            "median_ms": round(statistics.median(times), 4),
            "cpu_median_ms": round(statistics.median(cpu), 4),
            "p95_ms": round(times[int(0.95 * (len(times) - 1))], 4),
            "max_ms": round(times[-1], 4),
            "budget_ms": round(1000.0 * args.block_size / chain.sample_rate, 3),
        }
    medians = [r["median_ms"] for r in results.values()]
    cpu_medians = [r["cpu_median_ms"] for r in results.values()]
    print(json.dumps({"benchmark": "stream_block_latency", "block_size": args.block_size, "batch": 1,
                      "threads": args.threads, "torch": torch.__version__, "machine": platform.machine(),
                      "target_median_ms": 1.0, "chains_meeting_target": sum(m < 1.0 for m in medians),
                      "chains_meeting_target_cpu_time": sum(m < 1.0 for m in cpu_medians),
                      "chains": len(medians), "results": results}, indent=1))


if __name__ == "__main__":
    main()
