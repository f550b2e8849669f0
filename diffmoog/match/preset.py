"""Preset files: a chain file plus one sound's parameter values, in physical units.

A preset is the chain YAML (so `Chain.load(preset)` works and the file is self-contained)
with a `preset:` section:

    preset:
      format: 1
      seed: 12345            # keys the noise modules, so the sound is reproducible
      params:
        saw.freq_hz: 440.0   # Hz, 32.7 .. 2093
        lpf.active: "on"     # categoricals by choice name

Values are converted in float64 both ways, so save -> load returns the exact same float32
normalised values (an exp/log round trip in float32 would detune long notes audibly).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from diffmoog import yaml_io
from diffmoog.chain import SEED_KEY, Chain
from diffmoog.errors import SpecError, did_you_mean
from diffmoog.params import Param
from diffmoog.spec import parse_spec

FORMAT = 1
PRESET_FIELDS = ("format", "seed", "params", "source", "metrics")


@dataclass
class Preset:
    chain: Chain
    params: dict[str, torch.Tensor]  # normalised, batch 1, with "seed"
    source: str = ""
    metrics: dict = field(default_factory=dict)

    @property
    def seed(self) -> int:
        return int(self.params[SEED_KEY][0])


def physical_values(chain: Chain, params: dict[str, torch.Tensor], index: int = 0) -> dict:
    """Item `index` of normalised params -> {key: float in physical units | choice name}."""
    out = {}
    for fp in chain.free_params:
        value = params[fp.key][index]
        if fp.param.is_categorical:
            weights = value if value.dim() else fp.param.one_hot(value.reshape(1))[0]
            out[fp.key] = fp.param.choices[int(weights.argmax())]
        else:
            if value.dim():
                raise SpecError("automated (time-varying) parameters cannot be saved in a preset yet",
                                chain.spec.source, key=fp.key)
            out[fp.key] = float(fp.param.to_physical(value.detach().to("cpu", torch.float64)))
    return out


def normalized_value(param: Param, physical: float) -> float:
    """Physical -> normalised in float64 (Param.to_normalized works in float32)."""
    if param.high == param.low:
        return 0.0
    if param.scale == "log":
        return (math.log(physical) - math.log(param.low)) / (math.log(param.high) - math.log(param.low))
    return (physical - param.low) / (param.high - param.low)


def preset_text(chain: Chain, params: dict[str, torch.Tensor], index: int = 0, source: str = "",
                metrics: dict | None = None) -> str:
    """The YAML text of item `index` as a preset, with the unit and range of each value."""
    raw = {k: v for k, v in chain.spec.raw.items() if k != "preset"}
    raw.setdefault("name", chain.name)
    for key in ("sample_rate", "duration", "note_off"):
        raw.setdefault(key, getattr(chain.spec, key))
    seeds = params.get(SEED_KEY)
    seed = int(seeds[index]) if seeds is not None else 0
    lines = ["# diffmoog preset: the chain below plus one sound's parameter values (physical units).",
             "# Render it with: render-preset THIS_FILE -o out.wav",
             yaml.safe_dump(raw, sort_keys=False, default_flow_style=None, width=100).rstrip(),
             "preset:", f"  format: {FORMAT}", f"  seed: {seed}"]
    if source:
        lines.append(f"  source: {_scalar(source)}")
    if metrics:
        lines.append("  metrics: " + yaml.safe_dump(metrics, default_flow_style=True, width=1000).strip())
    lines.append("  params:")
    values = physical_values(chain, params, index)
    for fp in chain.free_params:
        note = f"{fp.param.unit + ', ' if fp.param.unit else ''}{fp.param.describe_range()}"
        lines.append(f"    {fp.key}: {_scalar(values[fp.key])}  # {note}")
    return "\n".join(lines) + "\n"


def _scalar(value) -> str:
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same float64
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()


def save_preset(path: str | Path, chain: Chain, params: dict[str, torch.Tensor], index: int = 0,
                source: str = "", metrics: dict | None = None) -> Path:
    """Write item `index` of `params` as a preset; written to a temp file first so an
    interrupted save never leaves a half-written preset behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(preset_text(chain, params, index, source, metrics))
    tmp.replace(path)
    return path


def load_preset(path: str | Path) -> Preset:
    """Read a preset file -> Preset(chain, normalised params of batch 1 with its seed)."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise SpecError("preset file not found", source)
    raw = yaml_io.read(path, lambda message: SpecError(message, source))
    if not isinstance(raw, dict) or "preset" not in raw:
        raise SpecError("not a preset (a chain file with a 'preset:' section)", source)
    chain = Chain(parse_spec(raw, source))
    section = raw["preset"]
    if not isinstance(section, dict):
        raise SpecError("must be a mapping with 'params'", source, key="preset")
    for key in section:
        if key not in PRESET_FIELDS:
            raise SpecError(f"unknown field{did_you_mean(key, PRESET_FIELDS)}", source, key=f"preset.{key}")
    values = section.get("params") or {}
    if not isinstance(values, dict):
        raise SpecError("must be a mapping of 'node.param' -> value", source, key="preset.params")
    return Preset(chain, params_from_values(chain, values, section.get("seed", 0), source),
                  str(section.get("source", "")), dict(section.get("metrics") or {}))


def params_from_values(chain: Chain, values: dict, seed=0, source: str = "") -> dict[str, torch.Tensor]:
    """{key: physical value | choice name} -> normalised params (batch 1); missing keys
    take the chain's defaults."""
    params = chain.defaults(1)
    for key, value in values.items():
        if key not in params:
            raise SpecError(f"unknown parameter{did_you_mean(key, params)}", source, key=f"preset.params.{key}")
        param = chain.free_param(key).param
        where = f"preset.params.{key}"
        if param.is_categorical:
            if isinstance(value, bool) and set(param.choices) >= {"on", "off"}:
                value = "on" if value else "off"  # YAML 1.1 reads unquoted on/off as booleans
            if value not in param.choices:
                raise SpecError(f"'{value}' is not one of {', '.join(param.choices)}"
                                f"{did_you_mean(value, param.choices)}", source, key=where)
            params[key] = param.one_hot(torch.tensor([param.choice_index(value)]))
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SpecError(f"expected a number, got {value!r}", source, key=where)
        if param.scale == "log" and value <= 0:
            raise SpecError(f"must be > 0 (log-scale parameter), got {value!r}", source, key=where)
        params[key] = torch.tensor([normalized_value(param, float(value))], dtype=torch.float32)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SpecError(f"expected an integer, got {seed!r}", source, key="preset.seed")
    params[SEED_KEY] = torch.tensor([seed], dtype=torch.int64)
    return params
