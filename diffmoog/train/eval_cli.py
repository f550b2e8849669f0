"""`diffmoog-eval --checkpoint CKPT --data DIR [--baseline random] [-o report.json]`.

DIR is a create-data split (audio + parameters: audio metrics, per-parameter MAE and accuracy)
or real audio (an NSynth split or any audio folder: audio metrics only). `--baseline random`
adds the same metrics for random presets of the chain, the floor a trained encoder must beat.

Items that cannot be read are skipped (never replaced by a copy of another file, as training
does to keep batch shapes), and so are silent targets (peak below -90 dBFS), whose spectral
metrics are undefined; the report counts the items considered, scored and skipped of each kind.
The Fréchet distance needs at least 2 scored sounds; with fewer it is reported as null with a reason.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import torch

from diffmoog.errors import ConfigError, DiffmoogError


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one line (`diffmoog-eval: error: ...`, exit 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="diffmoog-eval", description="Evaluate a trained encoder; write a JSON report.")
    p.add_argument("--checkpoint", help="checkpoint folder or run folder (experiments/<run>)")
    p.add_argument("--data", required=True, help="a create-data split folder, an NSynth split, or an audio folder")
    p.add_argument("--chain", help="chain for --baseline random without a checkpoint")
    p.add_argument("--baseline", choices=["random"], action="append", default=[],
                   help="also report the random-preset baseline")
    p.add_argument("--baseline-seed", type=int, default=12345)
    p.add_argument("--max-items", type=int, default=None,
                   help="consider only the first N items (default: all); unreadable or silent ones are skipped")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("-o", "--output", help="report path (default: eval_<data folder name>.json)")
    p.add_argument("--no-progress", action="store_true")
    return p


def check_args(args) -> None:
    """Refuse integer flags out of range, naming the flag (before any work is done)."""
    if args.max_items is not None and args.max_items < 1:
        raise ConfigError(f"--max-items must be >= 1 (omit it to evaluate every item), got {args.max_items}")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.threads < 0:
        raise ConfigError(f"--threads must be >= 0 (0: torch's default), got {args.threads}")


def _warn(message: str) -> None:
    print(f"diffmoog-eval: warning: {message}", file=sys.stderr)


def _data(path: str, chain, duration_s: float):
    from diffmoog.train.data import RealAudio, SyntheticSplit
    folder = Path(path)
    if not folder.exists():
        raise ConfigError(f"{path}: data folder not found")
    if (folder / "metadata.json").is_file() or (folder.parent / "metadata.json").is_file():
        split = SyntheticSplit(path, chain)
        return split, "synthetic", split.note_off
    return RealAudio(path, chain.sample_rate, duration_s), "real", chain.spec.note_off


def run(args) -> dict:
    from diffmoog.chain import Chain
    from diffmoog.train import checkpoint
    from diffmoog.train.evaluate import ScoredItems, evaluate, summarize
    from diffmoog.train.trainer import resolve_device
    check_args(args)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
    except ConfigError as err:
        raise ConfigError(f"--device: {str(err).removeprefix('run.device: ')}") from None
    model, state = None, {}
    if args.checkpoint:
        folder = checkpoint.resolve(args.checkpoint)
        model, chain, _ = checkpoint.load_model(folder, device)
        state = checkpoint.read_state(folder)
    elif args.chain and args.baseline:
        chain = Chain.load(args.chain)
    else:
        raise ConfigError("give --checkpoint (or --chain with --baseline random)")
    duration_s = float(state.get("duration_s", chain.spec.duration))
    data, kind, note_off = _data(args.data, chain, duration_s)
    items = ScoredItems(data, args.max_items, warn=_warn)
    progress = not args.no_progress
    results, seconds = {}, None
    passes = ([("encoder", None)] if model is not None else []) + \
        ([("random_preset", args.baseline_seed)] if "random" in args.baseline else [])
    for name, seed in passes:
        start = time.perf_counter()
        metrics, _ = evaluate(model, chain, items.batches(args.batch_size), device, note_off,
                              baseline_seed=seed, progress=progress)
        if items.n_scored == 0:
            raise ConfigError(f"{args.data}: no item could be scored ({items.n_considered} considered: "
                              f"{len(items.unreadable)} unreadable, {len(items.silent)} silent)")
        results[name] = finite(summarize(metrics), name)
        if name == "encoder":
            seconds = (time.perf_counter() - start) / items.n_scored
    counts = items.counts()
    if counts["skipped_unreadable"] or counts["skipped_silent"]:
        _warn(f"scored {counts['scored']} of {counts['considered']} items: {counts['skipped_unreadable']} "
              f"skipped as unreadable, {counts['skipped_silent']} skipped as silent")
    report = {"data": str(args.data), "data_kind": kind, "n_items": items.n_scored, "items": counts,
              "skipped_unreadable": dict(items.unreadable), "skipped_silent": list(items.silent),
              "skipped_at_index": dict(items.index_skipped),
              "chain": chain.name, "checkpoint": str(args.checkpoint) if args.checkpoint else None,
              "checkpoint_step": state.get("step"), "metrics": results}
    if seconds is not None:
        report["seconds_per_item"] = seconds
    if model is not None:
        report["frechet_logmel"] = frechet(model, chain, items, args, device, note_off)
    if "random" in args.baseline:
        report["frechet_logmel_random_preset"] = frechet(None, chain, items, args, device, note_off)
    return report


def finite(metrics: dict[str, float], name: str) -> dict:
    """Metrics with any non-finite value reported as null (JSON has no NaN) and warned about."""
    out = {}
    for key, value in metrics.items():
        if math.isfinite(value):
            out[key] = value
        else:
            _warn(f"{name} metric {key} is {value}; reported as null")
            out[key] = None
    return out


FD_NOTE = "Frechet distance of log-mel statistics, not the VGGish FAD"


def frechet(model, chain, items, args, device, note_off):
    """Fréchet distance on log-mel statistics (not VGGish FAD) between the scored items and the
    encoder's re-synthesis (or random presets when `model` is None). Fewer than 2 scored items
    (a covariance needs 2) or a non-finite result: {"value": None, "reason": ...}."""
    from diffmoog.analysis.frechet import frechet_distance_audio
    if items.n_scored < 2:
        return {"value": None, "reason": f"needs at least 2 scored sounds, got {items.n_scored}", "note": FD_NOTE}
    targets, preds, offset = [], [], 0
    with torch.no_grad():
        for batch in items.batches(args.batch_size):
            audio = batch["audio"].to(device).float()
            if model is None:  # the random-preset baseline, the same presets evaluate() used
                params = chain.sample(audio.shape[0], seed=args.baseline_seed, offset=offset, device=device)
                offset += audio.shape[0]
            else:
                params = chain.from_logits(model(audio), hard=True)
            preds.append(chain.render(params, duration=audio.shape[-1] / chain.sample_rate, note_off=note_off).cpu())
            targets.append(audio.cpu())
    value = frechet_distance_audio(torch.cat(targets), torch.cat(preds), chain.sample_rate)
    if not math.isfinite(float(value)):
        return {"value": None, "reason": f"not finite ({float(value)})", "note": FD_NOTE}
    return {"value": float(value), "note": FD_NOTE}


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    """Library warnings (e.g. NSynth notes left out of the index) as one `warning:` line each."""
    _warn(" ".join(str(message).split()))


def write_report(report: dict, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1, allow_nan=False))  # NaN/inf are never written
    except OSError as err:
        raise ConfigError(f"-o/--output {path}: cannot write the report ({err.strerror or err})") from None


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning
            report = run(args)
        out = Path(args.output or f"eval_{Path(args.data).resolve().name}.json")
        write_report(report, out)
    except DiffmoogError as err:
        print(f"diffmoog-eval: error: {err}", file=sys.stderr)
        return 2
    counts = report["items"]
    at_index = f", {counts['skipped_at_index']} left out when indexing" if counts.get("skipped_at_index") else ""
    print(f"items: {counts['scored']} scored of {counts['considered']} ({counts['skipped_unreadable']} skipped "
          f"as unreadable, {counts['skipped_silent']} skipped as silent{at_index})")
    for name, metrics in report["metrics"].items():
        summary = {k: (None if v is None else round(v, 4)) for k, v in metrics.items() if "/" not in k}
        print(f"{name}: {json.dumps(summary)}")
    for key in ("frechet_logmel", "frechet_logmel_random_preset"):
        fd = report.get(key)
        if fd is not None:
            print(f"{key}: " + (f"{fd['value']:.4f}" if fd["value"] is not None else f"unavailable ({fd['reason']})"))
    print(f"report written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
