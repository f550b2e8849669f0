"""Chain YAML -> validated ChainSpec. Every mistake is one SpecError naming file, node and key.

Pitch marks: `params: {freq_hz: {pitch: note}}` declares that a free parameter follows the
played note (render-preset --pitch transposes it, matching works relative to the note's
pitch; diffmoog/match/tuning.py). Only a frequency in Hz on a log scale can carry one, and
only a free parameter. A chain without marks has no pitch-following parameters, with one
exception for copies written before marks existed: a chain named like a built-in that is that
built-in in every other respect (nodes, wiring, fixed values, ranges, timing) takes the
built-in's marks (`adopt_builtin_pitch_marks`), so checkpoints, datasets and presets saved
earlier keep following the note and still compare equal to the built-in.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path

from diffmoog import yaml_io
from diffmoog.errors import SpecError, did_you_mean
from diffmoog.modules import MODULES
from diffmoog.params import DISTRIBUTIONS, SCALES, Distribution, Param

# "preset": a preset file is a chain file plus one sound's values (diffmoog.preset),
# so Chain.load accepts it too; the chain itself ignores that section.
TOP_FIELDS = ("name", "description", "sample_rate", "duration", "note_off", "nodes", "output", "preset")
NODE_FIELDS = ("module", "inputs", "control", "fixed", "params", "active", "description")
OVERRIDE_FIELDS = ("range", "scale", "default", "distribution", "pitch")
# Values of a parameter's `pitch:` field. "note": the parameter follows the played note. The field
# is a string so that other couplings (e.g. a key-tracking amount) can be added later.
PITCH_MODES = ("note",)
PITCH_UNIT = "Hz"
DISTRIBUTION_FIELDS = ("type", "mean", "std", "weights")

# The longest sound rendered in one call: 10 minutes at 48 kHz. Far beyond any note, it keeps one
# float32 sound at 115 MB and its wav file far below the format's 4 GB limit.
MAX_SOUND_SAMPLES = 600 * 48_000
# Batched tools (create-data) shrink their batch so one batch holds at most this many samples
# (256 MB per float32 signal), which keeps long sounds inside memory.
MAX_BATCH_SAMPLES = 2 ** 26


def length_problem(duration: float, sample_rate: int) -> str | None:
    """Why `duration` s at `sample_rate` Hz is too long to render, or None when it is fine."""
    samples = float(duration) * float(sample_rate)
    if samples > MAX_SOUND_SAMPLES:
        return (f"{duration:g} s at {sample_rate} Hz is {samples:,.0f} samples per sound; the limit is "
                f"{MAX_SOUND_SAMPLES:,} (10 minutes at 48 kHz)")
    return None


@dataclass
class NodeSpec:
    name: str
    module: str
    inputs: tuple[str, ...] = ()
    control: dict[str, str] = field(default_factory=dict)
    fixed: dict[str, float | str] = field(default_factory=dict)
    params: dict[str, Param] = field(default_factory=dict)  # every declared param, overrides applied
    active: float | None = None
    description: str = ""
    pitch: dict[str, str] = field(default_factory=dict)  # param name -> pitch mode ("note"), free params only


@dataclass
class ChainSpec:
    name: str
    nodes: dict[str, NodeSpec]  # in topological order
    output: str
    description: str = ""
    sample_rate: int = 16000
    duration: float = 4.0
    note_off: float = 3.0
    source: str = "<dict>"
    raw: dict = field(default_factory=dict)

    @property
    def pitch_marks(self) -> dict[str, str]:
        """"node.param" -> pitch mode, for every marked parameter, in node order."""
        return {f"{node.name}.{name}": mode for node in self.nodes.values() for name, mode in node.pitch.items()}


def chains_dir() -> Path:
    """The built-in chain folder (top-level `chains/`, installed as `diffmoog.chains`)."""
    repo = Path(__file__).resolve().parent.parent / "chains"
    if repo.is_dir():
        return repo
    from importlib.resources import files
    return Path(str(files("diffmoog.chains")))


def builtin_chains() -> dict[str, Path]:
    return {p.stem.upper(): p for p in sorted(chains_dir().glob("*.yaml"))}


def resolve_chain(name_or_path: str | Path) -> Path:
    """A built-in chain name (any case) or a path to the user's own YAML."""
    text = str(name_or_path)
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise SpecError("chain file not found", file=text)
        return path
    known = builtin_chains()
    if text.upper() in known:
        return known[text.upper()]
    raise SpecError(f"unknown chain '{text}'{did_you_mean(text.upper(), known)} "
                    f"(built-in: {', '.join(known)})")


def load_spec(name_or_path: str | Path) -> ChainSpec:
    path = resolve_chain(name_or_path)
    raw = yaml_io.read(path, lambda message: SpecError(message, file=str(path)))
    return parse_spec(raw, source=str(path))


def _check_fields(given: dict, allowed, source, node=None, prefix=""):
    for key in given:
        if key not in allowed:
            raise SpecError(f"unknown field{did_you_mean(key, allowed)}", source, node, prefix + str(key))


# No synth value (Hz, seconds, gain, ratio) comes near this; beyond it float32 maths overflows or
# loses all precision, so a larger number is a typo, not a setting.
MAX_MAGNITUDE = 1e9


def _number(value, source, node, key, positive=False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(f"expected a number, got {value!r}", source, node, key)
    if abs(value) > MAX_MAGNITUDE:
        raise SpecError(f"{value:g} is beyond the limit of +-{MAX_MAGNITUDE:g}", source, node, key)
    if positive and value <= 0:
        raise SpecError(f"must be > 0, got {value!r}", source, node, key)
    return float(value)


def parse_spec(raw, source: str = "<dict>", adopt_marks: bool = True) -> ChainSpec:
    """Validate `raw` (a chain mapping) into a ChainSpec. `adopt_marks`: a copy of a built-in
    chain from before pitch marks existed takes the built-in's marks (module docstring)."""
    spec = _parse_spec(raw, source)
    return adopt_builtin_pitch_marks(spec) if adopt_marks else spec


def _parse_spec(raw, source: str) -> ChainSpec:
    if not isinstance(raw, dict):
        raise SpecError("a chain file must be a mapping with 'nodes' and 'output'", source)
    _check_fields(raw, TOP_FIELDS, source)
    for required in ("nodes", "output"):
        if required not in raw:
            raise SpecError("missing required field", source, key=required)
    nodes_raw = raw["nodes"]
    if not isinstance(nodes_raw, dict) or not nodes_raw:
        raise SpecError("must be a non-empty mapping of node name -> node", source, key="nodes")
    sample_rate = raw.get("sample_rate", 16000)
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate < 1000:
        raise SpecError(f"must be an integer >= 1000, got {sample_rate!r}", source, key="sample_rate")
    duration = _number(raw.get("duration", 4.0), source, None, "duration", positive=True)
    note_off = _number(raw.get("note_off", 3.0), source, None, "note_off")
    if note_off < 0:
        raise SpecError(f"must be >= 0, got {note_off!r}", source, key="note_off")
    too_long = length_problem(duration, sample_rate)
    if too_long:
        raise SpecError(too_long, source, key="duration")

    nodes = {}
    for name, body in nodes_raw.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise SpecError("node names must be identifiers (letters, digits, _)", source, str(name))
        nodes[name] = _parse_node(name, body, nodes_raw, source)

    output = raw["output"]
    if not isinstance(output, str) or output not in nodes:
        raise SpecError(f"unknown node '{output}'{did_you_mean(output, nodes)}", source, key="output")
    return ChainSpec(name=str(raw.get("name", Path(source).stem.upper())), nodes=_topological(nodes, source),
                     output=output, description=str(raw.get("description", "")),
                     sample_rate=sample_rate, duration=duration, note_off=note_off, source=source,
                     raw=raw)


def _parse_node(name, body, all_nodes, source) -> NodeSpec:
    if not isinstance(body, dict):
        raise SpecError("a node must be a mapping with at least 'module'", source, name)
    _check_fields(body, NODE_FIELDS, source, name)
    if "module" not in body:
        raise SpecError("missing required field", source, name, "module")
    module_name = body["module"]
    if not isinstance(module_name, str) or module_name not in MODULES:
        raise SpecError(f"unknown module '{module_name}'{did_you_mean(module_name, MODULES)}",
                        source, name, "module")
    module = MODULES[module_name]

    inputs = body.get("inputs", [])
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list):
        raise SpecError("must be a list of node names", source, name, "inputs")
    for source_node in inputs:
        _check_reference(source_node, name, all_nodes, source, "inputs")
    low, high = module.INPUTS
    if len(inputs) < low or (high is not None and len(inputs) > high):
        want = f"exactly {low}" if low == high else f"at least {low}" if high is None else f"{low}..{high}"
        raise SpecError(f"module '{module_name}' takes {want} audio input(s), got {len(inputs)}",
                        source, name, "inputs")
    if len(set(inputs)) != len(inputs):
        raise SpecError("an input is listed twice", source, name, "inputs")

    control = body.get("control", {}) or {}
    if not isinstance(control, dict):
        raise SpecError("must be a mapping of port -> node", source, name, "control")
    for port, source_node in control.items():
        if port not in module.CONTROL_PORTS:
            ports = ", ".join(module.CONTROL_PORTS) or "none"
            raise SpecError(f"unknown control port for '{module_name}'{did_you_mean(port, module.CONTROL_PORTS)} "
                            f"(ports: {ports})", source, name, f"control.{port}")
        _check_reference(source_node, name, all_nodes, source, f"control.{port}")
    for port in module.REQUIRED_PORTS:
        if port not in control:
            raise SpecError(f"module '{module_name}' needs control port '{port}' wired", source, name, "control")

    declared = {p.name: p for p in module.declared_params(tuple(inputs), tuple(control))}
    fixed = body.get("fixed", {}) or {}
    if not isinstance(fixed, dict):
        raise SpecError("must be a mapping of parameter -> value", source, name, "fixed")
    for key, value in fixed.items():
        if key not in declared:
            raise SpecError(f"unknown parameter{did_you_mean(key, declared)}", source, name, f"fixed.{key}")
        fixed[key] = _fixed_value(declared[key], value, source, name)

    overrides = body.get("params", {}) or {}
    if not isinstance(overrides, dict):
        raise SpecError("must be a mapping of parameter -> settings", source, name, "params")
    params = dict(declared)
    pitch = {}
    for key, settings in overrides.items():
        if key not in declared:
            raise SpecError(f"unknown parameter{did_you_mean(key, declared)}", source, name, f"params.{key}")
        if key in fixed:
            if isinstance(settings, dict) and "pitch" in settings:
                raise SpecError(f"a fixed parameter does not follow the note; 'pitch' marks a free one "
                                f"(take {key} out of 'fixed', or drop the mark)", source, name, f"params.{key}.pitch")
            raise SpecError("parameter is both fixed and free", source, name, f"params.{key}")
        if not declared[key].learnable:
            raise SpecError("is a setting, not a learnable parameter; put it under 'fixed'",
                            source, name, f"params.{key}")
        params[key] = _override(declared[key], settings, source, name)
        if "pitch" in settings:
            pitch[key] = _pitch_mode(params[key], settings["pitch"], source, name)

    active = body.get("active")
    if active is not None:
        active = _number(active, source, name, "active")
        if not 0.0 < active <= 1.0:
            raise SpecError(f"must be a probability in (0, 1], got {active}", source, name, "active")
    return NodeSpec(name=name, module=module_name, inputs=tuple(inputs), control=dict(control),
                    fixed=fixed, params=params, active=active, description=str(body.get("description", "")),
                    pitch=pitch)


def _check_reference(target, node, all_nodes, source, key):
    if not isinstance(target, str) or target not in all_nodes:
        raise SpecError(f"unknown node '{target}'{did_you_mean(target, all_nodes)}", source, node, key)
    if target == node:
        raise SpecError("a node cannot feed itself", source, node, key)


def _fixed_value(param: Param, value, source, node):
    key = f"fixed.{param.name}"
    if param.is_categorical:
        if value not in param.choices:
            raise SpecError(f"'{value}' is not one of {', '.join(param.choices)}"
                            f"{did_you_mean(value, param.choices)}", source, node, key)
        return value
    number = _number(value, source, node, key)
    if not param.low <= number <= param.high:
        unit = f" {param.unit}" if param.unit else ""
        raise SpecError(f"{number:g} is outside the parameter's range [{param.low:g}, {param.high:g}]{unit}",
                        source, node, key)
    return number


def _override(param: Param, settings, source, node) -> Param:
    key = f"params.{param.name}"
    if not isinstance(settings, dict):
        raise SpecError("must be a mapping with range/scale/default/distribution/pitch", source, node, key)
    _check_fields(settings, OVERRIDE_FIELDS, source, node, key + ".")
    changes = {}
    if "scale" in settings:
        scale = settings["scale"]
        if scale not in SCALES or scale == "categorical" or param.is_categorical:
            raise SpecError(f"scale must be linear or log for a continuous parameter, got {scale!r}",
                            source, node, key + ".scale")
        changes["scale"] = scale
    if "range" in settings:
        if param.is_categorical:
            raise SpecError("a categorical parameter has choices, not a range", source, node, key + ".range")
        rng = settings["range"]
        if not isinstance(rng, list) or len(rng) != 2:
            raise SpecError(f"must be [low, high], got {rng!r}", source, node, key + ".range")
        low, high = (_number(v, source, node, key + ".range") for v in rng)
        if not low < high:
            raise SpecError(f"low must be below high, got [{low:g}, {high:g}]", source, node, key + ".range")
        changes["low"], changes["high"] = low, high
    new = param.replace(**changes)
    if new.scale == "log" and new.low <= 0:
        raise SpecError(f"a log-scale range must be positive, got low={new.low:g}", source, node, key + ".range")
    if "default" in settings:
        default = _number(settings["default"], source, node, key + ".default")
        if not new.low <= default <= new.high:
            raise SpecError(f"default {default:g} is outside [{new.low:g}, {new.high:g}]",
                            source, node, key + ".default")
        new = new.replace(default=default)
    elif not param.is_categorical and not new.low <= float(new.default) <= new.high:
        new = new.replace(default=min(max(float(new.default), new.low), new.high))
    if "distribution" in settings:
        new = new.replace(distribution=_distribution(new, settings["distribution"], source, node,
                                                     key + ".distribution"))
    return new


def _pitch_mode(param: Param, mode, source, node) -> str:
    """A free parameter's `pitch:` value, checked against the parameter it marks (after its
    overrides: a frequency in Hz on a log scale)."""
    key = f"params.{param.name}.pitch"
    if not isinstance(mode, str) or mode not in PITCH_MODES:
        hint = did_you_mean(mode, PITCH_MODES) if isinstance(mode, str) else ""
        raise SpecError(f"unknown pitch mode {mode!r}{hint} (one of: {', '.join(PITCH_MODES)})", source, node, key)
    if param.unit != PITCH_UNIT or param.scale != "log":
        what = ("a categorical choice" if param.is_categorical else
                f"{'in ' + param.unit if param.unit else 'unitless'} on a {param.scale} scale")
        raise SpecError(f"only a frequency in {PITCH_UNIT} on a log scale can follow the note; "
                        f"'{param.name}' is {what}", source, node, key)
    return mode


def adopt_builtin_pitch_marks(spec: ChainSpec) -> ChainSpec:
    """`spec` with the pitch marks of the built-in chain of the same name, when `spec` has no
    marks and is that built-in in every other respect (how it sounds and its parameter layout):
    a copy saved before marks existed, in a checkpoint's state.json, a dataset's metadata.json
    or a preset. Its `raw` then gets the marks too, so it compares equal to the built-in's.
    Anything else comes back unchanged."""
    name = spec.raw.get("name")
    if spec.pitch_marks or name is None:
        return spec
    path = builtin_chains().get(str(name).upper())
    if path is None:
        return spec
    try:
        builtin = parse_spec(yaml_io.read(path, lambda message: SpecError(message, file=str(path))),
                             source=str(path), adopt_marks=False)
    except SpecError:
        return spec
    if not builtin.pitch_marks or _sound(builtin) != _sound(spec):
        return spec
    raw = copy.deepcopy(spec.raw)
    for key, mode in builtin.pitch_marks.items():
        node, param = key.split(".", 1)
        body = raw["nodes"][node]
        body["params"] = dict(body.get("params") or {})
        body["params"][param] = {**(body["params"].get(param) or {}), "pitch": mode}
    return parse_spec(raw, spec.source, adopt_marks=False)


def builtin_twin(spec: ChainSpec) -> ChainSpec | None:
    """The built-in chain `spec` is a copy of (same name, sound, parameter layout and pitch marks,
    e.g. a preset's chain with its defaults spelled out), else None."""
    path = builtin_chains().get(str(spec.name).upper())
    if path is None:
        return None
    try:
        builtin = parse_spec(yaml_io.read(path, lambda message: SpecError(message, file=str(path))), source=str(path))
    except SpecError:
        return None
    same = _sound(builtin) == _sound(spec) and builtin.pitch_marks == spec.pitch_marks
    return builtin if same else None


def without_pitch_marks(raw):
    """A copy of chain mapping `raw` with every `pitch:` mark removed (a parameter's settings,
    or its `params:` mapping, left empty by the removal goes too): what a chain renders does not
    depend on its marks, so e.g. a dataset's chain compares equal to its marked version."""
    raw = copy.deepcopy(raw)
    nodes = raw.get("nodes") if isinstance(raw, dict) else None
    for body in (nodes.values() if isinstance(nodes, dict) else ()):
        params = body.get("params") if isinstance(body, dict) else None
        if not isinstance(params, dict):
            continue
        for key, settings in list(params.items()):
            if isinstance(settings, dict) and "pitch" in settings:
                del settings["pitch"]
                if not settings:
                    del params[key]
        if not params:
            del body["params"]
    return raw


def _sound(spec: ChainSpec) -> tuple:
    """Everything of a spec but its pitch marks, description and source: what it renders, and
    its parameter layout."""
    nodes = [(n.name, n.module, n.inputs, n.control, n.fixed, list(n.params.items()), n.active)
             for n in spec.nodes.values()]
    return spec.name, spec.sample_rate, spec.duration, spec.note_off, spec.output, nodes


def _distribution(param: Param, raw, source, node, key) -> Distribution:
    if not isinstance(raw, dict):
        raise SpecError("must be a mapping, e.g. {type: normal, mean: 440, std: 50}", source, node, key)
    _check_fields(raw, DISTRIBUTION_FIELDS, source, node, key + ".")
    kind = raw.get("type", "uniform")
    if kind not in DISTRIBUTIONS:
        raise SpecError(f"unknown distribution '{kind}'{did_you_mean(kind, DISTRIBUTIONS)}", source, node, key + ".type")
    if param.is_categorical:
        weights = raw.get("weights")
        if not isinstance(weights, list) or len(weights) != len(param.choices) or \
                any(_number(w, source, node, key + ".weights") < 0 for w in weights) or sum(weights) <= 0:
            raise SpecError(f"needs 'weights': {len(param.choices)} non-negative numbers "
                            f"({', '.join(param.choices)})", source, node, key + ".weights")
        return Distribution(kind="uniform", weights=tuple(float(w) for w in weights))
    if kind == "normal":
        for required in ("mean", "std"):
            if required not in raw:
                raise SpecError("a normal distribution needs mean and std (physical units)",
                                source, node, f"{key}.{required}")
        mean = _number(raw["mean"], source, node, key + ".mean")
        std = _number(raw["std"], source, node, key + ".std", positive=True)
        return Distribution(kind="normal", mean=mean, std=std)
    return Distribution()


def _topological(nodes: dict[str, NodeSpec], source: str) -> dict[str, NodeSpec]:
    """Order nodes so every node comes after its inputs (file order among equals); reject cycles."""
    ordered: dict[str, NodeSpec] = {}
    visiting: list[str] = []

    def visit(name):
        if name in ordered:
            return
        if name in visiting:
            cycle = visiting[visiting.index(name):] + [name]
            raise SpecError(f"cycle: {' -> '.join(cycle)}", source, name)
        visiting.append(name)
        node = nodes[name]
        for upstream in list(node.inputs) + list(node.control.values()):
            visit(upstream)
        visiting.pop()
        ordered[name] = node

    for name in nodes:
        visit(name)
    return ordered
