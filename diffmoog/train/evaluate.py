"""Evaluation loops shared by periodic validation and `diffmoog-eval`."""
from __future__ import annotations

import torch
from tqdm import tqdm

from diffmoog.chain import SEED_KEY
from diffmoog.train.metrics import Aggregate, audio_metrics, param_metrics


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
