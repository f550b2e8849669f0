"""Gradient refinement of a preset against a target sound.

Adam on the normalised parameters (continuous values clamped to [0, 1]; categoricals as
logits rendered through softmax), against a multi-resolution spectral loss. K restarts run
as one batch: restart 0 is the starting guess itself, the others are jittered around it
(or, with no guess, the best of a pool of random presets). Every restart keeps its best
step; the final pick renders categoricals hard (one choice each), so the preset sounds as
scored, and never loses to the unrefined start.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from diffmoog.analysis.spectral_loss import MultiResolutionSTFTLoss
from diffmoog.chain import SEED_KEY, Chain
from diffmoog.match.tuning import pitch_band, retune

LOGIT_FLOOR = 1e-3  # soft weights -> logits: keeps log finite for exact one-hots
RANDOM_POOL_PER_RESTART = 4  # with no starting guess, the best of this many random presets per restart
PITCH_BAND_ST = 0.5  # with a measured pitch, how far (semitones) refinement may move an oscillator


def matching_loss() -> MultiResolutionSTFTLoss:
    """The refinement's loss, per item `[batch]` (so K restarts run as one batch and the best is
    picked): L1 of linear magnitudes (loud partials) plus L1 of log magnitudes (quiet detail and
    decays) at five resolutions, half-overlapping frames.

    log_offset = 3e-3 on magnitude is about the 1e-5 power floor of the LSD metric (-50 dB): with a
    far lower floor, inaudible near-silent bins dominate the log term, and refinement lowered
    this loss while raising LSD (measured on NSynth notes; with 3e-3 both fall)."""
    sizes = (2048, 1024, 512, 256, 128)
    return MultiResolutionSTFTLoss(sizes, tuple(n // 2 for n in sizes), sc_weight=0.0, lin_weight=1.0,
                                   log_weight=1.0, floor=0.0, log_offset=3e-3, per_item=True)


@dataclass
class RefineResult:
    params: dict[str, torch.Tensor]  # batch 1, hard categoricals, with "seed"
    loss: float
    start_loss: float  # of the (hard) starting guess, restart 0
    history: list[float] = field(default_factory=list)  # best soft loss per step


def harden(chain: Chain, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Categorical weights -> one-hot of their argmax; continuous values clamped to [0, 1]."""
    out = dict(params)
    for fp in chain.free_params:
        value = params[fp.key]
        if fp.param.is_categorical:
            weights = chain.choice_weights(fp, value)
            out[fp.key] = torch.nn.functional.one_hot(weights.argmax(-1), weights.shape[-1]).to(weights.dtype)
        else:
            out[fp.key] = value.clamp(0.0, 1.0)
    return out


class Refiner:
    """Refines presets of one chain; holds the loss so its windows are built once."""

    def __init__(self, chain: Chain, loss: torch.nn.Module | None = None, lr: float = 0.03,
                 spread: float = 0.1, note_off: float | None = None):
        self.chain, self.lr, self.spread, self.note_off = chain, lr, spread, note_off
        self.loss = loss or matching_loss()
        self.continuous = [fp for fp in chain.free_params if not fp.param.is_categorical]
        self.categorical = [fp for fp in chain.free_params if fp.param.is_categorical]

    def render(self, params: dict, n_samples: int) -> torch.Tensor:
        return self.chain.render(params, duration=n_samples / self.chain.sample_rate, note_off=self.note_off)

    def score(self, params: dict, target: torch.Tensor, reference=None) -> torch.Tensor:
        """Per-item loss `[batch]` of params against target `[1, samples]` (no gradient)."""
        with torch.no_grad():
            audio = self.render(params, target.shape[-1])
            return self.loss(audio, reference if reference is not None else target)

    def random_starts(self, target: torch.Tensor, restarts: int, seed: int, pool: int | None = None,
                      pitch_hz: float | None = None) -> dict:
        """The `restarts` best of a pool of random presets (cheap, no gradient), each moved to
        `pitch_hz` first when it is given."""
        pool = max(pool or RANDOM_POOL_PER_RESTART * restarts, restarts)
        candidates = self.chain.sample(pool, seed=seed, device=target.device)
        if pitch_hz is not None:
            candidates = retune(self.chain, candidates, pitch_hz, clamp=True, octaves=True)
        scores = self.score(candidates, target)
        best = torch.argsort(scores)[:restarts]
        return {k: v[best] for k, v in candidates.items()}

    def refine(self, target: torch.Tensor, start: dict | None = None, steps: int = 100,
               restarts: int = 4, seed: int = 0,
               progress: Callable[[int, float], None] | None = None,
               pitch_hz: float | None = None, as_given: bool = False) -> RefineResult:
        """Refine toward `target` `[samples]` from `start` (normalised params) or, when None,
        from the best random presets. A `start` is jittered into `restarts` starts, unless
        `as_given`: then each of its items is one start (a posterior's best samples; `restarts`
        is ignored). With `pitch_hz` (the target's estimated pitch), random and jittered starts
        have their oscillators moved there (match/tuning.py), so no restart begins at a wrong
        pitch; starts used as given came from a model conditioned on that pitch and keep the
        intervals it chose."""
        target = target.reshape(1, -1).float()
        n = target.shape[-1]
        reference = self.loss.reference(target)
        generator = torch.Generator().manual_seed(int(seed))
        if start is None:
            starts = self.random_starts(target, restarts, seed, pitch_hz=pitch_hz)
        elif as_given:
            starts = {k: v.detach().clone() for k, v in start.items()}
            restarts = starts[self.chain.param_keys[0]].shape[0]
            if SEED_KEY not in starts:
                starts[SEED_KEY] = self.chain.item_seeds(1).to(target.device).expand(restarts).clone()
        else:
            starts = self._jitter(start, restarts, generator, target.device)
            if pitch_hz is not None:
                starts = retune(self.chain, starts, pitch_hz, clamp=True, octaves=True)
        seeds = starts[SEED_KEY]
        # A measured pitch is kept: oscillators fine-tune within PITCH_BAND_ST of where the
        # start put them (Adam's early steps on a 6-octave range would move them semitones).
        marked = set(self.chain.pitch_keys)
        pitched = [i for i, fp in enumerate(self.continuous) if fp.key in marked] if pitch_hz is not None else []
        if pitched:
            band = pitch_band(self.chain, starts, [self.continuous[i].key for i in pitched], PITCH_BAND_ST)
        start_hard = harden(self.chain, {k: v[:1] for k, v in starts.items()})
        start_loss = float(self.score(start_hard, target, reference)[0])

        values = torch.stack([starts[fp.key].float() for fp in self.continuous], dim=-1) \
            if self.continuous else target.new_zeros(restarts, 0)
        values = values.clone().requires_grad_(True)
        logits = [torch.log(self.chain.choice_weights(fp, starts[fp.key]).float().clamp_min(LOGIT_FLOOR))
                  .clone().requires_grad_(True) for fp in self.categorical]
        optimiser = torch.optim.Adam([values, *logits], lr=self.lr)
        best_loss = torch.full((restarts,), float("inf"))
        best_values, best_logits = values.detach().clone(), [t.detach().clone() for t in logits]
        history = []
        for step in range(max(int(steps), 0) + 1):
            params = self._params(values, logits, seeds)
            losses = self.loss(self.render(params, n), reference)
            with torch.no_grad():  # the loss is of the current values: keep the best per restart
                better = losses.detach() < best_loss
                best_loss = torch.where(better, losses.detach(), best_loss)
                best_values[better] = values.detach()[better]
                for kept, current in zip(best_logits, logits):
                    kept[better] = current.detach()[better]
            history.append(float(best_loss.min()))
            if progress is not None:
                progress(step, history[-1])
            if step == steps:
                break
            optimiser.zero_grad()
            losses.sum().backward()
            for tensor in (values, *logits):  # a stray inf/nan gradient must not wreck a restart
                if tensor.grad is not None:
                    tensor.grad.nan_to_num_(0.0, 0.0, 0.0)
            optimiser.step()
            with torch.no_grad():
                values.clamp_(0.0, 1.0)
                if pitched:
                    values[:, pitched] = torch.maximum(torch.minimum(values[:, pitched], band[1]), band[0])

        # Hard categoricals for the final choice; the unrefined start competes too.
        final = harden(self.chain, self._params(best_values, best_logits, seeds))
        scores = self.score(final, target, reference)
        index = int(scores.argmin())
        if float(scores[index]) <= start_loss:
            chosen, loss = {k: v[index:index + 1] for k, v in final.items()}, float(scores[index])
        else:
            chosen, loss = start_hard, start_loss
        return RefineResult({k: v.detach() for k, v in chosen.items()}, loss, start_loss, history)

    def _params(self, values, logits, seeds) -> dict:
        params = {fp.key: values[:, i] for i, fp in enumerate(self.continuous)}
        for fp, logit in zip(self.categorical, logits):
            params[fp.key] = torch.softmax(logit, dim=-1)
        params[SEED_KEY] = seeds
        return params

    def _jitter(self, start: dict, restarts: int, generator: torch.Generator, device) -> dict:
        """Restart 0 = start; the others add Gaussian noise (`spread` in normalised units,
        logits get a proportionally larger nudge so a close second choice can win)."""
        out = {}
        for fp in self.chain.free_params:
            value = start[fp.key][:1].detach().float()
            if fp.param.is_categorical:
                value = self.chain.choice_weights(fp, start[fp.key][:1]).float()
                noise = torch.randn((restarts, value.shape[-1]), generator=generator).to(device)
                logit = torch.log(value.clamp_min(LOGIT_FLOOR)) + 10.0 * self.spread * noise
                logit[0] = torch.log(value[0].clamp_min(LOGIT_FLOOR))
                out[fp.key] = torch.softmax(logit, dim=-1)
            else:
                noise = torch.randn((restarts,), generator=generator).to(device) * self.spread
                noise[0] = 0.0
                out[fp.key] = (value.expand(restarts) + noise).clamp(0.0, 1.0)
        seed = start.get(SEED_KEY)
        seed = seed[:1] if seed is not None else self.chain.item_seeds(1)
        out[SEED_KEY] = seed.to(device).expand(restarts).clone()
        return out
