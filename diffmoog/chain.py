"""Chain: a validated DAG of modules, rendered as one differentiable function of its params.

Parameters travel as a dict keyed "node.param":
  continuous  -> normalised float tensor [batch] (or [batch, frames] for automation)
  categorical -> choice weights [batch, k] (one-hot, softmax...) or int indices [batch]
plus an optional SEED_KEY ("seed") entry (int64 [batch]) that keys each item's noise.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from diffmoog import rng
from diffmoog.errors import ConfigError, SpecError, did_you_mean
from diffmoog.modules import MODULES, RenderContext
from diffmoog.params import SEED_KEY, Distribution, Param, weights_from_logits
from diffmoog.spec import ChainSpec, length_problem, load_spec, parse_spec
from diffmoog.stream import STREAM_CONSTANT, STREAM_VALUES
from diffmoog.stream import stream as _stream_blocks

ACTIVE = Param("active", "", scale="categorical", choices=("off", "on"), default="on",
               description="Whether this switchable module is on.")


@dataclass(frozen=True)
class FreeParam:
    """One learnable/sampled parameter of a chain."""

    key: str  # "node.param"
    node: str
    param: Param


class Chain:
    def __init__(self, spec: ChainSpec):
        self.spec = spec
        self.name = spec.name
        self.modules = {}
        free: list[FreeParam] = []
        for node in spec.nodes.values():
            module = MODULES[node.module](node.name, node.inputs, tuple(node.control))
            self.modules[node.name] = module
            module.static = {p.name: node.fixed.get(p.name, p.default) for p in module.params()
                             if p.name in node.fixed or not p.learnable}
            for param in node.params.values():
                if param.name not in node.fixed and param.learnable:
                    free.append(FreeParam(f"{node.name}.{param.name}", node.name, param))
            if node.active is not None:
                weights = Distribution(weights=(1.0 - node.active, node.active))
                free.append(FreeParam(f"{node.name}.active", node.name, ACTIVE.replace(distribution=weights)))
        self.free_params = tuple(free)
        marks = spec.pitch_marks
        self._pitch_keys = tuple(fp.key for fp in free if marks.get(fp.key) == "note")
        self._compiled = None  # torch.compile'd node graph, built on first compiled render
        self._by_key = {fp.key: fp for fp in free}

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def load(cls, name_or_path: str | Path) -> "Chain":
        """Load a built-in chain by name (any case) or a YAML file by path."""
        return cls(load_spec(name_or_path))

    @classmethod
    def from_dict(cls, raw: dict, source: str = "<dict>") -> "Chain":
        return cls(parse_spec(raw, source))

    # -- layout ----------------------------------------------------------------------------
    @property
    def param_keys(self) -> list[str]:
        return [fp.key for fp in self.free_params]

    @property
    def pitch_keys(self) -> list[str]:
        """The free parameters that follow the played note (marked `pitch: note` in the chain),
        in free-parameter order: what render-preset --pitch transposes and what matching sets
        relative to the note's pitch (diffmoog/match/tuning.py). Empty when nothing is marked."""
        return list(self._pitch_keys)

    @property
    def sample_rate(self) -> int:
        return self.spec.sample_rate

    def free_param(self, key: str) -> FreeParam:
        if key not in self._by_key:
            raise SpecError(f"unknown parameter{did_you_mean(key, self._by_key)}", self.spec.source, key=key)
        return self._by_key[key]

    @property
    def vector_size(self) -> int:
        return sum(fp.param.width for fp in self.free_params)

    def vector_slices(self) -> dict[str, slice]:
        """Where each parameter lives in the flat vector (k columns for a categorical)."""
        slices, start = {}, 0
        for fp in self.free_params:
            slices[fp.key] = slice(start, start + fp.param.width)
            start += fp.param.width
        return slices

    def to_vector(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Named normalised params -> flat `[batch, vector_size]` (categoricals one-hot/weights)."""
        columns = []
        for fp in self.free_params:
            value = self.choice_weights(fp, params[fp.key]) if fp.param.is_categorical else params[fp.key][:, None]
            columns.append(value.float())
        return torch.cat(columns, dim=-1)

    def from_vector(self, vector: torch.Tensor, seeds: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if vector.shape[-1] != self.vector_size:
            raise SpecError(f"expected a vector of {self.vector_size} columns, got {vector.shape[-1]}",
                            self.spec.source)
        out = {key: vector[:, s] if s.stop - s.start > 1 or self.free_param(key).param.is_categorical
               else vector[:, s.start] for key, s in self.vector_slices().items()}
        if seeds is not None:
            out[SEED_KEY] = seeds
        return out

    def from_logits(self, outputs: dict[str, torch.Tensor], hard: bool = False) -> dict[str, torch.Tensor]:
        """Encoder outputs (continuous in [0,1], categorical logits) -> renderable params."""
        return {key: weights_from_logits(value, hard) if key in self._by_key and
                self._by_key[key].param.is_categorical else value for key, value in outputs.items()}

    # -- conversions -----------------------------------------------------------------------
    def to_physical(self, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Normalised -> physical units; categoricals become choice indices (int64)."""
        out = {}
        for fp in self.free_params:
            value = params[fp.key]
            if fp.param.is_categorical:
                out[fp.key] = self.choice_weights(fp, value).argmax(-1)
            else:
                out[fp.key] = fp.param.to_physical(value)
        return out

    def to_normalized(self, physical: dict) -> dict[str, torch.Tensor]:
        """Physical units (or choice names/indices) -> normalised params."""
        out = {}
        for fp in self.free_params:
            value = physical[fp.key]
            if fp.param.is_categorical:
                if isinstance(value, str) or (isinstance(value, (list, tuple)) and value and isinstance(value[0], str)):
                    names = [value] if isinstance(value, str) else value
                    value = torch.tensor([fp.param.choice_index(v) for v in names])
                out[fp.key] = fp.param.one_hot(torch.as_tensor(value).reshape(-1))
            else:
                out[fp.key] = fp.param.to_normalized(torch.as_tensor(value, dtype=torch.float32))
        return out

    def defaults(self, batch_size: int = 1) -> dict[str, torch.Tensor]:
        out = {}
        for fp in self.free_params:
            if fp.param.is_categorical:
                index = torch.full((batch_size,), fp.param.choice_index(fp.param.default))
                out[fp.key] = fp.param.one_hot(index)
            else:
                out[fp.key] = torch.full((batch_size,), fp.param.default_normalized())
        return out

    # -- sampling --------------------------------------------------------------------------
    def item_seeds(self, batch_size: int, seed: int = 0, offset: int = 0) -> torch.Tensor:
        """Per-item keys: item i depends only on (seed, offset + i)."""
        index = torch.arange(offset, offset + batch_size, dtype=torch.int64)
        return rng.item_keys(seed, index)

    def sample(self, batch_size: int, seed: int = 0, offset: int = 0,
               device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        """Random normalised params for items offset..offset+batch_size-1 (batch-size independent)."""
        keys = self.item_seeds(batch_size, seed, offset)
        out = {}
        for fp in self.free_params:
            counter = torch.tensor(rng.stable_seed(fp.key))
            u = rng.uniform(keys, counter)
            dist = fp.param.distribution
            if fp.param.is_categorical:
                weights = torch.tensor(dist.weights or [1.0] * len(fp.param.choices))
                edges = torch.cumsum(weights / weights.sum(), 0)[:-1]
                out[fp.key] = fp.param.one_hot(torch.bucketize(u, edges, right=True))
            elif dist.kind == "normal":
                z = rng.normal(keys, counter)
                physical = (dist.mean + dist.std * z).clamp(fp.param.low, fp.param.high)
                out[fp.key] = fp.param.to_normalized(physical).clamp(0.0, 1.0)
            else:
                out[fp.key] = u
        out[SEED_KEY] = keys
        if device is not None:
            out = {k: v.to(device) for k, v in out.items()}
        return out

    # -- rendering -------------------------------------------------------------------------
    def context(self, batch_size: int, device=None, dtype=torch.float32, seeds=None,
                sample_rate: int | None = None, duration: float | None = None,
                note_off: float | None = None, start: int = 0, n_samples: int | None = None,
                state: dict | None = None) -> RenderContext:
        sample_rate = int(sample_rate or self.spec.sample_rate)
        duration = self.spec.duration if duration is None else duration
        if n_samples is None:
            too_long = length_problem(duration, sample_rate)
            if too_long:
                raise ConfigError(too_long)
            n_samples = int(round(duration * sample_rate))
        if seeds is None:
            seeds = torch.arange(batch_size, dtype=torch.int64)
        return RenderContext(sample_rate=sample_rate, n_samples=n_samples,
                             note_off_s=self.spec.note_off if note_off is None else float(note_off),
                             seeds=seeds.to(device), device=torch.device(device or "cpu"), dtype=dtype,
                             start=start, state=state)

    def render(self, params: dict[str, torch.Tensor] | torch.Tensor | None = None, *,
               sample_rate: int | None = None, duration: float | None = None,
               note_off: float | None = None, return_nodes: bool = False,
               context: RenderContext | None = None, compiled: bool = False):
        """Render `[batch, samples]` audio (and every node's signal when `return_nodes`).

        `params` is a dict of normalised params, a flat vector, or None for the defaults.
        Device and dtype follow the params.
        On CPU the oscillators, envelopes and filters run as fused native kernels
        (diffmoog.native), forward and backward; elsewhere they run as PyTorch ops.
        `compiled`: run the PyTorch module path through torch.compile instead, which fuses
        its pointwise ops (worth it on CUDA; on CPU the native kernels are faster and need
        no compile). The first call per shape compiles (tens of seconds, more with
        gradients); streamed renders (a context with state) stay eager.
        """
        if params is None:
            params = self.defaults(1)
        elif isinstance(params, torch.Tensor):
            params = self.from_vector(params)
        params = self.check_params(params)
        first = next(iter(v for k, v in params.items() if k != SEED_KEY), None)
        batch = first.shape[0] if first is not None else int(params.get(SEED_KEY, torch.zeros(1)).shape[0])
        device = first.device if first is not None else torch.device("cpu")
        dtype = first.dtype if first is not None and first.is_floating_point() else torch.float32
        ctx = context or self.context(batch, device, dtype, params.get(SEED_KEY), sample_rate,
                                      duration, note_off)
        if compiled and ctx.state is None:
            audio, signals = self._compiled_nodes()(params, ctx, return_nodes)
        else:
            audio, signals = self._render_nodes(params, ctx, return_nodes)
        return (audio, signals) if return_nodes else audio

    def _compiled_nodes(self):
        if self._compiled is None:
            # Static shapes: a training run renders one batch shape; others recompile once.
            self._compiled = torch.compile(self._render_nodes, dynamic=False)
        return self._compiled

    def _render_nodes(self, params: dict, ctx: RenderContext, return_nodes: bool):
        batch = ctx.batch_size
        signals: dict[str, torch.Tensor] = {}
        for name, node in self.spec.nodes.items():
            module = self.modules[name]
            values = self._node_values(node, module, params, ctx)
            inputs = [signals[i] for i in node.inputs]
            controls = {port: signals[src] for port, src in node.control.items()}
            out = module.render(ctx, inputs, values, controls)
            if out.dim() == 1 or out.shape[-1] != ctx.n_samples:
                out = out.expand(batch, ctx.n_samples) if out.dim() == 2 else out[:, None].expand(batch, ctx.n_samples)
            if node.active is not None:
                on = self.choice_weights(self._by_key[f"{name}.active"], params[f"{name}.active"])[:, 1:2]
                # on * out + (1 - on) * bypass, in one pass
                out = torch.lerp(inputs[0], out, on.to(out.dtype)) if module.BYPASS == "input" else on * out
            signals[name] = out
        return signals[self.spec.output], (signals if return_nodes else None)

    def _node_values(self, node, module, params, ctx) -> dict[str, torch.Tensor]:
        """A node's params in physical units; a stream whose params are constant (no
        automation) converts them once instead of every block."""
        if ctx.state is None or not ctx.state.get(STREAM_CONSTANT):
            return self._module_params(node, module, params, ctx)
        cache = ctx.state.setdefault(STREAM_VALUES, {})
        if node.name not in cache:
            cache[node.name] = self._module_params(node, module, params, ctx)
        return cache[node.name]

    def stream(self, params: dict[str, torch.Tensor] | torch.Tensor | None = None, block_size: int = 512,
               **kwargs):
        """Yield the render block by block, `[batch, <=block_size]` each, for real-time use;
        the blocks concatenate to `render(params, **kwargs)` (see diffmoog.stream)."""
        return _stream_blocks(self, params, block_size, **kwargs)

    def check_params(self, params: dict) -> dict:
        """`params` itself, once every key is one of the chain's (or SEED_KEY) and none is
        missing; a SpecError names the first unknown or missing key."""
        for key in params:
            if key != SEED_KEY and key not in self._by_key:
                raise SpecError(f"unknown parameter{did_you_mean(key, self._by_key)}", self.spec.source, key=key)
        missing = [k for k in self._by_key if k not in params]
        if missing:
            raise SpecError(f"missing parameter(s): {', '.join(missing)}", self.spec.source, key=missing[0])
        return params

    def choice_weights(self, fp: FreeParam, value: torch.Tensor) -> torch.Tensor:
        """A categorical's value as choice weights `[batch, k]`: int indices `[batch]` become
        one-hot (on the value's device); weights pass through unchanged."""
        if value.dim() == 1 and not value.is_floating_point():
            return fp.param.one_hot(value).to(value.device)
        return value

    def _module_params(self, node, module, params, ctx) -> dict[str, torch.Tensor]:
        values = {}
        batch = ctx.batch_size
        for param in module.params():
            key = f"{node.name}.{param.name}"
            if param.name in node.fixed or not param.learnable:
                value = node.fixed.get(param.name, param.default)
                if param.is_categorical:
                    index = torch.full((batch,), param.choice_index(value), device=ctx.device)
                    values[param.name] = param.one_hot(index).to(ctx.dtype)
                else:
                    values[param.name] = torch.full((batch, 1), float(value), device=ctx.device, dtype=ctx.dtype)
                continue
            value = params[key]
            if param.is_categorical:
                values[param.name] = self.choice_weights(self._by_key[key], value).to(ctx.dtype)
            else:
                # The chain's Param (with its range overrides), not the module's declaration.
                physical = self._by_key[key].param.to_physical(value)
                values[param.name] = _to_control_rate(physical, ctx.n_samples)
        return values


def _to_control_rate(value: torch.Tensor, n_samples: int) -> torch.Tensor:
    """[batch] -> [batch, 1]; [batch, frames] -> linearly upsampled [batch, samples]."""
    if value.dim() == 1:
        return value[:, None]
    if value.shape[-1] in (1, n_samples):
        return value
    return torch.nn.functional.interpolate(value[:, None], size=n_samples, mode="linear",
                                          align_corners=True)[:, 0]
