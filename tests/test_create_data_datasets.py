"""Reading create-data output back (ParamsDataset, collate_batch) and the on-the-fly twin."""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

import diffmoog
from create_data_helpers import CHAIN
from diffmoog.data.dataset import OnTheFlyDataset, ParamsDataset, collate_batch
from diffmoog.data_gen.create import create
from diffmoog.data_gen.options import GenOptions
from diffmoog.errors import DiffmoogError

SIZE = 23


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    opts = GenOptions(chain=diffmoog.Chain.load(CHAIN), size=SIZE, split="val", out=tmp_path_factory.mktemp("d"),
                      sample_rate=8000, duration=0.1, batch_size=5, seed=3, progress_bar=False)
    create(opts)
    return opts.layout.root


def cat(batches):
    out = {key: torch.cat([b[key] for b in batches]) for key in ("audio", "params", "physical", "seed")}
    return {**out, "id": sum((b["id"] for b in batches), [])}


def assert_same(a, b):
    assert a["id"] == b["id"]
    for key in ("audio", "params", "physical"):
        assert a[key].dtype == torch.float32 and torch.equal(a[key], b[key]), key
    assert a["seed"].dtype == torch.int64 and torch.equal(a["seed"], b["seed"])


def test_params_dataset_reads_what_was_written(written):
    ds = ParamsDataset(written)
    chain = ds.chain
    assert len(ds) == SIZE and ds.metadata["split"] == "val" and chain.name == CHAIN
    item = ds[4]
    assert item["id"] == "000004" and item["audio"].shape == (800,)
    assert item["params"].shape == (chain.vector_size,) and item["physical"].shape == (len(chain.free_params),)
    # physical and normalised columns describe the same sound
    back = chain.to_normalized({k: item["physical"][j:j + 1] for j, k in enumerate(chain.param_keys)})
    assert torch.allclose(chain.to_vector(back)[0], item["params"], atol=1e-5)
    assert ds.render_kwargs == {"sample_rate": 8000, "duration": 0.1, "note_off": 3.0}
    # params + seed re-render the stored sound (up to 16-bit quantisation)
    again = chain.render(chain.from_vector(item["params"][None], item["seed"][None]), **ds.render_kwargs)
    assert (again[0].clamp(-1, 1) - item["audio"]).abs().max() <= 1 / 32768 + 1e-6


def test_collate_and_dataloader_stack_items(written):
    ds = ParamsDataset(written, chain=diffmoog.Chain.load(CHAIN))
    batch = next(iter(DataLoader(ds, batch_size=8, collate_fn=collate_batch)))
    assert batch["audio"].shape == (8, 800) and batch["params"].shape == (8, ds.chain.vector_size)
    assert batch["id"] == [f"{i:06d}" for i in range(8)]


def test_on_the_fly_equals_the_written_files(written):
    ds = ParamsDataset(written)
    on_disk = collate_batch([ds[i] for i in range(len(ds))])
    fly = OnTheFlyDataset(ds.chain, SIZE, seed=3, split="val", batch_size=7, sample_rate=8000, duration=0.1)
    assert len(fly) == 4
    assert_same(cat(list(fly)), on_disk)


def test_on_the_fly_shards_cover_everything_once(written):
    chain = diffmoog.Chain.load(CHAIN)
    kwargs = dict(seed=3, split="val", batch_size=4, sample_rate=8000, duration=0.1)
    whole = cat(list(OnTheFlyDataset(chain, SIZE, **kwargs)))
    parts = []
    for rank in range(2):  # two DDP ranks, each with two DataLoader workers
        loader = DataLoader(OnTheFlyDataset(chain, SIZE, shard=(rank, 2), **kwargs), batch_size=None, num_workers=2)
        parts += list(loader)
    joined = cat(sorted(parts, key=lambda b: b["id"][0]))
    assert_same(joined, whole)


def test_a_different_chain_or_an_unfinished_folder_is_refused(written, tmp_path):
    with pytest.raises(DiffmoogError, match="differs from the dataset's"):
        ParamsDataset(written, chain=diffmoog.Chain.load("REDUCED"))
    (tmp_path / ".progress").mkdir()
    with pytest.raises(DiffmoogError, match="still being generated"):
        ParamsDataset(tmp_path)


def test_float_wavs_read_back_unquantised(tmp_path):
    chain = diffmoog.Chain.load(CHAIN)
    opts = GenOptions(chain=chain, size=6, out=tmp_path, sample_rate=8000, duration=0.1, float32=True,
                      progress_bar=False)
    create(opts)
    ds = ParamsDataset(opts.layout.root)
    assert ds.metadata["format"] == "float32"
    fly = OnTheFlyDataset(chain, 6, sample_rate=8000, duration=0.1, pcm16=False)
    assert_same(cat(list(fly)), collate_batch([ds[i] for i in range(6)]))
