"""diffmoog-match: sounds in, editable presets out.

    diffmoog-match INPUT... [--checkpoint CKPT | --chain NAME] [--candidates K] [--refine-steps N]
                   [--restarts R] [--pitch-from audio|metadata|none] [--limit N] -o OUT

With neither --checkpoint nor --chain, the committed preset posterior
(examples/checkpoints/reduced_simple_osc_flow) is used: K presets sampled per sound, the
best R refined. With --chain alone, refinement starts from random presets.

Per sound: OUT/<name>.preset.yaml, <name>.match.wav, <name>.png, <name>.json (metrics of
the random / encoder / refined stages). A sound whose .json exists with the same settings
is skipped, so an interrupted run resumes; OUT/summary.json holds the means.
Flags are checked before any work: --refine-steps >= 0, --restarts >= 1 (and few enough
that one batch stays within spec.MAX_BATCH_SAMPLES), 0 < --lr <= 1, a --device this
machine has, and an output folder that can be written.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from diffmoog.chain import Chain
from diffmoog.spec import MAX_BATCH_SAMPLES
from diffmoog.errors import ConfigError, DiffmoogError
from diffmoog.match.common import (Parser, check_device, check_output_dir, check_refine_flags, check_restarts,
                                   fail, mkdir, set_threads, warner, writing)
from diffmoog.match.inputs import find_inputs, load_target, metadata_pitch_hz, unique_names
from diffmoog.match.matcher import PITCH_SOURCES, STAGES, Matcher, write_outputs

DEFAULT_CANDIDATES = 32
# Refinement steps when --refine-steps is not given: a flow's ranked candidates are the match (10
# steps after them lower the spectral loss but not LSD, measured); otherwise refinement is the matcher.
DEFAULT_STEPS_FLOW, DEFAULT_STEPS = 0, 10
# With neither --chain nor --checkpoint: the committed flow checkpoint of a source checkout.
DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "examples" / "checkpoints" / "reduced_simple_osc_flow"


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="diffmoog-match", description=__doc__.split("\n\n")[0])
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files or folders")
    p.add_argument("--chain", help="chain name or YAML (default: the checkpoint's chain)")
    p.add_argument("--checkpoint", help="trained checkpoint (folder, file in it, or run folder): a flow posterior "
                                        "or a regression encoder (default with no --chain: the committed "
                                        "examples/checkpoints/reduced_simple_osc_flow)")
    # The defaults aim at about one second per 4 s sound on one CPU core (benchmarks/match.py).
    p.add_argument("--refine-steps", type=int, default=None,
                   help=f"Adam steps, >= 0 (0: no refinement; default {DEFAULT_STEPS_FLOW} with a flow checkpoint, "
                        f"{DEFAULT_STEPS} otherwise)")
    p.add_argument("--restarts", type=int, default=1, help="refinement restarts, run as one batch (>= 1; default 1)")
    p.add_argument("--candidates", type=int, default=DEFAULT_CANDIDATES,
                   help=f"with a flow checkpoint: presets sampled per sound, rendered in one batch and ranked; "
                        f"the best --restarts are refined (default {DEFAULT_CANDIDATES}; >= 1)")
    p.add_argument("--lr", type=float, default=0.03, help="Adam learning rate on normalised params (0 .. 1]")
    p.add_argument("--pitch-from", choices=PITCH_SOURCES, default="audio",
                   help="audio: estimate each sound's pitch and start every preset there (default); "
                        "metadata: the pitch in an NSynth examples.json beside the audio (else the estimate); "
                        "none: leave pitch to the model and refinement")
    p.add_argument("--seed", type=int, default=0, help="seeds random presets, restarts and noise")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--limit", type=int, default=None,
                   help="match N of the inputs, evenly spread over their sorted list (in an NSynth folder, "
                        "every instrument gets its share)")
    p.add_argument("-o", "--output", default="matches", help="output folder")
    p.add_argument("--force", action="store_true", help="redo sounds that already have results")
    return p


def is_flow_checkpoint(checkpoint: str | None) -> bool:
    """Whether `checkpoint` holds a preset posterior (read from its state; unreadable: no, and
    loading it later gives the one-line error)."""
    if checkpoint is None:
        return False
    try:
        from diffmoog.train.checkpoint import read_state
        return read_state(checkpoint)["config"]["model"].get("head") == "flow"
    except (DiffmoogError, KeyError, TypeError, AttributeError):
        return False


def spread(paths: list[Path], limit: int | None) -> list[Path]:
    """`limit` of `paths` at evenly spaced positions (all of them when there are no more)."""
    if limit is None:
        return paths
    if limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {limit}")
    if limit >= len(paths):
        return paths
    return [paths[i * len(paths) // limit] for i in range(limit)]


def check_candidates(candidates: int, chain: Chain, model) -> None:
    if candidates < 1:
        raise ConfigError(f"--candidates must be >= 1, got {candidates}")
    samples = int(round(chain.spec.duration * chain.sample_rate))
    most = max(MAX_BATCH_SAMPLES // max(samples, 1), 1)
    if candidates > most:
        raise ConfigError(f"--candidates {candidates}: too many for chain {chain.name} ({samples:,} samples per "
                          f"sound, all rendered in one batch); at most {most}")
    if candidates != DEFAULT_CANDIDATES and not hasattr(model, "sample"):
        warner("diffmoog-match")("--candidates applies to a flow checkpoint (a posterior to sample); "
                                 "this run has " + ("a regression encoder" if model is not None else "no checkpoint")
                                 + ", so it is not used")


def load_chain_and_model(chain_name: str | None, checkpoint: str | None, device):
    if checkpoint is None:
        if chain_name is None:
            raise ConfigError("give --chain NAME (or --checkpoint CKPT, whose chain is used)")
        return Chain.load(chain_name), None
    from diffmoog.train.checkpoint import load_model  # only needed with an encoder

    model, chain, _ = load_model(checkpoint, device=device)
    if chain_name is not None and Chain.load(chain_name).name.upper() != chain.name.upper():
        raise ConfigError(f"--chain {chain_name} does not match the checkpoint's chain {chain.name}")
    return chain, model


def run(args) -> dict:
    if args.checkpoint is None and args.chain is None and (DEFAULT_CHECKPOINT / "state.json").is_file():
        args.checkpoint = str(DEFAULT_CHECKPOINT)  # the committed preset posterior
    if args.refine_steps is None:
        args.refine_steps = DEFAULT_STEPS_FLOW if is_flow_checkpoint(args.checkpoint) else DEFAULT_STEPS
    check_refine_flags(args.refine_steps, args.restarts, args.checkpoint, args.lr)
    check_device(args.device)
    out = check_output_dir(args.output)
    paths = spread(find_inputs(args.inputs), args.limit)
    set_threads(args.device)
    chain, model = load_chain_and_model(args.chain, args.checkpoint, args.device)
    check_restarts(args.restarts, chain)
    check_candidates(args.candidates, chain, model)
    matcher = Matcher(chain, model, args.refine_steps, args.restarts, args.lr, args.seed, args.device,
                      encoder_name=str(Path(args.checkpoint).resolve()) if args.checkpoint else None,
                      pitch_from=args.pitch_from, warn=warner("diffmoog-match"), candidates=args.candidates)
    metadata: dict = {}
    # Read and check every input before any work: a bad file fails the run in one line,
    # not halfway through (targets are seconds long; holding them all is cheap).
    targets = [load_target(path, chain.sample_rate, chain.spec.duration) for path in paths]
    mkdir(out)
    records = []
    bar = tqdm(list(zip(paths, unique_names(paths), targets)), desc="matching", unit="sound", file=sys.stderr)
    for path, name, target in bar:
        bar.set_postfix_str(name)
        done = out / f"{name}.json"
        if done.is_file() and not args.force:
            try:
                record = json.loads(done.read_text())
            except (OSError, ValueError):  # unreadable or not JSON (edited by hand?): redo the sound
                record = None
            if isinstance(record, dict) and record.get("settings") == matcher.settings() \
                    and record.get("source") == str(path):
                records.append(record)
                continue
        metadata_hz = metadata_pitch_hz(path, metadata) if args.pitch_from == "metadata" else None
        result = matcher.match(target, name, metadata_hz=metadata_hz)
        records.append(write_outputs(out, name, str(path), chain, target.cpu(), result, matcher.settings()))
    summary = summarize(records, matcher.settings())
    with writing(out / "summary.json"):
        tmp = out / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=1))
        tmp.replace(out / "summary.json")
    return summary


def summarize(records: list[dict], settings: dict) -> dict:
    means = {}
    for stage in STAGES:
        values = [r["metrics"][stage] for r in records if stage in r["metrics"]]
        if values:
            means[stage] = {k: sum(v[k] for v in values) / len(values) for k in values[0]}
    seconds = sum(r["seconds_total"] for r in records) / max(len(records), 1)
    return {"settings": settings, "count": len(records), "mean": means, "seconds_per_sound": seconds,
            "sounds": [{"name": r["name"], "lsd": {s: r["metrics"][s]["lsd"] for s in STAGES if s in r["metrics"]},
                        "pitch_hz": (r.get("pitch") or {}).get("hz"),
                        "seconds": r["seconds_total"]} for r in records]}


def table(summary: dict) -> str:
    stages = [s for s in STAGES if s in summary["mean"]]
    width = max([len("mean")] + [len(s["name"]) for s in summary["sounds"]])
    lines = ["  ".join([f"{'sound':<{width}}"] + [f"{'LSD ' + s:>12}" for s in stages] + [f"{'seconds':>8}"])]
    for sound in summary["sounds"]:
        cells = [f"{sound['lsd'].get(s, float('nan')):>12.3f}" for s in stages]
        lines.append("  ".join([f"{sound['name']:<{width}}"] + cells + [f"{sound['seconds']:>8.1f}"]))
    means = [f"{summary['mean'][s]['lsd']:>12.3f}" for s in stages]
    lines.append("  ".join([f"{'mean':<{width}}"] + means + [f"{summary['seconds_per_sound']:>8.1f}"]))
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    clock = time.perf_counter()
    try:
        summary = run(args)
    except DiffmoogError as error:
        return fail("diffmoog-match", error)
    print(table(summary))
    print(f"{summary['count']} sound(s) in {time.perf_counter() - clock:.1f} s; results in {args.output}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
