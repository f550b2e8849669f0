"""diffmoog-morph: render an interpolation between two presets (or two matched sounds).

    diffmoog-morph A B --steps 8 -o OUT [--categoricals fade|switch]

A and B are preset YAMLs, or audio files that are matched first (then give --chain and/or
--checkpoint, as for diffmoog-match). Continuous parameters interpolate linearly in
normalised space, which is log space for log-scale parameters (frequencies, times).
Categorical choices cross-fade their weights (`fade`, the default: every built-in module
renders soft choice weights as a mix) or `switch` from A's to B's at the midpoint. Noise
keeps A's seed for the first half and B's for the second, so both endpoints are exact.
Writes OUT/morph_XX.wav + .preset.yaml per step and OUT/morph.wav (all steps in a row).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from diffmoog.chain import SEED_KEY, Chain
from diffmoog.errors import ConfigError, DiffmoogError
from diffmoog.match.common import fail, render_and_save, set_threads, write_wav
from diffmoog.match.preset import Preset, load_preset

CATEGORICAL_MODES = ("fade", "switch")


def same_chain(a: Chain, b: Chain) -> bool:
    strip = lambda chain: {k: v for k, v in chain.spec.raw.items() if k != "preset"}  # noqa: E731
    return a.param_keys == b.param_keys and strip(a)["nodes"] == strip(b)["nodes"]


def interpolate(chain: Chain, a: dict, b: dict, t: float, categoricals: str = "fade") -> dict:
    """Params at position t in [0, 1] between a (t=0) and b (t=1); batch 1."""
    out = {}
    for fp in chain.free_params:
        va, vb = a[fp.key], b[fp.key]
        if fp.param.is_categorical:
            va, vb = chain._weights(fp, va).float(), chain._weights(fp, vb).float()
            out[fp.key] = (1 - t) * va + t * vb if categoricals == "fade" else (va if t < 0.5 else vb)
        else:
            out[fp.key] = (1 - t) * va.float() + t * vb.float()
    out[SEED_KEY] = a[SEED_KEY] if t < 0.5 else b[SEED_KEY]
    return out


def load_endpoint(path: str, args) -> Preset:
    if Path(path).suffix in (".yaml", ".yml"):
        return load_preset(path)
    from diffmoog.match.cli import load_chain_and_model
    from diffmoog.match.inputs import load_target
    from diffmoog.match.matcher import Matcher

    if args.chain is None and args.checkpoint is None:
        raise ConfigError(f"{path}: an audio endpoint is matched first; give --chain and/or --checkpoint")
    chain, model = load_chain_and_model(args.chain, args.checkpoint, "cpu")
    target = load_target(path, chain.sample_rate, chain.spec.duration)
    result = Matcher(chain, model, args.refine_steps, args.restarts, seed=args.seed).match(target, Path(path).stem)
    return Preset(chain, result.params, str(path))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="diffmoog-morph", description=__doc__.split("\n\n")[0])
    p.add_argument("a", help="preset YAML or audio file (t = 0)")
    p.add_argument("b", help="preset YAML or audio file (t = 1)")
    p.add_argument("--steps", type=int, default=8, help="number of sounds, endpoints included (>= 2)")
    p.add_argument("--categoricals", choices=CATEGORICAL_MODES, default="fade")
    p.add_argument("-o", "--output", default="morph")
    p.add_argument("--chain", help="for audio endpoints: chain to match with")
    p.add_argument("--checkpoint", help="for audio endpoints: encoder checkpoint")
    p.add_argument("--refine-steps", type=int, default=100)
    p.add_argument("--restarts", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    return p


def run(args) -> list[Path]:
    if args.steps < 2:
        raise ConfigError(f"--steps must be >= 2 (the two endpoints), got {args.steps}")
    set_threads("cpu")
    a, b = load_endpoint(args.a, args), load_endpoint(args.b, args)
    if not same_chain(a.chain, b.chain):
        raise ConfigError(f"{args.a} and {args.b} use different chains ({a.chain.name} vs {b.chain.name}); "
                          f"a morph needs the same chain")
    chain, out = a.chain, Path(args.output)
    written, clips = [], []
    for i in range(args.steps):
        t = i / (args.steps - 1)
        params = interpolate(chain, a.params, b.params, t, args.categoricals)
        audio, wav = render_and_save(out, f"morph_{i:02d}", chain, params, source=f"morph t={t:.4g}")
        clips.append(audio)
        written.append(wav)
    write_wav(out / "morph.wav", torch.cat(clips), chain.sample_rate)
    return written


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        written = run(args)
    except DiffmoogError as error:
        return fail("diffmoog-morph", error)
    print(f"wrote {len(written)} steps to {Path(args.output)}/ (morph_00..{len(written) - 1:02d}, morph.wav)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
