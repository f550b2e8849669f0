"""Match one sound: random baseline, encoder guess, gradient refinement; write its outputs.

Stages (each scored with the same metrics, so one run compares them):
  random  - a random preset of the chain (the floor any method must beat);
  encoder - the trained model's guess (when a checkpoint is given): a regression encoder's
            prediction, or the best of `candidates` presets sampled from a flow posterior,
            rendered in one batch and ranked by the matching loss;
  refined - Adam refinement starting from the encoder's guess (a flow's `restarts` best
            candidates, each its own restart), or from random presets.

Pitch (`pitch_from`): with "audio" (the default) the target's pitch is estimated
(analysis/pitch.py) and the encoder's guess and every refinement start are moved to it
(match/tuning.py); with "metadata" a pitch given by the caller (an NSynth examples.json) is
used instead, the audio estimate when there is none; "none" leaves pitch to the model and
refinement. The random stage stays a plain random preset: it is the floor to beat. A target
with no clear pitch (a drum hit, noise) is matched without one, with a warning.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from diffmoog import rng
from diffmoog.analysis.metrics import audio_metrics
from diffmoog.analysis.pitch import hz_to_midi, note_pitch
from diffmoog.chain import SEED_KEY, Chain
from diffmoog.errors import ConfigError
from diffmoog.match.common import mkdir, write_wav, writing
from diffmoog.match.plots import plot_match
from diffmoog.preset import save_preset
from diffmoog.match.refine import Refiner, harden
from diffmoog.match.tuning import retune, unmarked_oscillators

STAGES = ("random", "encoder", "refined")
PITCH_SOURCES = ("audio", "metadata", "none")


@dataclass
class MatchResult:
    params: dict[str, torch.Tensor]  # the final preset, batch 1
    audio: torch.Tensor  # its render [samples]
    metrics: dict[str, dict[str, float]]  # stage -> metric -> value
    seconds: dict[str, float] = field(default_factory=dict)
    pitch: dict | None = None  # the pitch used: hz, midi, source, confidence (None: no pitch)


class Matcher:
    def __init__(self, chain: Chain, model: torch.nn.Module | None = None, steps: int = 100,
                 restarts: int = 4, lr: float = 0.03, seed: int = 0, device: str | torch.device = "cpu",
                 encoder_name: str | None = None, pitch_from: str = "audio",
                 warn: Callable[[str], None] | None = None, candidates: int = 1):
        if pitch_from not in PITCH_SOURCES:
            raise ConfigError(f"--pitch-from must be one of {', '.join(PITCH_SOURCES)}, got {pitch_from!r}")
        self.chain, self.model, self.steps, self.restarts = chain, model, int(steps), int(restarts)
        self.sampler = model is not None and hasattr(model, "sample")  # a posterior, not a point estimate
        self.candidates = max(1, int(candidates)) if self.sampler else 1
        # A chain with nothing marked `pitch: note` has nothing to move: pitch is then not used.
        self.pitch_from = pitch_from if chain.pitch_keys else "none"
        self.warn = warn or (lambda message: None)
        if pitch_from != "none" and unmarked_oscillators(chain):
            self.warn(f"chain {chain.name} marks no parameter `pitch: note`, so sounds are matched without a "
                      f"pitch; mark {', '.join(unmarked_oscillators(chain))} to match at each sound's pitch")
        self.encoder_name = encoder_name or ("<model>" if model is not None else None)
        self.seed, self.device = int(seed), torch.device(device)
        self.refiner = Refiner(chain, lr=lr)

    def settings(self) -> dict:
        """What determines the result: a finished output with other settings is redone."""
        return {"chain": self.chain.name, "encoder": self.encoder_name, "refine_steps": self.steps,
                "restarts": self.restarts, "lr": self.refiner.lr, "seed": self.seed, "pitch_from": self.pitch_from,
                "candidates": self.candidates}

    def sound_seed(self, name: str) -> int:
        return rng.stable_seed(self.seed, name)

    def pitch(self, target: torch.Tensor, name: str, metadata_hz: float | None = None) -> dict | None:
        """The pitch to match at (see the module docstring), or None."""
        if self.pitch_from == "none":
            return None
        if self.pitch_from == "metadata":
            if metadata_hz is not None:
                return {"hz": float(metadata_hz), "midi": round(float(hz_to_midi(float(metadata_hz))), 3),
                        "source": "metadata", "confidence": 1.0}
            self.warn(f"{name}: no metadata pitch; estimating it from the audio")
        note = note_pitch(target.reshape(1, -1), self.chain.sample_rate)
        hz, confidence = float(note.f0_hz[0]), float(note.confidence[0])
        if not bool(note.voiced[0]):
            self.warn(f"{name}: no clear pitch (periodic in {float(note.voiced_fraction[0]):.0%} of its frames); "
                      f"matching without a pitch")
            return None
        return {"hz": round(hz, 3), "midi": round(float(hz_to_midi(hz)), 3), "source": "audio",
                "confidence": round(confidence, 4)}

    def match(self, target: torch.Tensor, name: str, progress=None, metadata_hz: float | None = None) -> MatchResult:
        """Match `target` `[samples]` (at the chain's sample rate)."""
        target = target.to(self.device).float()
        n = target.shape[-1]
        seed = self.sound_seed(name)
        noise_key = self.chain.item_seeds(1, seed).to(self.device)
        metrics, seconds, final = {}, {}, None
        clock = time.perf_counter()
        pitch = self.pitch(target, name, metadata_hz)
        pitch_hz = None if pitch is None else pitch["hz"]
        seconds["pitch"] = time.perf_counter() - clock

        clock = time.perf_counter()
        random = self.chain.sample(1, seed=seed, device=self.device)
        metrics["random"] = self._score(random, target)
        seconds["random"] = time.perf_counter() - clock
        final = random

        start = None
        if self.sampler:
            clock = time.perf_counter()
            start, final = self._best_candidates(target, pitch_hz, seed, noise_key)
            metrics["encoder"] = self._score(final, target)
            seconds["encoder"] = time.perf_counter() - clock
        elif self.model is not None:
            clock = time.perf_counter()
            with torch.no_grad():
                outputs = self.model(target[None])
            start = self.chain.from_logits(outputs, hard=False)
            start = {k: v.detach() for k, v in start.items() if k in self.chain.param_keys}
            start[SEED_KEY] = noise_key
            if pitch_hz is not None:
                start = retune(self.chain, start, pitch_hz, clamp=True)
            final = harden(self.chain, start)
            metrics["encoder"] = self._score(final, target)
            seconds["encoder"] = time.perf_counter() - clock

        if self.steps > 0:
            clock = time.perf_counter()
            result = self.refiner.refine(target, start, self.steps, self.restarts, seed, progress, pitch_hz,
                                         as_given=self.sampler)
            final = result.params
            metrics["refined"] = self._score(final, target)
            metrics["refined"]["spectral_loss_start"] = result.start_loss
            seconds["refined"] = time.perf_counter() - clock
        audio = self.refiner.render(final, n)[0].detach()
        return MatchResult(final, audio, metrics, seconds, pitch)

    def _best_candidates(self, target: torch.Tensor, pitch_hz: float | None, seed: int, noise_key: torch.Tensor):
        """Sample `candidates` presets from the flow, render and rank them in one batch: the
        `restarts` best (the refinement's starts, best first) and the best one, hardened."""
        generator = torch.Generator().manual_seed(seed)
        pitch = torch.tensor([pitch_hz if pitch_hz is not None else 0.0], device=self.device)
        outputs = self.model.sample(target[None], self.candidates, pitch_hz=pitch, generator=generator)
        candidates = self.chain.from_logits(outputs, hard=True)
        candidates[SEED_KEY] = noise_key.expand(self.candidates).clone()
        if pitch_hz is not None and self.chain.pitch_keys:
            # Each sample also competes moved onto the tracked pitch's octaves: on real notes
            # the posterior (trained on synthetic sounds) often misplaces the pitch, while on
            # its own kind of sound its intervals are right. The ranking decides per sound.
            moved = retune(self.chain, candidates, pitch_hz, clamp=True, octaves=True)
            candidates = {k: torch.cat([candidates[k], moved[k]]) for k in candidates}
        order = torch.argsort(self.refiner.score(candidates, target[None]))
        starts = {k: v[order[:self.restarts]] for k, v in candidates.items()}
        return starts, {k: v[:1] for k, v in starts.items()}

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
                    metrics={f"lsd_{k}": v for k, v in summary.items()}, pitch=result.pitch)
    write_wav(out / f"{name}.match.wav", result.audio, chain.sample_rate)
    with writing(out / f"{name}.png"):
        plot_match(out / f"{name}.png", target.cpu(), result.audio.cpu(), chain.sample_rate, title=name,
                   metrics={f"LSD {k}": v for k, v in summary.items()}
                   | {"loss": result.metrics[last]["spectral_loss"]})
    record = {"name": name, "source": source, "settings": settings, "final_stage": last,
              "pitch": result.pitch, "metrics": result.metrics, "seconds": result.seconds,
              "seconds_total": sum(result.seconds.values())}
    with writing(out / f"{name}.json"):
        tmp = out / f"{name}.json.tmp"
        tmp.write_text(json.dumps(record, indent=1))
        tmp.replace(out / f"{name}.json")
    return record
