"""The training objective: loss terms weighted by step-based ramps, logged raw and weighted."""
from __future__ import annotations

import torch
from torch import nn

from diffmoog.analysis.spectral_loss import MultiResolutionSTFTLoss
from diffmoog.chain import SEED_KEY
from diffmoog.train.config import LossConfig, Ramp
from diffmoog.train.losses import ChainLoss, LogMelLoss, ParamLoss, WassersteinTimeLoss
from diffmoog.train.schedule import ramp_value

SPECTRAL = ("mrstft", "logmel", "wasserstein")


def ever_on(ramp: Ramp) -> bool:
    """Whether a loss weight ramp is ever non-zero (so the loss, or the real-audio data, is used)."""
    return ramp.start != 0 or (ramp.end is not None and ramp.end != 0)


class Objective(nn.Module):
    def __init__(self, chain, cfg: LossConfig, real_weight: Ramp, hard_categorical: bool = False):
        super().__init__()
        self.chain, self.cfg, self.real_weight, self.hard = chain, cfg, real_weight, hard_categorical
        sr = chain.sample_rate
        self.terms = nn.ModuleDict({
            "param": ParamLoss(chain.free_params, cfg.param.kind),
            "mrstft": MultiResolutionSTFTLoss(cfg.mrstft.fft_sizes, cfg.mrstft.hop_sizes, cfg.mrstft.win_lengths,
                                              impl=cfg.mrstft.impl),
            "logmel": LogMelLoss(sr, cfg.logmel.n_fft, cfg.logmel.hop, cfg.logmel.n_mels),
            "wasserstein": WassersteinTimeLoss(sr, cfg.wasserstein.n_fft, cfg.wasserstein.hop),
        })
        nodes = cfg.chain.nodes or [n for n in chain.spec.nodes if n != chain.spec.output]
        unknown = [n for n in nodes if n not in chain.spec.nodes]
        if unknown:
            from diffmoog.errors import ConfigError, did_you_mean
            raise ConfigError(f"losses.chain.nodes: unknown node '{unknown[0]}'"
                              f"{did_you_mean(unknown[0], chain.spec.nodes)}")
        self.terms["chain"] = ChainLoss(nodes, cfg.chain.n_fft, cfg.chain.hop)
        self.ramps = {name: getattr(cfg, name).weight for name in ("param", *SPECTRAL, "chain")}
        self.enabled = {name for name, ramp in self.ramps.items() if ever_on(ramp)}
        self.uses_real = ever_on(real_weight)

    def weights(self, step: int) -> dict[str, float]:
        out = {name: ramp_value(self.ramps[name], step) for name in self.ramps}
        out["real"] = ramp_value(self.real_weight, step)
        return out

    def render(self, outputs: dict, like: dict | None, n_samples: int, note_off, return_nodes=False):
        params = self.chain.from_logits(outputs, hard=self.hard)
        if like is not None and SEED_KEY in like:
            params[SEED_KEY] = like[SEED_KEY]
        return self.chain.render(params, duration=n_samples / self.chain.sample_rate, note_off=note_off,
                                 return_nodes=return_nodes)

    def forward(self, outputs: dict, batch: dict, step: int, note_off, real_outputs: dict | None = None,
                real_audio: torch.Tensor | None = None, log: bool = False):
        """Total loss and, per term, (raw, weighted) floats. Terms whose weight is zero at this step
        are computed without gradients only when `log` is set, so their raw value stays visible."""
        w = self.weights(step)
        total = outputs[next(iter(outputs))].new_zeros(())
        logged: dict[str, tuple[float, float]] = {}

        def add(name, fn, weight):
            nonlocal total
            if weight != 0:
                value = fn()
                total = total + weight * value
            elif log and name in self.enabled:
                with torch.no_grad():
                    value = fn()
            else:
                return
            logged[name] = (float(value.detach()), float(weight) * float(value.detach()))

        target, audio = batch["params"], batch["audio"]
        add("param", lambda: self.terms["param"](outputs, target), w["param"])

        spectral_needed = any(w[n] != 0 for n in (*SPECTRAL, "chain")) or (
            log and self.enabled & {*SPECTRAL, "chain"})
        if spectral_needed:
            grad = any(w[n] != 0 for n in (*SPECTRAL, "chain"))
            with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
                want_nodes = "chain" in self.enabled
                rendered = self.render(outputs, target, audio.shape[-1], note_off, return_nodes=want_nodes)
            pred, pred_nodes = rendered if want_nodes else (rendered, None)
            for name in SPECTRAL:
                add(name, lambda n=name: self.terms[n](pred, audio), w[name])
            if want_nodes:
                with torch.no_grad():
                    _, target_nodes = self.chain.render(target, duration=audio.shape[-1] / self.chain.sample_rate,
                                                        note_off=note_off, return_nodes=True)
                add("chain", lambda: self.terms["chain"](pred_nodes, target_nodes), w["chain"])

        # Real audio has no labels: only the spectral terms, scaled by the real-audio ramp.
        if real_outputs is not None and real_audio is not None:
            real_pred = self.render(real_outputs, None, real_audio.shape[-1], note_off)
            for name in SPECTRAL:
                if name in self.enabled:
                    add(f"real_{name}", lambda n=name: self.terms[n](real_pred, real_audio),
                        w["real"] * w[name])
        return total, logged
