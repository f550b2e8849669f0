"""Additive (Fourier-series) waveforms for high notes, where PolyBLEP aliases badly.

PolyBLEP corrects each edge over two samples only; with few samples per period (a 4 kHz
saw at 16 kHz has four) its residual aliasing is only ~12 dB below the fundamental. A high
note has few harmonics below Nyquist, so summing them exactly is both alias-free and cheap.
Each harmonic fades out over the last `FADE` cycles/sample below Nyquist, so the output
(and its gradient) stays continuous as a harmonic crosses Nyquist under pitch changes.
"""
from __future__ import annotations

import math

import torch

MAX_HARMONICS = 8  # notes needing more than this fall back to PolyBLEP (see waveforms.py)
FADE = 0.05  # fade width in cycles/sample: harmonics between 0.45 and 0.5 fade to silence

# (harmonic step, amplitude of harmonic k, use cosine) for each waveform's Fourier series,
# matching the naive shapes in waveforms.py: saw 2p-1, square +1 on [0, 0.5), triangle with
# its trough at phase 0.
SERIES = {
    "saw": (1, lambda k: -2.0 / (math.pi * k), False),
    "square": (2, lambda k: 4.0 / (math.pi * k), False),
    "triangle": (2, lambda k: -8.0 / (math.pi * k) ** 2, True),
}


def needs_additive(dt: torch.Tensor) -> torch.Tensor:
    """Samples (dt's shape) whose every harmonic above MAX_HARMONICS lies at or above Nyquist.

    Per sample rather than per row: a streamed block must decide as the offline render does.
    """
    return dt * (MAX_HARMONICS + 1) >= 0.5


def additive(name: str, p: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    """Band-limited `name` waveform from phase `p` (cycles) and increment `dt` (cycles/sample).

    sin/cos(k theta) come from the Chebyshev recurrence x_k = 2 cos(theta) x_{k-1} - x_{k-2},
    two multiply-adds per harmonic instead of a transcendental call.
    """
    step, amplitude, use_cos = SERIES[name]
    theta = 2.0 * math.pi * p
    cos1 = torch.cos(theta)
    two_cos = 2.0 * cos1
    # Highest harmonic any sample can hear; fewer iterations for higher notes.
    top = min(MAX_HARMONICS, int(math.floor(0.5 / max(float(dt.detach().min()), 1e-7)))) \
        if not torch.compiler.is_compiling() else MAX_HARMONICS  # (gain is 0 above Nyquist)
    prev, cur = (torch.ones_like(theta), cos1) if use_cos else (torch.zeros_like(theta), torch.sin(theta))
    out = torch.zeros_like(theta)
    for k in range(1, top + 1):
        if (k - 1) % step == 0:
            gain = torch.clamp((0.5 - k * dt) / FADE, 0.0, 1.0)
            out = out + (amplitude(k) * gain) * cur
        prev, cur = cur, two_cos * cur - prev
    return out
