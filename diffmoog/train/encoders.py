"""Parameter encoders: audio -> features -> body (GRU over frames, or a small ResNet) -> one head per parameter.

`Encoder(audio [batch, samples])` returns a dict keyed like the chain's free params:
continuous parameters as normalised values in [0, 1] (`[batch]`, sigmoid heads), categorical
ones as logits (`[batch, k]`). `chain.from_logits` turns that dict into renderable params.
"""
from __future__ import annotations

import torch
from torch import nn

from diffmoog.analysis.features import make_features
from diffmoog.train.config import FeatureConfig, ModelConfig

# Centre log-power features (natural log, eps 1e-5 gives about -11.5 for silence) without a
# batch-dependent normaliser, so a DDP shard and a single process see the same function.
FEATURE_SHIFT, FEATURE_SCALE = 4.0, 4.0


class GRUBody(nn.Module):
    """Frames as a sequence: a projection, a strided conv over time, a GRU, then the last state and
    the mean over time. The strided conv shortens the sequence `frame_stride` times: a GRU's cost
    is sequential in frames, and neighbouring 16 ms frames carry little new information."""

    def __init__(self, n_bins: int, cfg: ModelConfig):
        super().__init__()
        self.project = nn.Sequential(nn.Linear(n_bins, cfg.hidden), nn.LayerNorm(cfg.hidden), nn.GELU())
        stride = max(1, cfg.frame_stride)
        self.downsample = (nn.Sequential(nn.Conv1d(cfg.hidden, cfg.hidden, 2 * stride, stride, stride // 2),
                                         nn.GELU()) if stride > 1 else nn.Identity())
        self.gru = nn.GRU(cfg.hidden, cfg.hidden, num_layers=cfg.layers, batch_first=True,
                          dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.out_size = 2 * cfg.hidden

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = self.downsample(self.project(feats.transpose(1, 2)).transpose(1, 2)).transpose(1, 2)
        seq, last = self.gru(x)
        return torch.cat([last[-1], seq.mean(dim=1)], dim=-1)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.norm1 = nn.GroupNorm(min(8, c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.norm2 = nn.GroupNorm(min(8, c_out), c_out)
        self.skip = (nn.Identity() if stride == 1 and c_in == c_out
                     else nn.Conv2d(c_in, c_out, 1, stride, bias=False))

    def forward(self, x):
        y = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(self.norm2(self.conv2(y)) + self.skip(x))


class CNNBody(nn.Module):
    """A ResNet-like 2-D CNN over the (frequency, time) image, stride 2 per stage, global pooling."""

    def __init__(self, n_bins: int, cfg: ModelConfig):
        super().__init__()
        chans = cfg.channels
        self.stem = nn.Sequential(nn.Conv2d(1, chans[0], 3, 1, 1, bias=False),
                                  nn.GroupNorm(min(8, chans[0]), chans[0]), nn.ReLU())
        blocks, c_in = [], chans[0]
        for c_out in chans:
            blocks.append(ResBlock(c_in, c_out, stride=2))
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.drop = nn.Dropout(cfg.dropout)
        self.out_size = 2 * c_in

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(feats[:, None]))
        # Mean and max pooling: mean summarises level, max keeps narrow spectral peaks.
        return self.drop(torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=-1))


class Encoder(nn.Module):
    def __init__(self, heads: list[tuple[str, int, bool]], sample_rate: int, features: FeatureConfig,
                 model: ModelConfig):
        """`heads`: (param key, width, is_categorical) in the chain's free-param order."""
        super().__init__()
        self.heads_spec = [(k, int(w), bool(c)) for k, w, c in heads]
        self.features = make_features(features.kind, sample_rate, features.n_fft, features.hop,
                                      features.n_mels, features.f_min_hz, features.f_max_hz)
        body_cls = GRUBody if model.kind == "gru" else CNNBody
        self.body = body_cls(self.features.n_bins, model)
        trunk = max(64, model.hidden)
        self.trunk = nn.Sequential(nn.Linear(self.body.out_size, trunk), nn.GELU(), nn.Dropout(model.dropout))
        # ModuleDict keys may not contain ".", so "node.param" is stored as "node__param".
        self.heads = nn.ModuleDict({_head_name(k): nn.Linear(trunk, w if c else 1)
                                    for k, w, c in self.heads_spec})

    @classmethod
    def for_chain(cls, chain, features: FeatureConfig, model: ModelConfig) -> "Encoder":
        heads = [(fp.key, fp.param.width, fp.param.is_categorical) for fp in chain.free_params]
        return cls(heads, chain.sample_rate, features, model)

    def embed(self, audio: torch.Tensor) -> torch.Tensor:
        return self.embed_features(self.features(audio))

    def embed_features(self, feats: torch.Tensor) -> torch.Tensor:
        return self.trunk(self.body((feats + FEATURE_SHIFT) / FEATURE_SCALE))

    def forward(self, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.heads_from(self.embed(audio))

    def from_features(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        """`forward` given `self.features(audio)` (benchmarks time the two apart)."""
        return self.heads_from(self.embed_features(feats))

    def heads_from(self, hidden: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for key, _, categorical in self.heads_spec:
            value = self.heads[_head_name(key)](hidden).float()
            out[key] = value if categorical else torch.sigmoid(value[:, 0])
        return out


def _head_name(key: str) -> str:
    return key.replace(".", "__")
