"""Presets at a pitch: which parameters follow the played note, and moving them.

Which: every parameter the chain marks `pitch: note` (`params: {freq_hz: {pitch: note}}`),
listed by `Chain.pitch_keys` in the chain's free-parameter order. Only a free frequency in Hz on
a log scale can be marked (diffmoog/spec.py); the built-in chains mark every audio-rate
oscillator's free `freq_hz` (FM modulators included), never an LFO. Frequencies pinned by the
chain's `fixed:` and unmarked ones do not move; a chain with no marks has nothing to move.

The rule (render-preset --pitch, and matching at an estimated pitch): every marked parameter
is scaled by the same factor, the one that puts the first marked one (in the chain's order) on
the requested frequency. So intervals between them (detune, FM ratios) are kept.
"""
from __future__ import annotations

import math

import torch

from diffmoog.errors import ConfigError


def no_pitch_problem(chain) -> str:
    """Why `chain` cannot be put on a pitch (it has no parameter marked `pitch: note`)."""
    return (f"chain {chain.name} has no pitch to set: no parameter is marked `pitch: note` (mark an "
            f"oscillator's free freq_hz with `params: {{freq_hz: {{pitch: note}}}}`)")


def unmarked_oscillators(chain) -> list[str]:
    """Free audio-oscillator `freq_hz` keys of a chain that marks nothing `pitch: note` (a chain
    written before the marks existed, most likely): a hint for the user, never moved."""
    if chain.pitch_keys:
        return []
    return [fp.key for fp in chain.free_params if fp.param.name == "freq_hz"
            and chain.spec.nodes[fp.node].module.endswith("oscillator")]


def retune(chain, params: dict, hz: float | torch.Tensor, clamp: bool = False, octaves: bool = False) -> dict:
    """Normalised `params` (any batch) with the pitch-marked parameters moved so the first plays `hz`
    (a number, or `[batch]`). Without `clamp`, normalised values may leave [0, 1] (the preset
    then plays outside its range, which render-preset reports); with it they are clamped, as
    refinement needs. `octaves`: the other marked ones go to `hz` times their interval to
    the first rounded to whole octaves (for starting points of a match, where a random
    preset's intervals are noise, but its octaves are worth keeping as variety)."""
    keys = chain.pitch_keys
    if not keys:
        raise ConfigError(no_pitch_problem(chain))
    first = params[keys[0]]
    hz = torch.as_tensor(hz, dtype=torch.float64, device=first.device)
    ratio = hz / chain.free_param(keys[0]).param.to_physical(first.double())
    out = dict(params)
    for key in keys:
        param = chain.free_param(key).param
        moved = param.to_physical(params[key].double()) * ratio
        if octaves:
            moved = hz * torch.exp2(torch.round(torch.log2(moved / hz)))
        normalized = param.to_normalized(moved)
        out[key] = (normalized.clamp(0.0, 1.0) if clamp else normalized).to(params[key].dtype)
    return out


def pitch_band(chain, params: dict, keys: list[str], semitones: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised bounds `[batch, len(keys)]` within `semitones` of each key's value in
    `params` (log-scale pitch: a fixed width in normalised units), clipped to [0, 1]."""
    centre = torch.stack([params[key].float() for key in keys], dim=-1)
    width = torch.tensor([semitones / (12.0 * math.log2(chain.free_param(k).param.high / chain.free_param(k).param.low))
                          if chain.free_param(k).param.scale == "log" else 0.0 for k in keys])
    return (centre - width).clamp(0.0, 1.0), (centre + width).clamp(0.0, 1.0)
