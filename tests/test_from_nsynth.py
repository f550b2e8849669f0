"""`create-data --from-nsynth`: run as a user would, in tmp_path, against the 14-note fixture."""
import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from diffmoog.data.nsynth import NSynthDataset
from diffmoog.data_gen import from_nsynth
from nsynth_helpers import fixture_examples, make_split_dir, write_official_tfrecord

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def private_index_cache(tmp_path_factory, monkeypatch):
    """Keep the TFRecord index cache out of ~/.cache while testing."""
    monkeypatch.setenv("DIFFMOOG_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def create_data(*args, cwd):
    if not (REPO / "data_gen" / "cli.py").is_file():
        pytest.skip("data_gen/cli.py (the create-data CLI) is not in this checkout")
    script = Path(sys.executable).with_name("create-data")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "diffmoog.data_gen.cli"]
    return subprocess.run(command + [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300)


def labels(split_dir: Path) -> list[dict]:
    with open(split_dir / "nsynth_labels.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def tree_bytes(split_dir: Path) -> dict:
    return {p.relative_to(split_dir).as_posix(): p.read_bytes() for p in sorted(split_dir.rglob("*"))
            if p.is_file() and p.name != "metadata.json"}


def namespace(root, out, **overrides):
    args = dict(from_nsynth=Path(root), out=Path(out), name=None, split="train", size=None, seed=0,
                sample_rate=None, signal_duration=0.5, force=False, families=None, sources=None,
                pitch_min=None, pitch_max=None, velocities=None, no_progress=True)
    args.update(overrides)
    return argparse.Namespace(**args)


def test_pool_splits_are_disjoint_and_match_the_notes(nsynth_fixture_dir, tmp_path):
    rows = {}
    result = create_data("--from-nsynth", nsynth_fixture_dir, "-s", "train", "-sd", "0.5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "copied 10 NSynth notes" in result.stderr
    for split in ("val", "test"):  # in-process: the same code path, without another interpreter start
        from_nsynth.main(namespace(nsynth_fixture_dir, tmp_path / "data", split=split))
    for split in ("train", "val", "test"):
        split_dir = tmp_path / "data" / "nsynth" / split
        rows[split] = labels(split_dir)
        wavs = sorted(p.stem for p in (split_dir / "wav_files").glob("*.wav"))
        assert wavs == [r["id"] for r in rows[split]] and wavs
        meta = json.loads((split_dir / "metadata.json").read_text())
        assert meta["source"] == "nsynth" and meta["count"] == len(wavs) and meta["pool"]["mode"] == "instrument_hash"
        assert not (split_dir / ".progress").exists()
    notes = {s: {r["note_str"] for r in rows[s]} for s in rows}
    instruments = {s: {r["instrument_str"] for r in rows[s]} for s in rows}
    assert sum(len(n) for n in notes.values()) == 14 == len(set.union(*notes.values()))
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not notes[a] & notes[b] and not instruments[a] & instruments[b]
    # Every wav is the note itself (16-bit copies of 16-bit notes are bit-exact), in id order.
    reference = NSynthDataset(nsynth_fixture_dir, duration=0.5)
    by_note = {n.note_str: i for i, n in enumerate(reference.notes)}
    for row in rows["val"]:
        audio, rate = sf.read(tmp_path / "data" / "nsynth" / "val" / "wav_files" / f"{row['id']}.wav", dtype="int16")
        assert rate == 16000 and audio.shape == (8000,)
        assert torch.equal(torch.from_numpy(audio / 32768.0).float(), reference[by_note[row["note_str"]]]["audio"])
        assert int(row["pitch"]) == reference[by_note[row["note_str"]]]["pitch"]


def test_filters_subset_determinism_and_overwrite(nsynth_fixture_dir, tmp_path):
    flags = ["--from-nsynth", nsynth_fixture_dir, "--families", "drum,keyboard", "guitar", "--velocities", "100",
             "--pitch-min", "30", "--pitch-max", "60", "--size", "3", "--seed", "7", "-sr", "8000", "-sd", "0.25",
             "--no-progress", "-o", "a"]
    first = create_data(*flags, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    from_nsynth.main(namespace(nsynth_fixture_dir, tmp_path / "b", families=["drum,keyboard", "guitar"],
                               velocities=["100"], pitch_min=30, pitch_max=60, size=3, seed=7, sample_rate=8000,
                               signal_duration=0.25))
    split_a, split_b = tmp_path / "a" / "nsynth" / "train", tmp_path / "b" / "nsynth" / "train"
    assert tree_bytes(split_a) == tree_bytes(split_b)
    rows = labels(split_a)
    assert len(rows) == 3 and all(r["family_str"] in ("drum", "keyboard", "guitar") for r in rows)
    assert all(30 <= int(r["pitch"]) <= 60 for r in rows)
    assert sf.info(split_a / "wav_files" / "000000.wav").samplerate == 8000
    meta = json.loads((split_a / "metadata.json").read_text())
    assert meta["filters"] == {"families": ["drum", "keyboard", "guitar"], "sources": None,
                               "pitch_range": [30, 60], "velocities": [100]} and meta["seed"] == 7
    refused = create_data(*flags, cwd=tmp_path)
    assert refused.returncode == 2 and "--force" in refused.stderr and "Traceback" not in refused.stderr
    assert tree_bytes(split_a) == tree_bytes(split_b)  # nothing touched
    from_nsynth.main(namespace(nsynth_fixture_dir, tmp_path / "a", size=2, force=True))
    assert len(labels(split_a)) == 2


def test_bad_flags_give_one_line_and_exit_2(nsynth_fixture_dir, tmp_path):
    result = create_data("--from-nsynth", nsynth_fixture_dir, "--families", "gitar", cwd=tmp_path)
    assert result.returncode == 2 and "did you mean 'guitar'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "data").exists()
    result = create_data("--from-nsynth", tmp_path / "nowhere", cwd=tmp_path)
    assert result.returncode == 2 and "nowhere" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("overrides,message", [
    ({"size": 99}, "only 10 match"), ({"size": 0}, "--size"), ({"velocities": ["loud"]}, "--velocities"),
    ({"split": "vall"}, "did you mean 'val'"), ({"name": "a/b"}, "--name"), ({"signal_duration": -1}, "duration"),
])
def test_bad_values_are_config_errors(nsynth_fixture_dir, tmp_path, overrides, message):
    with pytest.raises(from_nsynth.ConfigError, match=message):
        from_nsynth.main(namespace(nsynth_fixture_dir, tmp_path, **overrides))
    assert not any(tmp_path.iterdir())


def test_interrupted_copy_resumes_to_the_same_bytes(nsynth_fixture_dir, tmp_path, monkeypatch):
    from_nsynth.main(namespace(nsynth_fixture_dir, tmp_path / "whole"))
    real_write, calls = from_nsynth.wavfile.write, []

    def dying_write(*args, **kwargs):
        if len(calls) == 4:
            raise KeyboardInterrupt
        calls.append(args[0])
        real_write(*args, **kwargs)

    monkeypatch.setattr(from_nsynth.wavfile, "write", dying_write)
    with pytest.raises(KeyboardInterrupt):
        from_nsynth.main(namespace(nsynth_fixture_dir, tmp_path / "cut"))
    monkeypatch.setattr(from_nsynth.wavfile, "write", real_write)
    split = tmp_path / "cut" / "nsynth" / "train"
    assert not (split / "metadata.json").exists() and len(list(split.glob("wav_files/*.wav"))) == 4
    with pytest.raises(from_nsynth.ConfigError, match="other arguments"):
        from_nsynth.main(namespace(nsynth_fixture_dir, tmp_path / "cut", seed=1))
    from_nsynth.main(namespace(nsynth_fixture_dir, tmp_path / "cut"))
    assert tree_bytes(split) == tree_bytes(tmp_path / "whole" / "nsynth" / "train")


def test_release_with_split_folders_uses_nsynth_splits(nsynth_fixture_dir, tmp_path):
    keys = sorted(fixture_examples(nsynth_fixture_dir))
    release = tmp_path / "nsynth"
    make_split_dir(nsynth_fixture_dir, release / "nsynth-train", keys[:9])
    make_split_dir(nsynth_fixture_dir, release / "nsynth-valid", keys[9:])
    for split, expected in (("train", keys[:9]), ("val", keys[9:])):
        from_nsynth.main(namespace(release, tmp_path / "out", split=split))
        assert sorted(r["note_str"] for r in labels(tmp_path / "out" / "nsynth" / split)) == expected
    meta = json.loads((tmp_path / "out" / "nsynth" / "val" / "metadata.json").read_text())
    assert meta["pool"]["mode"] == "nsynth_split" and meta["pool"]["nsynth_split"] == "valid"
    with pytest.raises(from_nsynth.ConfigError, match="no 'test' split"):
        from_nsynth.main(namespace(release, tmp_path / "out", split="test"))


def test_tfrecord_source_copies_the_same_bytes(nsynth_fixture_dir, tmp_path):
    keys = sorted(fixture_examples(nsynth_fixture_dir))
    (tmp_path / "rec").mkdir()
    write_official_tfrecord(nsynth_fixture_dir, tmp_path / "rec" / "notes.tfrecord", keys)
    from_nsynth.main(namespace(tmp_path / "rec", tmp_path / "a", split="val"))
    from_nsynth.main(namespace(nsynth_fixture_dir, tmp_path / "b", split="val"))
    a, b = tree_bytes(tmp_path / "a" / "nsynth" / "val"), tree_bytes(tmp_path / "b" / "nsynth" / "val")
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a if k.endswith(".wav"))
    assert [r["note_str"] for r in labels(tmp_path / "a" / "nsynth" / "val")] == \
        [r["note_str"] for r in labels(tmp_path / "b" / "nsynth" / "val")]


def test_unreadable_note_is_skipped_and_counted(nsynth_fixture_dir, tmp_path, capsys):
    keys = sorted(fixture_examples(nsynth_fixture_dir))
    root = make_split_dir(nsynth_fixture_dir, tmp_path / "src", keys)
    (root / "audio" / f"{keys[0]}.wav").write_bytes(b"junk")
    from_nsynth.main(namespace(root, tmp_path / "out", families=["bass", "brass"]))
    split = tmp_path / "out" / "nsynth" / "train"
    rows = labels(split)
    assert [r["note_str"] for r in rows] == [keys[1]] and rows[0]["id"] == "000001"
    assert sorted(p.stem for p in split.glob("wav_files/*.wav")) == ["000001"]
    meta = json.loads((split / "metadata.json").read_text())
    assert meta["count"] == 1 and list(meta["unreadable"]) == [keys[0]]
    assert "skipped 1 unreadable" in capsys.readouterr().err
    assert np.abs(sf.read(split / "wav_files" / "000001.wav")[0]).max() > 0.1
