"""Evaluation metrics. Each returns per-item values `[batch]`, so batches aggregate exactly.

- lsd: DiffMoog's log-spectral distance. STFT n_fft 1024, hop 256, Hann window, power P;
  per item sqrt(sum_{f,t} (10 log10(P_hat + 1e-5) - 10 log10(P + 1e-5))^2) / n_frames.
- spectral_convergence: ||S - S_hat||_F / ||S||_F on magnitudes (same STFT).
- mfcc_mae: mean |MFCC_hat - MFCC| over 20 coefficients x frames (our own DCT of dB log-mel).
- mrstft: the multi-resolution STFT loss per item, at auraloss's default resolutions.
- param_mae: |physical_hat - physical| per continuous parameter, in the parameter's unit;
  param_mae_norm: the same on the normalised [0, 1] scale (log params in log space);
  param_acc: 1 when the predicted choice of a categorical parameter is right.
"""
from __future__ import annotations

import torch

from diffmoog.analysis import stft
from diffmoog.analysis.features import mfcc
from diffmoog.analysis.spectral_loss import MultiResolutionSTFTLoss

LSD_EPS = 1e-5
# auraloss.freq.MultiResolutionSTFTLoss's defaults (the metric's published setting).
MRSTFT = MultiResolutionSTFTLoss((1024, 2048, 512), (120, 240, 50), (600, 1200, 240), per_item=True)


def lsd(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    p_hat, p = stft.power(pred.float(), 1024, 256), stft.power(target.float(), 1024, 256)
    diff = 10.0 * torch.log10(p_hat + LSD_EPS) - 10.0 * torch.log10(p + LSD_EPS)
    return diff.square().sum(dim=(-2, -1)).sqrt() / p.shape[-2]


def spectral_convergence(pred, target) -> torch.Tensor:
    s_hat = stft.power(pred.float(), 1024, 256).sqrt()
    s = stft.power(target.float(), 1024, 256).sqrt()
    return torch.linalg.norm((s - s_hat).flatten(1), dim=-1) / (torch.linalg.norm(s.flatten(1), dim=-1) + 1e-8)


def mfcc_mae(pred, target, sample_rate: int) -> torch.Tensor:
    return (mfcc(pred, sample_rate) - mfcc(target, sample_rate)).abs().mean(dim=(-2, -1))


def mrstft(pred, target) -> torch.Tensor:
    return MRSTFT(pred, target)


def audio_metrics(pred: torch.Tensor, target: torch.Tensor, sample_rate: int) -> dict[str, torch.Tensor]:
    return {"lsd": lsd(pred, target), "spectral_convergence": spectral_convergence(pred, target),
            "mfcc_mae": mfcc_mae(pred, target, sample_rate), "mrstft": mrstft(pred, target)}


def param_metrics(chain, pred: dict, target: dict) -> dict[str, torch.Tensor]:
    """Per-item absolute errors in physical units (`param_mae/<key>`) and choice accuracy."""
    phys_hat, phys = chain.to_physical(pred), chain.to_physical(target)
    out = {}
    for fp in chain.free_params:
        if fp.param.is_categorical:
            out[f"param_acc/{fp.key}"] = (phys_hat[fp.key] == phys[fp.key]).float()
        else:
            out[f"param_mae/{fp.key}"] = (phys_hat[fp.key].float() - phys[fp.key].float()).abs()
            # The same error on the [0,1] scale: comparable across parameters, so it can be averaged.
            out[f"param_mae_norm/{fp.key}"] = (pred[fp.key].float() - target[fp.key].float()).abs()
    return out


class Aggregate:
    """Running means of per-item metric tensors."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, values: dict[str, torch.Tensor]) -> None:
        for key, value in values.items():
            value = value.detach().double().reshape(-1)
            self.sums[key] = self.sums.get(key, 0.0) + float(value.sum())
            self.counts[key] = self.counts.get(key, 0) + value.numel()

    def means(self) -> dict[str, float]:
        return {key: self.sums[key] / self.counts[key] for key in self.sums}
