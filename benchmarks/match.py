"""Sound matching, every method in one table, printed as one JSON object.

Rows (the same seed, steps and restarts for every refining row):
  random                 a random preset of the chain (the floor);
  encoder                the regression checkpoint's guess, no refinement;
  encoder+refine         the guess, then --steps of Adam with --restarts;
  random+refine          random starts (best of a pool), the same refinement;
each with the pitch used as `diffmoog-match --pitch-from` does ("audio": the estimate moves
every start to the sound's pitch; "none": it does not). `diffmoog-match`'s defaults are the
row `encoder+refine, pitch audio` when a checkpoint is given and `random+refine, pitch audio`
without one. The preset posterior (flow) rows are not here yet: that model is not built.

Sets: the NSynth-format fixture notes (real instruments; LSD, MRSTFT, and the pitch of the
matched sound against examples.json, over the pitched notes), and held-out synthetic sounds
of the chain (seed --synthetic-seed, which no training set uses; there also the mean absolute
error of the normalised continuous parameters). Seconds per sound are wall time on this
machine, one intra-op thread (as diffmoog-match runs).

    .venv/bin/python benchmarks/match.py                                  # ~15 min on 2 cores
    .venv/bin/python benchmarks/match.py --synthetic 100 --steps 50
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import soundfile as sf
import torch
from tqdm import tqdm

from diffmoog.analysis.pitch import cents_between, midi_to_hz, note_pitch
from diffmoog.chain import Chain
from diffmoog.match.matcher import Matcher

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO.parent / "shared" / "fixtures" / "nsynth_format_notes"
CHECKPOINT = REPO / "examples" / "checkpoints" / "reduced_simple_osc_params_only"


def fixture_set(folder: Path, chain: Chain):
    meta = json.loads((folder / "examples.json").read_text())
    for name in sorted(meta):
        audio, rate = sf.read(folder / "audio" / f"{name}.wav", dtype="float32")
        if rate != chain.sample_rate:
            raise SystemExit(f"{name}: {rate} Hz, chain {chain.name} renders at {chain.sample_rate} Hz")
        audio = torch.from_numpy(audio)[: int(chain.spec.duration * rate)]
        pitched = meta[name]["instrument_family_str"] != "drum"
        yield name, audio, (float(midi_to_hz(float(meta[name]["pitch"]))) if pitched else None), None


def synthetic_set(chain: Chain, count: int, seed: int):
    params = chain.sample(count, seed=seed)
    with torch.no_grad():
        audio = chain.render(params)
    for i in range(count):
        yield f"synthetic_{i:04d}", audio[i], None, {k: v[i:i + 1] for k, v in params.items()}


def param_mae(chain: Chain, found: dict, truth: dict) -> float:
    errors = [abs(float(found[fp.key].reshape(-1)[0]) - float(truth[fp.key].reshape(-1)[0]))
              for fp in chain.free_params if not fp.param.is_categorical]
    return sum(errors) / len(errors)


def run_row(matcher: Matcher, sounds: list, use_encoder: bool, refine: bool, label: str) -> dict:
    lsd, mrstft, seconds, cents, mae = [], [], [], [], []
    model = matcher.model
    matcher.model = model if use_encoder else None
    steps = matcher.steps
    matcher.steps = steps if refine else 0
    try:
        for name, audio, true_hz, truth in tqdm(sounds, desc=label, unit="sound", leave=False):
            clock = time.perf_counter()
            result = matcher.match(audio, name)
            seconds.append(time.perf_counter() - clock)
            stage = "refined" if refine else ("encoder" if use_encoder else "random")
            params, audio_out = result.params, result.audio  # the stage's preset and its render
            lsd.append(result.metrics[stage]["lsd"])
            mrstft.append(result.metrics[stage]["mrstft"])
            if true_hz is not None:
                est = note_pitch(audio_out.detach()[None], matcher.chain.sample_rate)
                cents.append(float(cents_between(est.f0_hz.double(), torch.tensor(true_hz, dtype=torch.float64))))
            if truth is not None:
                mae.append(param_mae(matcher.chain, params, truth))
    finally:
        matcher.model, matcher.steps = model, steps
    row = {"lsd": round(statistics.fmean(lsd), 4), "mrstft": round(statistics.fmean(mrstft), 4),
           "seconds_per_sound": round(statistics.fmean(seconds), 3)}
    if cents:
        off = [abs(c) for c in cents]
        row["matched_pitch_gross_error_rate"] = round(sum(c > 50 for c in off) / len(off), 4)
        row["matched_pitch_median_cents"] = round(statistics.median(off), 1)
    if mae:
        row["param_mae"] = round(statistics.fmean(mae), 4)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=str(CHECKPOINT))
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--restarts", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--synthetic", type=int, default=20, help="held-out synthetic sounds (0: none)")
    p.add_argument("--synthetic-seed", type=int, default=987654)
    p.add_argument("--fixtures", type=Path, default=FIXTURES)
    args = p.parse_args()
    torch.set_num_threads(1)
    from diffmoog.train.checkpoint import load_model

    model, chain, _ = load_model(args.checkpoint)
    sets = {}
    if (args.fixtures / "examples.json").is_file():
        sets["fixture_notes"] = list(fixture_set(args.fixtures, chain))
    if args.synthetic:
        sets["synthetic"] = list(synthetic_set(chain, args.synthetic, args.synthetic_seed))
    rows = [("random", False, False, "none"), ("encoder", True, False, "none"), ("encoder", True, False, "audio"),
            ("encoder+refine", True, True, "none"), ("encoder+refine", True, True, "audio"),
            ("random+refine", False, True, "none"), ("random+refine", False, True, "audio")]
    out = {"benchmark": "match", "chain": chain.name, "checkpoint": args.checkpoint, "steps": args.steps,
           "restarts": args.restarts, "seed": args.seed, "torch": torch.__version__, "threads": 1,
           "flow_rows": "not built yet (the preset posterior of issue 13)", "results": {}}
    for set_name, sounds in sets.items():
        table = {}
        for method, use_encoder, refine, pitch in rows:
            matcher = Matcher(chain, model, args.steps, args.restarts, seed=args.seed, pitch_from=pitch)
            label = f"{set_name}: {method}, pitch {pitch}"
            table[f"{method}, pitch {pitch}"] = run_row(matcher, sounds, use_encoder, refine, label)
        random_lsd = table["random, pitch none"]["lsd"]
        for row in table.values():
            row["lsd_vs_random"] = round(row["lsd"] / random_lsd, 3)
        out["results"][set_name] = table
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
