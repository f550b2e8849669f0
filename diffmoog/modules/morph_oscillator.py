"""Morphing oscillator: one continuous knob sweeps sine -> triangle -> saw -> square."""
from __future__ import annotations

import torch

from diffmoog.modules.base import Module
from diffmoog.modules.oscillator import AMP, FREQ_HZ
from diffmoog.modules.waveforms import phase, render_waveform
from diffmoog.params import Param

SHAPES = ("sine", "triangle", "saw", "square")


class MorphOscillator(Module):
    type_name = "morph_oscillator"
    description = "Band-limited oscillator whose shape morphs continuously (differentiable timbre)."
    PARAMS = (FREQ_HZ, AMP,
              Param("shape", "", 0.0, 1.0, "linear", 0.0,
                    description="0 sine, 1/3 triangle, 2/3 saw, 1 square; linear cross-fades between."))

    def render(self, ctx, inputs, params, controls):
        p, inc = phase(ctx, params["freq_hz"], self.node)
        position = params["shape"] * (len(SHAPES) - 1)
        out = 0.0
        for i, name in enumerate(SHAPES):
            # Triangular weights: each shape peaks at its own position and fades over one step.
            weight = torch.clamp(1.0 - torch.abs(position - i), min=0.0)
            out = out + weight * render_waveform(name, p, inc, True)
        return params["amp"] * out
