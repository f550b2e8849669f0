"""Mixer: weighted sum of its audio inputs, one level per input."""
from __future__ import annotations

import torch

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

    def render_torch(self, ctx, inputs, params, controls):
        # One fused multiply-add pass per input.
        out = None
        for name, signal in zip(self.input_names, inputs):
            level = params[f"level_{name}"]
            out = signal * level if out is None else torch.addcmul(out, signal, level)
        return out
