"""The module contract: declare parameters once, render batched `[batch, samples]` signals."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from diffmoog import native
from diffmoog.params import Param


@dataclass
class RenderContext:
    """Everything a module needs besides its parameters and inputs.

    `start` is the absolute sample index of the first sample in this render; streaming
    renders advance it block by block. `state` holds per-node carried state (oscillator
    phase, filter memory) between blocks; it is None for offline renders.
    """

    sample_rate: int
    n_samples: int
    note_off_s: float
    seeds: torch.Tensor  # int64 [batch]: per-item keys for noise
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float32
    start: int = 0
    state: dict | None = None
    _time: torch.Tensor | None = field(default=None, repr=False)

    @property
    def batch_size(self) -> int:
        return int(self.seeds.shape[0])

    def sample_index(self) -> torch.Tensor:
        """Absolute sample numbers `[samples]` (int64) of this render."""
        return torch.arange(self.start, self.start + self.n_samples, device=self.device)

    def time_s(self) -> torch.Tensor:
        """Absolute time in seconds, `[1, samples]`, cached per render."""
        if self._time is None:
            self._time = (self.sample_index().to(torch.float64) / self.sample_rate
                          ).to(self.dtype)[None, :]
        return self._time

    def node_state(self, node: str) -> dict | None:
        if self.state is None:
            return None
        return self.state.setdefault(node, {})


class Module:
    """A synth module. Subclasses declare PARAMS and override `render_torch`.

    PARAMS: every knob, in one place (name, unit, range, scale, default).
    CONTROL_PORTS: names of control-rate inputs (an envelope or LFO wired in by the chain),
        with the extra parameters that only exist when the port is wired (e.g. a depth).
    INPUTS: (min, max) number of audio inputs; max None means any number.
    BYPASS: what the node outputs when its "active" switch is off: "zeros" or "input".
    KERNEL: the native kernel (diffmoog.native.Kernel) that `render_native` runs, or None.
        A module with a kernel overrides `render_native` too; `render` picks the path.
    C_CONSTANTS: constants of `render_torch` that its kernel's C code uses (C name -> value),
        written into the kernels' generated header, so C never keeps its own copy.
    """

    type_name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    PARAMS: ClassVar[tuple[Param, ...]] = ()
    CONTROL_PORTS: ClassVar[dict[str, tuple[Param, ...]]] = {}
    REQUIRED_PORTS: ClassVar[tuple[str, ...]] = ()
    INPUTS: ClassVar[tuple[int, int | None]] = (0, 0)
    BYPASS: ClassVar[str] = "zeros"
    KERNEL: ClassVar[native.Kernel | None] = None
    C_CONSTANTS: ClassVar[dict[str, int | float]] = {}

    def __init__(self, node: str = "", input_names: tuple[str, ...] = (),
                 wired_ports: tuple[str, ...] = ()):
        self.node = node
        self.input_names = tuple(input_names)
        self.wired_ports = tuple(wired_ports)
        # Values pinned when the chain is loaded (`fixed`, and defaults of settings), filled
        # in by Chain. Knowing them in Python skips data-dependent checks on tensors, which
        # cost a sync in eager mode and a graph break under torch.compile.
        self.static: dict[str, float | str] = {}
        self._params: tuple[Param, ...] | None = None

    def static_choice(self, name: str) -> int | None:
        """Index of a categorical parameter's choice if the chain pins it, else None."""
        if name not in self.static:
            return None
        param = next(p for p in self.params() if p.name == name)
        return param.choice_index(self.static[name])

    @classmethod
    def declared_params(cls, input_names: tuple[str, ...] = (),
                        wired_ports: tuple[str, ...] = ()) -> tuple[Param, ...]:
        """The parameters this module has for a given wiring."""
        extra = tuple(p for port in wired_ports for p in cls.CONTROL_PORTS.get(port, ()))
        return cls.PARAMS + extra

    @classmethod
    def all_param_names(cls) -> list[str]:
        names = [p.name for p in cls.PARAMS]
        names += [p.name for ps in cls.CONTROL_PORTS.values() for p in ps]
        return names

    def params(self) -> tuple[Param, ...]:
        # Cached: a render (and torch.compile's tracer) should not rebuild Param objects.
        if self._params is None:
            self._params = self.declared_params(self.input_names, self.wired_ports)
        return self._params

    def render(self, ctx: RenderContext, inputs: list[torch.Tensor],
               params: dict[str, torch.Tensor], controls: dict[str, torch.Tensor]
               ) -> torch.Tensor:
        """Return `[batch, samples]`. Continuous params arrive in physical units shaped
        `[batch, 1]` or `[batch, samples]`; categorical ones as weights `[batch, k]`.

        The native kernel when the module has one and `native.usable_for` these tensors
        (CPU float32/64, eager mode, library built, not `native.disabled()`), else the
        PyTorch reference. Both paths read and write the same stream state keys."""
        if self.KERNEL is not None and native.usable_for(inputs, params, controls):
            return self.render_native(ctx, inputs, params, controls)
        return self.render_torch(ctx, inputs, params, controls)

    def render_torch(self, ctx: RenderContext, inputs: list[torch.Tensor],
                     params: dict[str, torch.Tensor], controls: dict[str, torch.Tensor]
                     ) -> torch.Tensor:
        """The reference render, in PyTorch ops (any device and dtype, differentiable)."""
        raise NotImplementedError

    def render_native(self, ctx: RenderContext, inputs: list[torch.Tensor],
                      params: dict[str, torch.Tensor], controls: dict[str, torch.Tensor]
                      ) -> torch.Tensor:
        """The same render through `KERNEL` (same maths, to rounding; same stream state)."""
        raise NotImplementedError


def exp_mod(base: torch.Tensor, mod: torch.Tensor, control: torch.Tensor) -> torch.Tensor:
    """Exponential modulation, `base * 2**(mod * control)`: an oscillator's pitch, a filter's
    cutoff (the kernels' EXP_MOD in native/common.h)."""
    return base * torch.exp2(mod * control)


def mix_choices(weights: torch.Tensor, render_choice, static: int | None = None) -> torch.Tensor:
    """Weighted sum over categorical choices, rendering only choices that carry weight.

    With one-hot weights (sampling) this costs one render per choice present, each on
    only its own rows; with soft weights every choice is rendered for the whole batch.
    `static`: the choice pinned at chain load (weights are then its one-hot): render only it.
    Under torch.compile the row split (data-dependent) is replaced by the dense sum.
    """
    if static is not None:
        return render_choice(static, None)
    one_hot = not torch.compiler.is_compiling() and not weights.requires_grad
    if one_hot and bool(((weights == 0) | (weights == 1)).all()):
        index = weights.argmax(-1)
        out = None
        for choice in torch.unique(index).tolist():
            rows = (index == choice).nonzero().squeeze(1)
            part = render_choice(choice, rows)
            if out is None:
                out = part.new_zeros((weights.shape[0],) + part.shape[1:])
            if len(rows) == weights.shape[0]:
                return part
            out[rows] = part
        return out
    out = 0.0
    for choice in range(weights.shape[-1]):
        out = out + weights[:, choice:choice + 1] * render_choice(choice, None)
    return out


def take_rows(value: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    """Select batch rows of a `[batch, ...]` tensor (or pass through broadcastable ones)."""
    if rows is None or value.shape[0] == 1:
        return value
    return value[rows]
