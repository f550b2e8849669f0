"""Preset files: a chain file plus one sound's parameter values, in physical units.

A preset is the chain YAML (so `Chain.load(preset)` works and the file is self-contained)
with a `preset:` section:

    preset:
      format: 1
      seed: 12345            # keys the noise modules, so the sound is reproducible
      pitch: {hz: 440.0, midi: 69.0, source: audio, confidence: 0.99}   # optional: what a match used
      params:
        saw.freq_hz: 440.0   # Hz, 32.7 .. 2093
        lpf.active: "on"     # categoricals by choice name

Values are converted in float64 both ways, so save -> load returns the exact same float32
normalised values (an exp/log round trip in float32 would detune long notes audibly).

Loading is strict about structure and lenient about hand edits, and never silent:
- `format` is the version of this layout (FORMAT); a newer or unknown one is refused, a
  missing one reads as the current version;
- a number outside its parameter's range (the `# low .. high` comment) is clamped to the
  range, with a warning naming the file and key;
- a parameter left out takes the chain's default, with a warning naming the key(s) and
  the default(s) used.
Warnings go to `warn(message)` (the CLIs print `prog: warning: ...`), by default to
`warnings.warn` as a PresetWarning. Saving refuses values outside the range, so every
preset written reads back unchanged.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import yaml

from diffmoog import yaml_io
from diffmoog.chain import Chain
from diffmoog.errors import SpecError, did_you_mean
from diffmoog.params import SEED_KEY, Param
from diffmoog.spec import parse_spec

FORMAT = 1  # the version of the preset layout; load_preset refuses newer ones
PRESET_FIELDS = ("format", "seed", "params", "source", "metrics", "pitch")
SEED_RANGE = (-2 ** 63, 2 ** 63 - 1)  # int64: what a seed tensor holds


class PresetWarning(UserWarning):
    """A preset loaded with a change: a value clamped to its range, or a default filled in."""


def _default_warn(message: str) -> None:
    warnings.warn(message, PresetWarning, stacklevel=3)


def _where(source: str, key: str) -> str:
    return f"{source}: key '{key}'" if source else f"key '{key}'"


@dataclass
class Preset:
    chain: Chain
    params: dict[str, torch.Tensor]  # normalised, batch 1, with "seed"
    source: str = ""
    metrics: dict = field(default_factory=dict)
    pitch: dict = field(default_factory=dict)  # the pitch a match used (hz, midi, source, confidence)

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


def preset_text(chain: Chain, params: dict[str, torch.Tensor], index: int = 0, source: str = "",
                metrics: dict | None = None, pitch: dict | None = None) -> str:
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
    if pitch:
        lines.append("  pitch: " + yaml.safe_dump(pitch, default_flow_style=True, width=1000).strip())
    lines.append("  params:")
    values = physical_values(chain, params, index)
    for fp in chain.free_params:
        if not fp.param.is_categorical:
            normalized = float(params[fp.key][index])
            if not 0.0 <= normalized <= 1.0:  # also NaN
                raise SpecError(f"normalised value {normalized:g} ({values[fp.key]:g} {fp.param.unit}) is outside "
                                f"the range {fp.param.describe_range()}; a preset holds in-range values only",
                                chain.spec.source, key=fp.key)
    for fp in chain.free_params:
        note = f"{fp.param.unit + ', ' if fp.param.unit else ''}{fp.param.describe_range()}"
        lines.append(f"    {fp.key}: {_scalar(values[fp.key])}  # {note}")
    return "\n".join(lines) + "\n"


def _scalar(value) -> str:
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same float64
    # No line width: PyYAML folds a long string onto a next line at this line's indentation,
    # which does not read back inside the preset section (a long `source:` path broke the file).
    return yaml.safe_dump(value, default_flow_style=True, width=math.inf).strip().removesuffix("\n...").strip()



def save_preset(path: str | Path, chain: Chain, params: dict[str, torch.Tensor], index: int = 0,
                source: str = "", metrics: dict | None = None, pitch: dict | None = None) -> Path:
    """Write item `index` of `params` as a preset; written to a temp file first so an
    interrupted save never leaves a half-written preset behind."""
    path = Path(path)
    text = preset_text(chain, params, index, source, metrics, pitch)  # refuses bad values before touching disk
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    finally:
        if tmp.is_file():
            tmp.unlink()
    return path


def load_preset(path: str | Path, warn: Callable[[str], None] | None = None) -> Preset:
    """Read a preset file -> Preset(chain, normalised params of batch 1 with its seed).
    Clamped values and filled-in defaults are reported through `warn` (module docstring)."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise SpecError("preset file not found" if not path.exists() else "not a file", source)
    raw = yaml_io.read(path, lambda message: SpecError(message, source))
    if not isinstance(raw, dict) or "preset" not in raw:
        raise SpecError("not a preset (a chain file with a 'preset:' section)", source)
    section = raw["preset"]
    if not isinstance(section, dict):
        raise SpecError("must be a mapping with 'params'", source, key="preset")
    for key in section:
        if key not in PRESET_FIELDS:
            raise SpecError(f"unknown field{did_you_mean(key, PRESET_FIELDS)}", source, key=f"preset.{key}")
    check_format(section.get("format", FORMAT), source)  # before the chain: a newer layout may differ
    chain = Chain(parse_spec(raw, source))
    values = section.get("params") or {}
    if not isinstance(values, dict):
        raise SpecError("must be a mapping of 'node.param' -> value", source, key="preset.params")
    metrics = section.get("metrics") or {}
    if not isinstance(metrics, dict):
        raise SpecError(f"must be a mapping of name -> value, got {metrics!r}", source, key="preset.metrics")
    pitch = section.get("pitch") or {}
    if not isinstance(pitch, dict):
        raise SpecError(f"must be a mapping like {{hz: 440.0, source: audio}}, got {pitch!r}", source,
                        key="preset.pitch")
    return Preset(chain, params_from_values(chain, values, section.get("seed", 0), source, warn),
                  str(section.get("source", "")), dict(metrics), dict(pitch))


def check_format(version, source: str = "") -> None:
    """`preset.format` must be a layout version this code reads: 1 .. FORMAT."""
    if isinstance(version, bool) or not isinstance(version, int):
        raise SpecError(f"expected an integer format version (this diffmoog writes {FORMAT}), got {version!r}",
                        source, key="preset.format")
    if version > FORMAT:
        raise SpecError(f"format {version} is newer than this diffmoog reads (up to {FORMAT}); "
                        f"update diffmoog to load it", source, key="preset.format")
    if version < 1:
        raise SpecError(f"unknown format {version}; formats start at 1 (this diffmoog reads up to {FORMAT})",
                        source, key="preset.format")


def params_from_values(chain: Chain, values: dict, seed=0, source: str = "",
                       warn: Callable[[str], None] | None = None) -> dict[str, torch.Tensor]:
    """{key: physical value | choice name} -> normalised params (batch 1). Numbers outside
    their range are clamped to it and missing keys take the chain's defaults, each reported
    through `warn` (default: warnings.warn)."""
    warn = warn or _default_warn
    params = chain.defaults(1)
    for key, value in values.items():
        if key not in params:
            raise SpecError(f"unknown parameter{did_you_mean(key, params)}", source, key=f"preset.params.{key}")
        param = chain.free_param(key).param
        where = f"preset.params.{key}"
        if param.is_categorical:
            if isinstance(value, bool) and set(param.choices) >= {"on", "off"}:
                value = "on" if value else "off"  # YAML 1.1 reads unquoted on/off as booleans
            if not isinstance(value, str) or value not in param.choices:
                raise SpecError(f"'{value}' is not one of {', '.join(param.choices)}"
                                f"{did_you_mean(value, param.choices)}", source, key=where)
            params[key] = param.one_hot(torch.tensor([param.choice_index(value)]))
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SpecError(f"expected a number, got {value!r}", source, key=where)
        params[key] = torch.tensor([_in_range(param, float(value), _where(source, where), warn)],
                                   dtype=torch.float32)
    missing = [key for key in chain.param_keys if key not in values]
    if missing:
        defaults = ", ".join(f"{key} = {_default_text(chain.free_param(key).param)}" for key in missing)
        warn(f"{_where(source, 'preset.params')}: missing {', '.join(missing)}; using the chain's "
             f"default{'s' if len(missing) > 1 else ''}: {defaults}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise SpecError(f"expected an integer, got {seed!r}", source, key="preset.seed")
    if not SEED_RANGE[0] <= seed <= SEED_RANGE[1]:
        raise SpecError(f"{seed} does not fit a 64-bit seed (saved presets hold 0 .. {2 ** 32 - 1})",
                        source, key="preset.seed")
    params[SEED_KEY] = torch.tensor([seed], dtype=torch.int64)
    return params


def _in_range(param: Param, value: float, where: str, warn) -> float:
    """The normalised value of physical `value`, clamped to [0, 1] with a warning when it is
    outside the range. Compared after rounding to float32 (what is rendered), so the few ulps
    by which a saved boundary value can exceed the range in float64 never warn."""
    if param.high == param.low:
        normalized = 0.0 if value == param.low else math.copysign(1.0, value - param.low) * math.inf
    elif param.scale == "log" and value <= 0:
        normalized = -math.inf
    else:
        normalized = float(param.to_normalized(torch.tensor(value, dtype=torch.float64)).float())
    if 0.0 <= normalized <= 1.0:
        return normalized
    bound = param.low if normalized < 0 else param.high
    unit = f" {param.unit}" if param.unit else ""
    warn(f"{where}: {value:g}{unit} is outside the range {param.low:.6g} .. {param.high:.6g}{unit}; "
         f"clamped to {bound:.6g}{unit}")
    return 0.0 if normalized < 0 or param.high == param.low else 1.0


def _default_text(param: Param) -> str:
    if param.is_categorical:
        return str(param.default)
    return f"{float(param.default):g}{' ' + param.unit if param.unit else ''}"
