"""ADSR envelope that knows note-off; an amplitude envelope or a modulation source in [0, 1]."""
from __future__ import annotations

import torch

from diffmoog.modules.base import Module
from diffmoog.native import adsr as adsr_kernel
from diffmoog.params import Param

# The curve's exponent k = CURVE_MIN + CURVE_SPAN * curve: near 0 linear, larger more exponential.
CURVE_MIN, CURVE_SPAN = 1e-3, 8.0
_NAMES = ("attack_s", "decay_s", "sustain_level", "release_s", "curve")


def _curve(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Map a [0,1] ramp through an RC-like curve; k -> 0 is linear, larger k is more exponential."""
    return torch.expm1(-k * x) / torch.expm1(-k)


class ADSR(Module):
    type_name = "adsr"
    description = "Attack-decay-sustain-release envelope; release starts at the render's note-off."
    PARAMS = (Param("attack_s", "s", 0.001, 2.0, "log", 0.01, description="Time to reach 1."),
              Param("decay_s", "s", 0.001, 2.0, "log", 0.2, description="Time from 1 to the sustain level."),
              Param("sustain_level", "", 0.0, 1.0, "linear", 0.7, description="Level held until note-off."),
              Param("release_s", "s", 0.001, 2.0, "log", 0.3, description="Time from note-off to 0."),
              Param("curve", "", 0.0, 1.0, "linear", 0.5,
                    description="Segment shape: 0 linear, 1 strongly exponential (analog-like)."))
    KERNEL = adsr_kernel.KERNEL
    C_CONSTANTS = {"ADSR_CURVE_MIN": CURVE_MIN, "ADSR_CURVE_SPAN": CURVE_SPAN}

    def render_native(self, ctx, inputs, params, controls):  # the same closed form, fused (native/adsr.h)
        return adsr_kernel.adsr(*(params[n] for n in _NAMES), ctx.sample_rate, ctx.note_off_s, ctx.start,
                                ctx.n_samples)

    def render_torch(self, ctx, inputs, params, controls):
        t = ctx.time_s()
        k = CURVE_MIN + CURVE_SPAN * params["curve"]
        attack, decay = params["attack_s"], params["decay_s"]
        # Closed form, no branches: the decay ramp is 0 until the attack ends, and the level
        # is frozen at note-off (t_held) before the release ramp scales it down to 0.
        t_held = torch.clamp(t, max=ctx.note_off_s)
        rise = _curve(torch.clamp(t_held / attack, 0.0, 1.0), k)
        fall = _curve(torch.clamp((t_held - attack) / decay, 0.0, 1.0), k)
        held = rise - (1.0 - params["sustain_level"]) * fall
        release = _curve(torch.clamp((t - ctx.note_off_s) / params["release_s"], 0.0, 1.0), k)
        return held * (1.0 - release)
