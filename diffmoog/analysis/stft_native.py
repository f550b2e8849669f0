"""The STFT loss's per-bin passes as one C loop each (stft_kernels.c), for CPU float32.

Why: in eager PyTorch the loss's power, clamp, log, sqrt, difference, sums and the gradient
spectrum are a dozen passes over spectrum-sized memory (4M bins per resolution for a batch of
32 x 4 s); these were about half of the loss's time. Built with the system C compiler on first
use into `$DIFFMOOG_CACHE` (default `~/.cache/diffmoog`) by `diffmoog.native.load`, and run
through ctypes over row ranges split across torch's thread count (`diffmoog.native.run`).
Without a compiler, off CPU, for float64, under torch.compile or with `DIFFMOOG_NATIVE=0`,
`spectral_loss` and `stft` use their PyTorch paths (same maths; tests compare the two).
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path

import torch

from diffmoog import native

_SOURCE = Path(__file__).with_name("stft_kernels.c")
# No -ffast-math: it would reorder the sums and drop NaN propagation through the clamp.
_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off",
          "-fopenmp-simd", "-fPIC", "-shared", "-std=gnu11"]
_library: ctypes.CDLL | None = None
enabled = True  # tests switch the PyTorch path on with this


def _load() -> ctypes.CDLL | None:
    global _library
    lib = native.load("stft", _SOURCE, flags=_FLAGS, scalar_define="STFT_SCALAR_MATH")
    if lib is not None and _library is None:
        for name in ("target_bins", "pred_bins", "grad_bins", "frames", "overlap_add"):
            getattr(lib, name).restype = None
        _library = lib
    return lib


def usable(t: torch.Tensor) -> bool:
    if not enabled or os.environ.get("DIFFMOOG_NATIVE", "1") == "0" or torch.compiler.is_compiling():
        return False
    if t.device.type != "cpu" or t.dtype != torch.float32:
        return False
    return _load() is not None


def _rows(spec: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    ri = torch.view_as_real(spec.contiguous())
    bins = spec.shape[-1]
    return ri, ri.numel() // (2 * bins), bins


def target_bins(spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(magnitude, log power, summed power) of a clamped complex spectrum."""
    ri, rows, bins = _rows(spec)
    mag, log_power = (torch.empty(spec.shape, dtype=ri.dtype) for _ in range(2))
    row_sums = torch.empty(rows, dtype=torch.float64)
    native.run(_library.target_bins, rows, bins, ctypes.c_int64(bins), native.ptr(ri), native.ptr(mag),
               native.ptr(log_power), native.ptr(row_sums))
    return mag, log_power, row_sums.sum()


def pred_bins(spec: torch.Tensor, t_mag: torch.Tensor, t_log_power: torch.Tensor):
    """(m - t, sum (m - t)^2, sum |log P - log Pt|) for the prediction's spectrum."""
    ri, rows, bins = _rows(spec)
    diff = torch.empty(spec.shape, dtype=ri.dtype)
    row_sums = torch.empty(rows, 2, dtype=torch.float64)
    native.run(_library.pred_bins, rows, bins, ctypes.c_int64(bins), native.ptr(ri), native.ptr(t_mag),
               native.ptr(t_log_power), native.ptr(diff), native.ptr(row_sums))
    sq, ab = row_sums.sum(0)
    return diff, sq, ab


def grad_bins(spec: torch.Tensor, diff: torch.Tensor, c_sc: float, c_log: float, nyquist: bool) -> torch.Tensor:
    """The loss's gradient w.r.t. the spectrum, DC and Nyquist doubled (for irfft), as complex."""
    ri, rows, bins = _rows(spec)
    grad = torch.empty_like(ri)
    native.run(_library.grad_bins, rows, bins, ctypes.c_int64(bins), ctypes.c_int(int(nyquist)), native.ptr(ri),
               native.ptr(diff), ctypes.c_float(c_sc), ctypes.c_float(c_log), native.ptr(grad))
    return torch.view_as_complex(grad)


def frames(audio: torch.Tensor, n_fft: int, hop: int, win: torch.Tensor) -> torch.Tensor:
    """`stft.frames` in one pass (padding, framing, denormals to 0, window)."""
    audio, win = audio.contiguous(), win.contiguous()
    batch, samples = audio.shape
    n_frames = 1 + (samples + 2 * (n_fft // 2) - n_fft) // hop
    out = torch.empty(batch, n_frames, n_fft, dtype=audio.dtype)
    native.run(_library.frames, batch * n_frames, n_fft, ctypes.c_int64(n_frames), ctypes.c_int64(samples),
               ctypes.c_int64(n_fft), ctypes.c_int64(hop), native.ptr(audio), native.ptr(win), native.ptr(out))
    return out


def overlap_add(grad_frames: torch.Tensor, win: torch.Tensor, samples: int, hop: int,
                out: torch.Tensor | None = None) -> torch.Tensor:
    """`stft.frames_adjoint(grad_frames * win, samples, hop)` in one pass, added to `out` if given."""
    grad_frames, win = grad_frames.contiguous(), win.contiguous()
    batch, n_frames, n_fft = grad_frames.shape
    accumulate = out is not None
    if out is None:
        out = torch.empty(batch, samples, dtype=grad_frames.dtype)
    native.run(_library.overlap_add, batch, n_frames * n_fft, ctypes.c_int64(n_frames), ctypes.c_int64(samples),
               ctypes.c_int64(n_fft), ctypes.c_int64(hop), native.ptr(grad_frames), native.ptr(win),
               ctypes.c_int(int(accumulate)), native.ptr(out))
    return out
