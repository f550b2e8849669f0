"""Builders for NSynth data in tests: split folders from the fixture and official-schema TFRecords."""
import json
import shutil
from pathlib import Path

import soundfile as sf

from diffmoog.data import tfrecord_io


def fixture_examples(fixture: Path) -> dict:
    return json.loads((fixture / "examples.json").read_text())


def make_split_dir(fixture: Path, folder: Path, keys) -> Path:
    """A json+wav split folder holding the fixture notes `keys`."""
    examples = fixture_examples(fixture)
    (folder / "audio").mkdir(parents=True)
    for key in keys:
        shutil.copy(fixture / "audio" / f"{key}.wav", folder / "audio" / f"{key}.wav")
        (folder / "audio" / f"{key}.wav").chmod(0o644)
    (folder / "examples.json").write_text(json.dumps({k: examples[k] for k in keys}))
    return folder


def official_example(meta: dict, audio) -> dict:
    """One note in the official NSynth TFRecord schema (tfrecord-package writer format)."""
    return {
        "note": (int(meta["note"]), "int"), "note_str": (meta["note_str"].encode(), "byte"),
        "instrument": (int(meta["instrument"]), "int"), "instrument_str": (meta["instrument_str"].encode(), "byte"),
        "pitch": (int(meta["pitch"]), "int"), "velocity": (int(meta["velocity"]), "int"),
        "sample_rate": (int(meta["sample_rate"]), "int"), "audio": (audio.tolist(), "float"),
        "qualities": (list(meta["qualities"]), "int"),
        "qualities_str": ([q.encode() for q in meta["qualities_str"]], "byte"),
        "instrument_family": (int(meta["instrument_family"]), "int"),
        "instrument_family_str": (meta["instrument_family_str"].encode(), "byte"),
        "instrument_source": (int(meta["instrument_source"]), "int"),
        "instrument_source_str": (meta["instrument_source_str"].encode(), "byte"),
    }


def write_official_tfrecord(fixture: Path, path: Path, keys) -> Path:
    """Write fixture notes (in file order `keys`) as an official-schema NSynth TFRecord file."""
    examples = fixture_examples(fixture)
    records = []
    for key in keys:
        audio, _ = sf.read(fixture / "audio" / f"{key}.wav", dtype="float32")
        records.append(official_example(examples[key], audio))
    tfrecord_io.write_examples(path, records)
    return path
