"""LFO: a slow control signal in [-1, 1], optionally frequency-modulated by another LFO."""
from __future__ import annotations

from diffmoog.modules.base import Module
from diffmoog.modules.oscillator import OSC_CONSTANTS, osc_kernel, render_shapes, render_shapes_native
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
    KERNEL = osc_kernel.KERNEL
    C_CONSTANTS = OSC_CONSTANTS

    # Naive shapes: at LFO rates every harmonic that matters is far below Nyquist.
    def render_torch(self, ctx, inputs, params, controls):
        return render_shapes(self, ctx, params, params["freq_hz"], controls.get("freq_hz"),
                             params.get("mod_index"), band_limited=False)

    def render_native(self, ctx, inputs, params, controls):
        return render_shapes_native(self, ctx, params, params["freq_hz"], controls.get("freq_hz"),
                                    params.get("mod_index"), band_limited=False)
