"""Sound matching, every method in one table, printed as one JSON object.

Rows (the same seed for every row; the refining rows share --steps (default: `diffmoog-match`'s
without a flow checkpoint) and --restarts unless said otherwise):
  random                      a random preset of the chain (the floor);
  regression                  the regression checkpoint's guess, no refinement;
  regression+refine           the guess, then refinement;
  random+refine               random starts (best of a pool), the same refinement;
  random+refine, same time    random starts with as many steps as fit in the default row's
                              wall time (calibrated on the first sounds);
  flow best-of-K              K presets sampled from the flow posterior, each also moved onto
                              the tracked pitch's octaves, the best of the 2K by the matching
                              loss, no refinement: `diffmoog-match`'s defaults (the default row);
  flow best-of-K+refine       the same, then --steps of refinement of the best --restarts.
Pitch is estimated from the audio in every row but `random` (`--pitch-from audio`, the default),
plus `random+refine, pitch none` as the pitch-free reference.

Sets: the NSynth-format fixture notes (real instruments; LSD, MRSTFT, and the pitch of the
matched sound against examples.json, over the pitched notes), and held-out synthetic sounds
of the chain (seed --synthetic-seed, which no training set uses; there also the mean absolute
error of the normalised continuous parameters). Seconds per sound are wall time on this
machine, one intra-op thread (as diffmoog-match runs).

    .venv/bin/python benchmarks/match.py                    # ~25 min on 2 cores
    .venv/bin/python benchmarks/match.py --synthetic 20     # quicker
    .venv/bin/python benchmarks/match.py --notes corpora/gm/nsynth-test --max-notes 100 --synthetic 0 \
        --regression synth=experiments/corpus_synth/checkpoints/last --flow tuned=experiments/x/checkpoints/last
    .venv/bin/python benchmarks/match.py --checkpoint none --flow-checkpoint examples/checkpoints/drum_flow \
        --fixtures /nonexistent --notes corpora/gm/nsynth-test --kinds --max-notes 40 --synthetic 0

Every --regression / --flow NAME=CKPT adds rows NAME (no refinement; a flow's best-of-K) and
NAME+refine, on every set.
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
from diffmoog.match.classes import drum_kind
from diffmoog.match.matcher import Matcher

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO.parent / "shared" / "fixtures" / "nsynth_format_notes"
CHECKPOINT = REPO / "examples" / "checkpoints" / "reduced_simple_osc_params_only"
FLOW_CHECKPOINT = REPO / "examples" / "checkpoints" / "reduced_simple_osc_flow"


def fixture_set(folder: Path, chain: Chain, max_notes: int = 0, kit_pieces: bool = False):
    """The notes of an NSynth json+wav split (every k-th by name when `max_notes` caps them);
    with `kit_pieces`, only drum hits of a kind (kick, snare, hat, tom, cymbal, clap)."""
    meta = json.loads((folder / "examples.json").read_text())
    names = sorted(name for name in meta if not kit_pieces or drum_kind(meta[name].get("drum")))
    if max_notes and len(names) > max_notes:
        names = [names[i * len(names) // max_notes] for i in range(max_notes)]  # as diffmoog-match --limit
    for name in names:
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


def run_row(matcher: Matcher, sounds: list, label: str) -> dict:
    lsd, mrstft, mfcc, seconds, cents, mae = [], [], [], [], [], []
    stage = "refined" if matcher.steps > 0 else ("encoder" if matcher.model is not None else "random")
    for name, audio, true_hz, truth in tqdm(sounds, desc=label, unit="sound", leave=False):
        clock = time.perf_counter()
        result = matcher.match(audio, name)
        seconds.append(time.perf_counter() - clock)
        params, audio_out = result.params, result.audio  # the stage's preset and its render
        lsd.append(result.metrics[stage]["lsd"])
        mrstft.append(result.metrics[stage]["mrstft"])
        mfcc.append(result.metrics[stage]["mfcc_mae"])
        if true_hz is not None:
            est = note_pitch(audio_out.detach()[None], matcher.chain.sample_rate)
            cents.append(float(cents_between(est.f0_hz.double(), torch.tensor(true_hz, dtype=torch.float64))))
        if truth is not None:
            mae.append(param_mae(matcher.chain, params, truth))
    row = {"lsd": round(statistics.fmean(lsd), 4), "mrstft": round(statistics.fmean(mrstft), 4),
           "mfcc_mae": round(statistics.fmean(mfcc), 4), "seconds_per_sound": round(statistics.fmean(seconds), 3)}
    if cents:
        off = [abs(c) for c in cents]
        row["matched_pitch_gross_error_rate"] = round(sum(c > 50 for c in off) / len(off), 4)
        row["matched_pitch_median_cents"] = round(statistics.median(off), 1)
    if mae:
        row["param_mae"] = round(statistics.fmean(mae), 4)
    return row


def steps_for_time(chain, sounds, seconds: float, restarts: int, seed: int) -> int:
    """Refinement steps from random starts that take `seconds` per sound (timed on 3 sounds)."""
    probe = sounds[:3]
    timings = {}
    for steps in (0, 20):
        matcher = Matcher(chain, None, steps, restarts, seed=seed)
        clock = time.perf_counter()
        for name, audio, _, _ in probe:
            matcher.match(audio, name)
        timings[steps] = (time.perf_counter() - clock) / len(probe)
    per_step = max((timings[20] - timings[0]) / 20, 1e-4)
    return max(1, int(round((seconds - timings[0]) / per_step)))


def main() -> None:
    from diffmoog.match.cli import DEFAULT_CANDIDATES, DEFAULT_STEPS, DEFAULT_STEPS_FLOW, parser as match_parser
    defaults = match_parser().parse_args(["x"])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=str(CHECKPOINT),
                   help="the regression checkpoint ('none': no regression rows, the flow's chain)")
    p.add_argument("--flow-checkpoint", default=str(FLOW_CHECKPOINT))
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="for the refining rows")
    p.add_argument("--restarts", type=int, default=defaults.restarts)
    p.add_argument("--candidates", type=int, default=DEFAULT_CANDIDATES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--synthetic", type=int, default=100, help="held-out synthetic sounds (0: none)")
    p.add_argument("--synthetic-seed", type=int, default=987654)
    p.add_argument("--fixtures", type=Path, default=FIXTURES)
    p.add_argument("--notes", type=Path, nargs="*", default=[],
                   help="more NSynth json+wav splits to match, e.g. corpora/gm/nsynth-test")
    p.add_argument("--max-notes", type=int, default=200, help="cap per --notes split (every k-th note)")
    p.add_argument("--kinds", action="store_true",
                   help="--notes: only drum kit pieces (GM drum names with a kind: kick, snare, hat, tom, cymbal)")
    p.add_argument("--regression", nargs="*", default=[], metavar="NAME=CKPT",
                   help="more regression checkpoints: rows NAME and NAME+refine")
    p.add_argument("--flow", nargs="*", default=[], metavar="NAME=CKPT",
                   help="more flow checkpoints: a best-of-K row and a +refine row each")
    p.add_argument("--no-flow", action="store_true", help="leave out the flow rows")
    args = p.parse_args()
    torch.set_num_threads(1)
    from diffmoog.train.checkpoint import load_model

    regression = chain = flow = None
    if args.checkpoint != "none":
        regression, chain, _ = load_model(args.checkpoint)
    if not args.no_flow:
        flow, flow_chain, _ = load_model(args.flow_checkpoint)
        if chain is not None and flow_chain.param_keys != chain.param_keys:
            raise SystemExit(f"{args.flow_checkpoint}: a flow for another chain than {args.checkpoint}")
        chain = chain or flow_chain
    if chain is None:
        raise SystemExit("--checkpoint none needs a flow checkpoint (without --no-flow): nothing gives the chain")
    extra = {}
    for item in [*args.regression, *args.flow]:
        name, _, path = item.partition("=")
        extra[name], other, _ = load_model(path)
        if other.param_keys != chain.param_keys:
            raise SystemExit(f"{path}: a checkpoint for another chain")
    sets = {}
    if (args.fixtures / "examples.json").is_file():
        sets["fixture_notes"] = list(fixture_set(args.fixtures, chain))
    for folder in args.notes:
        sets[f"{folder.parent.name}/{folder.name}"] = list(fixture_set(folder, chain, args.max_notes, args.kinds))
    if args.synthetic:
        sets["synthetic"] = list(synthetic_set(chain, args.synthetic, args.synthetic_seed))
    steps, restarts, k = args.steps, args.restarts, args.candidates
    default = f"flow best-of-{k}" + ("+refine" if DEFAULT_STEPS_FLOW else "")
    rows = {  # name -> (model, steps, pitch_from)
        "random": (None, 0, "none"),
        "regression": (regression, 0, "audio"),
        "regression+refine": (regression, steps, "audio"),
        "random+refine": (None, steps, "audio"),
        "random+refine, pitch none": (None, steps, "none"),
        f"flow best-of-{k}": (flow, DEFAULT_STEPS_FLOW, "audio"),
        f"flow best-of-{k}+refine": (flow, steps, "audio"),
    }
    for name, model in extra.items():
        rows[name] = (model, 0, "audio")
        rows[f"{name}+refine"] = (model, steps, "audio")
    if flow is None:
        rows = {name: row for name, row in rows.items() if not name.startswith("flow")}
    if regression is None:
        rows = {name: row for name, row in rows.items() if not name.startswith("regression")}
    out = {"benchmark": "match", "chain": chain.name, "checkpoint": args.checkpoint,
           "flow_checkpoint": args.flow_checkpoint, "steps": steps, "restarts": restarts, "candidates": k,
           "seed": args.seed, "torch": torch.__version__, "threads": 1, "default_row": default, "results": {}}
    for set_name, sounds in sets.items():
        table = {}
        for name, (model, row_steps, pitch) in rows.items():
            matcher = Matcher(chain, model, row_steps, restarts, seed=args.seed, pitch_from=pitch, candidates=k)
            table[name] = run_row(matcher, sounds, f"{set_name}: {name}")
        if flow is not None:
            same_time = steps_for_time(chain, sounds, table[default]["seconds_per_sound"], restarts, args.seed)
            matcher = Matcher(chain, None, same_time, restarts, seed=args.seed, pitch_from="audio")
            table["random+refine, same time"] = run_row(matcher, sounds, f"{set_name}: random+refine, same time")
            table["random+refine, same time"]["steps"] = same_time
        random_lsd = table["random"]["lsd"]
        for row in table.values():
            row["lsd_vs_random"] = round(row["lsd"] / random_lsd, 3)
        if flow is not None:
            row = table[default]
            row["lsd_vs_random_refine_same_time"] = round(row["lsd"] / table["random+refine, same time"]["lsd"], 3)
        out["results"][set_name] = table
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
