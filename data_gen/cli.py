"""`create-data`: argparse only; the work happens in data_gen.create (or data_gen.from_nsynth,
data_gen.from_soundfont, data_gen.from_matches)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from diffmoog.errors import DiffmoogError

EPILOG = """examples:
  create-data -c REDUCED_SIMPLE_OSC --size 50000
  create-data -c REDUCED_SIMPLE_OSC --size 5000 -s val
  create-data -c my_chain.yaml --size 100000 --shard 0/4      (one of 4 machines; same dataset as one run)
  create-data --from-nsynth ~/nsynth --families keyboard,guitar --pitch-min 24 --pitch-max 84 --size 18000
  create-data --from-soundfont FluidR3_GM.sf2 --programs 0 24 33 40 56 73 --pitches 48 60 72 --velocities 100 -o corpora/gm_small
  create-data --from-soundfont FONT.sf2 --families brass reed --size 2000 -o corpora/winds
  create-data --from-matches matches/ -n gm_distill          (diffmoog-match results as a labelled split)
A killed run resumes when the same command is run again."""


def shard_arg(text: str) -> tuple[int, int]:
    try:
        shard, shards = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected i/N (e.g. 0/4), got '{text}'") from None
    if not 0 <= shard < shards:
        raise argparse.ArgumentTypeError(f"expected i/N with 0 <= i < N, got '{text}'")
    return shard, shards


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a mistake is one line on stderr (exit code 2), not usage + message."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="create-data", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                                description="Render a parameter-labelled dataset: OUT/NAME/SPLIT/wav_files/<id>.wav, "
                                            "params_dataset.csv, params_normalized.csv, metadata.json.")
    p.add_argument("-c", "--chain", help="built-in chain name (any case) or a chain YAML path")
    p.add_argument("--size", type=int, help="number of sounds (with --from-nsynth: notes to copy; default all)")
    p.add_argument("-s", "--split", default="train", help="train | val | test (default train); splits never overlap")
    p.add_argument("-n", "--name", help="dataset name (default: the chain name in lower case)")
    p.add_argument("-o", "--out", type=Path, default=Path("data"), help="output root (default data/)")
    p.add_argument("-sd", "--signal-duration", type=float, help="seconds per sound (default: the chain's, 4.0)")
    p.add_argument("-no", "--note-off", type=float, help="note-off time in s (default: the chain's, 3.0)")
    p.add_argument("-sr", "--sample-rate", type=int, help="Hz (default: the chain's, 16000)")
    p.add_argument("-bs", "--batch-size", type=int, default=64, help="sounds rendered at once (default 64)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    p.add_argument("--device", help="cpu | cuda (default: cuda when available)")
    p.add_argument("--workers", type=int,
                   help="threads writing wav files (default 1; more rarely help: creating files in one folder "
                        "is serialised by the kernel, and the threads compete with rendering for the cores); "
                        "with --from-soundfont: rendering processes (default: one per core)")
    p.add_argument("--shard", type=shard_arg, default=(0, 1), metavar="i/N",
                   help="generate only shard i of N (all N shards together = the same dataset as one run)")
    p.add_argument("--force", action="store_true", help="delete an existing dataset at OUT/NAME/SPLIT and start over")
    p.add_argument("--float", dest="float32", action="store_true", help="write 32-bit float wavs (default 16-bit PCM)")
    p.add_argument("--compile", action="store_true", help="render the PyTorch module path through torch.compile (for CUDA; on CPU the default native kernels are faster; bits differ slightly, so a dataset is all-compiled or all-eager)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    nsynth = p.add_argument_group("copying real notes from NSynth")
    nsynth.add_argument("--from-nsynth", type=Path, metavar="PATH", help="an NSynth release (json+wav, TFRecord or TFDS)")
    nsynth.add_argument("--families", nargs="+", help="instrument families, e.g. keyboard,guitar "
                                                      "(with --from-soundfont also drum: the drum kits)")
    nsynth.add_argument("--sources", nargs="+", help="acoustic, electronic, synthetic")
    nsynth.add_argument("--pitch-min", type=int, help="lowest MIDI pitch kept (--from-soundfont: default 21)")
    nsynth.add_argument("--pitch-max", type=int, help="highest MIDI pitch kept (--from-soundfont: default 108)")
    nsynth.add_argument("--velocities", nargs="+", help="MIDI velocities kept, e.g. 75,100 "
                                                        "(--from-soundfont: rendered; default 25 50 75 100 127)")
    nsynth.add_argument("--nsynth-format", default="auto", help="auto | json | tfrecord | tfds (default auto)")
    fonts = p.add_argument_group("rendering real notes from SoundFonts, in NSynth's layout under -o "
                                 "(default data/soundfont); also takes the filters above, --size (a cap) and --seed")
    fonts.add_argument("--from-soundfont", nargs="*", metavar="FONT",
                       help="SF2/SF3 files (a bare name is also looked up in /usr/share/sounds/sf2 and sf3; "
                            "none given: FluidR3_GM.sf2)")
    fonts.add_argument("--programs", nargs="+", help="General MIDI programs (0-127) to render, e.g. 0 24 33")
    fonts.add_argument("--banks", nargs="+", help="SoundFont banks to render (default all: 0 holds the GM programs, "
                                                  "128 the drum kits, others variations such as bank 8's ukulele)")
    fonts.add_argument("--pitches", nargs="+", help="MIDI pitches to render, e.g. 48 60 72 "
                                                    "(instead of --pitch-min/--pitch-max)")
    matches = p.add_argument_group("labelling real sounds with their matched presets (distillation), "
                                   "written to OUT/NAME/SPLIT; also takes -s, -n, -o, --force")
    matches.add_argument("--from-matches", nargs="+", type=Path, metavar="FOLDER",
                         help="folders diffmoog-match wrote (-o): each sound's audio, labelled with its preset")
    matches.add_argument("--max-lsd", type=float, help="leave out matches whose final LSD is above this")
    return p


# Flags that mean nothing to a mode, refused rather than ignored (compared with their defaults).
NOT_FOR_SOUNDFONT = {"chain": "-c/--chain", "split": "-s/--split", "name": "-n/--name", "batch_size": "-bs/--batch-size",
                     "device": "--device", "shard": "--shard", "compile": "--compile", "float32": "--float",
                     "nsynth_format": "--nsynth-format", "from_nsynth": "--from-nsynth"}
SOUNDFONT_ONLY = {"programs": "--programs", "banks": "--banks", "pitches": "--pitches"}
MATCHES_ONLY = {"max_lsd": "--max-lsd"}
# --from-matches takes the chain, rate and length from the presets: everything but -s/-n/-o/--force.
NOT_FOR_MATCHES = {dest: flag for dest, flag in {
    **NOT_FOR_SOUNDFONT, **SOUNDFONT_ONLY, "size": "--size", "signal_duration": "-sd/--signal-duration",
    "note_off": "-no/--note-off", "sample_rate": "-sr/--sample-rate", "seed": "--seed", "workers": "--workers",
    "families": "--families", "sources": "--sources", "pitch_min": "--pitch-min", "pitch_max": "--pitch-max",
    "velocities": "--velocities", "from_soundfont": "--from-soundfont"}.items() if dest not in ("split", "name")}


def refuse(parser, args, flags: dict, mode: str) -> None:
    for dest, flag in flags.items():
        if getattr(args, dest) != parser.get_default(dest):
            parser.error(f"{flag} does not apply to {mode}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.from_matches is not None:
        refuse(parser, args, NOT_FOR_MATCHES, "--from-matches")
    elif args.from_soundfont is not None:
        refuse(parser, args, {**NOT_FOR_SOUNDFONT, **MATCHES_ONLY}, "--from-soundfont")
    else:
        refuse(parser, args, {**SOUNDFONT_ONLY, **MATCHES_ONLY}, "--from-nsynth" if args.from_nsynth else "-c/--chain")
    try:
        if args.from_matches is not None:
            from diffmoog.data_gen import from_matches
            return int(from_matches.main(args) or 0)
        if args.from_soundfont is not None:
            return run_soundfont(args, parser.get_default("out"))
        if args.from_nsynth is not None:
            return run_nsynth(args)
        if not args.chain or args.size is None:
            parser.error("the following arguments are required: -c/--chain, --size (or --from-nsynth PATH)")
        return run_synth(args)
    except DiffmoogError as err:
        print(f"create-data: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # anything not already turned into a DiskError: still one line, with the path
        print(f"create-data: error: {err.filename or ''}: {err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("create-data: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


def run_synth(args) -> int:
    import diffmoog
    from diffmoog.data_gen.create import create
    from diffmoog.native import keep_freed_buffers
    from diffmoog.data_gen.options import GenOptions
    keep_freed_buffers()  # a whole process of same-sized batches: reuse memory, don't re-fault it
    opts = GenOptions(chain=diffmoog.Chain.load(args.chain), size=args.size, split=args.split, name=args.name,
                      out=args.out, sample_rate=args.sample_rate, duration=args.signal_duration,
                      note_off=args.note_off, batch_size=args.batch_size, seed=args.seed, device=args.device,
                      workers=1 if args.workers is None else args.workers, shard=args.shard, force=args.force,
                      float32=args.float32,
                      compile=args.compile, progress_bar=not args.no_progress,
                      args={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()})
    result = create(opts)
    print(result.summary(opts))
    return 0


def run_nsynth(args) -> int:
    try:
        from diffmoog.data_gen import from_nsynth
    except ModuleNotFoundError as err:
        if err.name != "diffmoog.data_gen.from_nsynth":
            raise
        raise DiffmoogError("--from-nsynth is not available: diffmoog.data_gen.from_nsynth is missing "
                            "from this installation") from None
    return int(from_nsynth.main(args) or 0)


def run_soundfont(args, default_out: Path) -> int:
    from diffmoog.data_gen import from_soundfont
    if args.out == default_out:  # the corpus is an NSynth root of its own, not a NAME/SPLIT folder
        args.out = from_soundfont.DEFAULT_OUT
    return int(from_soundfont.main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
