"""Autograd wrapper for the fused RBJ biquad kernel (biquad.h)."""
from __future__ import annotations

import torch

from diffmoog import native

_COMMON = ("int64_t T", "const REAL *x", "const REAL *cutoff", "int cutoff_ps", "const REAL *ctl",
           "const REAL *mod", "int mod_ps", "const REAL *q", "int q_ps", "const REAL *types",
           "double sample_rate")
KERNEL = native.Kernel(
    "biquad", "biquad.h",
    forward=_COMMON + ("REAL *state", "REAL *out"),  # state: (x[-1], x[-2], y[-1], y[-2]) per row, in place
    backward=_COMMON + ("const REAL *state_in", "const REAL *yout", "const REAL *grad", "REAL *g_x",
                        "REAL *g_cutoff", "REAL *g_ctl", "REAL *g_mod", "REAL *g_q", "REAL *g_types"))
STATE_KEY = "history"  # the node's stream state on both paths: [batch, 4] (x[-1], x[-2], y[-1], y[-2])


def biquad(x: torch.Tensor, cutoff_hz: torch.Tensor, q: torch.Tensor, type_weights: torch.Tensor,
           sample_rate: int, control: torch.Tensor | None = None, mod_oct: torch.Tensor | None = None,
           state: dict | None = None) -> torch.Tensor:
    """Filter `x` `[batch, samples]`; cutoff `cutoff_hz * 2**(mod_oct * control)`, clamped to
    [10 Hz, 0.45 sample_rate]. type_weights `[batch, 3]` (lowpass, highpass, bandpass).
    state: a stream's node state; its STATE_KEY (x[-1], x[-2], y[-1], y[-2]) carries across blocks.
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
        history = state.get(STATE_KEY)
        history = x.new_zeros(batch, 4) if history is None else history.clone()
        state[STATE_KEY] = history
    return native.apply(_Biquad, x.contiguous(), cutoff, q, weights, control, mod, sample_rate, history)


def _args(samples, x, cutoff, q, weights, control, mod, sample_rate):
    at, per_sample = native.address, native.per_sample
    return {"T": samples, "x": at(x), "cutoff": at(cutoff), "cutoff_ps": per_sample(cutoff), "ctl": at(control),
            "mod": at(mod), "mod_ps": per_sample(mod), "q": at(q), "q_ps": per_sample(q), "types": at(weights),
            "sample_rate": sample_rate}


class _Biquad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, cutoff, q, weights, control, mod, sample_rate, history):
        history_in = history.clone() if history is not None else None
        out = torch.empty_like(x)
        args = _args(x.shape[1], x, cutoff, q, weights, control, mod, sample_rate)
        args["state"], args["out"] = native.address(history), native.address(out)
        KERNEL.forward_call(x.dtype, x.shape[0], x.shape[1], args)
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
        at = native.address
        args = _args(x.shape[1], x, cutoff, q, weights, control, mod, ctx.sample_rate)
        args.update(state_in=at(history_in), yout=at(out), grad=at(grad), g_x=at(g_x), g_cutoff=at(g_cutoff),
                    g_ctl=at(g_control), g_mod=at(g_mod), g_q=at(g_q), g_types=at(g_weights))
        KERNEL.backward_call(x.dtype, x.shape[0], x.shape[1], args)
        return g_x, g_cutoff, g_q, g_weights, g_control, g_mod, None, None
