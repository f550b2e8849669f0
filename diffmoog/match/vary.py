"""diffmoog-vary: render variations around a preset.

    diffmoog-vary PRESET --n 8 --amount 0.1 [--seed 0] -o OUT

Each variation adds Gaussian noise of std `amount` to every continuous parameter in
normalised space (so log-scale parameters vary by a ratio, not by Hz), clamped to the
range, and switches each categorical to another random choice with probability `amount`.
Noise seeds stay the preset's. Variation i depends only on (--seed, i).
Writes OUT/var_XX.wav and OUT/var_XX.preset.yaml; --n is 1 .. 1000, --amount 0 .. 1.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from diffmoog import rng
from diffmoog.chain import SEED_KEY, Chain
from diffmoog.errors import DiffmoogError
from diffmoog.match.common import (MAX_OUTPUTS, Parser, check_not_input, check_number, check_output_dir, fail,
                                   render_and_save, set_threads, warner)
from diffmoog.preset import load_preset


def vary(chain: Chain, params: dict, amount: float, seed: int, index: int) -> dict:
    """One variation (batch 1) of `params`."""
    generator = torch.Generator().manual_seed(rng.stable_seed("vary", int(seed), int(index)))
    out = {SEED_KEY: params[SEED_KEY]}
    for fp in chain.free_params:
        value = params[fp.key]
        if fp.param.is_categorical:
            weights = chain.choice_weights(fp, value).float()
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


def variation_stems(n: int) -> list[str]:
    width = max(2, len(str(n - 1)))
    return [f"var_{i:0{width}d}" for i in range(n)]


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="diffmoog-vary", description=__doc__.split("\n\n")[0])
    p.add_argument("preset")
    p.add_argument("--n", type=int, default=8, help=f"number of variations (1 .. {MAX_OUTPUTS})")
    p.add_argument("--amount", type=float, default=0.1, help="normalised std of the changes (0 .. 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", default="variations")
    return p


def run(args, warn=None) -> list[Path]:
    warn = warn or warner("diffmoog-vary")
    check_number("--n", args.n, 1, MAX_OUTPUTS)
    check_number("--amount", args.amount, 0.0, 1.0)
    out = check_output_dir(args.output)
    stems = variation_stems(args.n)
    check_not_input([out / f"{stem}{suffix}" for stem in stems for suffix in (".wav", ".preset.yaml")], [args.preset])
    set_threads("cpu")
    preset = load_preset(args.preset, warn)
    chain, written = preset.chain, []
    for i, stem in enumerate(stems):
        params = vary(chain, preset.params, args.amount, args.seed, i)
        source = f"variation {i} of {args.preset} (amount {args.amount:g}, seed {args.seed})"
        written.append(render_and_save(out, stem, chain, params, source, warn=warn)[1])
    return written


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        written = run(args, warner("diffmoog-vary"))
    except DiffmoogError as error:
        return fail("diffmoog-vary", error)
    print(f"wrote {len(written)} variations to {Path(args.output)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
