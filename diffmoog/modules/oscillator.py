"""Oscillator: sine, saw, square or triangle at a fixed pitch, band-limited by PolyBLEP."""
from __future__ import annotations

import functools

import torch

from diffmoog.modules.additive import FADE, MAX_HARMONICS
from diffmoog.modules.base import Module, exp_mod, mix_choices, take_rows
from diffmoog.modules.waveforms import phase, render_waveform
from diffmoog.native import oscillator as osc_kernel
from diffmoog.native.oscillator import SHAPE_IDS, oscillator
from diffmoog.params import Param

# What the oscillator kernel shares with the PyTorch path (additive.py), for every module using it.
OSC_CONSTANTS = {"ADDITIVE_MAX_HARMONICS": MAX_HARMONICS, "ADDITIVE_FADE": FADE}

FREQ_HZ = Param("freq_hz", "Hz", 32.7, 2093.0, "log", 261.63,
                description="Pitch (C1..C7 by default).")
AMP = Param("amp", "", 0.0, 1.0, "linear", 0.5, description="Output amplitude.")
BAND_LIMIT = Param("band_limit", "", scale="categorical", choices=("polyblep", "naive"),
                   default="polyblep", learnable=False,
                   description="PolyBLEP anti-aliasing, or the naive (aliasing) waveform.")


def waveform_param(choices: tuple[str, ...], default: str) -> Param:
    return Param("waveform", "", scale="categorical", choices=choices, default=default,
                 description="Waveform; a learnable choice carries one weight per shape.")


class Oscillator(Module):
    type_name = "oscillator"
    description = "Audio oscillator (sine, saw, square, triangle)."
    PARAMS = (FREQ_HZ, AMP, waveform_param(("sine", "saw", "square", "triangle"), "sine"),
              BAND_LIMIT)
    KERNEL = osc_kernel.KERNEL
    C_CONSTANTS = OSC_CONSTANTS

    def render_torch(self, ctx, inputs, params, controls):
        return render_shapes(self, ctx, params, params["freq_hz"])

    def render_native(self, ctx, inputs, params, controls):
        return render_shapes_native(self, ctx, params, params["freq_hz"])


def render_shapes(module: Module, ctx, params, freq_hz, control=None, mod_index=None,
                  band_limited: bool | None = None):
    """Render the module's waveform choice(s), scaled by `amp`, at pitch
    `freq_hz * 2**(mod_index * control)` (exponential FM when a control is wired)."""
    if band_limited is None:
        band_limited = is_band_limited(module, params)
    shapes = next(q for q in module.params() if q.name == "waveform").choices
    amp = params.get("amp", 1.0)
    if control is not None:
        freq_hz = exp_mod(freq_hz, mod_index, control)
    p, inc = phase(ctx, freq_hz, module.node)

    def one(choice, rows):
        return render_waveform(shapes[choice], take_rows(p, rows), take_rows(inc, rows),
                               band_limited)

    out = mix_choices(params["waveform"], one, module.static_choice("waveform"))
    return amp * out if isinstance(amp, torch.Tensor) else out


def render_shapes_native(module: Module, ctx, params, freq_hz, control=None, mod_index=None,
                         band_limited: bool | None = None):
    """`render_shapes` through the oscillator kernel."""
    if band_limited is None:
        band_limited = is_band_limited(module, params)
    shapes = next(q for q in module.params() if q.name == "waveform").choices
    return render_kernel(module, ctx, params, shapes, freq_hz, params.get("amp", 1.0), control, mod_index,
                         band_limited)


def render_kernel(module, ctx, params, shapes, freq_hz, amp, control, mod_index, band_limited,
                  phase_offset=None):
    """The fused kernel: one pass per waveform choice present (diffmoog/native/oscillator.h).
    `phase_offset` `[batch, samples]` (cycles): phase modulation (pm_oscillator)."""
    batch = ctx.batch_size
    if not isinstance(amp, torch.Tensor):
        amp = torch.full((batch, 1), float(amp), dtype=freq_hz.dtype)
    state = ctx.node_state(module.node)
    start_phase = state.get("phase") if state is not None else None
    offset_before = state.get("offset") if state is not None else None
    if state is not None and phase_offset is not None:  # the next block's first step
        state["offset"] = phase_offset[:, -1:].detach()

    def render(ids: torch.Tensor) -> torch.Tensor:
        audio, end = oscillator(freq_hz, amp, ids, band_limited, ctx.sample_rate, ctx.start, ctx.n_samples,
                                control, mod_index, start_phase, phase_offset, offset_before)
        if state is not None and end is not None:
            state["phase"] = end
        return audio

    weights = params["waveform"]
    ids = _shape_ids(shapes)
    static = module.static_choice("waveform")
    if static is not None:
        return render(ids[static].expand(batch))
    if not weights.requires_grad and bool(((weights == 0) | (weights == 1)).all()):
        return render(ids[weights.argmax(-1)])  # one-hot: each row its own shape, one pass
    out = 0.0
    for choice in range(len(shapes)):  # soft weights: a weighted sum that gradients flow through
        out = out + weights[:, choice:choice + 1] * render(ids[choice].expand(batch))
    return out


@functools.lru_cache(maxsize=None)
def _shape_ids(shapes: tuple[str, ...]) -> torch.Tensor:
    """Kernel waveform ids of a module's choices (cached: called per render and per block)."""
    return torch.tensor([SHAPE_IDS[name] for name in shapes], dtype=torch.int32)


def is_band_limited(module: Module, params) -> bool:
    """The band_limit setting, from the chain's pinned value when known (no tensor read)."""
    choice = module.static_choice("band_limit")
    if choice is None:
        return bool(params["band_limit"][0, 0] > 0.5)
    return choice == 0
