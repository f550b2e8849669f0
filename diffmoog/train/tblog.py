"""Run logging: TensorBoard (scalars, target vs predicted audio, spectrograms) and metrics.csv.

metrics.csv is long-format (`step,split,metric,value`), so train and validation rows with
different metric sets share one file. On resume, rows after the resumed step are dropped so the
file matches an uninterrupted run.
"""
from __future__ import annotations

import csv
from pathlib import Path

import torch
# A bare Figure (no pyplot) renders with Agg without switching the global backend, which
# would break inline plots in a notebook that trains in-process.
from matplotlib.figure import Figure

from diffmoog.analysis import stft  # noqa: E402

CSV_HEADER = ["step", "split", "metric", "value"]


class RunLog:
    def __init__(self, run_dir: Path, start_step: int = 0, enabled: bool = True):
        self.enabled = enabled
        self.csv_path = Path(run_dir) / "metrics.csv"
        self.writer = None
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter
        self._truncate_csv(start_step)
        self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=start_step or None)

    def _truncate_csv(self, start_step: int) -> None:
        rows = []
        if self.csv_path.is_file() and start_step > 0:
            with self.csv_path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start_step]
        with self.csv_path.open("w", newline="") as f:
            writer = csv.DictWriter(f, CSV_HEADER)
            writer.writeheader()
            writer.writerows(rows)

    def scalars(self, step: int, split: str, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        with self.csv_path.open("a", newline="") as f:
            writer = csv.writer(f)
            for name, value in values.items():
                writer.writerow([step, split, name, repr(float(value))])
                self.writer.add_scalar(f"{split}/{name}", float(value), step)

    def audio(self, step: int, target: torch.Tensor, pred: torch.Tensor, sample_rate: int, items: int) -> None:
        if not self.enabled or items <= 0:
            return
        for i in range(min(items, target.shape[0])):
            self.writer.add_audio(f"audio/{i}_target", target[i].clamp(-1, 1), step, sample_rate)
            self.writer.add_audio(f"audio/{i}_predicted", pred[i].clamp(-1, 1), step, sample_rate)
            self.writer.add_figure(f"spectrogram/{i}", spectrogram_figure(target[i], pred[i], sample_rate), step)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def spectrogram_figure(target: torch.Tensor, pred: torch.Tensor, sample_rate: int):
    """Target and predicted dB spectrograms side by side, on one colour scale."""
    specs = [10 * torch.log10(stft.power(x[None].float(), 1024, 256)[0].T + 1e-5) for x in (target, pred)]
    vmax = float(max(s.max() for s in specs))
    fig = Figure(figsize=(9, 3.2))
    axes = fig.subplots(1, 2, sharey=True)
    duration = target.shape[-1] / sample_rate
    for ax, spec, title in zip(axes, specs, ("target", "predicted")):
        ax.imshow(spec.numpy(), origin="lower", aspect="auto", vmin=vmax - 80, vmax=vmax, cmap="magma",
                  extent=(0, duration, 0, sample_rate / 2000))
        ax.set_title(title)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (kHz)")
    fig.tight_layout()
    return fig
