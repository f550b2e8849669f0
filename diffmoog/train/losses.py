"""The trainer's loss terms. Each is a small module returning a scalar; the trainer weights them by step.

- ParamLoss: L1/MSE on normalised continuous params, cross-entropy on categorical ones.
- The multi-resolution STFT term is `diffmoog.analysis.spectral_loss.MultiResolutionSTFTLoss`.
- LogMelLoss: L1 between log-mel spectrograms.
- WassersteinTimeLoss: DiffMoog's spectral loss that compares *when* energy happens: per
  frequency bin, the 1-D Wasserstein distance between the two normalised energy envelopes over
  time, computed from their cumulative sums.
- ChainLoss: a log-magnitude STFT L1 on intermediate node signals (synthetic targets only).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from diffmoog.analysis import stft
from diffmoog.analysis.features import LogMel, LogSTFT


class ParamLoss(nn.Module):
    def __init__(self, free_params, kind: str = "l1"):
        super().__init__()
        self.specs = [(fp.key, fp.param.is_categorical) for fp in free_params]
        self.kind = kind

    def per_param(self, outputs: dict, target: dict) -> dict[str, torch.Tensor]:
        losses = {}
        for key, categorical in self.specs:
            pred, true = outputs[key].float(), target[key].float()
            if categorical:
                # `outputs` holds logits; targets are one-hot (or soft) choice weights.
                losses[key] = F.cross_entropy(pred, true.argmax(-1))
            elif self.kind == "mse":
                losses[key] = F.mse_loss(pred, true)
            else:
                losses[key] = F.l1_loss(pred, true)
        return losses

    def forward(self, outputs: dict, target: dict) -> torch.Tensor:
        return torch.stack(list(self.per_param(outputs, target).values())).mean()


class LogMelLoss(nn.Module):
    def __init__(self, sample_rate: int, n_fft: int = 1024, hop: int = 256, n_mels: int = 64):
        super().__init__()
        self.log_mel = LogMel(sample_rate, n_fft, hop, n_mels, f_min_hz=0.0)

    def forward(self, pred, target):
        return F.l1_loss(self.log_mel(pred), self.log_mel(target))


class WassersteinTimeLoss(nn.Module):
    """Mean over (item, bin) of W1 between the bin's energy-over-time distributions, in seconds.

    Each bin's magnitude envelope is normalised to sum 1 over frames; W1 in 1-D is the L1 distance
    of the cumulative sums, times the hop duration. Bins are weighted by their share of the
    target's and prediction's energy, so silent bins (pure numerical noise) do not dominate.
    """

    def __init__(self, sample_rate: int, n_fft: int = 1024, hop: int = 256, **_):
        super().__init__()
        self.n_fft, self.hop, self.sample_rate = n_fft, hop, sample_rate

    def forward(self, pred, target):
        # [batch, frames, bins]; eps: a finite gradient at 0
        mag_p = (stft.power(pred.float(), self.n_fft, self.hop) + 1e-10).sqrt()
        mag_t = (stft.power(target.float(), self.n_fft, self.hop) + 1e-10).sqrt()
        eps = 1e-8
        cdf_p = torch.cumsum(mag_p, -2) / (mag_p.sum(-2, keepdim=True) + eps)
        cdf_t = torch.cumsum(mag_t, -2) / (mag_t.sum(-2, keepdim=True) + eps)
        w1 = (cdf_p - cdf_t).abs().sum(-2) * (self.hop / self.sample_rate)  # [batch, bins]
        energy = mag_t.sum(-2) / (mag_t.sum((-2, -1))[:, None] + eps) + \
            mag_p.sum(-2) / (mag_p.sum((-2, -1))[:, None] + eps)
        bin_weight = (energy / 2).detach()
        return (w1 * bin_weight).sum(-1).mean()


class ChainLoss(nn.Module):
    """Log-magnitude STFT L1 between predicted and target signals at the chosen nodes."""

    def __init__(self, nodes, n_fft: int = 512, hop: int = 256):
        super().__init__()
        self.nodes, self.log_stft = list(nodes), LogSTFT(None, n_fft, hop)

    def forward(self, pred_nodes: dict, target_nodes: dict) -> torch.Tensor:
        return torch.stack([F.l1_loss(self.log_stft(pred_nodes[name]), self.log_stft(target_nodes[name]))
                            for name in self.nodes]).mean()
