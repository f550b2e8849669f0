"""Presets at a pitch: which parameters are an audio oscillator's pitch, and moving them.

The rule (render-preset --pitch, and matching at an estimated pitch): every free `freq_hz`
of an audio oscillator (a module whose type ends in "oscillator"; LFOs are left alone) is
scaled by the same factor, the one that puts the first such oscillator (in the chain's
order) on the requested frequency. So intervals between oscillators (detune, FM ratios) are
kept. Frequencies pinned by the chain's `fixed:` are not free and do not move.
"""
from __future__ import annotations

import math

import torch

from diffmoog.errors import ConfigError


def oscillator_freq_keys(chain) -> list[str]:
    """Free audio-oscillator pitch keys, in chain order."""
    return [fp.key for fp in chain.free_params if fp.param.name == "freq_hz"
            and chain.spec.nodes[fp.node].module.endswith("oscillator")]


def retune(chain, params: dict, hz: float | torch.Tensor, clamp: bool = False, octaves: bool = False) -> dict:
    """Normalised `params` (any batch) with the oscillators moved so the first plays `hz`
    (a number, or `[batch]`). Without `clamp`, normalised values may leave [0, 1] (the preset
    then plays outside its range, which render-preset reports); with it they are clamped, as
    refinement needs. `octaves`: the other oscillators go to `hz` times their interval to
    the first rounded to whole octaves (for starting points of a match, where a random
    preset's intervals are noise, but its octaves are worth keeping as variety)."""
    keys = oscillator_freq_keys(chain)
    if not keys:
        raise ConfigError(f"chain {chain.name} has no free oscillator freq_hz to set")
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
    """Normalised bounds `[batch, len(keys)]` within `semitones` of each oscillator's value in
    `params` (log-scale pitch: a fixed width in normalised units), clipped to [0, 1]."""
    centre = torch.stack([params[key].float() for key in keys], dim=-1)
    width = torch.tensor([semitones / (12.0 * math.log2(chain.free_param(k).param.high / chain.free_param(k).param.low))
                          if chain.free_param(k).param.scale == "log" else 0.0 for k in keys])
    return (centre - width).clamp(0.0, 1.0), (centre + width).clamp(0.0, 1.0)
