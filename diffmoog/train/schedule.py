"""Step-based ramps (loss weights, real-audio weight) and the learning-rate schedule."""
from __future__ import annotations

import math

import torch

from diffmoog.train.config import OptimConfig, Ramp


def ramp_value(ramp: Ramp, step: int) -> float:
    """The ramp's value at optimiser step `step`: `start` until `start_step`, linear to `end` at
    `end_step`, then `end`. A ramp without `end` is constant."""
    if ramp.end is None:
        return float(ramp.start)
    if step <= ramp.start_step:
        return float(ramp.start) if ramp.end_step > ramp.start_step or step < ramp.start_step else float(ramp.end)
    if step >= ramp.end_step:
        return float(ramp.end)
    t = (step - ramp.start_step) / (ramp.end_step - ramp.start_step)
    return float(ramp.start + t * (ramp.end - ramp.start))


def lr_factor(cfg: OptimConfig, step: int, total_steps: int) -> float:
    """Multiplier of the base learning rate at `step`: linear warm-up, then the chosen decay."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.scheduler == "cosine":
        span = max(1, total_steps - cfg.warmup_steps)
        t = min(1.0, (step - cfg.warmup_steps) / span)
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if cfg.scheduler == "step":
        return cfg.gamma ** ((step - cfg.warmup_steps) // max(1, cfg.step_size))
    return 1.0


def make_scheduler(optimizer, cfg: OptimConfig, total_steps: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(cfg, step, total_steps))
