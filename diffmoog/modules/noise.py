"""White noise, seeded per batch item so a sound is reproducible from its own seed."""
from __future__ import annotations

from diffmoog import native, rng
from diffmoog.modules.base import Module
from diffmoog.native.noise import noise
from diffmoog.params import Param


class Noise(Module):
    type_name = "noise"
    description = "Uniform white noise in [-amp, amp]; item i uses seed i, sample n counter n."
    PARAMS = (Param("amp", "", 0.0, 1.0, "linear", 0.3, description="Noise level."),)

    def render(self, ctx, inputs, params, controls):
        # Counter-based: independent of batch composition and continuous across stream blocks.
        if native.usable(params["amp"]):  # the same hash, fused with the scaling
            return noise(ctx.seeds, params["amp"], ctx.start, ctx.n_samples)
        white = rng.uniform(ctx.seeds[:, None], ctx.sample_index()[None, :]).to(ctx.dtype)
        return params["amp"] * (2.0 * white - 1.0)
