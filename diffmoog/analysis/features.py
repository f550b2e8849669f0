"""Spectral features computed on the fly with `diffmoog.analysis.stft`: log-mel, log-STFT, MFCC.

The mel filterbank and the DCT are built here (HTK mel scale, orthonormal DCT-II) so the
default environment needs neither librosa nor torchaudio.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from diffmoog.analysis import stft

LOG_EPS = 1e-5


def hz_to_mel(hz):
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(hz, dtype=torch.float64) / 700.0)


def mel_to_hz(mel):
    return 700.0 * (10.0 ** (torch.as_tensor(mel, dtype=torch.float64) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, f_min_hz: float = 0.0,
                   f_max_hz: float | None = None) -> torch.Tensor:
    """Triangular filters `[n_mels, n_fft // 2 + 1]`, each normalised to unit area (Slaney-style)."""
    f_max_hz = sample_rate / 2 if f_max_hz is None else f_max_hz
    bins_hz = torch.linspace(0.0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges_hz = mel_to_hz(torch.linspace(float(hz_to_mel(f_min_hz)), float(hz_to_mel(f_max_hz)),
                                        n_mels + 2, dtype=torch.float64))
    low, centre, high = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bins_hz - low) / (centre - low)
    falling = (high - bins_hz) / (high - centre)
    filters = torch.clamp(torch.minimum(rising, falling), min=0.0)
    # Equal-area filters keep a flat spectrum flat across mel bands.
    filters = filters * (2.0 / (high - low))
    return filters.float()


def dct_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """Orthonormal DCT-II as a `[n_in, n_out]` matrix (x @ D gives the first n_out coefficients)."""
    n = torch.arange(n_in, dtype=torch.float64)[:, None]
    k = torch.arange(n_out, dtype=torch.float64)[None, :]
    basis = torch.cos(math.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    basis[:, 0] /= math.sqrt(2.0)
    return basis.float()


class LogMel(nn.Module):
    """audio `[batch, samples]` -> log-mel `[batch, n_mels, frames]` (natural log of power + eps)."""

    def __init__(self, sample_rate: int, n_fft: int = 1024, hop: int = 256, n_mels: int = 64,
                 f_min_hz: float = 20.0, f_max_hz: float | None = None):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("filters", mel_filterbank(sample_rate, n_fft, n_mels, f_min_hz, f_max_hz),
                             persistent=False)

    @property
    def n_bins(self) -> int:
        return self.filters.shape[0]

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        # Frames-major power and one matmul: no transposed copies of the spectrum. The result is a
        # transposed view; the GRU body reads it frames-major again, without a copy.
        mel = torch.matmul(stft.power(audio.float(), self.n_fft, self.hop), self.filters.T)
        return torch.log(mel.add_(LOG_EPS)).transpose(1, 2)


class LogSTFT(nn.Module):
    """audio -> log power STFT `[batch, n_fft//2+1, frames]`."""

    def __init__(self, sample_rate: int, n_fft: int = 1024, hop: int = 256, **_):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return torch.log(stft.power(audio.float(), self.n_fft, self.hop).add_(LOG_EPS)).transpose(1, 2)


def make_features(kind: str, sample_rate: int, n_fft: int, hop: int, n_mels: int,
                  f_min_hz: float = 20.0, f_max_hz: float | None = None) -> nn.Module:
    if kind == "logmel":
        return LogMel(sample_rate, n_fft, hop, n_mels, f_min_hz, f_max_hz)
    return LogSTFT(sample_rate, n_fft, hop)


def mfcc(audio: torch.Tensor, sample_rate: int, n_mfcc: int = 20, n_mels: int = 128,
         n_fft: int = 1024, hop: int = 256) -> torch.Tensor:
    """MFCCs `[batch, n_mfcc, frames]`: orthonormal DCT-II of the dB log-mel spectrogram."""
    filters = mel_filterbank(sample_rate, n_fft, n_mels).to(audio.device)
    mel_db = 10.0 * torch.log10(torch.matmul(stft.power(audio.float(), n_fft, hop), filters.T) + LOG_EPS)
    return torch.matmul(mel_db, dct_matrix(n_mels, n_mfcc).to(audio.device)).transpose(1, 2)
