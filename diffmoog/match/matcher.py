"""Match one sound: random baseline, encoder guess, gradient refinement; write its outputs.

Stages (each scored with the same metrics, so one run compares them):
  random  - a random preset of the chain (the floor any method must beat);
  encoder - the trained encoder's prediction (when a checkpoint is given);
  refined - Adam refinement starting from the encoder's guess, or from random presets.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from diffmoog import rng
from diffmoog.chain import SEED_KEY, Chain
from diffmoog.match.common import mkdir, write_wav, writing
from diffmoog.match.plots import plot_match
from diffmoog.match.preset import save_preset
from diffmoog.match.refine import Refiner, harden
from diffmoog.train.metrics import audio_metrics

STAGES = ("random", "encoder", "refined")


@dataclass
class MatchResult:
    params: dict[str, torch.Tensor]  # the final preset, batch 1
    audio: torch.Tensor  # its render [samples]
    metrics: dict[str, dict[str, float]]  # stage -> metric -> value
    seconds: dict[str, float] = field(default_factory=dict)


class Matcher:
    def __init__(self, chain: Chain, model: torch.nn.Module | None = None, steps: int = 100,
                 restarts: int = 4, lr: float = 0.03, seed: int = 0, device: str | torch.device = "cpu",
                 encoder_name: str | None = None):
        self.chain, self.model, self.steps, self.restarts = chain, model, int(steps), int(restarts)
        self.encoder_name = encoder_name or ("<model>" if model is not None else None)
        self.seed, self.device = int(seed), torch.device(device)
        self.refiner = Refiner(chain, lr=lr)

    def settings(self) -> dict:
        """What determines the result: a finished output with other settings is redone."""
        return {"chain": self.chain.name, "encoder": self.encoder_name, "refine_steps": self.steps,
                "restarts": self.restarts, "lr": self.refiner.lr, "seed": self.seed}

    def sound_seed(self, name: str) -> int:
        return rng.stable_seed(self.seed, name)

    def match(self, target: torch.Tensor, name: str, progress=None) -> MatchResult:
        """Match `target` `[samples]` (at the chain's sample rate)."""
        target = target.to(self.device).float()
        n = target.shape[-1]
        seed = self.sound_seed(name)
        noise_key = self.chain.item_seeds(1, seed).to(self.device)
        metrics, seconds, final = {}, {}, None

        clock = time.perf_counter()
        random = self.chain.sample(1, seed=seed, device=self.device)
        metrics["random"] = self._score(random, target)
        seconds["random"] = time.perf_counter() - clock
        final = random

        start = None
        if self.model is not None:
            clock = time.perf_counter()
            with torch.no_grad():
                outputs = self.model(target[None])
            start = self.chain.from_logits(outputs, hard=False)
            start = {k: v.detach() for k, v in start.items() if k in self.chain.param_keys}
            start[SEED_KEY] = noise_key
            final = harden(self.chain, start)
            metrics["encoder"] = self._score(final, target)
            seconds["encoder"] = time.perf_counter() - clock

        if self.steps > 0:
            clock = time.perf_counter()
            result = self.refiner.refine(target, start, self.steps, self.restarts, seed, progress)
            final = result.params
            metrics["refined"] = self._score(final, target)
            metrics["refined"]["spectral_loss_start"] = result.start_loss
            seconds["refined"] = time.perf_counter() - clock
        audio = self.refiner.render(final, n)[0].detach()
        return MatchResult(final, audio, metrics, seconds)

    def _score(self, params: dict, target: torch.Tensor) -> dict[str, float]:
        with torch.no_grad():
            audio = self.refiner.render(params, target.shape[-1])
            values = audio_metrics(audio, target[None], self.chain.sample_rate)
            values["spectral_loss"] = self.refiner.loss(audio, target[None])
        return {k: float(v.reshape(-1)[0]) for k, v in values.items()}


def write_outputs(out: Path, name: str, source: str, chain: Chain, target: torch.Tensor,
                  result: MatchResult, settings: dict) -> dict:
    """OUT/<name>.preset.yaml, .match.wav, .png, then .json last (it marks the sound done)."""
    mkdir(out)
    last = next(s for s in reversed(STAGES) if s in result.metrics)
    summary = {stage: round(result.metrics[stage]["lsd"], 4) for stage in STAGES if stage in result.metrics}
    with writing(out / f"{name}.preset.yaml"):
        save_preset(out / f"{name}.preset.yaml", chain, result.params, source=source,
                    metrics={f"lsd_{k}": v for k, v in summary.items()})
    write_wav(out / f"{name}.match.wav", result.audio, chain.sample_rate)
    with writing(out / f"{name}.png"):
        plot_match(out / f"{name}.png", target.cpu(), result.audio.cpu(), chain.sample_rate, title=name,
                   metrics={f"LSD {k}": v for k, v in summary.items()}
                   | {"loss": result.metrics[last]["spectral_loss"]})
    record = {"name": name, "source": source, "settings": settings, "final_stage": last,
              "metrics": result.metrics, "seconds": result.seconds,
              "seconds_total": sum(result.seconds.values())}
    with writing(out / f"{name}.json"):
        tmp = out / f"{name}.json.tmp"
        tmp.write_text(json.dumps(record, indent=1))
        tmp.replace(out / f"{name}.json")
    return record
