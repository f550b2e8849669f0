"""PM oscillator (DX7-style "FM"): the modulator is added to the carrier's phase."""
from __future__ import annotations

import torch

from diffmoog.modules.base import Module, mix_choices, take_rows
from diffmoog.modules.oscillator import (AMP, BAND_LIMIT, FREQ_HZ, OSC_CONSTANTS, is_band_limited, osc_kernel,
                                         render_kernel, waveform_param)
from diffmoog.modules.waveforms import TWO_PI, frac, phase, render_waveform
from diffmoog.params import Param

MOD_INDEX_RAD = Param("mod_index", "rad", 0.0, 10.0, "linear", 1.0,
                      description="Phase deviation in radians for a modulator of +-1.")


class PMOscillator(Module):
    type_name = "pm_oscillator"
    description = "Phase-modulated oscillator: y = amp * wave(phase(t) + mod_index * m(t) / 2pi)."
    PARAMS = (FREQ_HZ, AMP, waveform_param(("sine", "saw", "square"), "sine"), BAND_LIMIT)
    CONTROL_PORTS = {"phase": (MOD_INDEX_RAD,)}
    REQUIRED_PORTS = ("phase",)
    KERNEL = osc_kernel.KERNEL
    C_CONSTANTS = OSC_CONSTANTS

    def render_native(self, ctx, inputs, params, controls):
        offset = params["mod_index"] * controls["phase"] / TWO_PI  # the oscillator kernel takes the offset
        return render_kernel(self, ctx, params, self.PARAMS[2].choices, params["freq_hz"], params["amp"],
                             None, None, is_band_limited(self, params), phase_offset=offset)

    def render_torch(self, ctx, inputs, params, controls):
        offset = params["mod_index"] * controls["phase"] / TWO_PI
        carrier, inc = phase(ctx, params["freq_hz"], self.node)
        p = frac(carrier + offset)
        # The instantaneous increment sets the BLEP width; the first sample reuses the carrier's
        # (a streamed block continues from the previous block's last offset instead).
        state = ctx.node_state(self.node)
        before = state.get("offset") if state else None
        step = torch.diff(offset, dim=-1, prepend=offset[:, :1] if before is None else before)
        if state is not None:
            state["offset"] = offset[:, -1:].detach()
        inc = inc + step
        band_limited = is_band_limited(self, params)
        shapes = self.PARAMS[2].choices

        def one(choice, rows):
            return render_waveform(shapes[choice], take_rows(p, rows), take_rows(inc, rows),
                                   band_limited)

        return params["amp"] * mix_choices(params["waveform"], one, self.static_choice("waveform"))
