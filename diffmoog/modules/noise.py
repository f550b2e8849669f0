"""White noise, seeded per batch item so a sound is reproducible from its own seed."""
from __future__ import annotations

from diffmoog import rng
from diffmoog.modules.base import Module
from diffmoog.native import noise as noise_kernel
from diffmoog.params import Param


class Noise(Module):
    type_name = "noise"
    description = "Uniform white noise in [-amp, amp]; item i uses seed i, sample n counter n."
    PARAMS = (Param("amp", "", 0.0, 1.0, "linear", 0.3, description="Noise level."),)
    KERNEL = noise_kernel.KERNEL
    C_CONSTANTS = {"RNG_MIX_MUL1": rng.MIX_MULTIPLIERS[0], "RNG_MIX_MUL2": rng.MIX_MULTIPLIERS[1],
                   "RNG_SALT_MUL": rng.SALT_MULTIPLIER}

    def render_native(self, ctx, inputs, params, controls):  # the same hash, fused with the scaling
        return noise_kernel.noise(ctx.seeds, params["amp"], ctx.start, ctx.n_samples)

    def render_torch(self, ctx, inputs, params, controls):
        # Counter-based: independent of batch composition and continuous across stream blocks.
        white = rng.uniform(ctx.seeds[:, None], ctx.sample_index()[None, :]).to(ctx.dtype)
        return params["amp"] * (2.0 * white - 1.0)
