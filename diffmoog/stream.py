"""Block-by-block rendering for real-time use: `Chain.stream(params, block_size)`.

Blocks whose size is a multiple of 64 samples (512, 1024, 4096...) give bit-identical
output to the offline render; other sizes differ only by float32 rounding of vectorised
math (up to ~1e-5 where FM integrates it into the phase).

Each block is an ordinary `Chain.render` on a RenderContext whose `start` is the block's
absolute sample index and whose `state` dict persists across blocks. Modules already use
absolute time (ADSR, noise, constant-pitch phase) or carry their memory in that dict
(time-varying phase, filter history, PM offsets), so the concatenated blocks equal the
offline render.
"""
from __future__ import annotations

from typing import Iterator

import torch

from diffmoog.errors import ConfigError
from diffmoog.params import SEED_KEY

MIN_BLOCK, MAX_BLOCK = 16, 65536
# Keys in the stream state dict next to the per-node states (not identifiers, so no node
# can be named like them): params are constant over the note / their physical values.
STREAM_CONSTANT, STREAM_VALUES = "<constant params>", "<physical values>"


def stream(chain, params: dict[str, torch.Tensor] | torch.Tensor | None = None,
           block_size: int = 512, *, sample_rate: int | None = None, duration: float | None = None,
           note_off: float | None = None) -> Iterator[torch.Tensor]:
    """Yield `[batch, block_size]` blocks (the last one may be shorter) of the sound that
    `chain.render(params, ...)` renders offline."""
    if not MIN_BLOCK <= int(block_size) <= MAX_BLOCK:
        raise ConfigError(f"block_size must be in {MIN_BLOCK}..{MAX_BLOCK}, got {block_size}")
    if params is None:
        params = chain.defaults(1)
    elif isinstance(params, torch.Tensor):
        params = chain.from_vector(params)
    params = chain.check_params(params)
    first = next(v for k, v in params.items() if k != SEED_KEY)
    batch, device = first.shape[0], first.device
    dtype = first.dtype if first.is_floating_point() else torch.float32
    probe = chain.context(batch, device, dtype, params.get(SEED_KEY), sample_rate, duration, note_off)
    total = probe.n_samples
    params, automated = _automation_per_sample(chain, params, total)
    state: dict = {STREAM_CONSTANT: not automated}
    with torch.no_grad():
        for start in range(0, total, int(block_size)):
            n = min(int(block_size), total - start)
            block_params = {k: v[:, start:start + n] if k in automated else v for k, v in params.items()}
            ctx = chain.context(batch, device, dtype, params.get(SEED_KEY), sample_rate, duration,
                                note_off, start=start, n_samples=n, state=state)
            yield chain.render(block_params, context=ctx)


def render_streamed(chain, params=None, block_size: int = 512, **kwargs) -> torch.Tensor:
    """All blocks of `stream(...)` concatenated: `[batch, samples]`."""
    return torch.cat(list(stream(chain, params, block_size, **kwargs)), dim=-1)


def _automation_per_sample(chain, params: dict, total: int) -> tuple[dict, set]:
    """Automated params `[batch, frames]` -> normalised `[batch, total]` so each block can take
    its own slice. The offline render interpolates in physical units, so this does too."""
    out, automated = dict(params), set()
    for fp in chain.free_params:
        value = params[fp.key]
        if fp.param.is_categorical or value.dim() < 2 or value.shape[-1] == 1:
            continue
        # As Chain.render's control-rate upsampling: linear, corners aligned.
        physical = torch.nn.functional.interpolate(fp.param.to_physical(value.double())[:, None], size=total,
                                                   mode="linear", align_corners=True)[:, 0]
        out[fp.key] = fp.param.to_normalized(physical).to(value.dtype)  # float64, like `physical`
        automated.add(fp.key)
    return out, automated
