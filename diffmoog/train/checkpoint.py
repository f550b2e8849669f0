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
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from diffmoog.chain import Chain
from diffmoog.errors import ConfigError
from diffmoog.train import config as config_mod
from diffmoog.train.encoders import Encoder

MODEL_FILE, STATE_FILE, TRAINING_FILE = "model.safetensors", "state.json", "training.pt"


def resolve(path: str | Path, prefer: str = "best") -> Path:
    """A checkpoint folder from a checkpoint folder, a run folder, or a file inside a checkpoint."""
    path = Path(path)
    if path.is_file():
        path = path.parent
    if (path / STATE_FILE).is_file():
        return path
    for name in (prefer, "last", "best"):
        candidate = path / "checkpoints" / name
        if (candidate / STATE_FILE).is_file():
            return candidate
    raise ConfigError(f"{path}: no checkpoint found (expected {STATE_FILE} in it, "
                      f"or checkpoints/last or checkpoints/best under it)")


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


def save(folder: str | Path, model: torch.nn.Module, state: dict, training: dict | None = None) -> Path:
    """Write a checkpoint atomically: into a temporary sibling, then renamed over `folder`.

    A run killed mid-write leaves the previous checkpoint intact.
    """
    folder = Path(folder)
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
    if old.exists():
        shutil.rmtree(old)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    if old.exists():
        shutil.rmtree(old)
    return folder


def read_state(folder: str | Path) -> dict:
    folder = resolve(folder)
    try:
        return json.loads((folder / STATE_FILE).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{folder / STATE_FILE}: unreadable checkpoint state ({err})") from None


def read_training(folder: str | Path, device="cpu") -> dict | None:
    path = Path(folder) / TRAINING_FILE
    if not path.is_file():
        return None
    return torch.load(path, map_location=device, weights_only=True)


def build_model(state: dict) -> tuple[Encoder, Chain, config_mod.FeatureConfig]:
    chain = Chain.from_dict(state["chain"], source=state.get("chain_source", "<checkpoint>"))
    cfg = config_mod.from_dict(state["config"], source="<checkpoint config>")
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
    try:
        weights = load_file(str(folder / MODEL_FILE))
    except (OSError, Exception) as err:  # safetensors raises its own error types
        raise ConfigError(f"{folder / MODEL_FILE}: cannot read weights ({err})") from None
    model.load_state_dict(weights)
    model.to(device).eval()
    return model, chain, features
