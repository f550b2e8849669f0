"""THE STFT of the project: frames-major (`[batch, frames, bins]`), and the adjoint of its framing
for hand-written backwards.

Same frames and values as `torch.stft(x, n_fft, hop, win, hann(win), center=True,
pad_mode="reflect")`, transposed. Why not torch.stft: autograd through it goes through a generic
as_strided backward and a full complex-to-complex FFT, several times slower on CPU than the
inverse real FFT plus strided overlap-add used by `frames_adjoint`.
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from diffmoog.analysis import stft_native

_WINDOWS: dict[tuple, torch.Tensor] = {}


def window(n_fft: int, win_length: int, device, dtype=torch.float32) -> torch.Tensor:
    """Periodic Hann of `win_length`, zero-padded to `n_fft` in the centre (as torch.stft does); cached."""
    key = (n_fft, win_length, str(device), dtype)
    if key not in _WINDOWS:
        w = torch.hann_window(win_length, device=device, dtype=dtype)
        left = (n_fft - win_length) // 2
        _WINDOWS[key] = F.pad(w, (left, n_fft - win_length - left))
    return _WINDOWS[key]


def frames(audio: torch.Tensor, n_fft: int, hop: int, win: torch.Tensor) -> torch.Tensor:
    """Reflect-padded (centred), windowed frames `[batch, frames, n_fft]`, denormals set to 0.

    Why zero denormals (below 1.2e-38): synth sounds that decay to silence can end in them
    (1 sample in 8 of the 4 s training sounds, before the synth kernels flushed them; stored
    datasets still have them); x86 arithmetic on them is ~100x slower, and the window product
    and the FFT took 2-4x longer. No spectrum value that matters changes. Only for audio that
    needs no gradient: masking would also zero the gradient at every exactly silent sample."""
    needs_grad = audio.requires_grad and torch.is_grad_enabled()
    # The C pass has no autograd.
    if not needs_grad and stft_native.usable(audio) and audio.shape[-1] > n_fft // 2:
        return stft_native.frames(audio, n_fft, hop, win)
    padded = F.pad(audio[:, None], (n_fft // 2, n_fft // 2), mode="reflect")[:, 0]
    if padded.device.type == "cpu" and not needs_grad:
        padded = padded.masked_fill_(padded.abs() < torch.finfo(padded.dtype).tiny, 0.0)
    return padded.unfold(-1, n_fft, hop) * win


def power(audio: torch.Tensor, n_fft: int, hop: int, win_length: int | None = None) -> torch.Tensor:
    """|STFT|^2 `[batch, frames, n_fft // 2 + 1]`, periodic Hann window of `win_length` (default n_fft)."""
    win = window(n_fft, win_length or n_fft, audio.device, audio.dtype)
    return power_of(torch.fft.rfft(frames(audio, n_fft, hop, win)))


def power_of(spec: torch.Tensor) -> torch.Tensor:
    """re^2 + im^2 in two passes (complex abs() is a slower hypot, and then needs squaring)."""
    ri = torch.view_as_real(spec)
    re, im = ri[..., 0], ri[..., 1]
    return torch.addcmul(re * re, im, im)


def frames_adjoint(grad_frames: torch.Tensor, n_samples: int, hop: int) -> torch.Tensor:
    """Gradient w.r.t. the audio `[batch, n_samples]` given the gradient w.r.t. the (pre-window)
    padded frames `[batch, frames, n_fft]`: overlap-add, then fold the reflected padding back."""
    batch, n_frames, n_fft = grad_frames.shape
    pad = n_fft // 2
    padded = grad_frames.new_zeros(batch, n_samples + 2 * pad)
    if n_fft % hop == 0:
        # Overlap-add as n_fft/hop shifted, hop-sized block sums: one pass, no index tensors.
        r = n_fft // hop
        blocks = padded[:, :(n_frames + r - 1) * hop].view(batch, n_frames + r - 1, hop)
        parts = grad_frames.view(batch, n_frames, r, hop)
        for j in range(r):
            blocks[:, j:j + n_frames] += parts[:, :, j]
    else:
        used = (n_frames - 1) * hop + n_fft
        padded[:, :used] = F.fold(grad_frames.transpose(1, 2), (1, used), (1, n_fft), stride=(1, hop))[:, 0, 0]
    grad = padded[:, pad:pad + n_samples]
    # Reflect padding: padded[i] = x[pad - i] on the left, padded[pad + T + j] = x[T - 2 - j] on the right.
    grad[:, 1:pad + 1] += padded[:, :pad].flip(-1)
    grad[:, n_samples - 1 - pad:n_samples - 1] += padded[:, pad + n_samples:].flip(-1)
    return grad
