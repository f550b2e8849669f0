"""diffmoog-vary: render variations around a preset.

    diffmoog-vary PRESET --n 8 --amount 0.1 [--seed 0] -o OUT

Each variation adds Gaussian noise of std `amount` to every continuous parameter in
normalised space (so log-scale parameters vary by a ratio, not by Hz), clamped to the
range, and switches each categorical to another random choice with probability `amount`.
Noise seeds stay the preset's. Variation i depends only on (--seed, i).
Writes OUT/var_XX.wav and OUT/var_XX.preset.yaml.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from diffmoog import rng
from diffmoog.chain import SEED_KEY, Chain
from diffmoog.errors import ConfigError, DiffmoogError
from diffmoog.match.common import fail, render_and_save, set_threads
from diffmoog.match.preset import load_preset


def vary(chain: Chain, params: dict, amount: float, seed: int, index: int) -> dict:
    """One variation (batch 1) of `params`."""
    generator = torch.Generator().manual_seed(rng.stable_seed("vary", int(seed), int(index)))
    out = {SEED_KEY: params[SEED_KEY]}
    for fp in chain.free_params:
        value = params[fp.key]
        if fp.param.is_categorical:
            weights = chain._weights(fp, value).float()
            k = weights.shape[-1]
            choice = int(weights.argmax(-1)[0])
            if k > 1 and float(torch.rand((), generator=generator)) < amount:
                other = int(torch.randint(k - 1, (), generator=generator))
                choice = other + (other >= choice)  # any choice but the current one
            out[fp.key] = fp.param.one_hot(torch.tensor([choice]))
        else:
            noise = torch.randn(value.shape, generator=generator) * amount
            out[fp.key] = (value.float() + noise).clamp(0.0, 1.0)
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="diffmoog-vary", description=__doc__.split("\n\n")[0])
    p.add_argument("preset")
    p.add_argument("--n", type=int, default=8, help="number of variations")
    p.add_argument("--amount", type=float, default=0.1, help="normalised std of the changes (0..1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", default="variations")
    return p


def run(args) -> list[Path]:
    if args.n < 1:
        raise ConfigError(f"--n must be >= 1, got {args.n}")
    if not 0.0 <= args.amount <= 1.0:
        raise ConfigError(f"--amount must be in [0, 1], got {args.amount}")
    set_threads("cpu")
    preset = load_preset(args.preset)
    chain, out, written = preset.chain, Path(args.output), []
    for i in range(args.n):
        params = vary(chain, preset.params, args.amount, args.seed, i)
        source = f"variation {i} of {args.preset} (amount {args.amount:g}, seed {args.seed})"
        written.append(render_and_save(out, f"var_{i:02d}", chain, params, source)[1])
    return written


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        written = run(args)
    except DiffmoogError as error:
        return fail("diffmoog-vary", error)
    print(f"wrote {len(written)} variations to {Path(args.output)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
