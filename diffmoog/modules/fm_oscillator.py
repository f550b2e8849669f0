"""FM oscillator: pitch modulated exponentially by any control signal (LFO, envelope, audio)."""
from __future__ import annotations

from diffmoog.modules.base import Module
from diffmoog.modules.oscillator import (AMP, BAND_LIMIT, FREQ_HZ, OSC_CONSTANTS, osc_kernel, render_shapes,
                                         render_shapes_native, waveform_param)
from diffmoog.params import Param

MOD_INDEX_OCT = Param("mod_index", "oct", 0.0, 4.0, "linear", 0.5,
                      description="Modulation depth: +-1 of the modulator moves pitch this many octaves.")


class FMOscillator(Module):
    type_name = "fm_oscillator"
    description = "Frequency-modulated oscillator: f(t) = freq_hz * 2^(mod_index * m(t))."
    PARAMS = (FREQ_HZ, AMP, waveform_param(("sine", "saw", "square"), "sine"), BAND_LIMIT)
    # Exponential FM keeps the frequency positive, so PolyBLEP edges stay well defined.
    CONTROL_PORTS = {"freq_hz": (MOD_INDEX_OCT,)}
    REQUIRED_PORTS = ("freq_hz",)
    KERNEL = osc_kernel.KERNEL
    C_CONSTANTS = OSC_CONSTANTS

    def render_torch(self, ctx, inputs, params, controls):
        return render_shapes(self, ctx, params, params["freq_hz"], controls["freq_hz"], params["mod_index"])

    def render_native(self, ctx, inputs, params, controls):
        return render_shapes_native(self, ctx, params, params["freq_hz"], controls["freq_hz"], params["mod_index"])
