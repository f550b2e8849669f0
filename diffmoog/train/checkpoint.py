"""Checkpoints: safetensors weights + JSON state, written atomically; `load_model` for users.

A checkpoint is a folder:
  model.safetensors  encoder weights
  state.json         step, metrics, resolved config, the chain spec, the encoder's heads, RNG states
  training.pt        optimiser / scheduler / AMP-scaler state and torch RNG states (tensors and
                     plain containers only, read with torch.load(weights_only=True))
A run keeps `checkpoints/last` and `checkpoints/best`.
"""
from __future__ import annotations

import json
import os
import pickle
import random
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from diffmoog.chain import Chain
from diffmoog.errors import ConfigError, DiffmoogError
from diffmoog.train import config as config_mod
from diffmoog.train.encoders import Encoder

MODEL_FILE, STATE_FILE, TRAINING_FILE = "model.safetensors", "state.json", "training.pt"


def resolve(path: str | Path, prefer: str = "best") -> Path:
    """A readable checkpoint folder from a checkpoint folder, a run folder, or a file inside one.

    A checkpoint folder (or a file in one) is used as given: a broken file in it is a ConfigError
    naming the file. A run folder gives `checkpoints/<prefer>`, falling back to the other one (or to
    the `<name>.old` copy an interrupted save leaves) with a warning line naming the broken file and
    the checkpoint used instead. `prefer="last"` (resuming) also needs the optimiser state in
    `training.pt`, which only `last` checkpoints have.
    """
    path = Path(path)
    if path.is_file():
        path = path.parent
    need_training = prefer == "last"
    if (path / STATE_FILE).is_file():
        problem = check_readable(path, need_training)
        if problem:
            raise ConfigError(problem)
        return path
    names = list(dict.fromkeys((prefer, "last", "best")))
    found = [folder for name in names for folder in (path / "checkpoints" / name, path / "checkpoints" / f"{name}.old")
             if (folder / STATE_FILE).is_file()]
    if not found:
        raise ConfigError(f"{path}: no checkpoint found (expected {STATE_FILE} in it, "
                          f"or checkpoints/last or checkpoints/best under it)")
    problems = []
    for candidate in found:
        problem = check_readable(candidate, need_training)
        if problem is not None:
            problems.append(problem)
            continue
        if problems:
            _warn(f"{problems[0]}; using {candidate}{_step_of(candidate)} instead")
        elif candidate.name.endswith(".old"):
            _warn(f"{candidate.with_name(candidate.name[:-4])} is missing (a save was interrupted); "
                  f"using {candidate}{_step_of(candidate)}")
        if need_training:  # resuming: say so when the run's other checkpoint is broken
            best = path / "checkpoints" / "best"
            other = check_readable(best) if candidate != best and (best / STATE_FILE).is_file() else None
            if other is not None:
                _warn(f"{other}; resuming from {candidate} (checkpoints/best is rewritten when validation "
                      f"improves on its recorded best)")
        return candidate
    best = path / "checkpoints" / "best"
    if need_training and (best / STATE_FILE).is_file() and check_readable(best, False) is None:
        raise ConfigError(f"{problems[0]}; checkpoints/best is readable but has no optimiser state to resume "
                          f"from: start a new run from its weights with {new_run_command(best)}")
    if len(problems) == 1:
        raise ConfigError(problems[0])
    raise ConfigError(f"{path}: no readable checkpoint: " + "; ".join(problems))


# The program named in warning lines; a CLI may set it (the console script's name is the default).
PROG: str | None = None
_warned: set[str] = set()


def _prog() -> str:
    import sys
    if PROG:
        return PROG
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return name if name and not name.endswith(".py") and name not in ("-c", "-m") else "diffmoog"


def reset_warnings() -> None:
    """Warn again about what an earlier call already warned about (a new CLI run in this process)."""
    _warned.clear()


def _warn(message: str) -> None:
    """One `prog: warning: ...` line on stderr, once per message."""
    if message not in _warned:
        _warned.add(message)
        import sys
        print(f"{_prog()}: warning: {message}", file=sys.stderr)


def _step_of(folder: Path) -> str:
    try:
        return f" (step {int(json.loads((folder / STATE_FILE).read_text())['step'])})"
    except Exception:  # only decoration for a message
        return ""


def kept_summary(run_dir: str | Path) -> str:
    """What a failed run leaves: its checkpoints (with their steps), or that none was written yet."""
    folder = Path(run_dir) / "checkpoints"
    kept = [f"{name}{_step_of(folder / name)}" for name in ("last", "best") if (folder / name / STATE_FILE).is_file()]
    if not kept:
        return f"no checkpoint had been written to {folder} yet"
    return f"the checkpoints from before are kept intact: {' and '.join(kept)} in {folder}"


def new_run_command(folder: str | Path) -> str:
    """The diffmoog-train command that starts a new run (fresh optimiser, step 0) from checkpoint
    `folder`'s weights: the run's saved config, a new run name, `run.init_from`."""
    import shlex
    folder = Path(folder)
    run_dir = folder.parent.parent
    try:
        name = json.loads((folder / STATE_FILE).read_text())["config"]["run"]["name"]
    except Exception:  # only decoration for a message
        name = run_dir.name
    config = shlex.quote(str(run_dir / "config.yaml")) if (run_dir / "config.yaml").is_file() else "CONFIG"
    return (f"diffmoog-train -c {config} --set run.name={name}-from-{folder.name.removesuffix('.old')} "
            f"--set run.init_from={shlex.quote(str(folder))}")


def _reason(err: Exception) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    if "PytorchStreamReader" in text:  # drop torch's long "this can happen if ..." explanation
        text = text.split(". ")[0]
    return text if len(text) <= 160 else text[:157] + "..."


STATE_KEYS = ("step", "config", "chain", "heads")


def check_readable(folder: Path, need_training: bool = False) -> str | None:
    """One line naming the broken file of checkpoint `folder` (and why), or None when it loads."""
    folder = Path(folder)
    try:
        state = json.loads((folder / STATE_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return f"{folder / STATE_FILE}: unreadable checkpoint state ({_reason(err)})"
    missing = [key for key in STATE_KEYS if key not in state] if isinstance(state, dict) else list(STATE_KEYS)
    if missing:
        return f"{folder / STATE_FILE}: not a diffmoog checkpoint state (missing {', '.join(missing)})"
    try:
        read_weights(folder)
    except ConfigError as err:
        return str(err)
    if (folder / TRAINING_FILE).is_file():
        try:
            read_training(folder)
        except ConfigError as err:
            return str(err)
    elif need_training:
        return f"{folder}: has no training state {TRAINING_FILE} (only 'last' checkpoints resume)"
    return None


def read_weights(folder: str | Path) -> dict:
    """The weights in `folder/model.safetensors`; a missing, truncated or broken file is a ConfigError."""
    path = Path(folder) / MODEL_FILE
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own error types
        reason = f"{_reason(err)}; the file is broken or truncated" if path.is_file() else "file missing"
        raise ConfigError(f"{path}: cannot read weights ({reason})") from None


def rng_state() -> tuple[dict, dict]:
    """(JSON part, tensor part) of every RNG the trainer touches."""
    py_version, py_state, py_gauss = random.getstate()
    np_state = np.random.get_state()
    json_part = {"python": [py_version, list(py_state), py_gauss],
                 "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]),
                           float(np_state[4])]}
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors["cuda"] = torch.cuda.get_rng_state_all()
    return json_part, tensors


def set_rng_state(json_part: dict, tensors: dict) -> None:
    version, state, gauss = json_part["python"]
    random.setstate((version, tuple(state), gauss))
    name, keys, pos, has_gauss, cached = json_part["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["torch"])
    if "cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(tensors["cuda"])


class DivergedError(DiffmoogError):
    """Training blew up (non-finite loss, weights or outputs); the previous checkpoints are kept."""


PROBE_SAMPLES = 16000  # a probe sound's length when the state does not say the items' length


def _probe_samples(state: dict | None) -> int:
    """The training items' length in samples (what the encoder is built for), from the state."""
    try:
        sample_rate = int((state.get("chain") or {}).get("sample_rate", 16000))
        samples = int(round(float(state["duration_s"]) * sample_rate))
        return samples if samples > 0 else PROBE_SAMPLES
    except (AttributeError, KeyError, TypeError, ValueError):
        return PROBE_SAMPLES


def check_finite(model: torch.nn.Module, state: dict | None = None) -> str | None:
    """Why `model` is unfit to save (non-finite weights, or non-finite outputs on a probe sound), or None.

    Weights can stay finite while the outputs overflow (e.g. after a huge learning rate), hence the
    probe. It uses its own generator, so the training RNG streams (and resumed runs) are unchanged.
    """
    for key, value in model.state_dict().items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return f"weight '{key}' is not finite"
    params = list(model.parameters())
    device = params[0].device if params else torch.device("cpu")
    generator = torch.Generator().manual_seed(0)
    probe = (0.1 * torch.randn(1, _probe_samples(state), generator=generator)).to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            outputs = model(probe)
    finally:
        model.train(was_training)
    for key, value in outputs.items():
        if not bool(torch.isfinite(value).all()):
            return f"its output '{key}' is not finite"
    return None


def _lr_hint(state: dict) -> str:
    try:
        return f"optim.lr is {float(state['config']['optim']['lr']):g}; try a lower one"
    except (KeyError, TypeError, ValueError):
        return "try a lower optim.lr"


def save(folder: str | Path, model: torch.nn.Module, state: dict, training: dict | None = None) -> Path:
    """Write a checkpoint atomically: into a temporary sibling, then renamed over `folder`.

    A run killed mid-write leaves the previous checkpoint intact (as `folder`, or as `<folder>.old`
    if killed between the two renames; `resolve` finds it there). A diverged model (non-finite
    weights or outputs) is never written: DivergedError, with the previous checkpoints kept.
    """
    folder = Path(folder)
    problem = check_finite(model, state)
    if problem is not None:
        raise DivergedError(f"training diverged at step {state.get('step', '?')}: {problem}; "
                            f"{kept_summary(folder.parent.parent)} ({_lr_hint(state)})")
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(tmp / MODEL_FILE))
    (tmp / STATE_FILE).write_text(json.dumps(state, indent=1))
    if training is not None:
        torch.save(training, tmp / TRAINING_FILE)
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(folder, old)
    # With `folder` missing, an `.old` left by an interrupted save is the only copy: it goes only
    # once the new checkpoint is in place.
    os.replace(tmp, folder)
    if old.exists():
        shutil.rmtree(old)
    return folder


def read_state(folder: str | Path) -> dict:
    folder = Path(folder) if (Path(folder) / STATE_FILE).is_file() else resolve(folder)
    try:
        return json.loads((folder / STATE_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{folder / STATE_FILE}: unreadable checkpoint state ({_reason(err)})") from None


def read_training(folder: str | Path, device="cpu") -> dict | None:
    """The optimiser/RNG state, read with torch.load(weights_only=True): pickled objects are refused."""
    path = Path(folder) / TRAINING_FILE
    if not path.is_file():
        return None
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols before refusing them
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        raise ConfigError(f"{path}: cannot read training state (it holds pickled Python objects, not only "
                          f"tensors; refused for safety)") from None
    except Exception as err:
        raise ConfigError(f"{path}: cannot read training state ({_reason(err)}; the file is broken or "
                          f"truncated)") from None


def build_model(state: dict) -> tuple[Encoder, Chain, config_mod.FeatureConfig]:
    chain = Chain.from_dict(state["chain"], source=state.get("chain_source", "<checkpoint>"))
    cfg = config_mod.from_dict(state["config"], source="<checkpoint config>")
    if cfg.model.head == "flow":
        from diffmoog.train.flow import FlowEncoder
        model = FlowEncoder.for_chain(chain, cfg.features, cfg.model)
        if [list(h) for h in model.heads_spec] != [list(h) for h in state["heads"]]:
            raise ConfigError("<checkpoint>: the flow's parameters do not match its chain copy")
    else:
        model = Encoder([tuple(h) for h in state["heads"]], chain.sample_rate, cfg.features, cfg.model)
    return model, chain, cfg.features


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """Load a trained encoder for inference: `(model, chain, feature_cfg)`.

    `path` is a checkpoint folder (`.../checkpoints/best`), a file inside one, or a run folder
    (`experiments/<run>`, which picks `checkpoints/best`, else `last`).

    The model is in eval mode on `device`. Call it on audio `[batch, samples]` (float32 at
    `chain.sample_rate`, ideally `chain.spec.duration` long) and it returns a dict keyed by
    `chain.param_keys`: continuous params as normalised values `[batch]` in [0, 1], categorical
    params as logits `[batch, k]`. So
        params = chain.from_logits(model(audio), hard=True)
        audio_hat = chain.render(params)
    renders the predicted preset and `chain.to_physical(params)` gives it in physical units.
    `feature_cfg` (a FeatureConfig) says which features the encoder computes internally; the
    model takes raw audio, so callers need it only for reporting.
    """
    folder = resolve(path)
    state = read_state(folder)
    model, chain, features = build_model(state)
    weights = read_weights(folder)
    model.load_state_dict(weights)
    model.to(device).eval()
    return model, chain, features
