"""Target vs match spectrograms side by side, titled with the loss values (matplotlib Agg)."""
from __future__ import annotations

from pathlib import Path

import torch
# A bare Figure (no pyplot) renders with Agg and never switches the global backend, so
# importing this in a notebook keeps its inline plots working.
from matplotlib.figure import Figure

from diffmoog.plotting import log_spectrogram


def plot_match(path: str | Path, target: torch.Tensor, match: torch.Tensor, sample_rate: int,
               title: str = "", metrics: dict[str, float] | None = None) -> Path:
    """Write a PNG with the target and match spectrograms on one colour scale."""
    target_db, match_db = log_spectrogram(target), log_spectrogram(match)
    top = float(max(target_db.max(), match_db.max()))
    extent = (0.0, target.shape[-1] / sample_rate, 0.0, sample_rate / 2000.0)
    figure = Figure(figsize=(11, 4), constrained_layout=True)
    axes = figure.subplots(1, 2, sharey=True)
    for axis, spec, name in zip(axes, (target_db, match_db), ("target", "match")):
        image = axis.imshow(spec.numpy(), origin="lower", aspect="auto", extent=extent,
                            vmin=top - 90.0, vmax=top, cmap="magma")
        axis.set_title(name)
        axis.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (kHz)")
    figure.colorbar(image, ax=axes, label="power (dB)")
    text = ", ".join(f"{k} {v:.3g}" for k, v in (metrics or {}).items())
    figure.suptitle(" | ".join(part for part in (title, text) if part), fontsize=10)
    path = Path(path)
    figure.savefig(path, dpi=80)
    return path


def plot_sound(path: str | Path, audio: torch.Tensor, sample_rate: int, title: str = "") -> Path:
    """Write a PNG with one sound's spectrogram, in plot_match's style (90 dB shown below the peak)."""
    spec = log_spectrogram(audio)
    top = float(spec.max())
    figure = Figure(figsize=(6, 4), constrained_layout=True)
    axis = figure.subplots()
    image = axis.imshow(spec.numpy(), origin="lower", aspect="auto",
                        extent=(0.0, audio.shape[-1] / sample_rate, 0.0, sample_rate / 2000.0),
                        vmin=top - 90.0, vmax=top, cmap="magma")
    axis.set_xlabel("time (s)")
    axis.set_ylabel("frequency (kHz)")
    figure.colorbar(image, ax=axis, label="power (dB)")
    if title:
        figure.suptitle(title, fontsize=10)
    path = Path(path)
    figure.savefig(path, dpi=80)
    return path
