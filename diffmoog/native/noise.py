"""Autograd wrapper for the white-noise kernel (noise.h)."""
from __future__ import annotations

import torch

from diffmoog import native

KERNEL = native.Kernel(
    "noise", "noise.h",
    forward=("int64_t T", "const int64_t *seeds", "int64_t start", "const REAL *amp", "int amp_ps", "REAL *out"),
    backward=("int64_t T", "const int64_t *seeds", "int64_t start", "int amp_ps", "const REAL *grad",
              "REAL *g_amp"))


def noise(seeds: torch.Tensor, amp: torch.Tensor, start: int, samples: int) -> torch.Tensor:
    """`amp * (2 u - 1)` `[batch, samples]`, u = rng.uniform(seed of the row, sample index)."""
    batch = seeds.shape[0]
    amp = native.rows(amp, batch, samples, amp.dtype)
    return native.apply(_Noise, amp, seeds.to(torch.int64).contiguous(), start, samples)


class _Noise(torch.autograd.Function):
    @staticmethod
    def forward(ctx, amp, seeds, start, samples):
        out = amp.new_empty(seeds.shape[0], samples)
        at = native.address
        KERNEL.forward_call(out.dtype, out.shape[0], samples,
                            {"T": samples, "seeds": at(seeds), "start": start, "amp": at(amp),
                             "amp_ps": native.per_sample(amp), "out": at(out)})
        ctx.save_for_backward(amp, seeds)
        ctx.settings = (start, samples)
        return out

    @staticmethod
    def backward(ctx, grad):
        amp, seeds = ctx.saved_tensors
        start, samples = ctx.settings
        grad = grad.contiguous()
        g_amp = torch.empty_like(amp)
        at = native.address
        KERNEL.backward_call(grad.dtype, grad.shape[0], samples,
                             {"T": samples, "seeds": at(seeds), "start": start, "amp_ps": native.per_sample(amp),
                              "grad": at(grad), "g_amp": at(g_amp)})
        return g_amp, None, None, None
