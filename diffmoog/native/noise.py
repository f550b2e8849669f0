"""Autograd wrapper for the white-noise kernel (noise.h)."""
from __future__ import annotations

from ctypes import c_int64

import torch

from diffmoog import native


def noise(seeds: torch.Tensor, amp: torch.Tensor, start: int, samples: int) -> torch.Tensor:
    """`amp * (2 u - 1)` `[batch, samples]`, u = rng.uniform(seed of the row, sample index)."""
    batch = seeds.shape[0]
    amp = native.rows(amp, batch, samples, amp.dtype)
    return native.apply(_Noise, amp, seeds.to(torch.int64).contiguous(), start, samples)


class _Noise(torch.autograd.Function):
    @staticmethod
    def forward(ctx, amp, seeds, start, samples):
        out = amp.new_empty(seeds.shape[0], samples)
        native.run(native.kernel("noise_forward", out.dtype), out.shape[0], samples, c_int64(samples),
                   native.ptr(seeds), c_int64(start), native.ptr(amp), native.per_sample(amp), native.ptr(out))
        ctx.save_for_backward(amp, seeds)
        ctx.settings = (start, samples)
        return out

    @staticmethod
    def backward(ctx, grad):
        amp, seeds = ctx.saved_tensors
        start, samples = ctx.settings
        grad = grad.contiguous()
        g_amp = torch.empty_like(amp)
        native.run(native.kernel("noise_backward", grad.dtype), grad.shape[0], samples, c_int64(samples),
                   native.ptr(seeds), c_int64(start), native.per_sample(amp), native.ptr(grad),
                   native.ptr(g_amp))
        return g_amp, None, None, None
