import torch

import diffmoog


def test_reduced_simple_osc_renders():
    chain = diffmoog.Chain.load("REDUCED_SIMPLE_OSC")
    audio = chain.render(chain.sample(3, seed=0))
    assert audio.shape == (3, 64000) and audio.dtype == torch.float32
    assert torch.isfinite(audio).all() and audio.abs().max() > 0
