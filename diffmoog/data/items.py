"""Deterministic item rendering and PCM16 conversion, shared by create-data and OnTheFlyDataset.

Item i of a split depends only on (chain, seed, split, i): its params come from
`chain.sample(1, seed=split_seed(seed, split), offset=i)`, and the chain renders each batch
row independently, so batch size, shard and worker count never change a sound.

Silence/NaN policy (the same every time): an item whose audio is non-finite or whose peak
is below SILENCE_PEAK (-60 dBFS) is drawn again from retry stream r = 1, 2, ... with
`chain.sample(1, seed=retry_seed(seed, split, r), offset=i)`. The attempt that is kept is
recorded per item (`retries` column of params_dataset.csv). After MAX_RETRIES the chain is
reported as broken rather than writing silence or NaN.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from diffmoog import rng
from diffmoog.errors import DiffmoogError

SILENCE_PEAK = 1e-3  # -60 dBFS: quieter than this is useless as a sound-matching target
MAX_RETRIES = 32
PCM16_SCALE = 32768.0  # full scale is what readers divide by; +1.0 clips to 32767


def split_seed(seed: int, split: str) -> int:
    """Disjoint random streams per split (a fixed seed shared by splits leaks train into val)."""
    return rng.stable_seed(seed, split)


def retry_seed(seed: int, split: str, attempt: int) -> int:
    return rng.stable_seed(seed, split, "retry", attempt)


def noise_keys(chain, seed: int, split: str, indices, retries) -> torch.Tensor:
    """The per-item "seed" keys (noise) items were rendered with, from their index and retry count."""
    indices = torch.as_tensor(indices, dtype=torch.int64)
    retries = torch.as_tensor(retries, dtype=torch.int64)
    keys = torch.empty_like(indices)
    for attempt in retries.unique().tolist():
        rows = retries == attempt
        base = split_seed(seed, split) if attempt == 0 else retry_seed(seed, split, attempt)
        wanted = indices[rows]
        low = int(wanted.min())  # item_seeds is per index, so one contiguous call covers them all
        keys[rows] = chain.item_seeds(int(wanted.max()) - low + 1, base, low)[wanted - low]
    return keys


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    """float32 [-1, 1] -> int16 (what the wav files hold), rounding and clipping."""
    return pcm16_into(audio, np.empty(audio.shape, np.int16), np.empty(audio.shape, np.float32))


# Rows whose peak is below this round into [-32767, 32767] (|x| * 32768 < 32767.5), so
# they skip the clip. Exact in float32.
NO_CLIP_BELOW = 1.0 - 2.0 ** -16


def pcm16_into(audio: np.ndarray, out: np.ndarray, scratch: np.ndarray, peak: float = np.inf) -> np.ndarray:
    """to_pcm16 into preallocated `out` (int16) via `scratch` (float32), without allocating.

    Writers call it one row at a time so every pass stays in cache; numpy releases the GIL,
    so they convert while the main thread renders. Clipping before rounding equals clipping
    after it (the bounds are integers); `peak` (max |audio|) lets quiet rows skip the clip.
    """
    np.multiply(audio, np.float32(PCM16_SCALE), out=scratch)  # exact: a power of two
    if not peak < NO_CLIP_BELOW:
        np.clip(scratch, -32768, 32767, out=scratch)
    return np.rint(scratch, out=out, casting="unsafe")


def from_pcm16(pcm: np.ndarray) -> np.ndarray:
    """int16 -> float32 the way soundfile reads a 16-bit wav back (divide by 32768)."""
    return pcm.astype(np.float32) / np.float32(32768.0)


def disk_samples(audio: np.ndarray, float32: bool = False) -> np.ndarray:
    """Rows as they go into the wav files: float32 as is, else int16 PCM."""
    return audio if float32 else to_pcm16(audio)


def peaks(audio: torch.Tensor) -> torch.Tensor:
    """Per-row peak |x|; NaN if the row holds NaN, inf if it holds inf (one cheap pass)."""
    rows = audio.numpy()
    return torch.from_numpy(np.maximum(rows.max(axis=1), -rows.min(axis=1)))


@dataclass
class Batch:
    start: int  # index of the first item
    params: dict[str, torch.Tensor]  # normalised params (CPU), including "seed"
    audio: torch.Tensor  # float32 [batch, samples] (CPU), finite and not silent
    retries: torch.Tensor  # int64 [batch]: which draw was kept (0 = the first)
    peak: torch.Tensor  # float32 [batch]: max |audio| per item (> 1 is clipped in 16-bit files)

    def __len__(self) -> int:
        return int(self.audio.shape[0])


class ItemRenderer:
    """Renders items start..start+count-1 of one split, applying the silence/NaN policy."""

    def __init__(self, chain, seed: int, split: str, sample_rate: int | None = None,
                 duration: float | None = None, note_off: float | None = None,
                 device: str | torch.device = "cpu", render=None, compiled: bool = False,
                 pad_to: int = 0):
        self.chain, self.seed, self.split = chain, int(seed), split
        self.sample_rate = int(sample_rate or chain.spec.sample_rate)
        self.duration = float(chain.spec.duration if duration is None else duration)
        self.note_off = float(chain.spec.note_off if note_off is None else note_off)
        self.n_samples = int(round(self.duration * self.sample_rate))
        self.device = torch.device(device)
        self._render = render or chain.render
        # compiled: first draws go through Chain.render(compiled=True) (torch.compile; its bits
        # differ slightly from eager, so a dataset is all-compiled or all-eager). Short batches
        # are padded to `pad_to` items so the compiled graph is not rebuilt for a new shape;
        # retries (few, odd-sized) always render eagerly.
        self.compiled, self.pad_to = compiled, pad_to
        self._seed = split_seed(self.seed, split)

    def _audio(self, params: dict[str, torch.Tensor], compiled: bool = False) -> torch.Tensor:
        params = {k: v.to(self.device) for k, v in params.items()}
        kwargs = {"compiled": True} if compiled else {}
        with torch.no_grad():  # (not inference_mode: retries patch these tensors in place)
            audio = self._render(params, sample_rate=self.sample_rate, duration=self.duration,
                                 note_off=self.note_off, **kwargs)
        return audio.detach().to("cpu", torch.float32).contiguous()

    @staticmethod
    def _bad(peak: torch.Tensor) -> torch.Tensor:
        return ~(torch.isfinite(peak) & (peak >= SILENCE_PEAK))

    def render(self, start: int, count: int) -> Batch:
        drawn = max(count, self.pad_to) if self.compiled else count
        params = self.chain.sample(drawn, seed=self._seed, offset=start)
        audio = self._audio(params, self.compiled)
        if drawn > count:  # drop the padding rows
            audio = audio[:count].clone()
            params = {k: v[:count].clone() for k, v in params.items()}
        retries = torch.zeros(count, dtype=torch.int64)
        peak = peaks(audio)
        bad = self._bad(peak).nonzero().flatten()
        for attempt in range(1, MAX_RETRIES + 1):
            if len(bad) == 0:
                break
            seed = retry_seed(self.seed, self.split, attempt)
            draws = [self.chain.sample(1, seed=seed, offset=start + int(j)) for j in bad]
            fresh = {k: torch.cat([d[k] for d in draws]) for k in draws[0]}
            fresh_audio = self._audio(fresh)
            for key, value in fresh.items():
                params[key][bad] = value
            fresh_peak = peaks(fresh_audio)
            audio[bad], peak[bad], retries[bad] = fresh_audio, fresh_peak, attempt
            bad = bad[self._bad(fresh_peak)]
        if len(bad):
            raise DiffmoogError(
                f"chain '{self.chain.name}' rendered silence or NaN for item {start + int(bad[0])} "
                f"in {MAX_RETRIES + 1} draws; check its parameter ranges")
        return Batch(start, params, audio, retries, peak)
