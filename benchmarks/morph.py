"""Morphs: the straight line (diffmoog-morph) against the path through the prior
(diffmoog-morph --through-prior), printed as one JSON object.

Both paths go between the same two presets in --steps sounds, endpoints included (they are A
and B themselves on both). Pairs: --pairs of the flow prior's own samples (as diffmoog-generate
writes them, at middle C) and, with --fixtures, consecutive pairs of the fixture notes matched
with the flow's defaults (best-of-32, its pitch), the presets a sound designer would morph.
Per path, with d = LSD between two renders (analysis/metrics.py):
  - `path_ratio`: sum of d over consecutive steps / d(A, B); 1 is a path that never detours;
  - `max_step_share`: the largest consecutive step / the sum (1 / (steps - 1) is perfectly
    even; near 1, the whole change happens at one step);
  - `fd_to_prior`: FD-logmel (analysis/frechet.py) of the in-between sounds against --reference
    fresh prior samples: how much the in-between sounds look like the prior's presets;
  - `silent_rate`: in-between sounds whose peak is below -60 dBFS.
Lower is better for all four. The same seeds give the same numbers.

    .venv/bin/python benchmarks/morph.py
    .venv/bin/python benchmarks/morph.py --checkpoint examples/checkpoints/drum_flow --no-fixtures
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from diffmoog.analysis.frechet import frechet_distance, logmel_statistics
from diffmoog.analysis.metrics import lsd
from diffmoog.match.generate import sample_one
from diffmoog.match.matcher import Matcher
from diffmoog.match.morph import PriorPath, interpolate
from diffmoog.match.prior import DEFAULT_INVERT_STEPS, DEFAULT_MIDI, Prior, default_checkpoint, midi_hz
from diffmoog.preset import Preset

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO.parent / "shared" / "fixtures" / "nsynth_format_notes"
SILENT_PEAK = 1e-3  # -60 dBFS


def prior_presets(prior: Prior, count: int, seed: int) -> list[Preset]:
    hz = midi_hz(DEFAULT_MIDI)
    seeds = prior.chain.item_seeds(count, seed)
    out = []
    for i in range(count):
        params, record, _ = sample_one(prior, i, seed, 1.0, prior.sample_steps, hz, seeds[i:i + 1])
        out.append(Preset(prior.chain, params, f"prior sample {i}", pitch=record))
    return out


def matched_presets(prior: Prior, folder: Path, seed: int) -> list[Preset]:
    """The fixture notes matched as diffmoog-match does by default (pitch from the audio)."""
    from diffmoog.match.cli import DEFAULT_CANDIDATES

    matcher = Matcher(prior.chain, prior.model, 0, 1, seed=seed, pitch_from="audio", candidates=DEFAULT_CANDIDATES)
    duration, rate = float(prior.chain.spec.duration), prior.chain.sample_rate
    out = []
    for wav in tqdm(sorted((folder / "audio").glob("*.wav")), desc="matching fixture notes", file=sys.stderr,
                    leave=False):
        audio, sr = sf.read(wav, dtype="float32")
        if sr != rate:
            raise SystemExit(f"{wav}: {sr} Hz, chain {prior.chain.name} renders at {rate} Hz")
        result = matcher.match(torch.from_numpy(audio)[: int(duration * rate)], wav.stem)
        out.append(Preset(prior.chain, result.params, wav.stem, pitch=result.pitch or {}))
    return out


def render(chain, params: dict) -> torch.Tensor:
    with torch.no_grad():
        return chain.render(params)[0]


def paths(prior: Prior, a: Preset, b: Preset, steps: int, ode_steps: int) -> dict[str, list[torch.Tensor]]:
    """The renders of both paths, endpoints included."""
    through = PriorPath(prior, a, b, ode_steps)
    out = {"straight line": [], "through the prior": []}
    for i in range(steps):
        t = i / (steps - 1)
        line = interpolate(prior.chain, a.params, b.params, t)
        out["straight line"].append(render(prior.chain, line))
        out["through the prior"].append(render(prior.chain, line if i in (0, steps - 1) else through.at(t)))
    return out


def path_metrics(audios: list[torch.Tensor]) -> dict:
    hops = [float(lsd(x[None], y[None])[0]) for x, y in zip(audios, audios[1:])]
    direct = float(lsd(audios[0][None], audios[-1][None])[0])
    total = sum(hops)
    return {"path_ratio": total / max(direct, 1e-6), "max_step_share": max(hops) / max(total, 1e-6)}


def summarise(rows: list[dict], middles: list[torch.Tensor], reference: np.ndarray, rate: int) -> dict:
    stats = logmel_statistics(torch.stack(middles), rate)
    return {"path_ratio": round(statistics.fmean(r["path_ratio"] for r in rows), 3),
            "path_ratio_median": round(statistics.median(r["path_ratio"] for r in rows), 3),
            "max_step_share": round(statistics.fmean(r["max_step_share"] for r in rows), 3),
            "fd_to_prior": round(frechet_distance(stats, reference), 2),
            "silent_rate": round(sum(float(x.abs().max()) < SILENT_PEAK for x in middles) / len(middles), 4)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=None, help="a flow checkpoint (default: the committed one)")
    p.add_argument("--pairs", type=int, default=16, help="pairs of prior samples")
    p.add_argument("--steps", type=int, default=8, help="sounds per morph, endpoints included")
    p.add_argument("--ode-steps", type=int, default=DEFAULT_INVERT_STEPS, help="ODE steps each way")
    p.add_argument("--reference", type=int, default=256, help="fresh prior samples the FD compares with")
    p.add_argument("--fixtures", type=Path, default=FIXTURES, help="NSynth-format notes to match and morph")
    p.add_argument("--no-fixtures", action="store_true", help="only pairs of prior samples")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    clock = time.perf_counter()
    prior = Prior(default_checkpoint(args.checkpoint))
    rate = prior.chain.sample_rate
    # The reference set: other seeds than the endpoints', so no endpoint is in it.
    reference = logmel_statistics(torch.stack([render(prior.chain, p.params) for p in
                                               prior_presets(prior, args.reference, args.seed + 1)]), rate)
    samples = prior_presets(prior, 2 * args.pairs, args.seed)
    sets = {"prior samples": [(samples[2 * i], samples[2 * i + 1]) for i in range(args.pairs)]}
    if not args.no_fixtures and (args.fixtures / "audio").is_dir():
        matched = matched_presets(prior, args.fixtures, args.seed)
        sets["matched fixture notes"] = list(zip(matched, matched[1:]))
    out = {"benchmark": "morph", "checkpoint": prior.checkpoint, "chain": prior.chain.name, "steps": args.steps,
           "ode_steps": args.ode_steps, "seed": args.seed, "reference_prior_samples": args.reference, "sets": {}}
    for set_name, pairs in sets.items():
        rows = {"straight line": [], "through the prior": []}
        middles = {"straight line": [], "through the prior": []}
        for a, b in tqdm(pairs, desc=set_name, file=sys.stderr, leave=False):
            for how, audios in paths(prior, a, b, args.steps, args.ode_steps).items():
                rows[how].append(path_metrics(audios))
                middles[how].extend(audios[1:-1])
        out["sets"][set_name] = {"pairs": len(pairs),
                                 **{how: summarise(rows[how], middles[how], reference, rate) for how in rows}}
    out["seconds"] = round(time.perf_counter() - clock, 1)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
