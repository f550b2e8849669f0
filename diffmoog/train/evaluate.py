"""Evaluation loops shared by periodic validation and `diffmoog-eval`."""
from __future__ import annotations

import torch
from tqdm import tqdm

from diffmoog.analysis.metrics import Aggregate, audio_metrics, param_metrics
from diffmoog.chain import SEED_KEY
from diffmoog.errors import ConfigError, DiffmoogError


@torch.no_grad()
def evaluate(model, chain, batches, device, note_off=None, baseline_seed: int | None = None,
             progress: bool = False, keep_first: bool = False):
    """Mean metrics over `batches` (dicts with "audio" and optionally "params").

    With `baseline_seed`, the encoder is replaced by random presets (the random-preset baseline).
    Returns (metrics, first) where `first` holds the first batch's target/predicted audio when
    `keep_first` (for TensorBoard).
    """
    agg, first, offset = Aggregate(), None, 0
    was_training = model.training if model is not None else False
    if model is not None:
        model.eval()
    for batch in tqdm(batches, desc="eval", leave=False, disable=not progress):
        audio = batch["audio"].to(device).float()
        n = audio.shape[0]
        if baseline_seed is not None:
            pred = chain.sample(n, seed=baseline_seed, offset=offset, device=device)
            pred.pop(SEED_KEY)
        else:
            pred = chain.from_logits(model(audio), hard=True)
        offset += n
        target = batch.get("params")
        if target is not None:
            target = {k: v.to(device) for k, v in target.items()}
            if SEED_KEY in target:
                pred[SEED_KEY] = target[SEED_KEY]
        audio_hat = chain.render(pred, duration=audio.shape[-1] / chain.sample_rate, note_off=note_off)
        values = audio_metrics(audio_hat, audio, chain.sample_rate)
        if target is not None:
            values.update(param_metrics(chain, pred, target))
        agg.add(values)
        if keep_first and first is None:
            first = {"target": audio.cpu(), "pred": audio_hat.cpu()}
    if model is not None and was_training:
        model.train()
    return agg.means(), first


def summarize(metrics: dict[str, float]) -> dict[str, float]:
    """Add overall means: physical units differ per parameter, so only the normalised MAEs and the
    accuracies are averaged across parameters."""
    out = dict(metrics)
    for prefix, name in (("param_mae_norm/", "param_mae_norm_mean"), ("param_acc/", "param_acc_mean")):
        values = [v for k, v in metrics.items() if k.startswith(prefix)]
        if values:
            out[name] = sum(values) / len(values)
    return out


# A target whose peak is below -90 dBFS (one 16-bit step) is silence: spectral convergence
# divides by its spectrum's norm and LSD compares against the log floor, so it is not scored.
SILENT_PEAK = 10.0 ** (-90.0 / 20.0)


class ScoredItems:
    """The items `diffmoog-eval` scores: items 0..limit-1 of a SyntheticSplit or RealAudio source,
    minus those that cannot be read (skipped and counted, never replaced by a copy of another
    item, unlike training's substitution) and those whose target audio is silent.

    The first `batches()` pass decides and records which items are kept (`unreadable`, `silent`,
    `kept`); later passes (baseline, Fréchet) read exactly the kept items again.
    """

    def __init__(self, data, limit: int | None = None, warn=None):
        self.data = data
        self.n_considered = len(data) if not limit else min(int(limit), len(data))
        self.warn = warn or (lambda message: None)
        self.kept: list[int] | None = None
        self.unreadable: dict[str, str] = {}
        self.silent: list[str] = []
        # Notes an NSynth index left out before any item was read (missing wav, bad metadata), by reason.
        self.index_skipped: dict[str, int] = dict(getattr(getattr(data, "dataset", None), "skipped", None) or {})

    def _collate(self, items: list[dict]) -> dict:
        if hasattr(self.data, "to_batch"):  # a create-data split: audio and parameters
            return self.data.to_batch(self.data.collate(items))
        return {"audio": torch.stack([item["audio"] for item in items]).float()}

    @staticmethod
    def _name(item: dict, index: int) -> str:
        for key in ("path", "note_str", "id"):
            if key in item:
                return str(item[key])
        return f"item {index}"

    def _read(self, index: int) -> dict:
        from diffmoog.data.audio_io import UnreadableItem, no_substitution
        with no_substitution():
            try:
                return self.data.dataset[index]
            except UnreadableItem:
                raise
            except DiffmoogError as error:  # a create-data split's unreadable wav, keyed by its id
                ids = getattr(self.data.dataset, "ids", None)
                raise UnreadableItem(ids[index] if ids else f"item {index}", str(error)) from None

    def _scan(self):
        from diffmoog.data.audio_io import UnreadableItem
        kept, self.unreadable, self.silent = [], {}, []
        for index in range(self.n_considered):
            try:
                item = self._read(index)
            except UnreadableItem as error:
                self.unreadable[error.key] = error.reason
                self.warn(f"skipped unreadable item: {error.reason}")
                continue
            if float(item["audio"].abs().max()) < SILENT_PEAK:
                name = self._name(item, index)
                self.silent.append(name)
                self.warn(f"skipped silent target {name} (peak below -90 dBFS; spectral metrics are undefined)")
                continue
            kept.append(index)
            yield item
        self.kept = kept

    def _reread(self):
        from diffmoog.data.audio_io import UnreadableItem
        for index in self.kept:
            try:
                yield self._read(index)
            except UnreadableItem as error:
                raise ConfigError(f"{error.reason} (it was readable earlier in this evaluation)") from None

    def batches(self, batch_size: int):
        items, chunk = (self._scan() if self.kept is None else self._reread()), []
        for item in items:
            chunk.append(item)
            if len(chunk) == batch_size:
                yield self._collate(chunk)
                chunk = []
        if chunk:
            yield self._collate(chunk)

    @property
    def n_scored(self) -> int:
        if self.kept is None:
            raise RuntimeError("ScoredItems.n_scored before a full batches() pass")
        return len(self.kept)

    def counts(self) -> dict:
        return {"considered": self.n_considered, "scored": self.n_scored,
                "skipped_unreadable": len(self.unreadable), "skipped_silent": len(self.silent),
                "skipped_at_index": sum(self.index_skipped.values())}
