"""Autograd wrapper for the fused ADSR kernel (adsr.h)."""
from __future__ import annotations

from ctypes import c_double, c_int64

import torch

from diffmoog import native


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
    out = [c_int64(samples)]
    for p in params:
        out += [native.ptr(p), native.per_sample(p)]
    return out + [c_double(sample_rate), c_double(note_off_s), c_int64(start)]


class _ADSR(torch.autograd.Function):
    @staticmethod
    def forward(ctx, settings, *params):
        samples = settings[3]
        out = params[0].new_empty(params[0].shape[0], samples)
        native.run(native.kernel("adsr_forward", out.dtype), out.shape[0], samples,
                   *_args(settings, params), native.ptr(out))
        ctx.save_for_backward(*params)
        ctx.settings = settings
        return out

    @staticmethod
    def backward(ctx, grad):
        params = ctx.saved_tensors
        grad = grad.contiguous()
        grads = [torch.empty_like(p) for p in params]
        native.run(native.kernel("adsr_backward", grad.dtype), grad.shape[0], ctx.settings[3],
                   *_args(ctx.settings, params), native.ptr(grad), *(native.ptr(g) for g in grads))
        return (None, *grads)
