"""A TFDS-prepared nsynth folder, written by tensorflow_datasets itself, read by NSynthDataset.

Opt-in: `make test-tfds` installs the `tfds` extra (TensorFlow) in its own venv and runs this.
The default environment has no TensorFlow, so here the test is skipped.
"""
import numpy as np
import pytest
import soundfile as sf
import torch

from diffmoog.data.nsynth import NSynthDataset
from nsynth_helpers import fixture_examples

tfds = pytest.importorskip("tensorflow_datasets",
                           reason="tensorflow_datasets is not installed (opt-in extra; run `make test-tfds`)")

NUM_LABELS = 1006  # TFDS's nsynth declares ClassLabel(num_classes=1006) for instrument/label


@pytest.fixture(autouse=True)
def private_index_cache(tmp_path_factory, monkeypatch):
    """Keep the TFRecord index cache out of ~/.cache while testing."""
    monkeypatch.setenv("DIFFMOOG_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def tfds_example(meta: dict, audio: np.ndarray) -> dict:
    from diffmoog.data.nsynth_meta import QUALITIES
    return {"id": meta["note_str"], "audio": audio, "pitch": meta["pitch"], "velocity": meta["velocity"],
            "instrument": {"label": meta["instrument"], "family": meta["instrument_family"],
                           "source": meta["instrument_source"]},
            "qualities": {name: bool(q) for name, q in zip(QUALITIES, meta["qualities"])}}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Write 11 pitched fixture notes (drums have no TFDS family) as nsynth/full via TFDS."""
    fixture = __import__("conftest").FIXTURES / "nsynth_format_notes"
    if not fixture.is_dir():
        pytest.skip(f"shared fixture folder not found at {fixture}")
    examples = {k: v for k, v in fixture_examples(fixture).items() if v["instrument_family"] >= 0}
    keys = sorted(examples)
    labels = [f"unused_{i:04d}" for i in range(NUM_LABELS)]
    for meta in examples.values():
        labels[meta["instrument"]] = meta["instrument_str"]
    features = tfds.builder("nsynth/full").info.features  # the registered builder's exact features
    features["instrument"]["label"].names = labels

    def split(names):
        for key in names:
            audio, _ = sf.read(fixture / "audio" / f"{key}.wav", dtype="float32")
            yield key, tfds_example(examples[key], audio)

    data_dir = tmp_path_factory.mktemp("tfds")
    tfds.dataset_builders.store_as_tfds_dataset(
        name="nsynth", version="2.3.3", config="full", features=features, data_dir=str(data_dir),
        split_datasets={"train": list(split(keys[:7])), "valid": list(split(keys[7:]))}, disable_shuffling=True)
    return fixture, data_dir, keys


def test_tfds_itself_reads_the_prepared_folder(prepared):
    _, data_dir, keys = prepared
    builder = tfds.builder_from_directory(str(data_dir / "nsynth" / "full" / "2.3.3"))
    ids = sorted(ex["id"].decode() for ex in tfds.as_numpy(builder.as_dataset(split="valid")))
    assert ids == keys[7:]
    loaded = tfds.load("nsynth/full", split="train", data_dir=str(data_dir), download=False)
    assert sorted(ex["id"].decode() for ex in tfds.as_numpy(loaded)) == keys[:7]


@pytest.mark.parametrize("where", ["", "nsynth", "nsynth/full/2.3.3"])
def test_items_equal_the_json_release(prepared, where):
    fixture, data_dir, keys = prepared
    data = NSynthDataset(data_dir / where, split="train", duration=4.0)
    reference = NSynthDataset(fixture, duration=4.0, families=list(range(11)))
    by_note = {n.note_str: i for i, n in enumerate(reference.notes)}
    assert data.format == "tfds" and [n.note_str for n in data.notes] == keys[:7]
    for i in range(len(data)):
        a = data[i]
        b = reference[by_note[a["note_str"]]]
        assert torch.equal(a["audio"], b["audio"]) and torch.equal(a["qualities"], b["qualities"])
        for key in ("pitch", "velocity", "instrument", "instrument_str", "family", "family_str", "source",
                    "source_str"):
            assert a[key] == b[key], key
    assert len(NSynthDataset(data_dir, split="valid", sample_rate=8000, duration=0.5)) == 4
    assert NSynthDataset(data_dir, split="valid", sample_rate=8000, duration=0.5)[0]["audio"].shape == (4000,)


def test_create_data_from_a_tfds_folder(prepared, tmp_path):
    import argparse
    import csv

    from diffmoog.data_gen import from_nsynth
    _, data_dir, keys = prepared
    args = argparse.Namespace(from_nsynth=data_dir, out=tmp_path, name="tfds_notes", split="val", size=None, seed=0,
                              sample_rate=16000, signal_duration=1.0, force=False, families=None, sources=None,
                              pitch_min=None, pitch_max=None, velocities=None, no_progress=True,
                              nsynth_format="tfds")
    assert from_nsynth.main(args) == 0
    split = tmp_path / "tfds_notes" / "val"
    with open(split / "nsynth_labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["note_str"] for r in rows] == keys[7:] and all(r["nsynth_split"] == "valid" for r in rows)
    assert sorted(p.stem for p in (split / "wav_files").glob("*.wav")) == [r["id"] for r in rows]
