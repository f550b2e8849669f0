"""Tremolo: amplitude modulation of its input by a built-in sine LFO."""
from __future__ import annotations

import torch

from diffmoog.modules.base import Module
from diffmoog.modules.oscillator import OSC_CONSTANTS, osc_kernel
from diffmoog.modules.waveforms import TWO_PI, phase
from diffmoog.params import Param


class Tremolo(Module):
    type_name = "tremolo"
    description = "out = input * (1 - depth * (1 + sin(2 pi rate t)) / 2)."
    PARAMS = (Param("rate_hz", "Hz", 0.5, 20.0, "log", 5.0, description="Tremolo rate."),
              Param("depth", "", 0.0, 1.0, "linear", 0.3, description="0 none, 1 full cut at troughs."))
    INPUTS = (1, 1)
    BYPASS = "input"
    KERNEL = osc_kernel.KERNEL
    C_CONSTANTS = OSC_CONSTANTS

    def render_native(self, ctx, inputs, params, controls):
        depth = params["depth"]
        # 1 - depth (1 + sin) / 2 = (1 - depth/2) - (depth/2) sin: the kernel makes the sine term.
        shapes = torch.full((ctx.batch_size,), osc_kernel.SHAPE_IDS["sine"], dtype=torch.int32)
        state = ctx.node_state(self.node)
        swing, end = osc_kernel.oscillator(params["rate_hz"], 0.5 * depth, shapes, False, ctx.sample_rate,
                                           ctx.start, ctx.n_samples,
                                           phase=state.get("phase") if state is not None else None)
        if state is not None and end is not None:  # an automated rate continues next block
            state["phase"] = end
        return inputs[0] * ((1.0 - 0.5 * depth) - swing)

    def render_torch(self, ctx, inputs, params, controls):
        p, _ = phase(ctx, params["rate_hz"], self.node)
        wobble = 0.5 * (1.0 + torch.sin(TWO_PI * p))
        return inputs[0] * (1.0 - params["depth"] * wobble)
