"""The 60-second tour (`make demo`): render every chain, make a small dataset, match real notes.

    python -m diffmoog.demo [--out experiments/demo] [--chains OSC DRUM ...] [--size 64]

Writes, under OUT:
  chains/<chain>.wav, chains/<chain>.png   one random preset per built-in chain (graph + spectrogram)
  data/demo/train/, data/dataset.png      a small create-data dataset and a grid of its spectrograms
  match/                                   the example notes matched with the committed checkpoint
  kit/<kind>/, kit/kit.png                 a small drum kit (kick, snare, hat) from the drum flow's prior
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # the demo writes PNGs and must run with no screen

import matplotlib.pyplot as plt  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

import diffmoog  # noqa: E402
from diffmoog.errors import DiffmoogError  # noqa: E402
from diffmoog.plotting import chain_figure, spectrogram_image  # noqa: E402
from diffmoog.spec import builtin_chains  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_AUDIO = REPO / "examples" / "audio" / "audio"
CHECKPOINTS = REPO / "examples" / "checkpoints"
DATASET_CHAIN = "REDUCED_SIMPLE_OSC"


def render_chains(names: list[str], out: Path, seed: int) -> list[Path]:
    """One random preset per chain: a wav and a picture of its graph beside its spectrogram."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    # One short sound per chain: a second thread costs more in start-up and contention than it
    # saves (10x more CPU time on a busy 2-core machine).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    for name in tqdm(names, desc="rendering chains", unit="chain"):
        chain = diffmoog.Chain.load(name)
        with torch.no_grad():
            audio = chain.render(chain.sample(1, seed=seed))[0]
        # Peak-normalise only when a preset clips: the wav should sound like the chain, not louder.
        peak = float(audio.abs().max())
        wav = out / f"{name.lower()}.wav"
        sf.write(wav, (audio / peak if peak > 1.0 else audio).numpy(), chain.sample_rate, subtype="PCM_16")
        figure = chain_figure(chain, audio, chain.sample_rate)
        figure.savefig(out / f"{name.lower()}.png", dpi=72)
        plt.close(figure)
        written.append(wav)
    torch.set_num_threads(threads)
    return written


def make_dataset(out: Path, size: int) -> Path:
    """A small dataset through create-data's Python API, then a grid of its spectrograms."""
    from diffmoog.data.dataset import ParamsDataset
    from diffmoog.data_gen.create import create
    from diffmoog.data_gen.options import GenOptions

    chain = diffmoog.Chain.load(DATASET_CHAIN)
    # force: the demo owns this folder, and a second `make demo` should simply redo it.
    opts = GenOptions(chain=chain, size=size, name="demo", out=out, duration=2.0, note_off=1.5,
                      batch_size=64, device="cpu", force=True, progress_bar=True,
                      args={"command": "python -m diffmoog.demo"})
    result = create(opts)
    print(result.summary(opts))
    data = ParamsDataset(result.root)
    figure, axes = plt.subplots(2, 4, figsize=(12, 5))
    for ax, index in zip(axes.flat, range(len(data))):
        item = data[index]
        spectrogram_image(ax, item["audio"], data.sample_rate, title=f"#{item['id']}")
        ax.set_xlabel("")
        ax.set_ylabel("")
    figure.tight_layout()
    # Beside the split folder, not in it: create-data guards its folders against foreign files.
    figure.savefig(out / "dataset.png", dpi=72)
    plt.close(figure)
    return Path(result.root)


KIT_CHECKPOINT = CHECKPOINTS / "drum_flow"  # DRUM_METAL's flow, with its table of labelled corpus hits
KIT = ("kick", "snare", "hat")
PREFERRED_CHECKPOINT = "reduced_simple_osc_flow"  # the preset posterior: best-of-K, then refinement


def find_checkpoint() -> Path | None:
    """The committed checkpoint: the flow posterior, else any folder under examples/checkpoints
    holding weights."""
    if (CHECKPOINTS / PREFERRED_CHECKPOINT / "state.json").is_file():
        return CHECKPOINTS / PREFERRED_CHECKPOINT
    if not CHECKPOINTS.is_dir():
        return None
    found = sorted(p.parent for p in CHECKPOINTS.rglob("*.safetensors"))
    return found[0] if found else None


def match_examples(out: Path, refine_steps: int | None) -> str | None:
    """Match the example notes with the committed checkpoint; returns why it was skipped, if it was."""
    checkpoint = find_checkpoint()
    if checkpoint is None:
        return f"no committed checkpoint in {CHECKPOINTS.relative_to(REPO)}"
    try:
        from diffmoog.match.cli import main as match_main
    except ModuleNotFoundError as err:
        return f"diffmoog-match is not installed ({err.name} missing)"
    # The checkpoint knows its chain; --force redoes the notes on a second `make demo`.
    argv = [str(EXAMPLE_AUDIO), "--checkpoint", str(checkpoint), "-o", str(out), "--force"]
    if refine_steps is not None:
        argv += ["--refine-steps", str(refine_steps)]
    code = match_main(argv)
    if code:
        return f"diffmoog-match {' '.join(argv)} exited with code {code}"
    return None


def generate_kit(out: Path, seed: int) -> str | None:
    """One kick, snare and hat from the drum flow (diffmoog-generate --kind), and a sheet of the
    three; returns why it was skipped, if it was."""
    if not (KIT_CHECKPOINT / "state.json").is_file():
        return f"no drum flow checkpoint at {KIT_CHECKPOINT.relative_to(REPO)}"
    from diffmoog.match.generate import main as generate_main

    for kind in KIT:
        # diffmoog-generate rewrites its own files, so a second `make demo` simply redoes the kit.
        argv = ["--checkpoint", str(KIT_CHECKPOINT), "--kind", kind, "--n", "1", "--seed", str(seed),
                "-o", str(out / kind)]
        code = generate_main(argv)
        if code:
            return f"diffmoog-generate {' '.join(argv)} exited with code {code}"
    figure, axes = plt.subplots(1, len(KIT), figsize=(4 * len(KIT), 3.2))
    for ax, kind in zip(axes, KIT):
        audio, rate = sf.read(out / kind / "gen_00.wav", dtype="float32")
        # The first second: a hit's sound is there, the rest of the 4 s render is its tail.
        spectrogram_image(ax, torch.from_numpy(audio[:rate]), rate, title=f"{kind} (diffmoog-generate --kind {kind})")
    figure.tight_layout()
    figure.savefig(out / "kit.png", dpi=72)
    plt.close(figure)
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diffmoog.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("DIFFMOOG_DEMO_OUT", "experiments/demo")),
                        help="output folder (default experiments/demo, or $DIFFMOOG_DEMO_OUT)")
    parser.add_argument("--chains", nargs="+", help="only these chains (default: every built-in chain)")
    parser.add_argument("--size", type=int, default=64, help="sounds in the demo dataset (default 64)")
    parser.add_argument("--seed", type=int, default=1, help="preset seed for the chain renders")
    parser.add_argument("--refine-steps", type=int, default=None,
                        help="gradient refinement steps per matched note (default: diffmoog-match's)")
    parser.add_argument("--skip-match", action="store_true", help="skip matching the example notes")
    parser.add_argument("--skip-kit", action="store_true", help="skip generating the drum kit")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    try:
        known = builtin_chains()
        names = [diffmoog.spec.resolve_chain(n).stem.upper() for n in args.chains] if args.chains else list(known)
        chains_out = args.out / "chains"
        wavs = render_chains(names, chains_out, args.seed)
        data_root = make_dataset(args.out / "data", args.size)
        skipped = "--skip-match given" if args.skip_match else match_examples(args.out / "match", args.refine_steps)
        kit_skipped = "--skip-kit given" if args.skip_kit else generate_kit(args.out / "kit", args.seed)
    except DiffmoogError as err:
        print(f"demo: error: {err}", file=sys.stderr)
        return 2
    print(f"\ndiffmoog demo done in {time.perf_counter() - began:.0f} s. Listen and look:")
    print(f"  {chains_out}/<chain>.wav and .png   {len(wavs)} chains, one random preset each "
          "(graph + spectrogram)")
    print(f"  {data_root}/   {args.size} sounds: wav_files/, params_dataset.csv; "
          f"spectrograms in {args.out / 'data' / 'dataset.png'}")
    if skipped:
        print(f"  matching the example notes: skipped ({skipped})")
    else:
        print(f"  {args.out / 'match'}/   the notes in {EXAMPLE_AUDIO.relative_to(REPO)} matched: "
              "<name>.preset.yaml, <name>.match.wav, <name>.png")
    if kit_skipped:
        print(f"  a drum kit from the prior: skipped ({kit_skipped})")
    else:
        print(f"  {args.out / 'kit'}/   a kick, snare and hat generated by the drum flow: <kind>/gen_00.wav, "
              f".preset.yaml; all three in {args.out / 'kit' / 'kit.png'}")
    print("Next: the notebooks in examples/ (jupyter lab examples/explore_chains.ipynb), or `make test`.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
