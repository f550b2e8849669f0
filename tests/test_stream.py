"""Chain.stream: blocks concatenate to the offline render, for every built-in chain."""
import pytest
import torch

import diffmoog
from diffmoog.errors import ConfigError
from diffmoog.spec import builtin_chains
from diffmoog.stream import render_streamed

DURATION = 0.3


def soft_params(chain, batch, seed):
    """Random params with soft (mixed) categorical weights, as an encoder would give."""
    params = chain.sample(batch, seed=seed)
    generator = torch.Generator().manual_seed(seed)
    for fp in chain.free_params:
        if fp.param.is_categorical:
            logits = torch.randn((batch, len(fp.param.choices)), generator=generator)
            params[fp.key] = torch.softmax(logits, dim=-1)
    return params


@pytest.mark.parametrize("name", list(builtin_chains()))
def test_stream_equals_offline_render(name):
    chain = diffmoog.Chain.load(name)
    for params, sizes in ((chain.sample(3, seed=1), (512, 4096)), (soft_params(chain, 2, seed=2), (512,))):
        offline = chain.render(params, duration=DURATION, note_off=0.2)
        for block_size in sizes:
            blocks = list(chain.stream(params, block_size, duration=DURATION, note_off=0.2))
            assert all(b.shape[-1] == block_size for b in blocks[:-1])
            streamed = torch.cat(blocks, dim=-1)
            assert streamed.shape == offline.shape
            assert (streamed - offline).abs().max() <= 1e-5, (name, block_size)


@pytest.mark.parametrize("name", ["FM_DX7", "BASIC_FLOW", "MODULAR"])
def test_unaligned_block_size_within_float_rounding(name):
    chain = diffmoog.Chain.load(name)
    params = chain.sample(2, seed=3)
    offline = chain.render(params, duration=DURATION)
    streamed = render_streamed(chain, params, 1000, duration=DURATION)
    assert (streamed - offline).abs().max() <= 1e-4


def test_stream_automation_matches_offline():
    chain = diffmoog.Chain.load("REDUCED_SIMPLE_OSC")
    params = chain.sample(2, seed=4)
    # A cutoff sweep given as 5 control frames, upsampled over the note by both renders.
    params["lpf.cutoff_hz"] = torch.linspace(0.2, 0.9, 5).expand(2, 5).clone()
    offline = chain.render(params, duration=DURATION)
    streamed = render_streamed(chain, params, 512, duration=DURATION)
    assert (streamed - offline).abs().max() <= 1e-5


def test_bad_block_size_is_a_clear_error():
    chain = diffmoog.Chain.load("REDUCED_SIMPLE_OSC")
    with pytest.raises(ConfigError, match="block_size"):
        next(chain.stream(chain.sample(1), 3))
