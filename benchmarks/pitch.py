"""Pitch tracker accuracy (diffmoog.analysis.pitch), printed as one JSON object.

Two sets: the NSynth-format fixture notes (their examples.json holds the MIDI pitch; drums
are reported apart, as unpitched), and a synthetic set of random presets of a chain with
every oscillator's `freq_hz` tied to the first one's, so the sound has one true pitch.
Gross error: more than 50 cents off; octave errors (one or two octaves, within 50 cents) are
counted too, because some presets really repeat at another octave: in REDUCED_SIMPLE_OSC a
saw plus a square at half its level cancels the odd harmonics, so the sum is a saw an
octave up, and the tracker rightly reports that. Seconds per sound include the whole note_pitch call.

    .venv/bin/python benchmarks/pitch.py
    .venv/bin/python benchmarks/pitch.py --chain BASIC_FLOW --sounds 500
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import soundfile as sf
import torch

from diffmoog.analysis.pitch import cents_between, midi_to_hz, note_pitch
from diffmoog.chain import Chain

FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "nsynth_format_notes"


def summary(cents: torch.Tensor, voiced: torch.Tensor, seconds: float) -> dict:
    cents = cents.abs()
    return {"sounds": len(cents), "gross_error_rate": round(float((cents > 50).double().mean()), 4),
            "octave_error_rate": round(float(((cents - 1200).abs() <= 50).double().mean()
                                             + ((cents - 2400).abs() <= 50).double().mean()), 4),
            "median_cents": round(float(cents.median()), 2), "mean_cents_within_50": round(float(
                cents[cents <= 50].mean()), 2) if bool((cents <= 50).any()) else None,
            "voiced_rate": round(float(voiced.double().mean()), 4), "seconds_per_sound": round(seconds / len(cents), 5)}


def fixture_notes(folder: Path) -> dict:
    meta = json.loads((folder / "examples.json").read_text())
    names = sorted(meta)
    audio = torch.stack([torch.from_numpy(sf.read(folder / "audio" / f"{n}.wav", dtype="float32")[0]) for n in names])
    rate = int(meta[names[0]]["sample_rate"])
    note_pitch(audio[:1], rate)  # warm-up
    start = time.perf_counter()
    est = note_pitch(audio, rate)
    seconds = time.perf_counter() - start
    true_hz = midi_to_hz(torch.tensor([float(meta[n]["pitch"]) for n in names], dtype=torch.float64))
    cents = cents_between(est.f0_hz.double(), true_hz)
    pitched = torch.tensor([meta[n]["instrument_family_str"] != "drum" for n in names])
    per_note = {n: {"midi": meta[n]["pitch"], "cents": round(float(c), 1), "voiced": bool(v),
                    "confidence": round(float(k), 3)}
                for n, c, v, k in zip(names, cents, est.voiced, est.confidence)}
    return {"pitched": summary(cents[pitched], est.voiced[pitched], seconds * float(pitched.double().mean())),
            "drums_voiced": int(est.voiced[~pitched].sum()), "drums": int((~pitched).sum()), "notes": per_note}


def synthetic(chain_name: str, sounds: int, seed: int, batch: int) -> dict:
    chain = Chain.load(chain_name)
    freq_keys = [k for k in chain.param_keys if k.endswith(".freq_hz")]
    if not freq_keys:
        raise SystemExit(f"chain {chain_name} has no free freq_hz parameter")
    cents, voiced, seconds = [], [], 0.0
    for offset in range(0, sounds, batch):
        n = min(batch, sounds - offset)
        params = chain.sample(n, seed=seed, offset=offset)
        for key in freq_keys[1:]:  # one pitch per sound
            params[key] = params[freq_keys[0]]
        true_hz = chain.to_physical(params)[freq_keys[0]].double()
        with torch.no_grad():
            audio = chain.render(params)
        start = time.perf_counter()
        est = note_pitch(audio, chain.sample_rate)
        seconds += time.perf_counter() - start
        cents.append(cents_between(est.f0_hz.double(), true_hz))
        voiced.append(est.voiced)
    result = summary(torch.cat(cents), torch.cat(voiced), seconds)
    return {"chain": chain.name, "tied_keys": freq_keys, "seed": seed, **result}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--chain", default="REDUCED_SIMPLE_OSC")
    p.add_argument("--sounds", type=int, default=200)
    p.add_argument("--seed", type=int, default=1234, help="the synthetic set's seed (not a training seed)")
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--fixtures", type=Path, default=FIXTURES)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = {"benchmark": "pitch", "torch": torch.__version__, "threads": args.threads,
           "synthetic": synthetic(args.chain, args.sounds, args.seed, args.batch)}
    if (args.fixtures / "examples.json").is_file():
        out["fixture_notes"] = fixture_notes(args.fixtures)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
