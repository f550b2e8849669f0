"""diffmoog-generate: new presets drawn from a flow checkpoint's prior (no target sound).

    diffmoog-generate [--checkpoint FLOW] [--n 16] [--pitch MIDI] [--temperature T] [--steps S]
                      [--seed 0] [--keep PRESET.yaml --free 'lpf.cutoff_hz,env.*'] -o OUT

The flow (train/flow.py) was trained with conditioning dropout, so under its learned null
condition it is an unconditional prior over its chain's presets. Each preset integrates the
flow's ODE (midpoint rule, --steps steps; default the checkpoint's sample_steps) from Gaussian
noise scaled by --temperature (> 0, at most 10; below 1 stays nearer the prior's typical
presets, above 1 wanders further). Pitch-marked oscillators come out relative to --pitch, a
MIDI note (default 60, middle C, the flow's reference pitch; with --keep, the pitch the kept
preset records, if any), which every preset records as its `pitch`.

Inpainting: --keep PRESET --free PATTERNS draws only the knobs matching the comma-separated
fnmatch patterns over `node.param` keys; the others are held on the straight path
(1 - t) * noise + t * value that rectified-flow training used, at every step of the ODE (the
replacement trick), so the free knobs are sampled given them and the kept ones end exactly
at the preset's values (written from the preset itself, so not even float rounding moves
them). The preset must be of the checkpoint's chain; it also gives its noise seed and its
sample rate, duration and note-off. Without --keep, each preset has its own noise seed.

Classes (match/classes.py): --build-classes NSYNTH_SPLIT [--per-class 64] [--classes-out PATH]
embeds up to --per-class seeded notes of every family (and drum kind) of an NSynth split into
a table, `<checkpoint>/classes.safetensors` by default, and writes nothing else. Then
--family brass (or --kind snare) generates from the posterior given a labelled note: preset i
takes one of the label's stored conditions (a seeded choice: depends on --seed and i only) and
integrates with classifier-free guidance --guidance w (> 0, at most 20; default 2; 1 is the
plain posterior, larger follows the note further from the prior), at that note's tracked
pitch, or --pitch (a note with no clear pitch, such as a drum, gives pitch-marked oscillators
relative to middle C). --classes PATH reads another table. Without a label there is no
condition, so there is no --guidance either.

Writes OUT/gen_XX.preset.yaml, .wav and .png (a spectrogram) per preset, and OUT/summary.json:
the settings, every preset's values and the spread (std of normalised values) of each
generated knob across the presets. The same flags (--seed included) write the same files,
byte for byte, and preset i depends only on the flags and i, not on --n. --n is 1 .. 1000,
--steps 1 .. 1000; flags are checked before any work.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from diffmoog.chain import SEED_KEY
from diffmoog.errors import ConfigError, DiffmoogError
from diffmoog.match.classes import ClassTable, build_table, default_table
from diffmoog.match.common import (MAX_OUTPUTS, Parser, check_not_input, check_number, check_output_dir,
                                   check_output_file, fail, mkdir, render_and_save, set_threads, warner, writing)
from diffmoog.match.plots import plot_sound
from diffmoog.match.prior import (DEFAULT_MIDI, MIDI_RANGE, Prior, check_same_chain, default_checkpoint,
                                  match_keys, midi_hz, noise, pitch_record, preset_hz, split_patterns)
from diffmoog.preset import load_preset, physical_values

PROG = "diffmoog-generate"
MAX_STEPS = 1000  # ODE steps: 8 are the trained default; far beyond 1000 is a typo, not precision
MAX_TEMPERATURE = 10.0  # noise 10x wider than the prior's: past it every knob just sits at a range end
DEFAULT_GUIDANCE = 2.0  # a labelled note's pull, doubled against the prior: the label shows, knobs still vary
MAX_GUIDANCE = 20.0  # far past it the guided velocity overshoots and every knob ends at a range end
DEFAULT_PER_CLASS = 64


def stems(n: int) -> list[str]:
    width = max(2, len(str(n - 1)))
    return [f"gen_{i:0{width}d}" for i in range(n)]


def parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", help="a flow checkpoint (default: the committed "
                                        "examples/checkpoints/reduced_simple_osc_flow)")
    p.add_argument("--n", type=int, default=16, help=f"number of presets (1 .. {MAX_OUTPUTS}; default 16)")
    p.add_argument("--pitch", type=float, default=None,
                   help="MIDI note the pitch-marked oscillators are generated around (0 .. 127; default 60, "
                        "or with --keep the pitch the preset records)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help=f"scale of the starting noise (> 0, at most {MAX_TEMPERATURE:g}; default 1)")
    p.add_argument("--steps", type=int, default=None,
                   help=f"ODE steps (1 .. {MAX_STEPS}; default the checkpoint's sample_steps)")
    p.add_argument("--seed", type=int, default=0, help="the same seed (and flags) writes the same files")
    p.add_argument("--keep", metavar="PRESET", help="inpainting: hold this preset's knobs except --free")
    p.add_argument("--free", metavar="PATTERNS",
                   help="with --keep: comma-separated node.param patterns to generate, e.g. 'lpf.cutoff_hz,env.*'")
    p.add_argument("--family", help="generate presets of this NSynth family (brass, string, drum...; needs a "
                                    "class table, see --build-classes)")
    p.add_argument("--kind", help="generate presets of this drum kind (kick, snare, hat, tom, cymbal, clap)")
    p.add_argument("--guidance", type=float, default=None,
                   help=f"with --family/--kind: classifier-free guidance (> 0, at most {MAX_GUIDANCE:g}; "
                        f"default {DEFAULT_GUIDANCE:g})")
    p.add_argument("--classes", metavar="TABLE", help="the class table to read (default "
                                                      "<checkpoint>/classes.safetensors)")
    p.add_argument("--build-classes", metavar="NSYNTH_SPLIT",
                   help="build the class table from this NSynth split folder instead of generating")
    p.add_argument("--per-class", type=int, default=None,
                   help=f"with --build-classes: notes per label (1 .. {MAX_OUTPUTS}; default {DEFAULT_PER_CLASS})")
    p.add_argument("--classes-out", metavar="PATH", help="with --build-classes: where to write the table "
                                                         "(default <checkpoint>/classes.safetensors)")
    p.add_argument("-o", "--output", default="generated", help="output folder")
    return p


def check_args(args) -> None:
    """Every flag, before any work (loading the checkpoint included)."""
    check_number("--n", args.n, 1, MAX_OUTPUTS)
    check_number("--temperature", args.temperature, above=0, maximum=MAX_TEMPERATURE)
    check_number("--steps", args.steps, 1, MAX_STEPS)
    check_number("--pitch", args.pitch, *MIDI_RANGE)
    if args.free is not None and args.keep is None:
        raise ConfigError("--free needs --keep PRESET (the preset whose other knobs are kept)")
    if args.keep is not None and args.free is None:
        raise ConfigError(f"--keep {args.keep} needs --free PATTERNS (the knobs to generate, e.g. 'lpf.*')")
    check_number("--guidance", args.guidance, above=0, maximum=MAX_GUIDANCE)
    check_number("--per-class", args.per_class, 1, MAX_OUTPUTS)
    if args.family is not None and args.kind is not None:
        raise ConfigError("give --family or --kind, not both (a preset is generated from one label)")
    if args.build_classes is not None:
        given = [flag for flag, value in (("--family", args.family), ("--kind", args.kind), ("--keep", args.keep),
                                          ("--guidance", args.guidance), ("--classes", args.classes)) if value]
        if given:
            raise ConfigError(f"--build-classes only builds the table; {given[0]} belongs to a generating run")
        if not Path(args.build_classes).exists():
            raise ConfigError(f"--build-classes {args.build_classes}: no such NSynth split folder")
        return
    for flag, value in (("--per-class", args.per_class), ("--classes-out", args.classes_out)):
        if value is not None:
            raise ConfigError(f"{flag} belongs to --build-classes NSYNTH_SPLIT (building the class table)")
    if args.family is None and args.kind is None:
        for flag, value in (("--guidance", args.guidance), ("--classes", args.classes)):
            if value is not None:
                raise ConfigError(f"{flag} needs --family or --kind: the prior alone has no condition to guide")


def spread(chain, samples: list[dict], keys: list[str]) -> dict:
    """Per generated knob: the std of its normalised values across the presets (a continuous
    knob), or how many presets chose each choice (a categorical)."""
    out = {}
    for key in keys:
        param = chain.free_param(key).param
        if param.is_categorical:
            picks = [int(s[key].reshape(1, -1).argmax(-1)[0]) for s in samples]
            out[key] = {choice: picks.count(i) for i, choice in enumerate(param.choices)}
        else:
            values = torch.cat([s[key].double().reshape(-1) for s in samples])
            out[key] = round(float(values.std(unbiased=False)), 6)
    return out


def sample_one(prior: Prior, i: int, seed: int, temperature: float, steps: int, hz: float, seed_key: torch.Tensor,
               label=None, keep=None) -> tuple[dict, dict, str | None]:
    """Preset i: (normalised params, its pitch record, the labelled note it was conditioned on).

    `label` = (ClassTable, group, label, guidance, fixed_pitch): sample the posterior given one
    of the label's notes (at `hz` when fixed_pitch, else at the note's pitch); None: the prior at
    `hz`. `keep` = (column mask, preset params): inpainting, the masked knobs held."""
    z = noise(prior.vector.dim, "generate", seed, i) * temperature
    condition, note, cond_hz, ref_hz, pitch_source, guidance = None, None, hz, hz, "prior", 1.0
    if label is not None:
        table, group, name, guidance, fixed_pitch = label
        condition, note_hz, note = table.pick(group, name, seed, i)
        if not fixed_pitch:
            # The labelled note's own pitch; with none (a drum hit), the condition says "no
            # pitch", as in training, and pitch-marked knobs are relative to middle C.
            cond_hz = note_hz
            ref_hz = note_hz if note_hz > 0 else midi_hz(DEFAULT_MIDI)
            pitch_source = "class note" if note_hz > 0 else "none (middle C reference)"
        condition = prior.with_pitch(condition, cond_hz)
    hold = None if keep is None else (keep[0], z, prior.encode(keep[1], ref_hz))
    x = prior.forward(z, cond_hz, steps, hold=hold, condition=condition, guidance=guidance)
    return prior.decode(x, ref_hz, seed_key), pitch_record(ref_hz, pitch_source), note


def build(args) -> dict:
    """--build-classes: the class table for the checkpoint, nothing else written."""
    checkpoint = default_checkpoint(args.checkpoint)
    out = check_output_file(args.classes_out or default_table(checkpoint), "--classes-out", ".safetensors")
    set_threads("cpu")
    prior = Prior(checkpoint)
    per_class = args.per_class or DEFAULT_PER_CLASS
    metadata = build_table(prior.model, prior.chain, args.build_classes, per_class, args.seed, checkpoint, out)
    notes = json.loads(metadata["notes"])
    return {"built": str(out), "per_class": per_class, "labels": json.loads(metadata["labels"]),
            "counts": {key: len(names) for key, names in notes.items()}, "bytes": out.stat().st_size}


def run(args, warn=None) -> dict:
    warn = warn or warner(PROG)
    check_args(args)
    if args.build_classes is not None:
        return build(args)
    patterns = split_patterns(args.free) if args.free is not None else None
    out = check_output_dir(args.output)
    names = stems(args.n)
    outputs = [out / "summary.json"] + [out / f"{stem}{suffix}" for stem in names
                                        for suffix in (".wav", ".preset.yaml", ".png")]
    check_not_input(outputs, [args.keep] if args.keep else [])
    set_threads("cpu")
    checkpoint = default_checkpoint(args.checkpoint)
    prior = Prior(checkpoint)
    group, label = ("family", args.family) if args.family is not None else ("kind", args.kind)
    table = guidance = None
    if label is not None:
        table = ClassTable(Path(args.classes) if args.classes else default_table(checkpoint), checkpoint,
                           prior.condition_size, f"--{group} {label}")
        table.check(group, label)
        guidance = DEFAULT_GUIDANCE if args.guidance is None else args.guidance
    chain, preset, kept = prior.chain, None, []
    if args.keep is not None:
        preset = load_preset(args.keep, warn)
        check_same_chain(preset.chain, prior, args.keep)
        free = match_keys(prior.chain, patterns)
        kept = [key for key in prior.chain.param_keys if key not in free]
        chain = preset.chain  # its sample rate, duration and note-off: the user's sound
        if not kept:
            warn(f"--free matches every knob: nothing of {args.keep} is kept but its noise seed")
    else:
        free = list(chain.param_keys)
    fixed_pitch = args.pitch is not None or (preset is not None and preset_hz(preset.pitch) is not None)
    if args.pitch is not None:
        hz = midi_hz(args.pitch)
    elif preset is not None and preset_hz(preset.pitch) is not None:
        hz = preset_hz(preset.pitch)
    else:
        hz = midi_hz(DEFAULT_MIDI)
    if chain.pitch_keys and (table is None or fixed_pitch):
        first = chain.free_param(chain.pitch_keys[0]).param
        if not first.low <= hz <= first.high:
            warn(f"--pitch: {hz:.1f} Hz is outside {chain.pitch_keys[0]}'s range {first.low:g} .. {first.high:g} Hz; "
                 f"generated oscillators are clamped to their ranges")
    steps = args.steps or prior.sample_steps

    mask = prior.columns(kept) if kept else None
    seeds = (preset.params[SEED_KEY].expand(args.n) if preset is not None else chain.item_seeds(args.n, args.seed))
    mkdir(out)
    samples, sounds = [], []
    for i, stem in enumerate(tqdm(names, desc="generating", unit="preset", file=sys.stderr)):
        params, record, note = sample_one(prior, i, args.seed, args.temperature, steps, hz, seeds[i],
                                          None if table is None else (table, group, label, guidance, fixed_pitch),
                                          None if mask is None else (mask, preset.params))
        for key in kept:
            # The ODE ends on the kept values in the flow's vector, but decoding (log2 for the
            # pitch-relative oscillators, in float32) may move them by an ulp: write the preset's own.
            params[key] = preset.params[key].clone()
        what = "prior sample" if table is None else f"{group} {label} sample (like {note}, guidance {guidance:g})"
        source = (f"{what} {i} of {prior.checkpoint} (seed {args.seed}, temperature {args.temperature:g})"
                  if preset is None else
                  f"inpainted from {args.keep}: {', '.join(free)} sampled from {prior.checkpoint} "
                  f"({'sample' if table is None else what} {i}, seed {args.seed}, temperature {args.temperature:g})")
        audio, _ = render_and_save(out, stem, chain, params, source, warn=warn, pitch=record)
        with writing(out / f"{stem}.png"):
            plot_sound(out / f"{stem}.png", audio, chain.sample_rate, title=stem)
        samples.append(params)
        sounds.append({"name": stem, "params": physical_values(chain, params),
                       **({"like": note, "pitch": record} if table is not None else {})})
    summary = {"settings": {"checkpoint": prior.checkpoint, "n": args.n, "seed": args.seed,
                            "temperature": args.temperature, "steps": steps,
                            "pitch": pitch_record(hz) if table is None or fixed_pitch else "each class note's",
                            "keep": str(args.keep) if args.keep else None, "free": free if preset else None,
                            **({group: label, "guidance": guidance, "classes": str(table.path)}
                               if table is not None else {})},
               "kept": ({key: value for key, value in physical_values(chain, preset.params).items() if key in kept}
                        if preset else {}),
               "spread": spread(chain, samples, free), "sounds": sounds}
    with writing(out / "summary.json"):
        tmp = out / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=1, allow_nan=False))
        tmp.replace(out / "summary.json")
    return summary


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    clock = time.perf_counter()
    try:
        summary = run(args, warner(PROG))
    except DiffmoogError as error:
        return fail(PROG, error)
    if "built" in summary:
        counts = ", ".join(f"{key.split('/', 1)[1]} {n}" for key, n in summary["counts"].items())
        print(f"wrote the class table {summary['built']} ({summary['bytes'] / 1e6:.2f} MB; notes per label: "
              f"{counts}) in {time.perf_counter() - clock:.1f} s")
        return 0
    names = [sound["name"] for sound in summary["sounds"]]
    spreads = [v for v in summary["spread"].values() if isinstance(v, float) and math.isfinite(v)]
    mean = f", mean spread {sum(spreads) / len(spreads):.3f}" if spreads else ""
    print(f"wrote {len(names)} presets to {Path(args.output)}/ ({names[0]}..{names[-1][len('gen_'):]}, "
          f"summary.json{mean}) in {time.perf_counter() - clock:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
