"""Resonant biquad filter (low/high/band-pass) with an optional time-varying cutoff.

The coefficients follow the RBJ audio-EQ cookbook. On CPU, coefficients, feed-forward and
recursion run fused in a native kernel (diffmoog/native/biquad.h). Elsewhere the feed-forward
part is a 3-tap product and the recursive part runs in torchlpc's compiled kernel (see
allpole.py, which wraps it with an analytic backward pass); either way a per-sample cutoff
costs no Python loop.
"""
from __future__ import annotations

import torch

from diffmoog.modules.allpole import allpole
from diffmoog.modules.base import Module, exp_mod
from diffmoog.native import biquad as biquad_kernel
from diffmoog.params import Param

TYPES = ("lowpass", "highpass", "bandpass")
# The cutoff is clamped to [MIN_CUTOFF_HZ, MAX_CUTOFF_RATIO * sample_rate]: poles stay inside
# the unit circle at any sample rate.
MIN_CUTOFF_HZ, MAX_CUTOFF_RATIO = 10.0, 0.45
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
    KERNEL = biquad_kernel.KERNEL
    C_CONSTANTS = {"FILTER_MIN_CUTOFF_HZ": MIN_CUTOFF_HZ, "FILTER_MAX_CUTOFF_RATIO": MAX_CUTOFF_RATIO}

    def render_native(self, ctx, inputs, params, controls):  # coefficients, feed-forward and recursion fused
        x = inputs[0]
        static = self.static_choice("filter_type")
        weights = params["filter_type"] if static is None else _TYPE_ONE_HOT[static].to(x.dtype)
        return biquad_kernel.biquad(x, params["cutoff_hz"], params["q"], weights, ctx.sample_rate,
                                    controls.get("cutoff_hz"), params.get("cutoff_mod_oct"), ctx.node_state(self.node))

    def render_torch(self, ctx, inputs, params, controls):
        x = inputs[0]
        cutoff = params["cutoff_hz"]
        if "cutoff_hz" in controls:
            cutoff = exp_mod(cutoff, params["cutoff_mod_oct"], controls["cutoff_hz"])
        cutoff = torch.clamp(cutoff, MIN_CUTOFF_HZ, MAX_CUTOFF_RATIO * ctx.sample_rate)
        (b0, b1, b2), (a1, a2) = biquad_coefficients(cutoff, params["q"], params["filter_type"],
                                                     ctx.sample_rate, self.static_choice("filter_type"))
        state = ctx.node_state(self.node)
        if state is None:
            return allpole(feedforward(x, b0, b1, b2), a1, a2)
        # Streaming: carry (x[-1], x[-2], y[-1], y[-2]) across blocks, in the kernel's layout
        # and under its key, so a stream may switch path between blocks.
        history = state.get(biquad_kernel.STATE_KEY)
        if history is None:
            history = x.new_zeros(x.shape[0], 4)
        padded = torch.cat([history[:, :2].flip(-1), x], dim=-1)
        # The same op order as the offline path (feedforward), so blocks match it bit for bit;
        # per-sample coefficients get two dummy columns for the history samples.
        pad = [b if b.shape[-1] == 1 else torch.cat([b[:, :2], b], dim=-1) for b in (b0, b1, b2)]
        feed = feedforward(padded, *pad)[:, 2:]
        y = allpole(feed, a1, a2, history[:, 2:])
        state[biquad_kernel.STATE_KEY] = torch.cat([y[:, -2:], padded[:, -2:]], dim=-1).flip(-1).detach()
        return y
