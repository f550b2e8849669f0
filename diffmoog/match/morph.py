"""diffmoog-morph: render an interpolation between two presets (or two matched sounds).

    diffmoog-morph A B --steps 8 -o OUT [--categoricals fade|switch]
    diffmoog-morph A B --steps 8 --through-prior [--checkpoint FLOW] [--ode-steps 32] -o OUT

A and B are preset YAMLs, or audio files that are matched first (then give --chain and/or
--checkpoint, as for diffmoog-match). Continuous parameters interpolate linearly in
normalised space, which is log space for log-scale parameters (frequencies, times).
Categorical choices cross-fade their weights (`fade`, the default: every built-in module
renders soft choice weights as a mix) or `switch` from A's to B's at the midpoint. Noise
keeps A's seed for the first half and B's for the second, so both endpoints are exact.
Writes OUT/morph_XX.wav + .preset.yaml per step and OUT/morph.wav (all steps in a row).
Every value written stays in its parameter's range (continuous values are clamped against
float rounding; a preset read with an out-of-range value was clamped, with a warning).
--steps is 2 .. 1000, and all steps together (morph.wav) stay within spec.MAX_SOUND_SAMPLES.

--through-prior morphs along a flow checkpoint's prior over presets instead (--checkpoint,
which must then be a flow, default the committed examples/checkpoints/reduced_simple_osc_flow;
both presets must be of its chain): A and B are inverted to their noises by integrating the prior's ODE
backwards (t = 1 -> 0, midpoint rule, --ode-steps steps), each step in between integrates
forward from the spherical interpolation of the two noises, at the geometric mean of A's and
B's recorded pitches (middle C for one that records none) weighted by t, which it records.
The in-between presets are the prior's (choices decoded by argmax, so --categoricals does not
apply); the endpoints are A and B themselves, exact.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

import math

from diffmoog.chain import SEED_KEY, Chain
from diffmoog.errors import ConfigError, DiffmoogError
from diffmoog.match.common import (MAX_OUTPUTS, Parser, check_not_input, check_number, check_output_dir,
                                   check_refine_flags, check_restarts, fail, render_and_save, set_threads,
                                   warner, write_wav)
from diffmoog.match.prior import (DEFAULT_INVERT_STEPS, DEFAULT_MIDI, Prior, check_same_chain, default_checkpoint,
                                  midi_hz, pitch_record, preset_hz, same_chain, slerp)
from diffmoog.preset import Preset, load_preset
from diffmoog.spec import length_problem

CATEGORICAL_MODES = ("fade", "switch")
MAX_ODE_STEPS = 1000


def interpolate(chain: Chain, a: dict, b: dict, t: float, categoricals: str = "fade") -> dict:
    """Params at position t in [0, 1] between a (t=0) and b (t=1); batch 1. Continuous values
    are clamped to [0, 1], so float rounding never puts one outside its range."""
    out = {}
    for fp in chain.free_params:
        va, vb = a[fp.key], b[fp.key]
        if fp.param.is_categorical:
            va, vb = chain.choice_weights(fp, va).float(), chain.choice_weights(fp, vb).float()
            out[fp.key] = (1 - t) * va + t * vb if categoricals == "fade" else (va if t < 0.5 else vb)
        else:
            out[fp.key] = ((1 - t) * va.float() + t * vb.float()).clamp(0.0, 1.0)
    out[SEED_KEY] = a[SEED_KEY] if t < 0.5 else b[SEED_KEY]
    return out


class PriorPath:
    """A and B's noises under a flow's prior: `at(t)` is the preset between them at t in (0, 1)."""

    def __init__(self, prior: Prior, a: Preset, b: Preset, steps: int):
        self.prior, self.steps, self.a, self.b = prior, steps, a, b
        self.hz = [preset_hz(p.pitch) or midi_hz(DEFAULT_MIDI) for p in (a, b)]
        self.noise = [prior.invert(p.params, hz, steps) for p, hz in zip((a, b), self.hz)]

    def pitch_hz(self, t: float) -> float:
        return 2.0 ** ((1.0 - t) * math.log2(self.hz[0]) + t * math.log2(self.hz[1]))

    def at(self, t: float) -> dict:
        hz = self.pitch_hz(t)
        x = self.prior.forward(slerp(self.noise[0], self.noise[1], t), hz, self.steps)
        return self.prior.decode(x, hz, (self.a if t < 0.5 else self.b).params[SEED_KEY])


def is_preset(path: str) -> bool:
    return Path(path).suffix in (".yaml", ".yml")


def load_endpoint(path: str, args, warn=None) -> Preset:
    if is_preset(path):
        return load_preset(path, warn)
    from diffmoog.match.cli import load_chain_and_model
    from diffmoog.match.inputs import load_target
    from diffmoog.match.matcher import Matcher

    if args.chain is None and args.checkpoint is None:
        raise ConfigError(f"{path}: an audio endpoint is matched first; give --chain and/or --checkpoint")
    chain, model = load_chain_and_model(args.chain, args.checkpoint, "cpu")
    check_restarts(args.restarts, chain)
    target = load_target(path, chain.sample_rate, chain.spec.duration)
    result = Matcher(chain, model, args.refine_steps, args.restarts, seed=args.seed).match(target, Path(path).stem)
    return Preset(chain, result.params, str(path))


def step_stems(steps: int) -> list[str]:
    width = max(2, len(str(steps - 1)))
    return [f"morph_{i:0{width}d}" for i in range(steps)]


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="diffmoog-morph", description=__doc__.split("\n\n")[0])
    p.add_argument("a", help="preset YAML or audio file (t = 0)")
    p.add_argument("b", help="preset YAML or audio file (t = 1)")
    p.add_argument("--steps", type=int, default=8, help=f"number of sounds, endpoints included (2 .. {MAX_OUTPUTS})")
    p.add_argument("--categoricals", choices=CATEGORICAL_MODES, default=None,
                   help="how choices cross over: fade their weights (default) or switch at the midpoint")
    p.add_argument("-o", "--output", default="morph")
    p.add_argument("--chain", help="for audio endpoints: chain to match with")
    p.add_argument("--checkpoint", help="for audio endpoints: encoder checkpoint; with --through-prior: the flow "
                                        "(default: the committed examples/checkpoints/reduced_simple_osc_flow)")
    p.add_argument("--refine-steps", type=int, default=100, help="for audio endpoints (>= 0)")
    p.add_argument("--restarts", type=int, default=4, help="for audio endpoints (>= 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--through-prior", action="store_true",
                   help="morph along a flow checkpoint's prior: interpolate the presets' noises (see above)")
    p.add_argument("--ode-steps", type=int, default=None,
                   help=f"with --through-prior: ODE steps each way (1 .. {MAX_ODE_STEPS}; default {DEFAULT_INVERT_STEPS})")
    return p


def run(args, warn=None) -> list[Path]:
    warn = warn or warner("diffmoog-morph")
    check_number("--steps", args.steps, 2, MAX_OUTPUTS)
    check_number("--ode-steps", args.ode_steps, 1, MAX_ODE_STEPS)
    if args.through_prior and args.categoricals is not None:
        warn("--categoricals does not apply to --through-prior (the prior decodes each choice); not used")
    if not args.through_prior and args.ode_steps is not None:
        warn("--ode-steps applies to --through-prior only; without it, it is not used")
    categoricals = args.categoricals or "fade"
    audio_endpoints = [path for path in (args.a, args.b) if not is_preset(path)]
    if audio_endpoints:
        check_refine_flags(args.refine_steps, args.restarts, args.checkpoint)
    out = check_output_dir(args.output)
    stems = step_stems(args.steps)
    outputs = [out / "morph.wav"] + [out / f"{stem}{suffix}" for stem in stems for suffix in (".wav", ".preset.yaml")]
    check_not_input(outputs, [args.a, args.b])
    set_threads("cpu")
    # The prior before any endpoint: loading it is quick, matching an audio endpoint is not.
    prior = Prior(default_checkpoint(args.checkpoint)) if args.through_prior else None
    # Presets first (quick to check), then audio endpoints (each a match).
    loaded = {path: load_endpoint(path, args, warn) for path in sorted({args.a, args.b}, key=is_preset, reverse=True)}
    a, b = loaded[args.a], loaded[args.b]
    if not same_chain(a.chain, b.chain):
        raise ConfigError(f"{args.a} and {args.b} use different chains ({a.chain.name} vs {b.chain.name}); "
                          f"a morph needs the same chain")
    chain = a.chain
    different = [key for key in ("sample_rate", "duration", "note_off")
                 if getattr(a.chain.spec, key) != getattr(b.chain.spec, key)]
    if different:
        warn(f"{args.b}: its {', '.join(different)} differ from {args.a}'s; every step uses {args.a}'s")
    too_long = length_problem(args.steps * chain.spec.duration, chain.sample_rate)
    if too_long:
        raise ConfigError(f"--steps {args.steps}: morph.wav holds all steps in a row, too long ({too_long})")
    path = None
    if prior is not None:
        for preset, name in ((a, args.a), (b, args.b)):
            check_same_chain(preset.chain, prior, name)
        path = PriorPath(prior, a, b, args.ode_steps or DEFAULT_INVERT_STEPS)
    written, clips = [], []
    for i, stem in enumerate(stems):
        t = i / (args.steps - 1)
        pitch = None
        if path is not None and 0 < i < args.steps - 1:
            params, pitch = path.at(t), pitch_record(path.pitch_hz(t))
        else:  # the endpoints are A and B themselves, with --through-prior too
            params = interpolate(chain, a.params, b.params, t, categoricals)
            if path is not None:
                pitch = (a if i == 0 else b).pitch or None
        source = f"morph t={t:.4g}" + (f" through the prior of {prior.checkpoint}" if path is not None else "")
        audio, wav = render_and_save(out, stem, chain, params, source=source, warn=warn, pitch=pitch)
        clips.append(audio)
        written.append(wav)
    write_wav(out / "morph.wav", torch.cat(clips), chain.sample_rate)
    return written


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        written = run(args, warner("diffmoog-morph"))
    except DiffmoogError as error:
        return fail("diffmoog-morph", error)
    names = [path.name.removesuffix(".wav") for path in written]
    print(f"wrote {len(written)} steps to {Path(args.output)}/ ({names[0]}..{names[-1][len('morph_'):]}, morph.wav)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
