"""Mixer: weighted sum of its audio inputs, one level per input."""
from __future__ import annotations

from diffmoog.modules.base import Module
from diffmoog.params import Param


class Mixer(Module):
    type_name = "mixer"
    description = "Sums its inputs, each scaled by its own level `level_<input node>`."
    INPUTS = (1, None)

    @classmethod
    def declared_params(cls, input_names=(), wired_ports=()):
        return tuple(Param(f"level_{name}", "", 0.0, 1.0, "linear", 1.0 / max(len(input_names), 1),
                           description=f"Level of input '{name}'.") for name in input_names)

    @classmethod
    def all_param_names(cls):
        return ["level_<input>"]

    def render(self, ctx, inputs, params, controls):
        out = 0.0
        for name, signal in zip(self.input_names, inputs):
            out = out + params[f"level_{name}"] * signal
        return out
