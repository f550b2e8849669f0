"""Resonant biquad filter (low/high/band-pass) with an optional time-varying cutoff.

The coefficients follow the RBJ audio-EQ cookbook. On CPU, coefficients, feed-forward and
recursion run fused in a native kernel (diffmoog/native/biquad.h). Elsewhere the feed-forward
part is a 3-tap product and the recursive part runs in torchlpc's compiled kernel (see
allpole.py, which wraps it with an analytic backward pass); either way a per-sample cutoff
costs no Python loop.
"""
from __future__ import annotations

import torch

from diffmoog import native
from diffmoog.modules.allpole import allpole
from diffmoog.modules.base import Module
from diffmoog.native.biquad import biquad
from diffmoog.params import Param

TYPES = ("lowpass", "highpass", "bandpass")
_TYPE_ONE_HOT = torch.eye(len(TYPES))[:, None, :]  # [type, 1, 3]: a pinned type's weights


def biquad_coefficients(cutoff_hz: torch.Tensor, q: torch.Tensor, type_weights: torch.Tensor,
                        sample_rate: int, static_type: int | None = None
                        ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Return ([b0, b1, b2], [a1, a2]), normalised by a0, each broadcast to cutoff's shape.

    All three types share the denominator, so a soft mix of types mixes only numerators.
    `static_type` (an index into TYPES, known when the chain pins the type) skips the mix,
    which matters when the cutoff is per-sample.
    """
    w0 = 2.0 * torch.pi * cutoff_hz / sample_rate
    cos_w0, sin_w0 = torch.cos(w0), torch.sin(w0)
    alpha = sin_w0 / (2.0 * q)
    inv_a0 = 1.0 / (1.0 + alpha)
    a1 = -2.0 * cos_w0 * inv_a0
    a2 = (1.0 - alpha) * inv_a0
    if static_type is not None:
        if TYPES[static_type] == "bandpass":
            b0 = alpha * inv_a0
            return [b0, torch.zeros_like(b0), -b0], [a1, a2]
        sign = 1.0 if TYPES[static_type] == "lowpass" else -1.0
        b0 = (0.5 - sign * 0.5 * cos_w0) * inv_a0
        return [b0, (2.0 * sign) * b0, b0], [a1, a2]
    lp = (1.0 - cos_w0) * 0.5
    hp = (1.0 + cos_w0) * 0.5
    w_lp, w_hp, w_bp = (type_weights[:, i:i + 1] for i in range(3))
    b0 = (w_lp * lp + w_hp * hp + w_bp * alpha) * inv_a0
    b1 = (w_lp * 2.0 * lp - w_hp * 2.0 * hp) * inv_a0
    b2 = (w_lp * lp + w_hp * hp - w_bp * alpha) * inv_a0
    return [b0, b1, b2], [a1, a2]


def feedforward(x: torch.Tensor, b0: torch.Tensor, b1: torch.Tensor, b2: torch.Tensor
                ) -> torch.Tensor:
    """b0 x[t] + b1 x[t-1] + b2 x[t-2], with x = 0 before the start.

    Accumulates into one buffer (in-place multiply-adds on shifted views) rather than
    concatenating a padded copy: fewer passes over the audio.
    """
    out = b0 * x
    for lag, b in ((1, b1), (2, b2)):
        if x.shape[-1] > lag:
            out[:, lag:].addcmul_(x[:, :-lag], b[:, lag:] if b.shape[-1] > 1 else b)
    return out


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
        if native.usable(x, cutoff):  # coefficients, feed-forward and recursion fused
            static = self.static_choice("filter_type")
            weights = params["filter_type"] if static is None else _TYPE_ONE_HOT[static].to(x.dtype)
            return biquad(x, cutoff, params["q"], weights, ctx.sample_rate, controls.get("cutoff_hz"),
                          params.get("cutoff_mod_oct"), ctx.node_state(self.node))
        if "cutoff_hz" in controls:
            cutoff = cutoff * torch.exp2(params["cutoff_mod_oct"] * controls["cutoff_hz"])
        # Keep poles inside the unit circle at any sample rate.
        cutoff = torch.clamp(cutoff, 10.0, 0.45 * ctx.sample_rate)
        (b0, b1, b2), (a1, a2) = biquad_coefficients(cutoff, params["q"], params["filter_type"],
                                                     ctx.sample_rate, self.static_choice("filter_type"))
        state = ctx.node_state(self.node)
        if state is None:
            return allpole(feedforward(x, b0, b1, b2), a1, a2)
        # Streaming: carry (x[-2], x[-1]) and (y[-1], y[-2]) across blocks.
        history = state.get("x")
        if history is None:
            history = x.new_zeros(x.shape[0], 2)
        padded = torch.cat([history, x], dim=-1)
        # The same op order as the offline path (feedforward), so blocks match it bit for bit;
        # per-sample coefficients get two dummy columns for the history samples.
        pad = [b if b.shape[-1] == 1 else torch.cat([b[:, :2], b], dim=-1) for b in (b0, b1, b2)]
        feed = feedforward(padded, *pad)[:, 2:]
        y = allpole(feed, a1, a2, state.get("y"))
        state["x"], state["y"] = padded[:, -2:].detach(), y[:, -2:].flip(-1).detach()
        return y
