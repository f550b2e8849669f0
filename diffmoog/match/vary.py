"""diffmoog-vary: render variations around a preset.

    diffmoog-vary PRESET --n 8 --amount 0.1 [--seed 0] -o OUT
    diffmoog-vary PRESET --prior [--checkpoint FLOW] [--ode-steps 32] --n 8 --amount 0.3 -o OUT

Each variation adds Gaussian noise of std `amount` to every continuous parameter in
normalised space (so log-scale parameters vary by a ratio, not by Hz), clamped to the
range, and switches each categorical to another random choice with probability `amount`.

With --prior, the variations stay on a flow checkpoint's prior over presets (default: the
committed examples/checkpoints/reduced_simple_osc_flow; the preset must be of its chain):
the preset is inverted to its noise z by integrating the prior's ODE backwards (t = 1 -> 0,
midpoint rule, --ode-steps steps), each variation mixes in fresh noise, sqrt(1 - a^2) z + a e
(a = --amount: 0 is the preset again, up to the round trip's error, 1 an independent sample of
the prior), and integrates forward. Knobs move together the way the prior's presets do, rather
than each on its own. Pitch-marked oscillators are relative to the pitch the preset records
(middle C if none), which each variation records.

Noise seeds stay the preset's. Variation i depends only on (--seed, i) and the other flags.
Writes OUT/var_XX.wav and OUT/var_XX.preset.yaml; --n is 1 .. 1000, --amount 0 .. 1,
--ode-steps 1 .. 1000.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

from diffmoog import rng
from diffmoog.chain import SEED_KEY, Chain
from diffmoog.errors import DiffmoogError
from diffmoog.match.common import (MAX_OUTPUTS, Parser, check_not_input, check_number, check_output_dir, fail,
                                   render_and_save, set_threads, warner)
from diffmoog.match.prior import (DEFAULT_INVERT_STEPS, DEFAULT_MIDI, Prior, check_same_chain, default_checkpoint,
                                  midi_hz, noise, pitch_record, preset_hz)
from diffmoog.preset import load_preset

MAX_ODE_STEPS = 1000


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


def prior_variations(prior: Prior, params: dict, pitch: dict, n: int, amount: float, seed: int,
                     steps: int) -> tuple[list[dict], float]:
    """`n` variations of `params` (batch 1) on the prior, as the module docstring says, and the
    reference pitch (Hz) they were made at."""
    hz = preset_hz(pitch) or midi_hz(DEFAULT_MIDI)
    z = prior.invert(params, hz, steps)
    keep, mix = math.sqrt(max(0.0, 1.0 - amount * amount)), float(amount)
    out = []
    for i in range(n):
        x = prior.forward(keep * z + mix * noise(prior.vector.dim, "vary-prior", int(seed), i), hz, steps)
        out.append(prior.decode(x, hz, params[SEED_KEY]))
    return out, hz


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
    p.add_argument("--prior", action="store_true",
                   help="vary on a flow checkpoint's prior: invert the preset to noise, mix in --amount of fresh "
                        "noise, integrate back (see above)")
    p.add_argument("--checkpoint", help="with --prior: the flow checkpoint (default: the committed "
                                        "examples/checkpoints/reduced_simple_osc_flow)")
    p.add_argument("--ode-steps", type=int, default=None,
                   help=f"with --prior: ODE steps each way (1 .. {MAX_ODE_STEPS}; default {DEFAULT_INVERT_STEPS})")
    return p


def run(args, warn=None) -> list[Path]:
    warn = warn or warner("diffmoog-vary")
    check_number("--n", args.n, 1, MAX_OUTPUTS)
    check_number("--amount", args.amount, 0.0, 1.0)
    check_number("--ode-steps", args.ode_steps, 1, MAX_ODE_STEPS)
    if not args.prior:
        for flag, value in (("--checkpoint", args.checkpoint), ("--ode-steps", args.ode_steps)):
            if value is not None:
                warn(f"{flag} applies to --prior only; without it, it is not used")
    out = check_output_dir(args.output)
    stems = variation_stems(args.n)
    check_not_input([out / f"{stem}{suffix}" for stem in stems for suffix in (".wav", ".preset.yaml")], [args.preset])
    set_threads("cpu")
    prior = Prior(default_checkpoint(args.checkpoint)) if args.prior else None
    preset = load_preset(args.preset, warn)
    chain, written = preset.chain, []
    if prior is not None:
        check_same_chain(chain, prior, args.preset)
        steps = args.ode_steps or DEFAULT_INVERT_STEPS
        variations, hz = prior_variations(prior, preset.params, preset.pitch, args.n, args.amount, args.seed, steps)
        for i, (stem, params) in enumerate(zip(stems, variations)):
            source = (f"prior variation {i} of {args.preset} (amount {args.amount:g}, seed {args.seed}, "
                      f"{steps} ODE steps, {prior.checkpoint})")
            written.append(render_and_save(out, stem, chain, params, source, warn=warn, pitch=pitch_record(hz))[1])
        return written
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
