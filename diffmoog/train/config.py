"""Training config: a typed dataclass schema, YAML loading and `--set key=value` dotted overrides.

Every unknown or misspelled key is a ConfigError naming the key (with "did you mean"), and every
value is type-checked against the schema, so a typo never passes silently.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from diffmoog import yaml_io
from diffmoog.errors import ConfigError, did_you_mean


@dataclass
class Ramp:
    """A value that moves linearly from `start` to `end` between `start_step` and `end_step`.

    A plain number in YAML means a constant. Steps are optimiser steps (not epochs), so a ramp
    means the same thing whatever the dataset size.
    """

    start: float = 0.0
    end: float | None = None  # None: constant `start`
    start_step: int = 0
    end_step: int = 0


@dataclass
class RunConfig:
    name: str = "run"
    output_dir: str = "experiments"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # mixed precision for the encoder, CUDA only
    threads: int = 0  # torch CPU threads; 0 keeps torch's default
    init_from: str | None = None  # start from a trained encoder's weights (fresh optimiser, step 0)


@dataclass
class DataConfig:
    # A create-data split folder (OUT/NAME/train), or a list of them read as one (same chain and
    # length, e.g. synthetic + `create-data --from-matches` labels); None: render on the fly.
    train: str | list[str] | None = None
    val: str | None = None
    val_size: int = 256  # on-the-fly validation items (when `val` is None)
    max_val_items: int = 0  # 0: the whole validation split
    duration_s: float | None = None  # None: the dataset's (or the chain's) duration
    real_train: str | None = None  # real audio: an NSynth json+wav split or any audio folder
    real_val: str | None = None
    real_format: str = "auto"  # auto | nsynth | folder
    real_weight: Ramp = field(default_factory=Ramp)  # weight of the real-audio spectral loss
    num_workers: int = 0


@dataclass
class FeatureConfig:
    kind: str = "logmel"  # logmel | stft
    n_fft: int = 1024
    hop: int = 256
    n_mels: int = 64
    f_min_hz: float = 20.0
    f_max_hz: float | None = None  # None: Nyquist


@dataclass
class FlowConfig:
    """The preset posterior's velocity field and its training/sampling (see train/flow.py)."""
    hidden: int = 256
    blocks: int = 4
    time_features: int = 64
    repeats: int = 8  # (noise, time) draws per sound and step: the MLP is cheap next to the encoder
    cond_dropout: float = 0.1  # condition replaced by the learned null embedding (unconditional prior)
    pitch_dropout: float = 0.1  # pitch alone hidden (a posterior for sounds with no known pitch)
    sample_steps: int = 8  # midpoint ODE steps when sampling


@dataclass
class ModelConfig:
    kind: str = "gru"  # gru | cnn: the encoder body
    head: str = "regression"  # regression: one head per parameter | flow: a preset posterior
    hidden: int = 128
    layers: int = 2
    frame_stride: int = 4  # GRU: frames merged by a strided conv before the recurrence
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    dropout: float = 0.0
    flow: FlowConfig = field(default_factory=FlowConfig)


@dataclass
class ParamLossConfig:
    weight: Ramp = field(default_factory=lambda: Ramp(start=1.0))
    kind: str = "l1"  # l1 | mse (continuous); categoricals always use cross-entropy


@dataclass
class MRSTFTLossConfig:
    weight: Ramp = field(default_factory=Ramp)
    fft_sizes: list[int] = field(default_factory=lambda: [2048, 1024, 512])
    hop_sizes: list[int] = field(default_factory=lambda: [512, 256, 128])
    win_lengths: list[int] = field(default_factory=lambda: [2048, 1024, 512])
    impl: str = "fast"  # fast | autograd | auraloss (same value; see analysis.spectral_loss)


@dataclass
class SpectralLossConfig:
    weight: Ramp = field(default_factory=Ramp)
    n_fft: int = 1024
    hop: int = 256
    n_mels: int = 64


@dataclass
class ChainLossConfig:
    weight: Ramp = field(default_factory=Ramp)
    nodes: list[str] = field(default_factory=list)  # empty: every node except the output
    n_fft: int = 512
    hop: int = 256


@dataclass
class LossConfig:
    param: ParamLossConfig = field(default_factory=ParamLossConfig)
    mrstft: MRSTFTLossConfig = field(default_factory=MRSTFTLossConfig)
    logmel: SpectralLossConfig = field(default_factory=SpectralLossConfig)
    wasserstein: SpectralLossConfig = field(default_factory=SpectralLossConfig)
    chain: ChainLossConfig = field(default_factory=ChainLossConfig)


@dataclass
class OptimConfig:
    lr: float = 3e-4
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    grad_clip: float = 1.0  # 0: off
    scheduler: str = "cosine"  # none | cosine | step
    warmup_steps: int = 0
    step_size: int = 1000  # for scheduler "step"
    gamma: float = 0.5


@dataclass
class TrainConfig:
    steps: int = 1000
    epochs: int = 0  # > 0 overrides `steps` with epochs x batches per epoch
    batch_size: int = 32
    hard_categorical: bool = False  # straight-through one-hot choices when rendering
    log_every: int = 10
    val_every: int = 200
    ckpt_every: int = 200
    val_batch_size: int = 32
    best_metric: str = "val/lsd"  # lower is better
    audio_items: int = 2  # target/predicted pairs sent to TensorBoard at each validation
    max_minutes: float = 0.0  # > 0: stop (validate, checkpoint) after this much wall time in this session
    progress: bool = True


@dataclass
class Config:
    chain: str = "REDUCED_SIMPLE_OSC"
    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    losses: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


CHOICES = {
    "features.kind": ("logmel", "stft"),
    "model.kind": ("gru", "cnn"),
    "model.head": ("regression", "flow"),
    "losses.param.kind": ("l1", "mse"),
    "losses.mrstft.impl": ("fast", "autograd", "auraloss"),
    "optim.scheduler": ("none", "cosine", "step"),
    "data.real_format": ("auto", "nsynth", "folder"),
}


# -- building typed configs from plain dicts ------------------------------------------------
def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _convert(value, tp, where: str, source: str, base=None):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if isinstance(value, list):  # `str | list[str]`: a list takes the list member
            inner = [a for a in inner if typing.get_origin(a) is list] or inner
        return _convert(value, inner[0], where, source, base)
    if dataclasses.is_dataclass(tp):
        if tp is Ramp and _is_number(value):
            return Ramp(start=float(value))
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: key '{where}': expected a mapping, got {value!r}")
        return _build(tp, value, where, source, base)
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"{source}: key '{where}': expected a list, got {value!r}")
        return [_convert(v, item, f"{where}[{i}]", source) for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: key '{where}': expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{source}: key '{where}': expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):
            # YAML 1.1 reads "1e-4" (no dot) as a string; accept it as the number it obviously is.
            try:
                value = float(value)
            except ValueError:
                pass
        if not _is_number(value):
            raise ConfigError(f"{source}: key '{where}': expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{source}: key '{where}': expected a string, got {value!r}")
        value = str(value)
        if where in CHOICES and value not in CHOICES[where]:
            raise ConfigError(f"{source}: key '{where}': unknown value '{value}'"
                              f"{did_you_mean(value, CHOICES[where])} (one of {', '.join(CHOICES[where])})")
        return value
    raise ConfigError(f"{source}: key '{where}': unsupported type {_type_name(tp)}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _unwrap(tp):
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(tp) if a is not type(None))
    return tp


def _all_keys(cls=None, prefix: str = "") -> list[str]:
    """Every dotted key path of the schema, e.g. 'optim.lr'."""
    cls = Config if cls is None else cls
    out = []
    for name, tp in typing.get_type_hints(cls).items():
        where = f"{prefix}.{name}" if prefix else name
        out.append(where)
        if dataclasses.is_dataclass(_unwrap(tp)) and _unwrap(tp) is not Ramp:
            out.extend(_all_keys(_unwrap(tp), where))
    return out


def _suggest(key, cls, prefix: str) -> str:
    """"; did you mean 'x'?" among `cls`'s keys, else a close key elsewhere in the schema, else the
    valid keys at this level."""
    names = [f.name for f in dataclasses.fields(cls)]
    hint = did_you_mean(key, names)
    if hint:
        return hint
    paths = _all_keys()
    leaves = {}
    for path in paths:
        leaves.setdefault(path.rsplit(".", 1)[-1], path)
    close = difflib.get_close_matches(str(key), list(leaves), n=1, cutoff=0.5)
    if close:
        return f"; did you mean '{leaves[close[0]]}'?"
    level = f"under '{prefix}'" if prefix else "at the top level"
    return f" (valid keys {level}: {', '.join(names)})"


def _build(cls, raw: dict, prefix: str, source: str, base=None):
    """A `cls` whose unspecified fields keep `base`'s values (the schema's defaults at the top)."""
    base = cls() if base is None else base
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in raw.items():
        where = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            raise ConfigError(f"{source}: unknown key '{where}'{_suggest(key, cls, prefix)}")
        kwargs[key] = _convert(value, hints[key], where, source, getattr(base, key))
    obj = dataclasses.replace(base, **kwargs)
    if cls is Ramp and obj.end is not None and obj.end_step < obj.start_step:
        raise ConfigError(f"{source}: key '{prefix}': end_step must be >= start_step")
    return obj


def from_dict(raw: dict, source: str = "<config>") -> Config:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a config must be a YAML mapping")
    config = _build(Config, raw, "", source)
    validate(config, source)
    return config


def validate(config: Config, source: str) -> None:
    checks = [
        (config.train.batch_size >= 1, "train.batch_size", "must be >= 1"),
        (config.train.steps >= 1 or config.train.epochs >= 1, "train.steps", "must be >= 1"),
        (config.train.log_every >= 1, "train.log_every", "must be >= 1"),
        (config.train.val_every >= 1, "train.val_every", "must be >= 1"),
        (config.train.ckpt_every >= 1, "train.ckpt_every", "must be >= 1"),
        (config.optim.lr > 0, "optim.lr", "must be > 0"),
        (len(config.optim.betas) == 2, "optim.betas", "must be two numbers"),
        (config.features.hop >= 1 and config.features.n_fft >= 16, "features.n_fft", "n_fft >= 16, hop >= 1"),
        (len(config.losses.mrstft.fft_sizes) == len(config.losses.mrstft.hop_sizes)
         == len(config.losses.mrstft.win_lengths), "losses.mrstft.fft_sizes",
         "fft_sizes, hop_sizes and win_lengths must have the same length"),
        (len(config.model.channels) >= 1, "model.channels", "needs at least one stage"),
        (config.model.flow.hidden >= 8 and config.model.flow.blocks >= 1, "model.flow.hidden",
         "hidden >= 8 and blocks >= 1"),
        (config.model.flow.time_features >= 2 and config.model.flow.time_features % 2 == 0,
         "model.flow.time_features", "must be an even number >= 2"),
        (config.model.flow.repeats >= 1, "model.flow.repeats", "must be >= 1"),
        (config.model.flow.sample_steps >= 1, "model.flow.sample_steps", "must be >= 1"),
        (0.0 <= config.model.flow.cond_dropout < 1.0, "model.flow.cond_dropout", "must be in [0, 1)"),
        (0.0 <= config.model.flow.pitch_dropout < 1.0, "model.flow.pitch_dropout", "must be in [0, 1)"),
        (config.data.train != [], "data.train", "an empty list; give a create-data split folder, a list of them, "
                                                 "or leave it out to render on the fly"),
        (config.run.name.replace("-", "_").replace(".", "_").isidentifier(), "run.name",
         "use letters, digits, '-', '_' or '.'"),
    ]
    for ok, key, message in checks:
        if not ok:
            raise ConfigError(f"{source}: key '{key}': {message}")


def to_dict(config) -> dict:
    return dataclasses.asdict(config)


# -- built-in configs ----------------------------------------------------------------------
def configs_dir() -> Path:
    """The built-in config folder: the `diffmoog.configs` package (the top-level `configs/` folder,
    mapped by setup.cfg's package_dir, so also in editable installs), else `configs/` beside the
    package in a source checkout that is not installed."""
    from importlib.resources import files
    try:
        return Path(str(files("diffmoog.configs")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent.parent / "configs"


def builtin_configs() -> dict[str, Path]:
    """Built-in configs by name (the file name without `.yaml`)."""
    return {p.stem: p for p in sorted(configs_dir().glob("*.yaml"))}


def describe(path: str | Path) -> str:
    """A config's one-line description: its first comment line."""
    try:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            if line.strip().startswith("#"):
                return line.strip().lstrip("#").strip()
    except OSError:
        pass
    return ""


def resolve_config(name_or_path: str | Path) -> Path:
    """An existing config file, else a built-in config by name (`params_only` or `params_only.yaml`)."""
    text = str(name_or_path)
    path = Path(text)
    if path.is_file():
        return path
    if path.is_dir():
        raise ConfigError(f"{text}: is a folder, not a config file")
    known = builtin_configs()
    stem = path.name[:-len(path.suffix)] if path.suffix in (".yaml", ".yml") else path.name
    if path.parent == Path(".") and stem in known:
        return known[stem]
    listing = ", ".join(known) or "none"
    if path.parent != Path("."):
        builtin = f"; the built-in one is -c {stem}" if stem in known else ""
        raise ConfigError(f"{text}: config file not found{builtin} (built-in configs: {listing})")
    raise ConfigError(f"{text}: no such config file or built-in config{did_you_mean(stem, known)} "
                      f"(built-in: {listing}; see diffmoog-train --list-configs)")


def load(path: str | Path | None, overrides: list[str] = ()) -> Config:
    """Load a YAML config (or the defaults when `path` is None) and apply `key=value` overrides.

    `path` is a config file or a built-in config's name (see `resolve_config`).
    """
    raw, source = {}, "<defaults>"
    if path is not None:
        path = resolve_config(path)
        source = str(path)
        raw = yaml_io.read(path, lambda message: ConfigError(f"{source}: {message}"))
        raw = raw or {}
    raw = apply_overrides(raw, overrides)
    return from_dict(raw, source)


def apply_overrides(raw: dict, overrides) -> dict:
    """Apply `a.b.c=value` strings (values parsed as YAML) to a raw config dict, checking the paths."""
    raw = dict(raw or {})
    for text in overrides:
        if "=" not in text:
            raise ConfigError(f"--set '{text}': expected key=value")
        path, value_text = text.split("=", 1)
        keys = path.strip().split(".")
        try:
            value = yaml_io.loads(value_text) if value_text.strip() else None
        except yaml.YAMLError:
            value = value_text
        _check_path(keys, path)
        node = raw
        for key in keys[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                # A Ramp given as a number becomes a mapping when one of its fields is set.
                child = {"start": child} if _is_number(child) else {}
            node[key] = child = dict(child)
            node = child
        node[keys[-1]] = value
    return raw


def _check_path(keys: list[str], text: str) -> None:
    cls = Config
    for i, key in enumerate(keys):
        if not dataclasses.is_dataclass(cls):
            raise ConfigError(f"--set '{text}': '{'.'.join(keys[:i])}' has no sub-keys")
        hints = typing.get_type_hints(cls)
        if key not in hints:
            where = ".".join(keys[:i + 1])
            raise ConfigError(f"--set '{text}': unknown key '{where}'{_suggest(key, cls, '.'.join(keys[:i]))}")
        cls = hints[key]
        if typing.get_origin(cls) in (typing.Union, types.UnionType):
            cls = next(a for a in typing.get_args(cls) if a is not type(None))


def dump(config: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))
