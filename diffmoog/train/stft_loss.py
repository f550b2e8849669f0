"""auraloss's multi-resolution STFT loss (spectral convergence + log-magnitude L1, averaged over
resolutions) with a hand-written backward.

The value is the same as autograd through torch.stft; the gradient w.r.t. the prediction's
spectrum is written out in closed form and taken back to the audio by an inverse real FFT and a
strided overlap-add (see `diffmoog.train.stft`). That avoids autograd's dozen saved
spectrum-sized temporaries and its complex FFT backward: the loss's forward + backward takes
about a third of the time on CPU. The target's spectrum is computed once, without gradients.

Per resolution, with m = sqrt(max(|S|^2, eps)) for the prediction, t for the target, n = m.numel():
    loss = ||m - t|| / ||t||  +  mean |log m - log t|
    dloss/dm = (m - t) / (||m - t|| ||t||)  +  sign(m - t) / (n m)
    dloss/dS = dloss/dm * S / m   (0 where |S|^2 < eps: the clamp's gradient)
"""
from __future__ import annotations

import torch

from diffmoog.train import stft, stft_native

EPS = 1e-8  # auraloss's power floor


class TargetSpectrum:
    """The target side of one resolution, computed once per batch without gradients."""

    def __init__(self, target: torch.Tensor, n_fft: int, hop: int, win_length: int):
        with torch.no_grad():
            self.n_fft, self.hop, self.win = n_fft, hop, stft.window(n_fft, win_length, target.device, target.dtype)
            spec = torch.fft.rfft(stft.frames(target, n_fft, hop, self.win))
            if stft_native.usable(target):
                self.mag, self.log_power, total = stft_native.target_bins(spec)
                self.norm = total.sqrt().to(target.dtype)
                return
            p = stft.power_of(spec).clamp_min_(EPS)
            self.norm = p.sum().sqrt()  # ||t||: sqrt of the summed power, no elementwise sqrt needed
            self.log_power = p.log()
            self.mag = p.sqrt_()


def target_spectra(target: torch.Tensor, resolutions) -> list[TargetSpectrum]:
    """`TargetSpectrum` per (n_fft, hop, win_length)."""
    return [TargetSpectrum(target, n_fft, hop, win) for n_fft, hop, win in resolutions]


class _MRSTFTLoss(torch.autograd.Function):
    """Mean over resolutions (one Function: the backward adds the resolutions' gradients in place)."""

    @staticmethod
    def forward(ctx, pred: torch.Tensor, *targets: TargetSpectrum):
        total, saved = 0.0, []
        ctx.native = stft_native.usable(pred)
        for t in targets:
            spec = torch.fft.rfft(stft.frames(pred, t.n_fft, t.hop, t.win))
            if ctx.native:  # the same values, in one pass over the spectrum
                diff, sq, ab = stft_native.pred_bins(spec, t.mag, t.log_power)
                diff_norm = sq.sqrt().to(pred.dtype)
                total = total + diff_norm / t.norm + (0.5 * ab / diff.numel()).to(pred.dtype)
                saved += [spec, diff, diff, diff_norm]  # no magnitudes: the backward recomputes them
                continue
            p = stft.power_of(spec).clamp_min_(EPS)
            log_diff = p.log().sub_(t.log_power)
            mag = p.sqrt_()
            diff = mag - t.mag
            diff_norm = torch.linalg.vector_norm(diff)
            log_mag = 0.5 * torch.linalg.vector_norm(log_diff, ord=1) / log_diff.numel()
            total = total + diff_norm / t.norm + log_mag
            saved += [spec, mag, diff, diff_norm]
        ctx.save_for_backward(*saved)
        ctx.targets, ctx.n_samples = targets, pred.shape[-1]
        return total / len(targets)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        saved, grad = ctx.saved_tensors, None
        grad_out = grad_out / len(ctx.targets)
        for i, t in enumerate(ctx.targets):
            spec, mag, diff, diff_norm = saved[4 * i:4 * i + 4]
            # 0.5: the irfft below with norm="forward" is N times irfft, and irfft already counts
            # interior bins twice (Hermitian symmetry) -- so the DC and Nyquist bins get a factor 2.
            c_sc = 0.5 * grad_out / (diff_norm * t.norm).clamp_min(torch.finfo(diff_norm.dtype).tiny)
            c_log = 0.5 * grad_out / spec.numel()
            nyquist = t.n_fft % 2 == 0  # odd sizes have no Nyquist bin
            if ctx.native:
                grad_spec = stft_native.grad_bins(spec, diff, float(c_sc), float(c_log), nyquist)
            else:
                floor = torch.tensor(EPS, dtype=mag.dtype, device=mag.device).sqrt()
                coef = torch.sign(diff).div_(mag).mul_(c_log).add_(diff * c_sc).div_(mag)
                coef.masked_fill_(mag <= floor, 0.0)
                coef[..., 0] *= 2
                if nyquist:
                    coef[..., -1] *= 2
                # Not in place: `spec` is saved (a retained graph may run this backward again).
                grad_spec = torch.view_as_complex(torch.view_as_real(spec) * coef[..., None])
            grad_frames = torch.fft.irfft(grad_spec, n=t.n_fft, norm="forward")
            if ctx.native:  # window, overlap-add, reflect fold and the sum over resolutions in one pass
                grad = stft_native.overlap_add(grad_frames, t.win, ctx.n_samples, t.hop, out=grad)
                continue
            part = stft.frames_adjoint(grad_frames.mul_(t.win), ctx.n_samples, t.hop)
            grad = part if grad is None else grad.add_(part)
        return (grad, *(None for _ in ctx.targets))


def mrstft_loss(pred: torch.Tensor, targets: list[TargetSpectrum]) -> torch.Tensor:
    """Mean over resolutions of spectral convergence + log-magnitude L1 of `pred` `[batch, samples]`."""
    return _MRSTFTLoss.apply(pred, *targets)
