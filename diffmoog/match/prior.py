"""The flow's unconditional prior as a sound-design tool: sampling, inpainting, inversion.

A flow checkpoint (train/flow.py) was trained with conditioning dropout, so its velocity field
under the learned null condition is a prior over the chain's presets. `Prior` wraps it in the
chain's terms (normalised params in, normalised params out) for diffmoog-generate (sample,
optionally holding some knobs at a preset's values), diffmoog-vary --prior (perturb a preset's
noise) and diffmoog-morph --through-prior (interpolate two presets' noises).

Pitch: pitch-marked oscillators live in the flow's vector as semitones from a reference pitch,
and the condition carries that pitch (as in training, where the pitch was known for 90% of
items). Every call here takes the reference in Hz; the CLIs default it to middle C (MIDI 60,
the flow's REFERENCE_HZ) or to the pitch a preset records.

Each item is integrated on its own (batch 1), so sound i depends only on its own noise and the
settings, never on how many others are drawn with it (a batched matmul may round differently
at another batch size).
"""
from __future__ import annotations

import fnmatch
import math
from pathlib import Path

import torch

from diffmoog import rng
from diffmoog.analysis.pitch import hz_to_midi, midi_to_hz
from diffmoog.chain import SEED_KEY, Chain
from diffmoog.errors import ConfigError, did_you_mean
from diffmoog.match.cli import DEFAULT_CHECKPOINT  # the committed flow, diffmoog-match's default too

DEFAULT_MIDI = 60.0  # middle C: the flow's REFERENCE_HZ, what pitch-relative knobs are relative to
MIDI_RANGE = (0.0, 127.0)
# Inversion (preset -> noise -> preset) steps for vary --prior and morph --through-prior: the
# round trip's largest normalised error on random presets of the committed flow is about 0.025
# with its 8 sampling steps and 0.001 with 32 (measured, tests/test_generate.py checks it); a
# 32-step round trip takes about 0.15 s per preset on one busy CPU core, small beside a render.
DEFAULT_INVERT_STEPS = 32


def same_chain(a: Chain, b: Chain) -> bool:
    """The same knobs on the same graph (the preset section and the name of the file aside)."""
    strip = lambda chain: {k: v for k, v in chain.spec.raw.items() if k != "preset"}  # noqa: E731
    return a.param_keys == b.param_keys and strip(a)["nodes"] == strip(b)["nodes"]


def default_checkpoint(checkpoint: str | None) -> str:
    """`checkpoint` as a checkpoint folder (a run folder gives its `checkpoints/best`, as
    load_model reads it, so a class table is read from and written beside those very weights),
    or the committed flow when none is given (a ConfigError when that is missing, as in an
    installed copy without the examples folder)."""
    if checkpoint is not None:
        from diffmoog.train.checkpoint import resolve

        return str(resolve(checkpoint))
    if not (DEFAULT_CHECKPOINT / "state.json").is_file():
        raise ConfigError(f"--checkpoint: the default {DEFAULT_CHECKPOINT} is not here (an installed copy?); "
                          f"give --checkpoint FLOW")
    return str(DEFAULT_CHECKPOINT)


def preset_hz(pitch: dict) -> float | None:
    """The pitch a preset records (its `pitch: {hz: ...}`), if it is a usable one."""
    hz = (pitch or {}).get("hz")
    if isinstance(hz, bool) or not isinstance(hz, (int, float)) or not math.isfinite(hz) or hz <= 0:
        return None
    return float(hz)


def pitch_record(hz: float, source: str = "prior") -> dict:
    """What a preset made by the prior records as its pitch (preset.pitch): the reference."""
    return {"hz": round(float(hz), 4), "midi": round(float(hz_to_midi(float(hz))), 3), "source": source}


def midi_hz(midi: float) -> float:
    return float(midi_to_hz(float(midi)))


class Prior:
    """A flow checkpoint's unconditional prior over its chain's presets."""

    def __init__(self, checkpoint: str, flag: str = "--checkpoint"):
        from diffmoog.train.checkpoint import load_model, read_state

        state = read_state(checkpoint)
        model = (state.get("config") or {}).get("model") if isinstance(state, dict) else None
        head = (model.get("head") if isinstance(model, dict) else None) or "params"
        if head != "flow":
            raise ConfigError(f"{flag} {checkpoint}: a regression encoder (model.head: {head}), not a flow "
                              f"posterior; the prior needs a flow checkpoint (train one with -c flow)")
        self.model, self.chain, _ = load_model(checkpoint)
        self.checkpoint = str(Path(checkpoint).resolve())
        self.vector = self.model.vector
        self.sample_steps = int(self.model.cfg.sample_steps)

    # -- vector space ----------------------------------------------------------------------
    def _reference(self, hz: float) -> torch.Tensor:
        return torch.tensor([float(hz)])

    def condition(self, hz: float) -> torch.Tensor:
        """The null condition (the prior) with pitch `hz` (0: no pitch known)."""
        return self.model.null_condition(1, self._reference(hz))

    @property
    def condition_size(self) -> int:
        return int(self.model.null_embedding.shape[0]) + 2  # the embedding, then the pitch pair

    def with_pitch(self, condition: torch.Tensor, hz: float) -> torch.Tensor:
        """A stored condition `[1, size]` with its pitch part recomputed for `hz` (0: none), so a
        labelled note's timbre can be asked for at another pitch."""
        from diffmoog.train.flow import pitch_condition

        return torch.cat([condition[:, :-2], pitch_condition(self._reference(hz))], dim=-1)

    def encode(self, params: dict, hz: float) -> torch.Tensor:
        """Normalised params (batch 1) -> the flow's vector `[1, dim]` relative to `hz`."""
        return self.vector.encode({k: params[k] for k in self.chain.param_keys}, self._reference(hz))

    def decode(self, vector: torch.Tensor, hz: float, seed: torch.Tensor) -> dict:
        """The flow's vector `[1, dim]` -> renderable normalised params (categoricals hard)."""
        params = self.chain.from_logits(self.vector.decode(vector, self._reference(hz)), hard=True)
        params[SEED_KEY] = seed.reshape(1).clone()
        return params

    def columns(self, keys) -> torch.Tensor:
        """A `[dim]` mask of the vector columns that hold `keys`."""
        mask = torch.zeros(self.vector.dim, dtype=torch.bool)
        for key, _, columns in self.vector.columns:
            if key in keys:
                mask[columns] = True
        return mask

    # -- the ODE ---------------------------------------------------------------------------
    @torch.no_grad()
    def forward(self, noise: torch.Tensor, hz: float, steps: int, hold=None, condition: torch.Tensor | None = None,
                guidance: float = 1.0) -> torch.Tensor:
        """Noise `[1, dim]` -> a preset vector (t = 0 -> 1); `hold` as in FlowEncoder.integrate.
        With a `condition` (a labelled note's, see match/classes.py) the ODE follows the
        posterior given it, guided by `guidance` against the null condition at the same pitch."""
        null = self.condition(hz)
        if condition is None:
            return self.model.integrate(noise, null, steps, hold=hold)
        return self.model.integrate(noise, condition, steps, guidance, null, hold=hold)

    @torch.no_grad()
    def invert(self, params: dict, hz: float, steps: int) -> torch.Tensor:
        """A preset (batch 1) -> the noise `[1, dim]` the prior's ODE takes to it (t = 1 -> 0)."""
        return self.model.integrate(self.encode(params, hz), self.condition(hz), steps, reverse=True)


def noise(dim: int, *parts) -> torch.Tensor:
    """Standard normal `[1, dim]` keyed by `parts` alone (a seed and an index, say)."""
    generator = torch.Generator().manual_seed(rng.stable_seed(*parts))
    return torch.randn(1, dim, generator=generator)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of two noise vectors: Gaussian noise lives near a sphere, and a
    straight line between two draws passes through lower-norm (atypical) noise halfway."""
    a64, b64 = a.double().reshape(-1), b.double().reshape(-1)
    cos = float(torch.dot(a64, b64) / (a64.norm() * b64.norm()).clamp_min(1e-12))
    angle = math.acos(max(-1.0, min(1.0, cos)))
    if angle < 1e-4:  # (nearly) parallel: slerp is linear there, and sin(angle) would divide by ~0
        out = (1.0 - t) * a64 + t * b64
    else:
        out = (math.sin((1.0 - t) * angle) * a64 + math.sin(t * angle) * b64) / math.sin(angle)
    return out.reshape(a.shape).to(a.dtype)


def match_keys(chain: Chain, patterns: list[str], flag: str = "--free") -> list[str]:
    """The chain's knobs (in its order) matched by any fnmatch pattern over `node.param` keys; a
    ConfigError names the first pattern that matches nothing."""
    keys = chain.param_keys
    hints = keys + sorted({f"{key.split('.')[0]}.*" for key in keys})
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(key, pattern) for key in keys):
            raise ConfigError(f"{flag} '{pattern}' matches no knob of chain {chain.name}{did_you_mean(pattern, hints)}"
                              f" (knobs: {', '.join(keys)})")
    return [key for key in keys if any(fnmatch.fnmatchcase(key, p) for p in patterns)]


def split_patterns(text: str, flag: str = "--free") -> list[str]:
    patterns = [part.strip() for part in text.split(",") if part.strip()]
    if not patterns:
        raise ConfigError(f"{flag}: give comma-separated node.param patterns, e.g. 'lpf.cutoff_hz,env.*'")
    return patterns


def check_same_chain(chain: Chain, prior: Prior, path: str) -> None:
    """A preset for the prior must be of the chain the flow was trained on."""
    if not same_chain(chain, prior.chain):
        if chain.name.upper() != prior.chain.name.upper():
            what = f"its chain {chain.name} is not the checkpoint's chain {prior.chain.name}"
        else:
            what = f"its chain {chain.name} differs from the checkpoint's copy (other nodes or knobs)"
        raise ConfigError(f"{path}: {what}; the prior knows only presets of the chain it was trained on")

