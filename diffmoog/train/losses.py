"""Loss terms. Each is a small module returning a scalar; the trainer weights them by step.

- ParamLoss: L1/MSE on normalised continuous params, cross-entropy on categorical ones.
- MRSTFTLoss: auraloss's multi-resolution STFT loss (spectral convergence + log magnitude).
- LogMelLoss: L1 between log-mel spectrograms.
- WassersteinTimeLoss: DiffMoog's spectral loss that compares *when* energy happens: per
  frequency bin, the 1-D Wasserstein distance between the two normalised energy envelopes over
  time, computed from their cumulative sums.
- ChainLoss: a log-magnitude STFT L1 on intermediate node signals (synthetic targets only).
"""
from __future__ import annotations

import auraloss
import torch
from torch import nn
from torch.nn import functional as F

from diffmoog.train.features import LOG_EPS, mel_filterbank, stft_power
from diffmoog.train.stft_loss import mrstft_loss, target_spectra


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


class MRSTFTLoss(nn.Module):
    """Multi-resolution STFT loss: mean over resolutions of spectral convergence + log-magnitude L1.

    Three implementations of the same value (tested against each other):
    - "fast" (default): a hand-written backward (`diffmoog.train.stft_loss`), the target's
      spectra computed once without gradients. Used when the target needs no gradient.
    - "autograd": autograd through torch.stft, log|X| taken as log(power)/2.
    - "auraloss": auraloss.freq.MultiResolutionSTFTLoss (which also computes an unused phase).
    """

    def __init__(self, fft_sizes=(2048, 1024, 512), hop_sizes=(512, 256, 128), win_lengths=(2048, 1024, 512),
                 impl: str = "fast"):
        super().__init__()
        self.impl = impl
        self.resolutions = list(zip(fft_sizes, hop_sizes, win_lengths))
        if impl == "auraloss":
            self.loss = auraloss.freq.MultiResolutionSTFTLoss(list(fft_sizes), list(hop_sizes), list(win_lengths))

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.impl == "auraloss":
            return self.loss(pred.float()[:, None], target.float()[:, None])
        if self.impl == "fast" and not target.requires_grad:
            return mrstft_loss(pred.float(), target_spectra(target.float(), self.resolutions))
        return self._autograd(pred, target)

    def _autograd(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        total = 0.0
        for n_fft, hop, win in self.resolutions:
            window = torch.hann_window(win, device=pred.device)
            power = []
            for x in (pred.float(), target.float()):
                spec = torch.stft(x, n_fft, hop, win, window, return_complex=True)
                power.append((spec.real.square() + spec.imag.square()).clamp_min(1e-8))
            p_hat, p = power
            sc = torch.linalg.vector_norm(p.sqrt() - p_hat.sqrt()) / torch.linalg.vector_norm(p.sqrt())
            log_mag = 0.5 * (torch.log(p_hat) - torch.log(p)).abs().mean()
            total = total + sc + log_mag
        return total / len(self.resolutions)


class LogMelLoss(nn.Module):
    def __init__(self, sample_rate: int, n_fft: int = 1024, hop: int = 256, n_mels: int = 64):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("filters", mel_filterbank(sample_rate, n_fft, n_mels), persistent=False)

    def log_mel(self, audio):
        return torch.log(torch.einsum("mf,bft->bmt", self.filters, stft_power(audio.float(), self.n_fft, self.hop))
                         + LOG_EPS)

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
        mag_p = (stft_power(pred.float(), self.n_fft, self.hop) + 1e-10).sqrt()  # eps: finite grad at 0
        mag_t = (stft_power(target.float(), self.n_fft, self.hop) + 1e-10).sqrt()
        eps = 1e-8
        cdf_p = torch.cumsum(mag_p, -1) / (mag_p.sum(-1, keepdim=True) + eps)
        cdf_t = torch.cumsum(mag_t, -1) / (mag_t.sum(-1, keepdim=True) + eps)
        w1 = (cdf_p - cdf_t).abs().sum(-1) * (self.hop / self.sample_rate)  # [batch, bins]
        energy = mag_t.sum(-1) / (mag_t.sum((-2, -1))[:, None] + eps) + \
            mag_p.sum(-1) / (mag_p.sum((-2, -1))[:, None] + eps)
        bin_weight = (energy / 2).detach()
        return (w1 * bin_weight).sum(-1).mean()


class ChainLoss(nn.Module):
    """Log-magnitude STFT L1 between predicted and target signals at the chosen nodes."""

    def __init__(self, nodes, n_fft: int = 512, hop: int = 256):
        super().__init__()
        self.nodes, self.n_fft, self.hop = list(nodes), n_fft, hop

    def forward(self, pred_nodes: dict, target_nodes: dict) -> torch.Tensor:
        terms = []
        for name in self.nodes:
            p = torch.log(stft_power(pred_nodes[name].float(), self.n_fft, self.hop) + LOG_EPS)
            t = torch.log(stft_power(target_nodes[name].float(), self.n_fft, self.hop) + LOG_EPS)
            terms.append(F.l1_loss(p, t))
        return torch.stack(terms).mean()
