"""Real-audio loader throughput: NSynth json+wav vs TFRecord, and a 44.1 kHz folder; prints JSON.

The 14 fixture notes are repeated (renamed) to --notes notes in a temporary folder, in both
forms. Reported: index seconds (TFRecord: first build and cached), items/s at 16 kHz and
resampled to 44.1 kHz, AudioFolderDataset items/s on 44.1 kHz files read at 16 kHz, and
`create-data --from-nsynth` notes/s (in-process, json source, 16-bit 16 kHz 4 s wavs).

    .venv/bin/python benchmarks/nsynth_loader.py --notes 280
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from diffmoog.data.audio_folder import AudioFolderDataset  # noqa: E402
from diffmoog.data.audio_io import load_audio  # noqa: E402
from diffmoog.data.nsynth import NSynthDataset  # noqa: E402
from nsynth_helpers import official_example  # noqa: E402


def build(fixture: Path, out: Path, notes: int) -> None:
    examples = json.loads((fixture / "examples.json").read_text())
    keys = sorted(examples)
    split, records, meta = out / "json" / "nsynth-train", [], {}
    (split / "audio").mkdir(parents=True)
    (out / "tfrecord").mkdir()
    (out / "folder44k").mkdir()
    for i in range(notes):
        key = keys[i % len(keys)]
        name = f"{key}-copy{i:05d}"
        shutil.copy(fixture / "audio" / f"{key}.wav", split / "audio" / f"{name}.wav")
        meta[name] = {**examples[key], "note_str": name}
        audio, _ = sf.read(fixture / "audio" / f"{key}.wav", dtype="float32")
        records.append(official_example(meta[name], audio))
        if i < 64:
            sf.write(out / "folder44k" / f"{name}.wav", load_audio(fixture / "audio" / f"{key}.wav", 44100).numpy(),
                     44100, subtype="PCM_24")
    (split / "examples.json").write_text(json.dumps(meta))
    from diffmoog.data import tfrecord_io
    tfrecord_io.write_examples(out / "tfrecord" / "nsynth-train.tfrecord", records)


def rate(dataset, limit: int) -> float:
    """Items/s after one warm-up item (which builds the cached resampler)."""
    n = min(limit, len(dataset))
    dataset[0]
    start = time.perf_counter()
    for i in range(n):
        dataset[i]
    return n / (time.perf_counter() - start)


def copy_rate(root: Path, out: Path) -> float:
    """create-data --from-nsynth (in-process) notes/s, 16-bit wavs at 16 kHz, 4 s."""
    import argparse
    import csv

    from diffmoog.data_gen import from_nsynth
    args = argparse.Namespace(from_nsynth=root, out=out, name="bench", split="train", size=None, seed=0,
                              sample_rate=16000, signal_duration=4.0, force=False, no_progress=True)
    start = time.perf_counter()
    from_nsynth.main(args)
    seconds = time.perf_counter() - start
    with open(out / "bench" / "train" / "nsynth_labels.csv") as handle:
        return round((sum(1 for _ in csv.reader(handle)) - 1) / seconds, 1)


def timed(make):
    start = time.perf_counter()
    value = make()
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=280)
    parser.add_argument("--items", type=int, default=200, help="items read per measurement")
    parser.add_argument("--fixture", type=Path, default=REPO.parent / "shared" / "fixtures" / "nsynth_format_notes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["DIFFMOOG_CACHE_DIR"] = str(tmp / "cache")
        build(args.fixture, tmp / "data", args.notes)
        data = tmp / "data"
        json16, json_index_s = timed(lambda: NSynthDataset(data / "json", sample_rate=16000))
        rec16, rec_index_s = timed(lambda: NSynthDataset(data / "tfrecord", sample_rate=16000))
        _, rec_cached_s = timed(lambda: NSynthDataset(data / "tfrecord", sample_rate=16000))
        result = {
            "notes": args.notes, "items_per_measurement": args.items,
            "json_index_s": round(json_index_s, 4), "tfrecord_index_s": round(rec_index_s, 4),
            "tfrecord_index_cached_s": round(rec_cached_s, 4),
            "json_items_per_s_16k": round(rate(json16, args.items), 1),
            "tfrecord_items_per_s_16k": round(rate(rec16, args.items), 1),
            "json_items_per_s_44k": round(rate(NSynthDataset(data / "json", sample_rate=44100), args.items), 1),
            "folder_44k_to_16k_items_per_s": round(rate(AudioFolderDataset(data / "folder44k"), args.items), 1),
            "torch_threads": __import__("torch").get_num_threads(),
        }
        result["from_nsynth_notes_per_s"] = copy_rate(data / "json", tmp / "copy")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
