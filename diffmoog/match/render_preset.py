"""render-preset: play a preset at any pitch, length and sample rate.

    render-preset PRESET.yaml -o out.wav [--note-off S] [--duration S] [--sample-rate R] [--pitch MIDI]

Pitch rule: every free `freq_hz` of an audio oscillator (a module whose type ends in
"oscillator"; LFOs are left alone) is scaled by the same factor, the one that moves the
first such oscillator (in the chain's order) to the MIDI note's frequency
(440 * 2^((midi - 69) / 12) Hz). So intervals between oscillators (detune, FM ratios) are
kept. Frequencies pinned by the chain's `fixed:` are not free and do not move.
"""
from __future__ import annotations

import argparse
import math
import sys

import torch

from diffmoog.errors import ConfigError, DiffmoogError
from diffmoog.match.common import fail, set_threads, write_wav
from diffmoog.match.preset import load_preset


def midi_to_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((float(midi) - 69.0) / 12.0)


def oscillator_freq_keys(chain) -> list[str]:
    """Free audio-oscillator pitch keys, in chain order."""
    return [fp.key for fp in chain.free_params if fp.param.name == "freq_hz"
            and chain.spec.nodes[fp.node].module.endswith("oscillator")]


def transpose(chain, params: dict, midi: float) -> dict:
    """Params with the oscillators moved to `midi` (see the module docstring for the rule)."""
    keys = oscillator_freq_keys(chain)
    if not keys:
        raise ConfigError(f"--pitch: chain {chain.name} has no free oscillator freq_hz to set")
    reference = chain.free_param(keys[0]).param
    ratio = midi_to_hz(midi) / float(reference.to_physical(params[keys[0]].double()))
    out = dict(params)
    for key in keys:
        param = chain.free_param(key).param
        hz = param.to_physical(params[key].double()) * ratio
        # Normalised values may leave [0, 1]: the preset plays outside its training range.
        if param.scale == "log":
            normalized = (torch.log(hz) - math.log(param.low)) / (math.log(param.high) - math.log(param.low))
        else:
            normalized = (hz - param.low) / (param.high - param.low)
        out[key] = normalized.float()
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="render-preset", description="Render a preset YAML to a wav.")
    p.add_argument("preset")
    p.add_argument("-o", "--output", required=True, help="output wav")
    p.add_argument("--note-off", type=float, help="note-off time in seconds (default: the preset's)")
    p.add_argument("--duration", type=float, help="seconds (default: the preset's)")
    p.add_argument("--sample-rate", type=int, help="Hz (default: the preset's)")
    p.add_argument("--pitch", type=float, help="MIDI note number (60 = middle C); see the pitch rule")
    return p


def run(args) -> str:
    if args.duration is not None and args.duration <= 0:
        raise ConfigError(f"--duration must be > 0, got {args.duration}")
    if args.note_off is not None and args.note_off < 0:
        raise ConfigError(f"--note-off must be >= 0, got {args.note_off}")
    if args.sample_rate is not None and args.sample_rate < 1000:
        raise ConfigError(f"--sample-rate must be >= 1000, got {args.sample_rate}")
    set_threads("cpu")
    preset = load_preset(args.preset)
    chain, params = preset.chain, preset.params
    if args.pitch is not None:
        params = transpose(chain, params, args.pitch)
    sample_rate = args.sample_rate or chain.sample_rate
    with torch.no_grad():
        audio = chain.render(params, sample_rate=sample_rate, duration=args.duration, note_off=args.note_off)
    write_wav(args.output, audio[0], sample_rate)
    return args.output


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        out = run(args)
    except DiffmoogError as error:
        return fail("render-preset", error)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
