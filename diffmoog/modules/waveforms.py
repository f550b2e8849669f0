"""Shared oscillator DSP: phase accumulation and band-limited (PolyBLEP/BLAMP) waveforms."""
from __future__ import annotations

import torch

from diffmoog.modules.additive import additive, needs_additive
from diffmoog.modules.base import RenderContext

TWO_PI = 2.0 * torch.pi


def frac(x: torch.Tensor) -> torch.Tensor:
    """The fractional part x - floor(x) (a phase in cycles)."""
    return x - torch.floor(x)


def phase(ctx: RenderContext, freq_hz: torch.Tensor, node: str = "") -> tuple[torch.Tensor, torch.Tensor]:
    """Return (phase in cycles [0,1), per-sample increment) for `freq_hz` [batch, 1|samples].

    Constant frequency uses a closed form per absolute sample index, so there is no
    accumulated rounding error and streamed blocks line up exactly. Time-varying frequency
    is integrated in float64 and its end phase carried in the node's stream state.
    """
    inc = freq_hz / ctx.sample_rate
    if inc.shape[-1] == 1:
        # In float64, inc * n is exact to ~1e-12 cycles at any length (float32 would drift
        # by several ulps of n * inc); the float frac catches a rounding up to 1.0.
        wide = inc.to(torch.float64) * ctx.sample_index().to(torch.float64)
        return frac(frac(wide).to(inc.dtype)), inc
    state = ctx.node_state(node)
    start = state.get("phase", 0.0) if state is not None else 0.0
    wide = inc.to(torch.float64)
    total = torch.cumsum(wide, dim=-1)
    out = total - wide + start
    if state is not None:
        state["phase"] = frac(total[:, -1:] + start).detach()
    return frac(frac(out).to(inc.dtype)), inc  # a double just below 1 may round to 1.0


def blep(p: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    """PolyBLEP residual for a downward step of 2 at phase 0 (two-sample polynomial).

    After the edge (0 <= y < 1, y = p/dt): 2y - y^2 - 1; before it (-1 < y < 0,
    y = (p-1)/dt): y^2 + 2y + 1. Both are 2y - y|y| -+ 1 with y the signed distance to the
    nearest edge, clamped to [-1, 1] (where the residual is 0). Written branch-free in float
    math: on CPU, comparisons and torch.where cost several times a multiply.
    """
    d = p - torch.round(p)  # signed distance to the nearest edge, in cycles
    y = torch.clamp(d / dt, -1.0, 1.0)
    side = 2.0 * torch.floor(d) + 1.0  # +1 at or after the edge, -1 before it
    return 2.0 * y - y * torch.abs(y) - side


def blamp(p: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    """PolyBLAMP residual (integrated BLEP) for a unit slope change at phase 0, in samples."""
    after = 1.0 - p / dt
    before = 1.0 + (p - 1.0) / dt
    return torch.where(p < dt, after * after * after / 6.0,
                       torch.where(p > 1.0 - dt, before * before * before / 6.0,
                                   torch.zeros_like(p)))


def sine(p: torch.Tensor, dt: torch.Tensor, band_limited: bool = True) -> torch.Tensor:
    return torch.sin(TWO_PI * p)


def saw(p: torch.Tensor, dt: torch.Tensor, band_limited: bool = True) -> torch.Tensor:
    naive = 2.0 * p - 1.0
    return naive - blep(p, dt) if band_limited else naive


def square(p: torch.Tensor, dt: torch.Tensor, band_limited: bool = True) -> torch.Tensor:
    naive = 1.0 - 2.0 * torch.floor(2.0 * p)  # +1 on [0, 0.5), -1 on [0.5, 1)
    if not band_limited:
        return naive
    return naive + blep(p, dt) - blep(frac(p + 0.5), dt)


def triangle(p: torch.Tensor, dt: torch.Tensor, band_limited: bool = True) -> torch.Tensor:
    naive = 1.0 - 4.0 * torch.abs(p - 0.5)  # trough at phase 0, peak at 0.5
    if not band_limited:
        return naive
    # The slope changes by +-8 per cycle (4 per half cycle, both ways) = 8*dt per sample.
    return naive + 8.0 * dt * (blamp(p, dt) - blamp(frac(p + 0.5), dt))


WAVEFORMS = {"sine": sine, "saw": saw, "square": square, "triangle": triangle}


def render_waveform(name: str, p: torch.Tensor, inc: torch.Tensor, band_limited: bool
                    ) -> torch.Tensor:
    # BLEP needs the step width in cycles; cap it so the two square edges never overlap.
    dt = torch.abs(inc).clamp(1e-7, 0.5)
    if not band_limited or name == "sine":
        return WAVEFORMS[name](p, dt, band_limited)
    # High notes: exact Fourier sums (PolyBLEP leaves ~12 dB aliasing at 4 kHz / 16 kHz).
    # Decided per sample, so a streamed block chooses exactly as the offline render does.
    high = needs_additive(dt)
    if torch.compiler.is_compiling():  # a traced graph cannot branch on data: compute both
        mask = high if high.dim() == p.dim() else high[:, None]
        return torch.where(mask, additive(name, p, dt), WAVEFORMS[name](p, dt, True))
    if not bool(high.any()):
        return WAVEFORMS[name](p, dt, True)
    if bool(high.all()):
        return additive(name, p, dt)
    # p and dt both carry the batch dimension (dt may be [batch, 1]); split rows, not samples.
    out = p.new_empty(torch.broadcast_shapes(p.shape, dt.shape))
    every, some = high.all(dim=-1), high.any(dim=-1)
    for rows, kind in ((every, "additive"), (~some, "blep"), (some & ~every, "both")):
        rows = rows.nonzero().squeeze(1)
        if len(rows) == 0:
            continue
        pr, dr = p[rows], dt[rows]
        if kind == "additive":
            part = additive(name, pr, dr)
        elif kind == "blep":
            part = WAVEFORMS[name](pr, dr, True)
        else:  # a pitch sweep across the threshold: switch sample by sample
            part = torch.where(high[rows], additive(name, pr, dr), WAVEFORMS[name](pr, dr, True))
        out = out.index_put((rows,), part.expand(len(rows), out.shape[-1]))
    return out
