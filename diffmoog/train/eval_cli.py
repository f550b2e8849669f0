"""`diffmoog-eval --checkpoint CKPT --data DIR [--baseline random] [-o report.json]`.

DIR is a create-data split (audio + parameters: audio metrics, per-parameter MAE and accuracy)
or real audio (an NSynth split or any audio folder: audio metrics only). `--baseline random`
adds the same metrics for random presets of the chain, the floor a trained encoder must beat.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from diffmoog.errors import ConfigError, DiffmoogError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="diffmoog-eval", description="Evaluate a trained encoder; write a JSON report.")
    p.add_argument("--checkpoint", help="checkpoint folder or run folder (experiments/<run>)")
    p.add_argument("--data", required=True, help="a create-data split folder, an NSynth split, or an audio folder")
    p.add_argument("--chain", help="chain for --baseline random without a checkpoint")
    p.add_argument("--baseline", choices=["random"], action="append", default=[],
                   help="also report the random-preset baseline")
    p.add_argument("--baseline-seed", type=int, default=12345)
    p.add_argument("--max-items", type=int, default=0, help="evaluate only the first N items (0: all)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("-o", "--output", help="report path (default: eval_<data folder name>.json)")
    p.add_argument("--no-progress", action="store_true")
    return p


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
    from diffmoog.train.evaluate import evaluate, summarize
    from diffmoog.train.trainer import resolve_device
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
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
    n_items = len(data) if args.max_items <= 0 else min(args.max_items, len(data))
    report = {"data": str(args.data), "data_kind": kind, "n_items": n_items, "chain": chain.name,
              "checkpoint": str(args.checkpoint) if args.checkpoint else None,
              "checkpoint_step": state.get("step"), "metrics": {}}
    progress = not args.no_progress
    if model is not None:
        start = time.perf_counter()
        metrics, _ = evaluate(model, chain, data.sequential(args.batch_size, args.max_items), device, note_off,
                              progress=progress)
        report["metrics"]["encoder"] = summarize(metrics)
        report["seconds_per_item"] = (time.perf_counter() - start) / max(1, n_items)
    if "random" in args.baseline:
        metrics, _ = evaluate(model, chain, data.sequential(args.batch_size, args.max_items), device, note_off,
                              baseline_seed=args.baseline_seed, progress=progress)
        report["metrics"]["random_preset"] = summarize(metrics)
    if model is not None:
        fd = frechet(model, chain, data, args, device, note_off)
        if fd is not None:
            report["frechet_logmel"] = fd
    if "random" in args.baseline:
        fd = frechet(None, chain, data, args, device, note_off)
        if fd is not None:
            report["frechet_logmel_random_preset"] = fd
    return report


def frechet(model, chain, data, args, device, note_off):
    """Fréchet distance on log-mel statistics (not VGGish FAD) between the data and the encoder's
    re-synthesis (or random presets when `model` is None), when diffmoog.match.frechet is available."""
    try:
        from diffmoog.match import frechet as fr
    except ImportError:
        return None
    fn = getattr(fr, "frechet_distance_audio", None) or getattr(fr, "frechet_audio_distance", None)
    if fn is None:
        return None
    targets, preds, offset = [], [], 0
    with torch.no_grad():
        for batch in data.sequential(args.batch_size, args.max_items):
            audio = batch["audio"].to(device).float()
            if model is None:  # the random-preset baseline, the same presets evaluate() used
                params = chain.sample(audio.shape[0], seed=args.baseline_seed, offset=offset, device=device)
                offset += audio.shape[0]
            else:
                params = chain.from_logits(model(audio), hard=True)
            preds.append(chain.render(params, duration=audio.shape[-1] / chain.sample_rate, note_off=note_off).cpu())
            targets.append(audio.cpu())
    try:
        value = fn(torch.cat(targets), torch.cat(preds), chain.sample_rate)
    except TypeError:
        value = fn(torch.cat(targets), torch.cat(preds))
    return {"value": float(value), "note": "Frechet distance of log-mel statistics, not the VGGish FAD"}


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        report = run(args)
        out = Path(args.output or f"eval_{Path(args.data).resolve().name}.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1))
    except DiffmoogError as err:
        print(f"diffmoog-eval: error: {err}", file=sys.stderr)
        return 2
    for name, metrics in report["metrics"].items():
        summary = {k: round(v, 4) for k, v in metrics.items() if "/" not in k}
        print(f"{name}: {json.dumps(summary)}")
    print(f"report written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
