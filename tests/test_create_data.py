"""create-data as a user runs it: layout per split, determinism, shards, no train/val leak."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

import diffmoog
from create_data_helpers import CHAIN, TINY, generate, popen, read_csv, snapshot
from diffmoog.data.tables import vector_columns

SIZE = 40


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """One uninterrupted whole run (batch size 64), shared by the comparisons below."""
    return generate(tmp_path_factory.mktemp("ref"), SIZE, "-bs", "64")


def check_layout(root, split, size):
    chain = diffmoog.Chain.load(CHAIN)
    ids = [f"{i:06d}" for i in range(size)]
    assert sorted(p.name for p in root.iterdir()) == ["metadata.json", "params_dataset.csv",
                                                      "params_normalized.csv", "wav_files"]
    assert sorted(p.name for p in (root / "wav_files").iterdir()) == [f"{i}.wav" for i in ids]
    for item in ids:
        audio, rate = sf.read(root / "wav_files" / f"{item}.wav", dtype="int16")
        assert rate == 8000 and audio.shape == (800,) and np.abs(audio).max() > 0
        assert sf.info(root / "wav_files" / f"{item}.wav").subtype == "PCM_16"

    header, rows = read_csv(root / "params_dataset.csv")
    assert header == ["id", *chain.param_keys, "retries"] and [r[0] for r in rows] == ids
    for row in rows:
        for fp, value in zip(chain.free_params, row[1:]):
            if fp.param.is_categorical:
                assert value in fp.param.choices
            else:
                assert fp.param.low <= float(value) <= fp.param.high, (fp.key, value)
    header, rows = read_csv(root / "params_normalized.csv")
    assert header == ["id", *vector_columns(chain)] and [r[0] for r in rows] == ids
    values = np.array([r[1:] for r in rows], dtype=float)
    assert np.isfinite(values).all() and values.min() >= 0 and values.max() <= 1

    meta = json.loads((root / "metadata.json").read_text())
    for key in ("chain", "chain_name", "args", "version", "seed", "split", "sample_rate", "duration",
                "note_off", "count", "created", "finished"):
        assert key in meta, key
    assert meta["split"] == split and meta["count"] == size and meta["chain_name"] == CHAIN
    assert meta["sample_rate"] == 8000 and meta["duration"] == 0.1 and meta["version"] == diffmoog.__version__
    assert diffmoog.Chain.from_dict(meta["chain"]).param_keys == chain.param_keys  # self-describing


def test_every_split_has_the_layout_and_no_split_overlaps_another(tmp_path):
    roots = {split: generate(tmp_path, 20, split=split) for split in ("train", "val", "test")}
    params, audio = {}, {}
    for split, root in roots.items():
        check_layout(root, split, 20)
        params[split] = {tuple(r[1:-1]) for r in read_csv(root / "params_dataset.csv")[1]}
        audio[split] = {p.read_bytes() for p in (root / "wav_files").glob("*.wav")}
        assert len(params[split]) == 20 and len(audio[split]) == 20
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not params[a] & params[b], (a, b)
        assert not audio[a] & audio[b], (a, b)


def test_batch_size_does_not_change_a_byte(tmp_path, reference):
    other = generate(tmp_path, SIZE, "-bs", "7", "--workers", "3")
    assert snapshot(other) == snapshot(reference)


def test_two_shards_make_the_whole_dataset(tmp_path, reference):
    out = tmp_path
    generate(out, SIZE, "--shard", "1/2", "-bs", "7")  # order does not matter
    root = out / CHAIN.lower() / "train"
    assert not (root / "metadata.json").exists()  # not finished until every shard is
    generate(out, SIZE, "--shard", "0/2", "-bs", "64")
    assert snapshot(root) == snapshot(reference)
    assert json.loads((root / "metadata.json").read_text())["shards"] == 2


def test_shards_running_at_the_same_time_in_one_folder(tmp_path, reference):
    generate(tmp_path, SIZE, "--shard", "2/3")
    procs = [popen("-c", CHAIN, "--size", SIZE, "-o", tmp_path, *TINY, "--shard", f"{k}/3") for k in (0, 1)]
    for proc in procs:  # the last two finish together: only one may finalize, neither may fail
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
    root = tmp_path / CHAIN.lower() / "train"
    assert snapshot(root) == snapshot(reference)
