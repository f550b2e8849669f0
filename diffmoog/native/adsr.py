"""Autograd wrapper for the fused ADSR kernel (adsr.h)."""
from __future__ import annotations

import torch

from diffmoog import native

_PARAMS = ("attack", "decay", "sustain", "release", "curve")  # with a per-sample flag each
_COMMON = ("int64_t T", "const REAL *attack", "int attack_ps", "const REAL *decay", "int decay_ps",
           "const REAL *sustain", "int sustain_ps", "const REAL *release", "int release_ps",
           "const REAL *curve", "int curve_ps", "double sample_rate", "double note_off", "int64_t start")
KERNEL = native.Kernel("adsr", "adsr.h", forward=_COMMON + ("REAL *out",),
                       backward=_COMMON + ("const REAL *grad", *(f"REAL *g_{p}" for p in _PARAMS)))


def adsr(attack_s, decay_s, sustain_level, release_s, curve, sample_rate: int, note_off_s: float,
         start: int, samples: int) -> torch.Tensor:
    """The envelope `[batch, samples]` from `[batch, 1]` or `[batch, samples]` parameters."""
    values = (attack_s, decay_s, sustain_level, release_s, curve)
    batch = max(v.shape[0] for v in values)
    dtype = attack_s.dtype
    prepared = [native.rows(v, batch, samples, dtype) for v in values]
    return native.apply(_ADSR, (sample_rate, note_off_s, start, samples), *prepared)


def _args(settings, params):
    sample_rate, note_off_s, start, samples = settings
    out = {"T": samples, "sample_rate": sample_rate, "note_off": note_off_s, "start": start}
    for name, p in zip(_PARAMS, params):
        out[name], out[name + "_ps"] = native.address(p), native.per_sample(p)
    return out


class _ADSR(torch.autograd.Function):
    @staticmethod
    def forward(ctx, settings, *params):
        samples = settings[3]
        out = params[0].new_empty(params[0].shape[0], samples)
        args = _args(settings, params)
        args["out"] = native.address(out)
        KERNEL.forward_call(out.dtype, out.shape[0], samples, args)
        ctx.save_for_backward(*params)
        ctx.settings = settings
        return out

    @staticmethod
    def backward(ctx, grad):
        params = ctx.saved_tensors
        grad = grad.contiguous()
        grads = [torch.empty_like(p) for p in params]
        args = _args(ctx.settings, params)
        args["grad"] = native.address(grad)
        for name, g in zip(_PARAMS, grads):
            args["g_" + name] = native.address(g)
        KERNEL.backward_call(grad.dtype, grad.shape[0], ctx.settings[3], args)
        return (None, *grads)
