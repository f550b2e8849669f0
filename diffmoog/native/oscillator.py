"""Autograd wrapper for the fused oscillator kernel (oscillator.h)."""
from __future__ import annotations

import torch

from diffmoog import native

SHAPE_IDS = {"sine": 0, "saw": 1, "square": 2, "triangle": 3}  # generated.h: SHAPE_SINE...

_COMMON = ("int64_t T", "const REAL *freq", "int freq_ps", "const REAL *amp", "int amp_ps",
           "const REAL *ctl", "const REAL *mod", "int mod_ps", "const int32_t *shapes", "int band_limited",
           "double sample_rate", "int64_t start", "const double *phase_in", "const REAL *pm",
           "const REAL *pm_before")
KERNEL = native.Kernel(
    "osc", "oscillator.h",
    forward=_COMMON + ("double *phase_out", "REAL *out"),
    backward=_COMMON + ("const REAL *grad", "REAL *g_freq", "REAL *g_amp", "REAL *g_ctl", "REAL *g_mod",
                        "REAL *g_pm"),
    constants={f"SHAPE_{name.upper()}": i for name, i in SHAPE_IDS.items()})


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
    at, per_sample = native.address, native.per_sample
    return {"T": samples, "freq": at(freq), "freq_ps": per_sample(freq), "amp": at(amp), "amp_ps": per_sample(amp),
            "ctl": at(control), "mod": at(mod), "mod_ps": per_sample(mod), "shapes": at(shapes),
            "band_limited": int(band_limited), "sample_rate": sample_rate, "start": start,
            "phase_in": at(phase_in), "pm": at(offset), "pm_before": at(offset_before)}


class _Oscillator(torch.autograd.Function):
    @staticmethod
    def forward(ctx, freq, amp, control, mod, offset, shapes, settings, phase_in, offset_before, phase_out):
        samples = settings[3]
        out = amp.new_empty(shapes.shape[0], samples)
        args = _args(freq, amp, control, mod, shapes, settings, phase_in, offset, offset_before)
        args["phase_out"], args["out"] = native.address(phase_out), native.address(out)
        KERNEL.forward_call(out.dtype, out.shape[0], samples, args)
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
        at = native.address
        args = _args(freq, amp, control, mod, shapes, ctx.settings, phase_in, offset, offset_before)
        args.update(grad=at(grad), g_freq=at(g_freq), g_amp=at(g_amp), g_ctl=at(g_control), g_mod=at(g_mod),
                    g_pm=at(g_offset))
        KERNEL.backward_call(grad.dtype, grad.shape[0], ctx.settings[3], args)
        return g_freq, g_amp, g_control, g_mod, g_offset, None, None, None, None, None
