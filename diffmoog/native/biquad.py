"""Autograd wrapper for the fused RBJ biquad kernel (biquad.h)."""
from __future__ import annotations

from ctypes import c_double, c_int64

import torch

from diffmoog import native


def biquad(x: torch.Tensor, cutoff_hz: torch.Tensor, q: torch.Tensor, type_weights: torch.Tensor,
           sample_rate: int, control: torch.Tensor | None = None, mod_oct: torch.Tensor | None = None,
           state: dict | None = None) -> torch.Tensor:
    """Filter `x` `[batch, samples]`; cutoff `cutoff_hz * 2**(mod_oct * control)`, clamped to
    [10 Hz, 0.45 sample_rate]. type_weights `[batch, 3]` (lowpass, highpass, bandpass).
    state: a stream's node state; its "biquad" (x[-1], x[-2], y[-1], y[-2]) carries across blocks.
    """
    batch, samples = x.shape
    dtype = x.dtype
    cutoff = native.rows(cutoff_hz, batch, samples, dtype)
    q = native.rows(q, batch, samples, dtype)
    mod = native.rows(mod_oct, batch, samples, dtype) if control is not None else None
    if control is not None:
        control = control.to(dtype).expand(batch, samples).contiguous()
    weights = type_weights.to(dtype).expand(batch, 3).contiguous()
    history = None
    if state is not None:
        history = state.get("biquad")
        history = x.new_zeros(batch, 4) if history is None else history.clone()
        state["biquad"] = history
    return native.apply(_Biquad, x.contiguous(), cutoff, q, weights, control, mod, sample_rate, history)


def _args(samples, x, cutoff, q, weights, control, mod, sample_rate):
    per_sample = native.per_sample
    return (c_int64(samples), native.ptr(x), native.ptr(cutoff), per_sample(cutoff), native.ptr(control),
            native.ptr(mod), per_sample(mod), native.ptr(q), per_sample(q), native.ptr(weights),
            c_double(sample_rate))


class _Biquad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, cutoff, q, weights, control, mod, sample_rate, history):
        history_in = history.clone() if history is not None else None
        out = torch.empty_like(x)
        native.run(native.kernel("biquad_forward", x.dtype), x.shape[0], x.shape[1],
                   *_args(x.shape[1], x, cutoff, q, weights, control, mod, sample_rate),
                   native.ptr(history), native.ptr(out))
        ctx.save_for_backward(x, cutoff, q, weights, control, mod, history_in, out)
        ctx.sample_rate = sample_rate
        return out

    @staticmethod
    def backward(ctx, grad):
        x, cutoff, q, weights, control, mod, history_in, out = ctx.saved_tensors
        grad = grad.contiguous()
        g_x, g_cutoff, g_q = torch.empty_like(x), torch.empty_like(cutoff), torch.empty_like(q)
        g_weights = torch.empty_like(weights) if ctx.needs_input_grad[3] else None
        g_control = torch.empty_like(control) if control is not None and ctx.needs_input_grad[4] else None
        g_mod = torch.empty_like(mod) if mod is not None and ctx.needs_input_grad[5] else None
        native.run(native.kernel("biquad_backward", x.dtype), x.shape[0], x.shape[1],
                   *_args(x.shape[1], x, cutoff, q, weights, control, mod, ctx.sample_rate),
                   native.ptr(history_in), native.ptr(out), native.ptr(grad), native.ptr(g_x),
                   native.ptr(g_cutoff), native.ptr(g_control), native.ptr(g_mod), native.ptr(g_q),
                   native.ptr(g_weights))
        return g_x, g_cutoff, g_q, g_weights, g_control, g_mod, None, None
