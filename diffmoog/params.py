"""Parameter declarations: name, unit, range, scale, default, and the [0,1] <-> physical maps.

Continuous parameters travel through the library as normalised tensors in [0, 1]; a module
only ever sees physical units. Categorical parameters travel as choice weights `[batch, k]`
(one-hot when sampled, softmax or straight-through when they come from an encoder).
A params dict is keyed "node.param", plus an optional SEED_KEY entry (int64 [batch]) that
keys each item's noise.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch

SEED_KEY = "seed"  # the params-dict entry holding each item's noise key (not a parameter)
SCALES = ("linear", "log", "categorical")
DISTRIBUTIONS = ("uniform", "normal")


@dataclass(frozen=True)
class Distribution:
    """How a free parameter is sampled for datasets.

    uniform: uniform in the parameter's scale (log-uniform for log parameters).
    normal: mean/std in physical units, clipped to the range.
    Categorical parameters use `weights` (one per choice); None means equal weights.
    """

    kind: str = "uniform"
    mean: float | None = None
    std: float | None = None
    weights: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Param:
    name: str
    unit: str = ""
    low: float = 0.0
    high: float = 1.0
    scale: str = "linear"
    default: float | str = 0.0
    choices: tuple[str, ...] = ()
    description: str = ""
    learnable: bool = True  # False: a setting, pinned to its default unless `fixed` says otherwise
    distribution: Distribution = field(default_factory=Distribution)

    @property
    def is_categorical(self) -> bool:
        return self.scale == "categorical"

    @property
    def width(self) -> int:
        """Columns this parameter takes in a flat vector (k for a categorical, else 1)."""
        return len(self.choices) if self.is_categorical else 1

    def replace(self, **changes) -> "Param":
        return dataclasses.replace(self, **changes)

    # -- continuous maps -------------------------------------------------------------------
    def to_physical(self, normalized: torch.Tensor) -> torch.Tensor:
        if self.scale == "log":
            log_low = math.log(self.low)
            return torch.exp(log_low + normalized * (math.log(self.high) - log_low))
        return self.low + normalized * (self.high - self.low)

    def to_normalized(self, physical: torch.Tensor) -> torch.Tensor:
        """Physical units -> [0, 1]. A float64 tensor stays float64 (exact enough for an exp/log
        round trip of a long note's pitch); anything else is computed in float32."""
        float64 = isinstance(physical, torch.Tensor) and physical.dtype == torch.float64
        physical = torch.as_tensor(physical, dtype=torch.float64 if float64 else torch.float32)
        if self.high == self.low:
            return torch.zeros_like(physical)
        if self.scale == "log":
            log_low = math.log(self.low)
            return (torch.log(physical) - log_low) / (math.log(self.high) - log_low)
        return (physical - self.low) / (self.high - self.low)

    # -- categorical maps ------------------------------------------------------------------
    def choice_index(self, choice: str | int) -> int:
        if isinstance(choice, str):
            return self.choices.index(choice)
        return int(choice)

    def one_hot(self, index: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(index.long(), len(self.choices)).float()

    def default_normalized(self) -> float:
        return float(self.to_normalized(torch.tensor(float(self.default))))

    def describe_range(self) -> str:
        if self.is_categorical:
            return " | ".join(self.choices)
        return f"{self.low:g} .. {self.high:g}"


def weights_from_logits(logits: torch.Tensor, hard: bool = False, temperature: float = 1.0
                        ) -> torch.Tensor:
    """Choice weights from encoder logits: softmax, or straight-through one-hot when `hard`.

    Straight-through keeps the forward pass discrete (the synth renders one waveform) while
    gradients flow through the softmax.
    """
    soft = torch.softmax(logits / temperature, dim=-1)
    if not hard:
        return soft
    hard_weights = torch.nn.functional.one_hot(soft.argmax(-1), soft.shape[-1]).to(soft)
    return hard_weights + soft - soft.detach()
