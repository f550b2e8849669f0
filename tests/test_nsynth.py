"""NSynthDataset on the 14-note fixture (json+wav) and on TFRecords written in NSynth's schema."""
import os
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from diffmoog.data.nsynth import NSynthDataset, collate
from diffmoog.errors import ConfigError
from nsynth_helpers import fixture_examples, make_split_dir, write_official_tfrecord

LABELS = ("pitch", "velocity", "instrument", "instrument_str", "family", "family_str", "source", "source_str",
          "note_str")


@pytest.fixture(autouse=True)
def private_index_cache(tmp_path_factory, monkeypatch):
    """Keep the TFRecord index cache out of ~/.cache while testing."""
    monkeypatch.setenv("DIFFMOOG_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def test_fixture_items(nsynth_fixture_dir):
    data = NSynthDataset(nsynth_fixture_dir, duration=4.0)
    examples = fixture_examples(nsynth_fixture_dir)
    assert data.format == "json" and len(data) == 14 and data.skipped == {}
    assert [n.note_str for n in data.notes] == sorted(examples)
    for i in (0, 2, 13):
        item = data[i]
        meta = examples[item["note_str"]]
        assert item["audio"].dtype == torch.float32 and item["audio"].shape == (64000,)
        assert (item["pitch"], item["velocity"], item["instrument"]) == (meta["pitch"], meta["velocity"], meta["instrument"])
        assert (item["family"], item["family_str"]) == (meta["instrument_family"], meta["instrument_family_str"])
        assert (item["source"], item["source_str"]) == (meta["instrument_source"], meta["instrument_source_str"])
        assert item["qualities"].tolist() == meta["qualities"]
        raw, _ = sf.read(nsynth_fixture_dir / "audio" / f"{item['note_str']}.wav", dtype="int16")
        assert torch.equal(item["audio"], torch.from_numpy(raw.astype(np.float32) / 32768.0))
        # The fixture is peak-normalised to -1 dBFS: scaled once, not twice.
        assert float(item["audio"].abs().max()) == pytest.approx(10 ** (-1 / 20), abs=0.01)


def test_resample_and_duration(nsynth_fixture_dir):
    data = NSynthDataset(nsynth_fixture_dir, sample_rate=8000, duration=0.5, subset=2)
    assert [item["note_str"] for item in data] == [n.note_str for n in data.notes]  # iteration ends
    assert data[-1]["note_str"] == data.notes[1].note_str
    with pytest.raises(IndexError):
        data[2]
    item = data[1]
    assert item["audio"].shape == (4000,) and float(item["audio"].abs().max()) <= 1.0
    batch = collate([data[0], data[1]])
    assert batch["audio"].shape == (2, 4000) and batch["pitch"].dtype == torch.int64
    assert batch["qualities"].shape == (2, 10) and len(batch["note_str"]) == 2


def test_filters(nsynth_fixture_dir):
    root = nsynth_fixture_dir
    assert {n.family_str for n in NSynthDataset(root, families=["bass", "flute"], duration=0.1).notes} == {"bass", "flute"}
    assert len(NSynthDataset(root, families=[-1], duration=0.1)) == 3  # drums by index
    assert len(NSynthDataset(root, families="drum", duration=0.1)) == 3
    pitched = NSynthDataset(root, pitch_range=(50, 64), duration=0.1)
    assert pitched.notes and all(50 <= n.pitch <= 64 for n in pitched.notes)
    assert len(NSynthDataset(root, sources=["synthetic"], velocities=[100], duration=0.1)) == 14
    with pytest.raises(ConfigError, match="no NSynth notes match"):
        NSynthDataset(root, sources=["acoustic"], duration=0.1)
    with pytest.raises(ConfigError, match="did you mean 'guitar'"):
        NSynthDataset(root, families=["gitar"], duration=0.1)
    with pytest.raises(ConfigError, match="empty"):
        NSynthDataset(root, pitch_range=(70, 60), duration=0.1)


def test_subset_is_deterministic_and_seeded(nsynth_fixture_dir):
    def pick(seed):
        return [n.note_str for n in NSynthDataset(nsynth_fixture_dir, subset=5, seed=seed, duration=0.1).notes]
    assert pick(0) == pick(0) and len(set(pick(0))) == 5
    assert any(pick(s) != pick(0) for s in (1, 2, 3))
    with pytest.raises(ConfigError, match="only 14"):
        NSynthDataset(nsynth_fixture_dir, subset=15, duration=0.1)


def test_release_layout_with_split_folders(nsynth_fixture_dir, tmp_path):
    keys = sorted(fixture_examples(nsynth_fixture_dir))
    make_split_dir(nsynth_fixture_dir, tmp_path / "nsynth-train", keys[:10])
    make_split_dir(nsynth_fixture_dir, tmp_path / "nsynth-valid", keys[10:])
    assert [n.note_str for n in NSynthDataset(tmp_path, split="train", duration=0.1).notes] == keys[:10]
    assert [n.note_str for n in NSynthDataset(tmp_path, split="val", duration=0.1).notes] == keys[10:]
    assert len(NSynthDataset(tmp_path, duration=0.1)) == 14
    assert len(NSynthDataset(tmp_path / "nsynth-valid", split="valid", duration=0.1)) == 4
    with pytest.raises(ConfigError, match="no 'test' split"):
        NSynthDataset(tmp_path, split="test", duration=0.1)
    with pytest.raises(ConfigError, match="did you mean"):
        NSynthDataset(tmp_path, split="trian", duration=0.1)
    with pytest.raises(ConfigError, match="no NSynth data"):
        NSynthDataset(tmp_path / "nsynth-train" / "audio", duration=0.1)


def test_odd_files_are_converted_or_skipped_never_crash(nsynth_fixture_dir, tmp_path):
    keys = sorted(fixture_examples(nsynth_fixture_dir))
    root = make_split_dir(nsynth_fixture_dir, tmp_path / "split", keys)
    audio = root / "audio"
    x, _ = sf.read(audio / f"{keys[0]}.wav", dtype="float32")
    sf.write(audio / f"{keys[0]}.wav", np.stack([x, x], 1), 16000, subtype="PCM_24")  # stereo 24-bit
    sf.write(audio / f"{keys[1]}.wav", x, 44100, subtype="FLOAT")  # other rate, float
    sf.write(audio / f"{keys[2]}.wav", x, 16000, subtype="PCM_U8")  # 8-bit
    data = (audio / f"{keys[3]}.wav").read_bytes()
    (audio / f"{keys[3]}.wav").write_bytes(data[:20000])  # truncated
    (audio / f"{keys[4]}.wav").write_bytes(b"not a wav at all")  # unreadable
    (audio / f"{keys[5]}.wav").unlink()  # missing
    with pytest.warns(UserWarning, match="1 notes without a wav file"):
        dataset = NSynthDataset(root, duration=1.0)
    assert len(dataset) == 13 and dataset.skipped == {"notes without a wav file": 1}
    assert torch.allclose(dataset[0]["audio"], torch.from_numpy(x[:16000]), atol=1e-6)
    assert dataset[1]["audio"].shape == (16000,) and dataset[1]["note_str"] == keys[1]
    assert np.abs(dataset[2]["audio"].numpy() - x[:16000]).max() < 1 / 64
    cut = dataset[3]["audio"]
    assert float(cut[(20000 - 44) // 2:].abs().max()) == 0.0 and float(cut.abs().max()) > 0.1
    with pytest.warns(UserWarning, match="next readable note"):
        substitute = dataset[4]
    assert substitute["note_str"] == keys[6]  # keys[5] is gone from the index
    assert list(dataset.failed) == [keys[4]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batches = list(DataLoader(dataset, batch_size=4, collate_fn=collate))
    assert sum(len(b["note_str"]) for b in batches) == 13
    assert all(float(b["audio"].abs().max()) <= 1.0 for b in batches)


def test_tfrecord_items_equal_json_items(nsynth_fixture_dir, tmp_path):
    keys = sorted(fixture_examples(nsynth_fixture_dir))
    shuffled = [keys[i] for i in np.random.default_rng(0).permutation(len(keys))]
    write_official_tfrecord(nsynth_fixture_dir, tmp_path / "nsynth-test.tfrecord", shuffled)
    from_records = NSynthDataset(tmp_path, duration=4.0)
    from_json = NSynthDataset(nsynth_fixture_dir, duration=4.0)
    assert from_records.format == "tfrecord" and len(from_records) == 14
    for i in range(14):
        a, b = from_records[i], from_json[i]
        assert torch.equal(a["audio"], b["audio"]) and torch.equal(a["qualities"], b["qualities"])
        assert all(a[key] == b[key] for key in LABELS)
    low = NSynthDataset(tmp_path, split="test", sample_rate=8000, duration=0.5, families=["drum"])
    assert len(low) == 3 and low[0]["audio"].shape == (4000,)


def test_tfrecord_splits_and_damaged_files(nsynth_fixture_dir, tmp_path):
    keys = sorted(fixture_examples(nsynth_fixture_dir))
    write_official_tfrecord(nsynth_fixture_dir, tmp_path / "nsynth-train.tfrecord", keys[:8])
    valid = write_official_tfrecord(nsynth_fixture_dir, tmp_path / "nsynth-valid.tfrecord", keys[8:])
    assert [n.note_str for n in NSynthDataset(tmp_path, split="train", duration=0.1).notes] == keys[:8]
    data = valid.read_bytes()
    valid.write_bytes(data[: len(data) - 1000])  # the last record is cut short
    with pytest.warns(UserWarning, match="cut short"):
        cut = NSynthDataset(tmp_path, split="valid", duration=0.1)
    assert [n.note_str for n in cut.notes] == keys[8:13]
    # A damaged payload inside a record: indexed records that fail later are substituted.
    notes = cut.notes
    broken = bytearray(valid.read_bytes())
    broken[notes[0].offset: notes[0].offset + notes[0].length] = b"\xff" * notes[0].length
    valid.write_bytes(bytes(broken))
    stat = valid.stat()  # same size; make sure the index cache sees a new mtime even on coarse clocks
    os.utime(valid, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10 ** 9))
    with pytest.warns(UserWarning, match="next readable note"):
        item = cut[0]
    assert item["note_str"] == keys[9]
    with pytest.warns(UserWarning, match="unparseable"):
        assert len(NSynthDataset(tmp_path, split="valid", duration=0.1)) == 4


def test_single_tfrecord_file_and_bad_format(nsynth_fixture_dir, tmp_path):
    keys = sorted(fixture_examples(nsynth_fixture_dir))[:3]
    path = write_official_tfrecord(nsynth_fixture_dir, tmp_path / "notes.tfrecord", keys)
    assert [n.note_str for n in NSynthDataset(path, duration=0.1).notes] == keys
    with pytest.raises(ConfigError, match="did you mean 'tfrecord'"):
        NSynthDataset(path, format="tfrecords")
    with pytest.raises(ConfigError, match="not found"):
        NSynthDataset(tmp_path / "nowhere")


def test_import_needs_no_tensorflow():
    import subprocess
    import sys
    code = ("import sys, diffmoog, diffmoog.data.nsynth, diffmoog.data.audio_folder;"
            "assert 'tensorflow' not in sys.modules and 'tensorflow_datasets' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_examples_audio_are_fixture_notes(nsynth_fixture_dir):
    # examples/audio ships five fixture notes in the official layout for the demo and notebooks.
    from pathlib import Path
    examples = Path(__file__).resolve().parent.parent / "examples" / "audio"
    data = NSynthDataset(examples, duration=4.0)
    assert len(data) == 5 and "drum" in {n.family_str for n in data.notes}
    for note in data.notes:
        assert (examples / "audio" / f"{note.note_str}.wav").read_bytes() == \
            (nsynth_fixture_dir / "audio" / f"{note.note_str}.wav").read_bytes()


def test_tfrecord_index_is_cached_per_file(nsynth_fixture_dir, tmp_path, monkeypatch):
    from diffmoog.data import nsynth_records, tfrecord_io
    keys = sorted(fixture_examples(nsynth_fixture_dir))[:4]
    path = write_official_tfrecord(nsynth_fixture_dir, tmp_path / "nsynth-test.tfrecord", keys)
    first = NSynthDataset(tmp_path, duration=0.1).notes
    assert len(list(nsynth_records.cache_dir().glob("*.json"))) == 1

    def no_parsing(*_):
        raise AssertionError("the index should come from the cache")

    with monkeypatch.context() as patch:
        patch.setattr(tfrecord_io, "parse_example", no_parsing)
        assert NSynthDataset(tmp_path, duration=0.1).notes == first
    write_official_tfrecord(nsynth_fixture_dir, path, keys[:2])  # a changed file is indexed again
    assert [n.note_str for n in NSynthDataset(tmp_path, duration=0.1).notes] == keys[:2]
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("DIFFMOOG_CACHE_DIR", str(tmp_path / "a_file" / "cache"))  # cannot be created
    assert [n.note_str for n in NSynthDataset(tmp_path, duration=0.1).notes] == keys[:2]


def test_is_nsynth_root(nsynth_fixture_dir, tmp_path):
    from diffmoog.data.nsynth_index import is_nsynth_root
    make_split_dir(nsynth_fixture_dir, tmp_path / "release" / "nsynth-valid", ["bass_sf_035-040-100"])
    assert is_nsynth_root(nsynth_fixture_dir) and is_nsynth_root(tmp_path / "release")
    assert not is_nsynth_root(nsynth_fixture_dir / "audio") and not is_nsynth_root(tmp_path / "nowhere")
