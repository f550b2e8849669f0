"""A preset posterior: conditional flow matching over a chain's normalised parameters, given audio.

The encoder body (features -> GRU/CNN -> trunk) embeds the sound; a small residual MLP is the
velocity field v(x_t, t | embedding, pitch) of a rectified flow from Gaussian noise (t=0) to the
preset vector (t=1). Training regresses v onto x1 - x0 along straight paths x_t = (1-t) x0 + t x1.
Sampling integrates the ODE from K noise draws per sound in one batch, in a few fixed steps.

The preset vector (`PresetVector`) is laid out so that the flow learns timbre, not absolute Hz:
  - a continuous parameter u in [0, 1] is 2u - 1;
  - a parameter marked `pitch: note` in the chain is its offset from the note's pitch, in
    semitones / SEMITONES_PER_UNIT, so "the saw plays the note, the square an octave up" is the
    same vector at every pitch;
  - a categorical choice is its one-hot scaled to {-1, +1} (a relaxed one-hot), read back by
    argmax. Dequantising the choice index instead would order unordered choices (saw "between"
    sine and square); the one-hot keeps them symmetric, and argmax of a point near a corner is
    unambiguous.

Conditioning dropout (classifier-free guidance): in training, the whole condition is replaced
by a learned null embedding with probability `cond_dropout`, and the pitch alone is hidden with
probability `pitch_dropout`. So the same network is an unconditional prior over presets, and a
posterior for sounds whose pitch is unknown. Without a pitch, the pitch-marked dimensions are
relative to REFERENCE_HZ (middle C).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from diffmoog.analysis.pitch import note_pitch
from diffmoog.train.config import FeatureConfig, FlowConfig, ModelConfig
from diffmoog.train.encoders import Encoder

REFERENCE_HZ = 261.6256  # middle C: what pitch-marked dimensions are relative to with no pitch
SEMITONES_PER_UNIT = 24.0  # a pitch-marked dimension of 1.0 is two octaves above the note
PITCH_FEATURE_OCTAVES = 4.0  # the pitch condition is log2(pitch / REFERENCE_HZ) / this
CHOICE_LOGIT_SCALE = 10.0  # relaxed one-hot in [-1, 1] -> logits whose softmax is near one-hot


class PresetVector:
    """Normalised params (a chain's dict) <-> the flow's vector, relative to a pitch."""

    def __init__(self, chain):
        pitch_keys = set(chain.pitch_keys)
        self.columns: list[tuple[str, str, slice]] = []  # (key, kind, columns)
        self.log_range: dict[str, tuple[float, float]] = {}  # pitch keys: (log2 low, log2 high)
        start = 0
        for fp in chain.free_params:
            width = fp.param.width if fp.param.is_categorical else 1
            kind = "choice" if fp.param.is_categorical else ("pitch" if fp.key in pitch_keys else "value")
            self.columns.append((fp.key, kind, slice(start, start + width)))
            if kind == "pitch":
                self.log_range[fp.key] = (math.log2(fp.param.low), math.log2(fp.param.high))
            start += width
        self.dim = start

    def encode(self, params: dict, reference_hz: torch.Tensor) -> torch.Tensor:
        """`[batch, dim]` from normalised `params`; `reference_hz` `[batch]` is each item's pitch."""
        out = []
        for key, kind, _ in self.columns:
            value = params[key].float()
            if kind == "choice":
                out.append(2.0 * value - 1.0)
                continue
            if kind == "pitch":
                low, high = self.log_range[key]
                semitones = 12.0 * (low + value * (high - low) - torch.log2(reference_hz.float()))
                value = semitones / SEMITONES_PER_UNIT
            else:
                value = 2.0 * value - 1.0
            out.append(value[:, None])
        return torch.cat(out, dim=-1)

    def decode(self, vector: torch.Tensor, reference_hz: torch.Tensor) -> dict[str, torch.Tensor]:
        """Encoder-style outputs: continuous params normalised in [0, 1], categoricals as logits."""
        out = {}
        for key, kind, columns in self.columns:
            value = vector[:, columns]
            if kind == "choice":
                out[key] = CHOICE_LOGIT_SCALE * value
                continue
            value = value[:, 0]
            if kind == "pitch":
                low, high = self.log_range[key]
                log2_hz = torch.log2(reference_hz.float()) + value * SEMITONES_PER_UNIT / 12.0
                value = (log2_hz - low) / (high - low)
            else:
                value = (value + 1.0) / 2.0
            out[key] = value.clamp(0.0, 1.0)
        return out


def pitch_condition(pitch_hz: torch.Tensor) -> torch.Tensor:
    """`[batch, 2]`: log-pitch relative to middle C (0 when unknown) and a known flag. A pitch of
    0 or NaN means unknown."""
    known = torch.isfinite(pitch_hz) & (pitch_hz > 0)
    safe = torch.where(known, pitch_hz, torch.full_like(pitch_hz, REFERENCE_HZ))
    return torch.stack([torch.log2(safe / REFERENCE_HZ) / PITCH_FEATURE_OCTAVES, known.float()], dim=-1)


def reference_hz(pitch_hz: torch.Tensor) -> torch.Tensor:
    """What pitch-marked dimensions are relative to: the pitch when known, else middle C."""
    known = torch.isfinite(pitch_hz) & (pitch_hz > 0)
    return torch.where(known, pitch_hz, torch.full_like(pitch_hz, REFERENCE_HZ))


class TimeEmbedding(nn.Module):
    def __init__(self, size: int):
        super().__init__()
        self.register_buffer("frequencies", torch.exp(torch.linspace(0.0, math.log(1000.0), size // 2)),
                             persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angles = t[:, None] * self.frequencies[None]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class ResidualBlock(nn.Module):
    """LayerNorm -> scale/shift from the condition (adaptive LayerNorm) -> MLP, added back."""

    def __init__(self, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False)
        self.modulation = nn.Linear(hidden, 2 * hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.GELU(), nn.Linear(2 * hidden, hidden))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.modulation(cond).chunk(2, dim=-1)
        return x + self.mlp(self.norm(x) * (1.0 + scale) + shift)


class VelocityField(nn.Module):
    def __init__(self, dim: int, cond_size: int, cfg: FlowConfig):
        super().__init__()
        hidden = cfg.hidden
        self.time = nn.Sequential(TimeEmbedding(cfg.time_features), nn.Linear(cfg.time_features, hidden), nn.GELU())
        self.cond = nn.Sequential(nn.Linear(cond_size, hidden), nn.GELU())
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList([ResidualBlock(hidden) for _ in range(cfg.blocks)])
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        c = self.time(t) + self.cond(cond)
        h = self.inp(x) + c
        for block in self.blocks:
            h = block(h, c)
        return self.out(h)


class FlowEncoder(nn.Module):
    """The posterior. `model(audio)` gives encoder-style outputs (the sample from zero noise, a
    deterministic point estimate), so evaluation and matching code that expects an encoder
    works; `sample` draws K presets per sound; `model(audio, pitch_hz, target=params)` is the
    training loss (through `forward`, so DDP synchronises its gradients)."""

    def __init__(self, chain, features: FeatureConfig, model: ModelConfig):
        super().__init__()
        self.vector = PresetVector(chain)
        self.cfg = model.flow
        self.sample_rate = chain.sample_rate
        self.embedder = Encoder([], chain.sample_rate, features, model)
        self.heads_spec = [(fp.key, fp.param.width, fp.param.is_categorical) for fp in chain.free_params]
        embed_size = self.embedder.trunk[0].out_features
        self.null_embedding = nn.Parameter(torch.zeros(embed_size))
        self.velocity = VelocityField(self.vector.dim, embed_size + 2, self.cfg)

    @classmethod
    def for_chain(cls, chain, features: FeatureConfig, model: ModelConfig) -> "FlowEncoder":
        return cls(chain, features, model)

    # -- conditioning --------------------------------------------------------------------
    def condition(self, audio: torch.Tensor, pitch_hz: torch.Tensor | None) -> torch.Tensor:
        embedding = self.embedder.embed(audio).float()
        if pitch_hz is None:
            pitch_hz = self.estimate_pitch(audio)
        return torch.cat([embedding, pitch_condition(pitch_hz.to(embedding.device).float())], dim=-1)

    def null_condition(self, batch: int, pitch_hz: torch.Tensor | None = None) -> torch.Tensor:
        """The unconditional condition (optionally with a pitch): the prior over presets."""
        pitch_hz = (torch.zeros(batch, device=self.null_embedding.device) if pitch_hz is None
                    else pitch_hz.to(self.null_embedding.device).float())
        return torch.cat([self.null_embedding.expand(batch, -1), pitch_condition(pitch_hz)], dim=-1)

    def estimate_pitch(self, audio: torch.Tensor) -> torch.Tensor:
        """The note pitch of each sound (0 where there is no clear pitch), as matching measures it."""
        note = note_pitch(audio.float(), self.sample_rate)
        return torch.where(note.voiced, note.f0_hz, torch.zeros_like(note.f0_hz)).to(audio.device)

    # -- training ------------------------------------------------------------------------
    def loss(self, audio: torch.Tensor, pitch_hz: torch.Tensor, target: dict) -> torch.Tensor:
        """Flow-matching loss: `repeats` (noise, time) draws per sound share one embedding."""
        cond = self.condition(audio, pitch_hz)
        batch, repeats = cond.shape[0], max(1, self.cfg.repeats)
        device = cond.device
        pitch_hz = pitch_hz.to(device).float()
        hide_pitch = torch.rand(batch, device=device) < self.cfg.pitch_dropout
        pitch_hz = torch.where(hide_pitch, torch.zeros_like(pitch_hz), pitch_hz)
        drop_all = torch.rand(batch, device=device) < self.cfg.cond_dropout
        cond = torch.cat([torch.where(drop_all[:, None], self.null_embedding.expand(batch, -1), cond[:, :-2]),
                          pitch_condition(pitch_hz)], dim=-1)
        x1 = self.vector.encode({k: v.to(device) for k, v in target.items()}, reference_hz(pitch_hz))
        x1, cond = x1.repeat_interleave(repeats, 0), cond.repeat_interleave(repeats, 0)
        x0 = torch.randn_like(x1)
        t = torch.rand(x1.shape[0], device=device)
        xt = (1.0 - t[:, None]) * x0 + t[:, None] * x1
        return torch.mean((self.velocity(xt, t, cond) - (x1 - x0)) ** 2)

    # -- sampling ------------------------------------------------------------------------
    def integrate(self, x: torch.Tensor, cond: torch.Tensor, steps: int, guidance: float = 1.0,
                  null: torch.Tensor | None = None, *, reverse: bool = False,
                  hold: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Midpoint-rule ODE integration from t=0 to 1. With `guidance` != 1, the velocity is
        v_null + guidance * (v_cond - v_null) (classifier-free guidance).

        `reverse`: the same rule from t=1 back to 0, which takes a preset vector to the noise
        that leads to it (an inversion: forward again reproduces the vector up to the
        discretisation error, which shrinks with `steps`).

        `hold` = (mask `[dim]` bool, x0, x1): inpainting by replacement. The masked columns are
        set to (1 - t) x0 + t x1 at every time the velocity is evaluated and after every step,
        the straight path training used, so the free columns are integrated alongside the held
        ones as if those had started from x0; at t=1 the held columns are exactly x1. Forward only."""
        if reverse and hold is not None:
            raise ValueError("hold applies to forward integration (noise to preset) only")

        def velocity(x, t):
            times = torch.full((x.shape[0],), t, device=x.device)
            v = self.velocity(x, times, cond)
            if guidance != 1.0 and null is not None:
                v_null = self.velocity(x, times, null)
                v = v_null + guidance * (v - v_null)
            return v

        def held(x, t):
            if hold is None:
                return x
            mask, x0, x1 = hold
            return torch.where(mask, (1.0 - t) * x0 + t * x1, x)

        if reverse:
            dt = 1.0 / steps
            for i in range(steps):
                t = 1.0 - i * dt
                x_mid = x - 0.5 * dt * velocity(x, t)
                x = x - dt * velocity(x_mid, t - 0.5 * dt)
            return x
        dt = 1.0 / steps
        x = held(x, 0.0)
        for i in range(steps):
            t = i * dt
            x_mid = held(x + 0.5 * dt * velocity(x, t), t + 0.5 * dt)
            # The last step ends at exactly 1.0 (steps * dt may round below it), so held columns
            # end exactly on x1.
            x = held(x + dt * velocity(x_mid, t + 0.5 * dt), 1.0 if i == steps - 1 else (i + 1) * dt)
        return x

    @torch.no_grad()
    def sample(self, audio: torch.Tensor, k: int, pitch_hz: torch.Tensor | None = None, steps: int | None = None,
               guidance: float = 1.0, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> dict[str, torch.Tensor]:
        """`k` presets per sound, `[batch * k]` (sound-major), as encoder-style outputs. The first
        of each sound's k starts from zero noise (the point estimate `forward` gives)."""
        if pitch_hz is None:
            pitch_hz = self.estimate_pitch(audio)
        pitch_hz = pitch_hz.to(audio.device).float()
        cond = self.condition(audio, pitch_hz).repeat_interleave(k, 0)
        null = self.null_condition(audio.shape[0], pitch_hz).repeat_interleave(k, 0) if guidance != 1.0 else None
        noise = torch.randn(cond.shape[0], self.vector.dim, generator=generator).to(cond.device) * temperature
        noise.view(-1, k, self.vector.dim)[:, 0] = 0.0
        x = self.integrate(noise, cond, steps or self.cfg.sample_steps, guidance, null)
        return self.vector.decode(x, reference_hz(pitch_hz).repeat_interleave(k, 0))

    def forward(self, audio: torch.Tensor, pitch_hz: torch.Tensor | None = None, target: dict | None = None):
        if target is not None:
            return self.loss(audio, pitch_hz, target)
        if pitch_hz is None:
            pitch_hz = self.estimate_pitch(audio)
        cond = self.condition(audio, pitch_hz)
        x = self.integrate(torch.zeros(cond.shape[0], self.vector.dim, device=cond.device), cond,
                           self.cfg.sample_steps)
        return self.vector.decode(x, reference_hz(pitch_hz.to(cond.device).float()))
