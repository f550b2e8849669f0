"""Two-pole recursion y[t] = x[t] - a1[t] y[t-1] - a2[t] y[t-2] as one custom op.

The recursion runs in torchlpc's compiled kernel (the one behind `sample_wise_lpc`). The
op wrapper exists for two reasons:
- a leaner backward: the adjoint of an all-pole filter is the same filter run backwards
  in time, and constant coefficients ([batch, 1]) reduce their gradient to two dot
  products instead of a `[batch, samples, 2]` tensor;
- torch.compile: a registered op with a fake kernel stays inside the traced graph, so
  the pointwise work around the filter still fuses (torchlpc's op has no fake kernel).
"""
from __future__ import annotations

import torch
import torchlpc  # noqa: F401  (registers torch.ops.torchlpc.lpc)


@torch.library.custom_op("diffmoog::allpole2", mutates_args=())
def allpole2(x: torch.Tensor, a1: torch.Tensor, a2: torch.Tensor, zi: torch.Tensor) -> torch.Tensor:
    """x [B, T]; a1, a2 [B, 1] (constant) or [B, T]; zi [B, 2] = (y[-1], y[-2])."""
    batch, samples = x.shape
    # Strided copies into one buffer: torch.stack/cat along the last axis are far slower.
    coeffs = x.new_empty(batch, samples, 2)
    coeffs[..., 0] = a1
    coeffs[..., 1] = a2
    return torch.ops.torchlpc.lpc(x.contiguous(), coeffs, zi.contiguous())


@allpole2.register_fake
def _(x, a1, a2, zi):
    return torch.empty_like(x)


def _setup(ctx, inputs, output):
    _, a1, a2, zi = inputs
    ctx.save_for_backward(a1, a2, zi, output)


def _shift_back(a: torch.Tensor, lag: int) -> torch.Tensor:
    """Coefficients for the time-reversed adjoint run: a[t + lag], reversed in time."""
    if a.shape[-1] == 1:  # constant: the shift only changes terms that multiply zero state
        return a
    out = a.new_zeros(a.shape)
    out[:, lag:] = a[:, lag:].flip(-1)
    return out


def _lagged_product(g: torch.Tensor, y: torch.Tensor, history: torch.Tensor, lag: int,
                    constant: bool) -> torch.Tensor:
    """-g[t] * y[t - lag] (y before 0 taken from `history` = (y[-1], y[-2])), summed over t
    when the coefficient was constant."""
    k = min(lag, g.shape[-1])
    before = history.flip(-1)[:, 2 - lag:2 - lag + k]  # (y[-2], y[-1]) from t - lag
    head = -g[:, :k] * before
    if constant:
        tail = torch.linalg.vecdot(g[:, lag:], y[:, :-lag]) if g.shape[-1] > lag else 0.0
        return (head.sum(-1) - tail)[:, None]
    out = torch.empty_like(g)
    torch.mul(g[:, lag:], y[:, :-lag], out=out[:, lag:])
    out[:, lag:].neg_()
    out[:, :head.shape[-1]] = head
    return out


def _backward(ctx, grad_y):
    a1, a2, zi, y = ctx.saved_tensors
    # g = dL/dx: run the same recursion backwards in time on the output gradient.
    g = allpole2(grad_y.flip(-1), _shift_back(a1, 1), _shift_back(a2, 2), torch.zeros_like(zi)).flip(-1)
    samples = y.shape[-1]
    grad_a1 = grad_a2 = grad_zi = None
    if ctx.needs_input_grad[1]:
        grad_a1 = _lagged_product(g, y, zi, 1, a1.shape[-1] == 1)
    if ctx.needs_input_grad[2]:
        grad_a2 = _lagged_product(g, y, zi, 2, a2.shape[-1] == 1)
    if ctx.needs_input_grad[3]:
        # y[0] and y[1] see zi through -a1[0] zi0 - a2[0] zi1 and -a2[1] zi0.
        g01 = torch.nn.functional.pad(g[:, :2], (0, 2 - min(samples, 2)))
        a2_1 = a2[:, 1:2] if a2.shape[-1] > 1 else a2
        grad_zi = torch.cat((-a1[:, :1] * g01[:, :1] - a2_1 * g01[:, 1:2],
                             -a2[:, :1] * g01[:, :1]), dim=-1)
    return g, grad_a1, grad_a2, grad_zi


allpole2.register_autograd(_backward, setup_context=_setup)


def allpole(x: torch.Tensor, a1: torch.Tensor, a2: torch.Tensor,
            zi: torch.Tensor | None = None) -> torch.Tensor:
    """Run the two-pole recursion; coefficients broadcast from [batch, 1] or [batch, samples]."""
    if zi is None:
        zi = x.new_zeros(x.shape[0], 2)
    return allpole2(x, a1.to(x.dtype), a2.to(x.dtype), zi.to(x.dtype))
