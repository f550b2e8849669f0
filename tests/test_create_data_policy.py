"""The silence/NaN policy: bad items are redrawn deterministically, never written."""
from __future__ import annotations

import pytest
import torch

import diffmoog
from create_data_helpers import CHAIN
from diffmoog.data.items import MAX_RETRIES, ItemRenderer, from_pcm16, noise_keys, to_pcm16
from diffmoog.errors import DiffmoogError


def flaky_render(chain):
    """The real chain, except quiet-saw patches render NaN and loud ones silence."""
    def render(params, **kw):
        audio = chain.render(params, **kw)
        amp = params["saw.amp"][:, None]
        audio = torch.where(amp < 0.3, torch.full_like(audio, float("nan")), audio)
        return torch.where(amp > 0.8, torch.zeros_like(audio), audio)
    return render


def test_bad_items_are_redrawn_the_same_way_at_any_batch_size():
    chain = diffmoog.Chain.load(CHAIN)
    make = lambda: ItemRenderer(chain, 0, "train", 8000, 0.1, render=flaky_render(chain))
    whole = make().render(0, 40)
    assert (whole.retries > 0).sum() >= 5  # the test really exercises the policy
    assert torch.isfinite(whole.audio).all() and (whole.audio.abs().amax(-1) >= 1e-3).all()
    amp = whole.params["saw.amp"]
    assert ((amp >= 0.3) & (amp <= 0.8)).all()
    pieces = [make().render(start, min(3, 40 - start)) for start in range(0, 40, 3)]
    assert torch.equal(torch.cat([p.audio for p in pieces]), whole.audio)
    assert torch.equal(torch.cat([p.retries for p in pieces]), whole.retries)
    # the noise key of a redrawn item follows from its index and retry count
    assert torch.equal(noise_keys(chain, 0, "train", range(40), whole.retries), whole.params["seed"])
    # untouched items are exactly the first draw
    first = ItemRenderer(chain, 0, "train", 8000, 0.1).render(0, 40)
    keep = whole.retries == 0
    assert torch.equal(first.audio[keep], whole.audio[keep])


def test_a_chain_that_is_always_silent_is_reported():
    chain = diffmoog.Chain.load(CHAIN)
    silent = ItemRenderer(chain, 0, "train", 8000, 0.1, render=lambda p, **kw: torch.zeros(p["seed"].shape[0], 800))
    with pytest.raises(DiffmoogError, match=f"silence or NaN for item 0 in {MAX_RETRIES + 1} draws"):
        silent.render(0, 2)


def test_pcm16_round_trip_is_exact_in_range_and_clips_outside():
    x = torch.tensor([0.0, 0.5, -0.25, 1.0, -1.0, 1.7, -3.0, 1 / 32768]).numpy()
    pcm = to_pcm16(x)
    assert pcm.tolist() == [0, 16384, -8192, 32767, -32768, 32767, -32768, 1]
    assert from_pcm16(pcm)[:3].tolist() == [0.0, 0.5, -0.25]


def test_pcm16_rows_skip_the_clip_only_when_it_cannot_matter():
    """The writers' per-row conversion (clip skipped when the peak allows) equals to_pcm16."""
    import numpy as np
    from diffmoog.data.items import NO_CLIP_BELOW, pcm16_into
    below = np.nextafter(np.float32(NO_CLIP_BELOW), np.float32(0))
    edge = np.float32(32767.5 / 32768)  # rounds half to even: 32768 without the clip
    rows = np.array([[0.1, -0.3, below, -below],  # peak below the bound: no clip needed
                     [0.1, edge, -edge, 0.0],
                     [NO_CLIP_BELOW, -2.0, 1.5, 0.25]], dtype=np.float32)
    out, scratch = np.empty(4, np.int16), np.empty(4, np.float32)
    for row in rows:
        peak = float(np.abs(row).max())
        assert pcm16_into(row, out, scratch, peak).tolist() == to_pcm16(row).tolist()
    assert to_pcm16(rows[0]).tolist() == [3277, -9830, 32767, -32767]
    assert to_pcm16(rows[1]).tolist() == [3277, 32767, -32768, 0]
