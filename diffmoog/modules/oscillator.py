"""Oscillator: sine, saw, square or triangle at a fixed pitch, band-limited by PolyBLEP."""
from __future__ import annotations

from diffmoog.modules.base import Module, mix_choices, take_rows
from diffmoog.modules.waveforms import phase, render_waveform
from diffmoog.params import Param

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

    def render(self, ctx, inputs, params, controls):
        return render_shapes(self, ctx, params, params["freq_hz"])


def render_shapes(module: Module, ctx, params, freq_hz):
    """Render the module's waveform choice(s) at `freq_hz`, scaled by `amp`."""
    p, inc = phase(ctx, freq_hz, module.node)
    band_limited = is_band_limited(module, params)
    shapes = next(q for q in module.params() if q.name == "waveform").choices

    def one(choice, rows):
        return render_waveform(shapes[choice], take_rows(p, rows), take_rows(inc, rows),
                               band_limited)

    return params["amp"] * mix_choices(params["waveform"], one, module.static_choice("waveform"))


def is_band_limited(module: Module, params) -> bool:
    """The band_limit setting, from the chain's pinned value when known (no tensor read)."""
    choice = module.static_choice("band_limit")
    if choice is None:
        return bool(params["band_limit"][0, 0] > 0.5)
    return choice == 0
