"""Shared matplotlib helpers: a log-magnitude spectrogram and a drawing of a chain's DAG.

Matplotlib is imported lazily so `import diffmoog` never pulls it in; scripts should select
the Agg backend (`matplotlib.use("Agg")`) before calling these when there is no screen.
"""
from __future__ import annotations

import torch

from diffmoog.analysis import stft

AUDIO_COLOR = "#333333"
CONTROL_COLOR = "#c0392b"


def log_spectrogram(audio, n_fft: int = 1024, hop: int = 256) -> torch.Tensor:
    """Log-magnitude STFT in dB, `[freq_bins, frames]`, of a mono signal (tensor or array)."""
    x = torch.as_tensor(audio, dtype=torch.float32).detach().cpu().reshape(-1)
    n_fft = min(n_fft, max(16, 2 ** int(torch.log2(torch.tensor(float(len(x)))))))
    hop = min(hop, n_fft // 4)
    # 1e-10 floors silence at -100 dB so silent stretches render as a flat colour, not -inf.
    return 10.0 * torch.log10(stft.power(x[None], n_fft, hop)[0].T + 1e-10)


def spectrogram_image(ax, audio, sample_rate: int, n_fft: int = 1024, hop: int = 256,
                      title: str | None = None, dynamic_range_db: float = 80.0):
    """Draw a log-magnitude spectrogram (time in s, frequency in Hz) on `ax`; returns the image."""
    db = log_spectrogram(audio, n_fft, hop)
    n_samples = torch.as_tensor(audio).numel()
    top = float(db.max())
    image = ax.imshow(db.numpy(), origin="lower", aspect="auto", cmap="magma",
                      vmin=top - dynamic_range_db, vmax=top,
                      extent=(0.0, n_samples / sample_rate, 0.0, sample_rate / 2))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    if title:
        ax.set_title(title)
    return image


def waveform_plot(ax, audio, sample_rate: int, title: str | None = None):
    """Draw a waveform against time in seconds."""
    x = torch.as_tensor(audio, dtype=torch.float32).detach().cpu().reshape(-1)
    t = torch.arange(len(x)) / sample_rate
    ax.plot(t.numpy(), x.numpy(), linewidth=0.5, color=AUDIO_COLOR)
    ax.set_xlabel("time (s)")
    ax.set_xlim(0.0, len(x) / sample_rate)
    if title:
        ax.set_title(title)


def node_depths(chain) -> dict[str, int]:
    """Drawing column of each node: 1 + its deepest upstream node (0 for sources).

    A source (an LFO, an envelope) is then moved right, next to its first consumer, so a
    filter envelope sits beside its filter instead of far left with the oscillators.
    """
    depths: dict[str, int] = {}
    consumers: dict[str, list[str]] = {name: [] for name in chain.spec.nodes}
    for name, node in chain.spec.nodes.items():  # already in topological order
        upstream = list(node.inputs) + list(node.control.values())
        for u in upstream:
            consumers[u].append(name)
        depths[name] = 1 + max((depths[u] for u in upstream), default=-1)
    for name in reversed(list(chain.spec.nodes)):
        node = chain.spec.nodes[name]
        if not node.inputs and not node.control and consumers[name]:
            depths[name] = max(0, min(depths[c] for c in consumers[name]) - 1)
    return depths


def chain_layout(chain) -> dict[str, tuple[float, float]]:
    """(x, y) per node: x is the depth, nodes of one depth are spread vertically and centred."""
    depths = node_depths(chain)
    layers: dict[int, list[str]] = {}
    for name, depth in depths.items():
        layers.setdefault(depth, []).append(name)
    positions = {}
    for depth, names in layers.items():
        for i, name in enumerate(names):
            positions[name] = (float(depth), (len(names) - 1) / 2.0 - i)
    return positions


def draw_chain(ax, chain, title: str | None = None):
    """Draw the chain's DAG: boxes (node name + module), solid arrows for audio, dashed for control."""
    from matplotlib.lines import Line2D

    positions = chain_layout(chain)
    box = dict(boxstyle="round,pad=0.4", facecolor="#eef3fb", edgecolor="#4a6fa5")
    out_box = dict(box, facecolor="#fdebd0", edgecolor="#b9770e")
    for name, node in chain.spec.nodes.items():
        x, y = positions[name]
        label = f"{name}\n({node.module})"
        if node.active is not None:
            label += f"\non p={node.active:g}"
        ax.text(x, y, label, ha="center", va="center", fontsize=8, zorder=3,
                bbox=out_box if name == chain.spec.output else box)
        for upstream in node.inputs:
            _arrow(ax, positions[upstream], (x, y), "-", AUDIO_COLOR, None)
        for port, upstream in node.control.items():
            _arrow(ax, positions[upstream], (x, y), "--", CONTROL_COLOR, port)
    xs = [p[0] for p in positions.values()]
    ys = [p[1] for p in positions.values()]
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    ax.set_ylim(min(ys) - 0.7, max(ys) + 0.7)
    ax.axis("off")
    ax.legend(handles=[Line2D([], [], color=AUDIO_COLOR, label="audio"),
                       Line2D([], [], color=CONTROL_COLOR, linestyle="--", label="control")],
              loc="lower right", fontsize=7, frameon=False)
    ax.set_title(title if title is not None else chain.name)


def _arrow(ax, start, end, style, color, label):
    # Shrink the arrow ends so they stop at the box edges, and bend edges between nodes of the
    # same column so they don't run through the boxes in between.
    same_column = abs(start[0] - end[0]) < 1e-9
    ax.annotate("", xy=end, xytext=start, zorder=2,
                arrowprops=dict(arrowstyle="-|>", color=color, linestyle=style, linewidth=1.0,
                                shrinkA=22, shrinkB=22,
                                connectionstyle="arc3,rad=0.35" if same_column else "arc3,rad=0.08"))
    if label:
        # Label near the arrow head, where it is clear which port it enters.
        at = (0.4 * start[0] + 0.6 * end[0], 0.4 * start[1] + 0.6 * end[1] + 0.06)
        ax.text(at[0], at[1], label, color=color, fontsize=6, ha="center", va="bottom")


def chain_figure(chain, audio, sample_rate: int, height: float = 3.4):
    """One figure: the chain's graph beside the spectrogram of one rendered sound.

    The graph panel widens with the number of columns so boxes never overlap.
    """
    import matplotlib.pyplot as plt

    positions = chain_layout(chain)
    columns = 1 + int(max(x for x, _ in positions.values()))
    rows = 1 + max(y for _, y in positions.values()) - min(y for _, y in positions.values())
    graph_width = max(4.0, 1.45 * columns)
    height = max(height, 0.75 * rows + 0.8)
    fig, (left, right) = plt.subplots(1, 2, figsize=(graph_width + 4.5, height),
                                      gridspec_kw={"width_ratios": [graph_width, 4.5]})
    draw_chain(left, chain)
    spectrogram_image(right, audio, sample_rate, title="rendered sound")
    # Fixed margins instead of tight_layout, which costs a third of the drawing time.
    fig.subplots_adjust(left=0.01, right=0.98, bottom=0.8 / height, top=1.0 - 0.45 / height,
                        wspace=0.9 / (graph_width + 4.5) * 2)
    return fig
