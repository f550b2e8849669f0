"""Render speed of every built-in chain, in x realtime, printed as one JSON object.

x realtime = (batch * duration_s) / seconds per render, the median of `--repeats` timed
runs after one warm-up. Each chain is timed forward only and forward + backward (the
gradient of a spectral-ish scalar, audio.square().mean(), w.r.t. the continuous normalised
parameters, which require grad as an encoder's outputs would), in eager mode (native CPU
kernels when they build, see diffmoog/native), with --torch-path also on the pure-PyTorch
module path, and, for the chains in --compile-chains, with `Chain.render(..., compiled=True)`
(torch.compile of the PyTorch path; compile time is reported separately and not counted).

    .venv/bin/python benchmarks/render.py                       # all chains, ~4 minutes
    .venv/bin/python benchmarks/render.py --chains REDUCED_SIMPLE_OSC --repeats 7
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch

import diffmoog
from diffmoog import native
from diffmoog.errors import DiffmoogError
from diffmoog.spec import builtin_chains, resolve_chain

# The targets (x realtime at batch 64 x 4 s, 16 kHz, this 2-core CPU).
TARGETS = {"REDUCED_SIMPLE_OSC": {"forward_x": 5000, "fwd_bwd_x": 1500},
           "REDUCED": {"forward_x": 1000}, "MODULAR": {"forward_x": 1000}}


def time_render(chain: diffmoog.Chain, params: dict, backward: bool, compiled: bool,
                duration: float, repeats: int, torch_path: bool = False) -> tuple[float, float]:
    """(median seconds per render, seconds of the first, warm-up call)."""
    if torch_path:
        with native.disabled():
            return time_render(chain, params, backward, compiled, duration, repeats)
    times = []
    for _ in range(repeats + 1):
        inputs = {k: v.clone().requires_grad_(backward and v.is_floating_point() and v.dim() == 1)
                  for k, v in params.items()}
        start = time.perf_counter()
        audio = chain.render(inputs, duration=duration, compiled=compiled)
        if backward:
            audio.square().mean().backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:]), times[0]


def bench_chain(chain: diffmoog.Chain, args, compile_it: bool) -> dict:
    params = chain.sample(args.batch, seed=0)
    audio_s = args.batch * args.duration
    out = {}
    if compile_it:  # the compiled graph must render what eager mode renders
        with torch.no_grad():
            diff = (chain.render(params, duration=args.duration, compiled=True)
                    - chain.render(params, duration=args.duration)).abs().max()
        out["compiled_vs_eager_max_abs_diff"] = float(f"{float(diff):.3g}")
    modes = [("eager", False)] + ([("torch_path", False)] if args.torch_path else []) \
        + ([("compiled", True)] if compile_it else [])
    for mode, compiled in modes:
        for label, backward in (("forward", False), ("fwd_bwd", True)):
            seconds, first = time_render(chain, params, backward, compiled, args.duration, args.repeats,
                                         torch_path=mode == "torch_path")
            out[f"{mode}_{label}_x"] = round(audio_s / seconds, 1)
            if compiled:
                out[f"compiled_{label}_first_call_s"] = round(first, 2)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chains", nargs="+", help="chain names or YAML paths (default: every built-in chain)")
    parser.add_argument("--compile-chains", nargs="+", default=sorted(TARGETS),
                        help="chains also timed compiled ('all' for every one; default: the target chains)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds of audio per item")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--no-compile", action="store_true", help="eager mode only")
    parser.add_argument("--torch-path", action="store_true",
                        help="also time the pure-PyTorch module path (what CUDA and torch.compile run)")
    args = parser.parse_args(argv)
    if args.batch < 1 or args.duration <= 0 or args.repeats < 1:
        print("error: --batch, --duration and --repeats must be positive", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    try:
        names = args.chains or list(builtin_chains())
        for name in names:
            resolve_chain(name)
        compile_set = {n.upper() for n in args.compile_chains}
        results, sample_rates = {}, set()
        for name in names:
            chain = diffmoog.Chain.load(name)
            key = chain.name.upper()
            sample_rates.add(chain.sample_rate)
            compile_it = not args.no_compile and ("ALL" in compile_set or key in compile_set)
            results[key] = bench_chain(chain, args, compile_it)
    except DiffmoogError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    targets = {}
    for chain, wanted in TARGETS.items():
        if chain not in results:
            continue
        for metric, goal in wanted.items():
            for mode in ("eager", "compiled"):
                got = results[chain].get(f"{mode}_{metric}")
                if got is not None:
                    targets[f"{chain} {mode} {metric} >= {goal}"] = got >= goal
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "torch": torch.__version__, "threads": args.threads,
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
        "batch": args.batch, "duration_s": args.duration,
        "sample_rate": sorted(sample_rates)[0] if len(sample_rates) == 1 else sorted(sample_rates),
        "repeats": args.repeats, "grad_wrt": "continuous normalised params",
        "native_kernels": native.library() is not None,
        "results": results, "targets_met": targets,
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
