"""LFO: a slow control signal in [-1, 1], optionally frequency-modulated by another LFO."""
from __future__ import annotations

import torch

from diffmoog.modules.base import Module, mix_choices, take_rows
from diffmoog.modules.waveforms import phase, render_waveform
from diffmoog.params import Param


class LFO(Module):
    type_name = "lfo"
    description = "Low-frequency oscillator (control signal in [-1, 1]); naive shapes are fine at these rates."
    PARAMS = (Param("freq_hz", "Hz", 0.1, 20.0, "log", 2.0, description="LFO rate."),
              Param("waveform", "", scale="categorical",
                    choices=("sine", "triangle", "saw", "square"), default="sine",
                    description="LFO shape."))
    CONTROL_PORTS = {"freq_hz": (Param("mod_index", "oct", 0.0, 2.0, "linear", 0.5,
                                       description="FM depth in octaves per unit of modulator."),)}

    def render(self, ctx, inputs, params, controls):
        freq = params["freq_hz"]
        if "freq_hz" in controls:
            freq = freq * torch.exp2(params["mod_index"] * controls["freq_hz"])
        p, inc = phase(ctx, freq, self.node)
        shapes = self.PARAMS[1].choices
        return mix_choices(params["waveform"],
                           lambda c, rows: render_waveform(shapes[c], take_rows(p, rows),
                                                           take_rows(inc, rows), False),
                           self.static_choice("waveform"))
