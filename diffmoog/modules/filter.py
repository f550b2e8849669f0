"""Resonant biquad filter (low/high/band-pass) with an optional time-varying cutoff.

The coefficients follow the RBJ audio-EQ cookbook. The feed-forward part is a 3-tap
product; the recursive part runs in torchlpc's `sample_wise_lpc`, which is compiled and
has an analytic backward pass, so a per-sample cutoff costs no Python loop.
"""
from __future__ import annotations

import torch
from torchlpc import sample_wise_lpc

from diffmoog.modules.base import Module
from diffmoog.params import Param

TYPES = ("lowpass", "highpass", "bandpass")


def biquad_coefficients(cutoff_hz: torch.Tensor, q: torch.Tensor, type_weights: torch.Tensor,
                        sample_rate: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Return ([b0, b1, b2], [a1, a2]), normalised by a0, each broadcast to cutoff's shape.

    All three types share the denominator, so a soft mix of types mixes only numerators.
    """
    w0 = 2.0 * torch.pi * cutoff_hz / sample_rate
    cos_w0, sin_w0 = torch.cos(w0), torch.sin(w0)
    alpha = sin_w0 / (2.0 * q)
    inv_a0 = 1.0 / (1.0 + alpha)
    lp = (1.0 - cos_w0) * 0.5
    hp = (1.0 + cos_w0) * 0.5
    w_lp, w_hp, w_bp = (type_weights[:, i:i + 1] for i in range(3))
    b0 = (w_lp * lp + w_hp * hp + w_bp * alpha) * inv_a0
    b1 = (w_lp * 2.0 * lp - w_hp * 2.0 * hp) * inv_a0
    b2 = (w_lp * lp + w_hp * hp - w_bp * alpha) * inv_a0
    a1 = -2.0 * cos_w0 * inv_a0
    a2 = (1.0 - alpha) * inv_a0
    return [b0, b1, b2], [a1, a2]


class Filter(Module):
    type_name = "filter"
    description = "Resonant 2-pole filter; wire an envelope into `cutoff_hz` for a filter sweep."
    PARAMS = (Param("cutoff_hz", "Hz", 30.0, 8000.0, "log", 1000.0, description="Cutoff (or centre) frequency."),
              Param("q", "", 0.5, 10.0, "log", 0.707, description="Resonance; 0.707 is flat (Butterworth)."),
              Param("filter_type", "", scale="categorical", choices=TYPES, default="lowpass",
                    description="Response type; a learnable choice cross-fades numerators."))
    CONTROL_PORTS = {"cutoff_hz": (Param("cutoff_mod_oct", "oct", 0.0, 6.0, "linear", 2.0,
                                         description="Octaves the cutoff rises at control = 1."),)}
    INPUTS = (1, 1)
    BYPASS = "input"

    def render(self, ctx, inputs, params, controls):
        x = inputs[0]
        cutoff = params["cutoff_hz"]
        if "cutoff_hz" in controls:
            cutoff = cutoff * torch.exp2(params["cutoff_mod_oct"] * controls["cutoff_hz"])
        # Keep poles inside the unit circle at any sample rate.
        cutoff = torch.clamp(cutoff, 10.0, 0.45 * ctx.sample_rate)
        (b0, b1, b2), (a1, a2) = biquad_coefficients(cutoff, params["q"], params["filter_type"],
                                                     ctx.sample_rate)
        state = ctx.node_state(self.node)
        history = state.get("x") if state else None
        if history is None:
            history = x.new_zeros(x.shape[0], 2)
        padded = torch.cat([history, x], dim=-1)
        feed = b0 * x + b1 * padded[:, 1:-1] + b2 * padded[:, :-2]
        coeffs = torch.stack(torch.broadcast_tensors(a1, a2), dim=-1)
        coeffs = coeffs.expand(x.shape[0], x.shape[1], 2)
        zi = state.get("y") if state else None
        if state is None:
            return sample_wise_lpc(feed, coeffs)
        y, zf = sample_wise_lpc(feed, coeffs, zi=zi, return_zf=True)
        state["x"], state["y"] = padded[:, -2:].detach(), zf.detach()
        return y
