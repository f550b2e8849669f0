"""render-preset: play a preset at any pitch, length and sample rate.

    render-preset PRESET.yaml -o out.wav [--note-off S] [--duration S] [--sample-rate R] [--pitch MIDI]

Pitch rule (diffmoog/match/tuning.py): every parameter the chain marks `pitch: note` (the
built-in chains mark each audio-rate oscillator's free `freq_hz`; LFOs are left alone) is
scaled by the same factor, the one that moves the first marked one (in the chain's order) to
the MIDI note's frequency (440 * 2^((midi - 69) / 12) Hz). So intervals between them (detune,
FM ratios) are kept. Unmarked and `fixed:` frequencies do not move; a chain with no marks
refuses --pitch.

Limits: --pitch is a MIDI note, 0 .. 127; a note at or above the render's Nyquist frequency
(half the sample rate) is refused (give a higher --sample-rate). An oscillator moved outside
its parameter range still plays (the preset outside the range it was made for) and an
oscillator above Nyquist aliases: both are printed as warnings. --duration and
--sample-rate together stay within spec.MAX_SOUND_SAMPLES, checked before rendering. A
render that comes out silent is written, with a warning.
"""
from __future__ import annotations

import argparse
import math
import sys

import torch

from diffmoog.analysis.pitch import midi_to_hz
from diffmoog.errors import ConfigError, DiffmoogError
from diffmoog.match.common import (Parser, check_not_input, check_number, check_output_file, fail,
                                   set_threads, silence_problem, warner, write_wav)
from diffmoog.preset import load_preset
from diffmoog.match.tuning import no_pitch_problem, retune
from diffmoog.spec import length_problem

MIDI_RANGE = (0, 127)
MAX_SAMPLE_RATE = 2 ** 31 - 1  # what a wav header's sample-rate field holds


def transpose(chain, params: dict, midi: float) -> dict:
    """Params with the pitch-marked parameters moved to `midi` (the rule in diffmoog/match/tuning.py)."""
    if not chain.pitch_keys:
        raise ConfigError(f"--pitch: {no_pitch_problem(chain)}")
    return retune(chain, params, midi_to_hz(float(midi)))


def frequency_warnings(chain, params: dict, sample_rate: int, midi: float | None = None) -> list[str]:
    """Audio oscillators above the render's Nyquist frequency (they alias), and, after
    --pitch, pitch-marked parameters moved outside their parameter range."""
    nyquist = sample_rate / 2
    out = []
    free, marked = set(chain.param_keys), set(chain.pitch_keys)
    for name, node in chain.spec.nodes.items():
        for param_name in node.params:
            key = f"{name}.{param_name}"
            audio = param_name == "freq_hz" and node.module.endswith("oscillator")
            if not audio and key not in marked:
                continue
            if key in free:
                param = chain.free_param(key).param
                normalized = float(params[key].reshape(-1)[0])
                hz = float(param.to_physical(params[key].double()).reshape(-1)[0])
            elif param_name in node.fixed:
                param, normalized, hz = None, 0.5, float(node.fixed[param_name])
            else:
                continue
            if audio and hz >= nyquist:
                out.append(f"{key} is {hz:.1f} Hz, above the Nyquist frequency ({nyquist:g} Hz) of a {sample_rate} "
                           f"Hz render: it aliases (sounds at a wrong pitch); give a higher --sample-rate")
            elif key in marked and midi is not None and not -1e-6 <= normalized <= 1 + 1e-6:
                out.append(f"--pitch {midi:g} moves {key} to {hz:.1f} Hz, outside its range {param.low:.6g} .. "
                           f"{param.high:.6g} Hz: the preset plays outside the range it was made for")
    return out


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="render-preset", description="Render a preset YAML to a wav.")
    p.add_argument("preset")
    p.add_argument("-o", "--output", required=True, help="output wav")
    p.add_argument("--note-off", type=float, help="note-off time in seconds (default: the preset's)")
    p.add_argument("--duration", type=float, help="seconds (default: the preset's)")
    p.add_argument("--sample-rate", type=int, help="Hz, >= 1000 (default: the preset's)")
    p.add_argument("--pitch", type=float, help="MIDI note number 0 .. 127 (60 = middle C); see the pitch rule")
    return p


def run(args, warn=None) -> str:
    warn = warn or warner("render-preset")
    check_number("--duration", args.duration, above=0)
    check_number("--note-off", args.note_off, 0)
    check_number("--sample-rate", args.sample_rate, 1000, MAX_SAMPLE_RATE)
    check_number("--pitch", args.pitch, *MIDI_RANGE)
    output = check_output_file(args.output, suffix=".wav")
    check_not_input([output], [args.preset])
    set_threads("cpu")
    preset = load_preset(args.preset, warn)
    chain, params = preset.chain, preset.params
    sample_rate = args.sample_rate or chain.sample_rate
    duration = args.duration if args.duration is not None else chain.spec.duration
    problem = length_problem(duration, sample_rate)
    if problem:  # checked before any buffer is allocated
        given = [flag for flag, value in (("--duration", args.duration), ("--sample-rate", args.sample_rate))
                 if value is not None]
        raise ConfigError(f"{'/'.join(given) or args.preset}: {problem}")
    if args.pitch is not None:
        hz = midi_to_hz(args.pitch)
        if hz >= sample_rate / 2:
            raise ConfigError(f"--pitch {args.pitch:g} is {hz:.1f} Hz, at or above the Nyquist frequency "
                              f"({sample_rate / 2:g} Hz) of a {sample_rate} Hz render; give --sample-rate "
                              f"{math.floor(2 * hz) + 1} or more, or a lower --pitch")
        params = transpose(chain, params, args.pitch)
    for message in frequency_warnings(chain, params, sample_rate, args.pitch):
        warn(message)
    with torch.no_grad():
        audio = chain.render(params, sample_rate=sample_rate, duration=args.duration, note_off=args.note_off)
    write_wav(output, audio[0], sample_rate)
    silent = silence_problem(audio[0])
    if silent:
        warn(f"{output}: {silent}; check the preset's levels, envelope and --note-off")
    return args.output


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        out = run(args, warner("render-preset"))
    except DiffmoogError as error:
        return fail("render-preset", error)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
