"""Morphing oscillator: one continuous knob sweeps sine -> triangle -> saw -> square."""
from __future__ import annotations

import torch

from diffmoog.modules.base import Module
from diffmoog.modules.oscillator import AMP, FREQ_HZ, OSC_CONSTANTS, osc_kernel
from diffmoog.modules.waveforms import phase, render_waveform
from diffmoog.native.oscillator import SHAPE_IDS, oscillator
from diffmoog.params import Param

SHAPES = ("sine", "triangle", "saw", "square")


class MorphOscillator(Module):
    type_name = "morph_oscillator"
    description = "Band-limited oscillator whose shape morphs continuously (differentiable timbre)."
    PARAMS = (FREQ_HZ, AMP,
              Param("shape", "", 0.0, 1.0, "linear", 0.0,
                    description="0 sine, 1/3 triangle, 2/3 saw, 1 square; linear cross-fades between."))
    KERNEL = osc_kernel.KERNEL
    C_CONSTANTS = OSC_CONSTANTS

    @staticmethod
    def _weights(params) -> list[torch.Tensor]:
        position = params["shape"] * (len(SHAPES) - 1)
        # Triangular weights: each shape peaks at its own position and fades over one step.
        return [torch.clamp(1.0 - torch.abs(position - i), min=0.0) for i in range(len(SHAPES))]

    def render_torch(self, ctx, inputs, params, controls):
        weights = self._weights(params)
        p, inc = phase(ctx, params["freq_hz"], self.node)
        out = 0.0
        for weight, name in zip(weights, SHAPES):
            out = out + weight * render_waveform(name, p, inc, True)
        return params["amp"] * out

    def render_native(self, ctx, inputs, params, controls):
        """One fused kernel pass per shape that any row uses (a zero weight has zero gradient)."""
        weights = self._weights(params)
        state = ctx.node_state(self.node)
        start_phase = state.get("phase") if state is not None else None
        out = None
        for weight, name in zip(weights, SHAPES):
            if weight.shape[-1] == 1 and not bool((weight != 0).any()):
                continue
            ids = torch.full((ctx.batch_size,), SHAPE_IDS[name], dtype=torch.int32)
            wave, end = oscillator(params["freq_hz"], params["amp"], ids, True, ctx.sample_rate, ctx.start,
                                   ctx.n_samples, phase=start_phase)
            if state is not None and end is not None:  # a pitch automation continues next block
                state["phase"] = end
            out = wave * weight if out is None else torch.addcmul(out, wave, weight)
        return out if out is not None else params["amp"].new_zeros(ctx.batch_size, ctx.n_samples)
