"""Autograd wrapper for the fused oscillator kernel (oscillator.h)."""
from __future__ import annotations

from ctypes import c_double, c_int, c_int64

import torch

from diffmoog import native

SHAPE_IDS = {"sine": 0, "saw": 1, "square": 2, "triangle": 3}


def oscillator(freq_hz: torch.Tensor, amp: torch.Tensor, shapes: torch.Tensor, band_limited: bool,
               sample_rate: int, start: int, samples: int, control: torch.Tensor | None = None,
               mod_index: torch.Tensor | None = None, phase: torch.Tensor | None = None,
               phase_offset: torch.Tensor | None = None, offset_before: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`amp * waveform(phase)` `[batch, samples]`; pitch `freq_hz * 2**(mod_index * control)`.

    shapes: int32 `[batch]` waveform ids (SHAPE_IDS). A time-varying pitch starts from
    `phase` (float64 `[batch, 1]` cycles; None: 0); returns (audio, end phase) where the end
    phase is None for a constant pitch (its phase is a closed form of the sample index).
    phase_offset: `[batch, samples]` cycles added to the phase (phase modulation); its
    per-sample step widens the BLEP. offset_before: `[batch, 1]`, the offset of the sample
    before this render (a streamed block); None: the first sample's step is 0.
    """
    batch, dtype = shapes.shape[0], amp.dtype
    freq = native.rows(freq_hz, batch, samples, dtype)
    amp = native.rows(amp, batch, samples, dtype)
    mod = native.rows(mod_index, batch, samples, dtype) if control is not None else None
    if control is not None:
        control = control.to(dtype).expand(batch, samples).contiguous()
    if phase_offset is not None:
        phase_offset = phase_offset.to(dtype).expand(batch, samples).contiguous()
        if offset_before is not None:
            offset_before = offset_before.to(dtype).expand(batch, 1).contiguous()
    end = None
    if control is not None or freq.shape[-1] > 1:
        phase = None if phase is None else phase.to(torch.float64).expand(batch, 1).contiguous()
        end = torch.empty(batch, 1, dtype=torch.float64)
    audio = native.apply(_Oscillator, freq, amp, control, mod, phase_offset, shapes.to(torch.int32).contiguous(),
                         (band_limited, sample_rate, start, samples), phase, offset_before, end)
    return audio, end


def _args(freq, amp, control, mod, shapes, settings, phase_in, offset, offset_before):
    band_limited, sample_rate, start, samples = settings
    per_sample = native.per_sample
    return (c_int64(samples), native.ptr(freq), per_sample(freq), native.ptr(amp), per_sample(amp),
            native.ptr(control), native.ptr(mod), per_sample(mod), native.ptr(shapes),
            c_int(int(band_limited)), c_double(sample_rate), c_int64(start), native.ptr(phase_in),
            native.ptr(offset), native.ptr(offset_before))


class _Oscillator(torch.autograd.Function):
    @staticmethod
    def forward(ctx, freq, amp, control, mod, offset, shapes, settings, phase_in, offset_before, phase_out):
        samples = settings[3]
        out = amp.new_empty(shapes.shape[0], samples)
        native.run(native.kernel("osc_forward", out.dtype), out.shape[0], samples,
                   *_args(freq, amp, control, mod, shapes, settings, phase_in, offset, offset_before),
                   native.ptr(phase_out), native.ptr(out))
        ctx.save_for_backward(freq, amp, control, mod, offset, shapes, phase_in, offset_before)
        ctx.settings = settings
        return out

    @staticmethod
    def backward(ctx, grad):
        freq, amp, control, mod, offset, shapes, phase_in, offset_before = ctx.saved_tensors
        grad = grad.contiguous()
        g_freq, g_amp = torch.empty_like(freq), torch.empty_like(amp)
        g_control = torch.empty_like(control) if control is not None and ctx.needs_input_grad[2] else None
        g_mod = torch.empty_like(mod) if mod is not None and ctx.needs_input_grad[3] else None
        g_offset = torch.empty_like(offset) if offset is not None else None  # the kernel always writes it
        native.run(native.kernel("osc_backward", grad.dtype), grad.shape[0], ctx.settings[3],
                   *_args(freq, amp, control, mod, shapes, ctx.settings, phase_in, offset, offset_before),
                   native.ptr(grad), native.ptr(g_freq), native.ptr(g_amp), native.ptr(g_control),
                   native.ptr(g_mod), native.ptr(g_offset))
        return g_freq, g_amp, g_control, g_mod, g_offset, None, None, None, None, None
