"""Fréchet distance between two sets of sounds on log-mel statistics: "FD-logmel".

NOT the VGGish Fréchet Audio Distance (FAD): VGGish weights cannot be downloaded here, so
numbers are not comparable with published FAD values. Each sound becomes one vector, the
per-band mean and standard deviation over time of its log-mel spectrogram (the project's
own `LogMel` features); a Gaussian is fitted to each set, and
    FD = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

from diffmoog.analysis.features import LogMel

N_MELS = 64


def logmel_statistics(audio: torch.Tensor, sample_rate: int, n_mels: int = N_MELS,
                      batch_size: int = 64) -> np.ndarray:
    """Sounds `[n, samples]` -> embeddings `[n, 2 * n_mels]` (band means, then band stds)."""
    features = LogMel(sample_rate, n_mels=n_mels).to(audio.device)
    rows = []
    with torch.no_grad():
        for chunk in audio.float().split(batch_size):
            logmel = features(chunk)
            rows.append(torch.cat([logmel.mean(-1), logmel.std(-1)], dim=-1).double().cpu())
    return torch.cat(rows).numpy()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to embeddings `a` `[n, d]` and `b` `[m, d]`."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError("each set needs at least 2 sounds to estimate a covariance")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():  # near-singular product (few sounds): regularise both
        eye = np.eye(len(cov_a)) * 1e-6
        root = scipy.linalg.sqrtm((cov_a + eye) @ (cov_b + eye))
    root = root.real  # imaginary parts are numerical noise of a near-singular product
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root))


def frechet_distance_audio(a: torch.Tensor, b: torch.Tensor, sample_rate: int) -> float:
    """FD-logmel between two sets of sounds `[n, samples]` and `[m, samples]` (not VGGish FAD)."""
    return frechet_distance(logmel_statistics(a, sample_rate), logmel_statistics(b, sample_rate))
