"""VCA: scales its input by a gain, optionally times a control signal (usually an ADSR)."""
from __future__ import annotations

from diffmoog.modules.base import Module
from diffmoog.params import Param


class VCA(Module):
    type_name = "vca"
    description = "Voltage-controlled amplifier: out = input * gain * control(t)."
    PARAMS = (Param("gain", "", 0.0, 1.0, "linear", 1.0, description="Static gain."),)
    CONTROL_PORTS = {"gain": ()}
    INPUTS = (1, 1)
    BYPASS = "input"

    def render_torch(self, ctx, inputs, params, controls):
        if "gain" not in controls:
            return inputs[0] * params["gain"]
        if self.static.get("gain") == 1.0:  # the usual patch: skip a pass over the audio
            return inputs[0] * controls["gain"]
        return inputs[0] * controls["gain"] * params["gain"]
