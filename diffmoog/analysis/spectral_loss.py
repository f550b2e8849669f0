"""THE multi-resolution STFT loss: per resolution, a weighted sum of spectral convergence,
log-magnitude L1 and linear-magnitude L1, averaged over resolutions.

Per resolution, with m = sqrt(max(|S|^2, floor)) for the prediction (|S| when floor is 0), t for
the target, n = m.numel():
    loss = sc_weight ||m - t|| / ||t||  +  lin_weight mean |m - t|  +  log_weight mean |L(m) - L(t)|
where L(m) = log m, or log(m + log_offset) when an offset is set. Norms and means are over the
batch (one scalar) or per item (`per_item=True`, a `[batch]` vector).

The trainer uses auraloss's settings (spectral convergence + log magnitude, floor 1e-8, batch
mean). For those, `impl="fast"` takes a hand-written backward: the value is the same as
autograd through the STFT; the gradient w.r.t. the prediction's spectrum is written out in
closed form and taken back to the audio by an inverse real FFT and a strided overlap-add (see
`diffmoog.analysis.stft`). That avoids autograd's dozen saved spectrum-sized temporaries and its
complex FFT backward: the loss's forward + backward takes about a third of the time on CPU. The
target's spectrum is computed once, without gradients:
    dloss/dm = (m - t) / (||m - t|| ||t||)  +  sign(m - t) / (n m)
    dloss/dS = dloss/dm * S / m   (0 where |S|^2 < eps: the clamp's gradient)
Every other setting (and `impl="autograd"`, the reference) runs through autograd;
`impl="auraloss"` hands the trainer's settings to auraloss (an independent check; auraloss is
imported only then).
"""
from __future__ import annotations

import torch
from torch import nn

from diffmoog.analysis import stft, stft_native

EPS = 1e-8  # auraloss's power floor
IMPLS = ("fast", "autograd", "auraloss")


class TargetSpectrum:
    """The target side of one resolution: magnitude, log power (when floored) and norm.

    Without gradients (the usual case: computed once per batch, or once per refinement) it is
    built in place or by the C kernels; a target that needs gradients gets an autograd graph."""

    def __init__(self, target: torch.Tensor, n_fft: int, hop: int, win_length: int, floor: float = EPS):
        self.n_fft, self.hop, self.win = n_fft, hop, stft.window(n_fft, win_length, target.device, target.dtype)
        spec = torch.fft.rfft(stft.frames(target, n_fft, hop, self.win))
        self.log_power = self.norm = None
        if not floor:
            self.mag = spec.abs()
        elif target.requires_grad and torch.is_grad_enabled():
            p = stft.power_of(spec).clamp_min(floor)
            self.norm, self.log_power, self.mag = p.sum().sqrt(), p.log(), p.sqrt()
        elif floor == EPS and stft_native.usable(target):
            self.mag, self.log_power, total = stft_native.target_bins(spec)
            self.norm = total.sqrt().to(target.dtype)
        else:
            p = stft.power_of(spec).clamp_min_(floor)
            self.norm = p.sum().sqrt()  # ||t||: sqrt of the summed power, no elementwise sqrt needed
            self.log_power = p.log()
            self.mag = p.sqrt_()


def target_spectra(target: torch.Tensor, resolutions, floor: float = EPS) -> list[TargetSpectrum]:
    """`TargetSpectrum` per (n_fft, hop, win_length), without gradients."""
    with torch.no_grad():
        return [TargetSpectrum(target, n_fft, hop, win, floor) for n_fft, hop, win in resolutions]


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
    """The fast path: mean over resolutions of spectral convergence + log-magnitude L1 of `pred`
    `[batch, samples]` (floor EPS, batch mean), with the hand-written backward."""
    return _MRSTFTLoss.apply(pred, *targets)


class MultiResolutionSTFTLoss(nn.Module):
    """See the module docstring. `forward(pred, target)`: pred `[batch, samples]`; target audio
    `[batch|1, samples]` or its `reference(...)`, precomputed once for repeated calls."""

    def __init__(self, fft_sizes=(2048, 1024, 512), hop_sizes=(512, 256, 128), win_lengths=None, *,
                 sc_weight: float = 1.0, log_weight: float = 1.0, lin_weight: float = 0.0,
                 floor: float = EPS, log_offset: float = 0.0, per_item: bool = False, impl: str = "fast"):
        super().__init__()
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        if log_weight and not (floor or log_offset):
            raise ValueError("the log term needs a power floor or a log_offset (log 0 is -inf)")
        win_lengths = fft_sizes if win_lengths is None else win_lengths
        self.resolutions = list(zip(fft_sizes, hop_sizes, win_lengths))
        self.weights = (sc_weight, lin_weight, log_weight)
        self.floor, self.log_offset, self.per_item, self.impl = floor, log_offset, per_item, impl
        trainer_settings = self.weights == (1.0, 0.0, 1.0) and (floor, log_offset, per_item) == (EPS, 0.0, False)
        self.fast = impl == "fast" and trainer_settings
        if impl == "auraloss":
            if not trainer_settings:
                raise ValueError("impl='auraloss' supports only the default weights, floor and batch mean")
            import auraloss
            self.auraloss = auraloss.freq.MultiResolutionSTFTLoss(*(list(x) for x in zip(*self.resolutions)))

    def reference(self, target: torch.Tensor) -> list[TargetSpectrum]:
        """The target's spectra, without gradients, to pass as `target` to many calls."""
        return target_spectra(target.float(), self.resolutions, self.floor)

    def forward(self, pred: torch.Tensor, target: torch.Tensor | list[TargetSpectrum]) -> torch.Tensor:
        if self.impl == "auraloss":
            return self.auraloss(pred.float()[:, None], target.float()[:, None])
        pred = pred.float()
        if isinstance(target, torch.Tensor):
            if self.fast and not target.requires_grad:
                return mrstft_loss(pred, self.reference(target))
            target = [TargetSpectrum(target.float(), *res, self.floor) for res in self.resolutions]
        elif self.fast:
            return mrstft_loss(pred, target)
        return self._autograd(pred, target)

    def _autograd(self, pred: torch.Tensor, targets: list[TargetSpectrum]) -> torch.Tensor:
        sc_weight, lin_weight, log_weight = self.weights
        dims = (-2, -1) if self.per_item else None
        total = 0.0
        for t in targets:
            spec = torch.fft.rfft(stft.frames(pred, t.n_fft, t.hop, t.win))
            if self.floor:
                power = stft.power_of(spec).clamp_min(self.floor)
                mag = power.sqrt()
            else:
                mag = spec.abs()  # |S|: a zero gradient at silent bins, where sqrt(|S|^2) has none
            term = 0.0
            if sc_weight:
                t_norm = t.norm if t.norm is not None and not self.per_item else \
                    torch.linalg.vector_norm(t.mag, dim=dims)
                term = term + sc_weight * torch.linalg.vector_norm(mag - t.mag, dim=dims) / t_norm
            if lin_weight:
                term = term + lin_weight * (mag - t.mag).abs().mean(dim=dims)
            if log_weight:
                if self.log_offset:
                    log_diff = torch.log(mag + self.log_offset) - torch.log(t.mag + self.log_offset)
                else:
                    log_diff = 0.5 * (torch.log(power) - t.log_power)
                term = term + log_weight * log_diff.abs().mean(dim=dims)
            total = total + term
        return total / len(targets)
