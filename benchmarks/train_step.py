"""Seconds per training step: batch 32 x 4 s, GRU encoder, 3-resolution STFT loss through Chain.render.

Prints JSON. Target on the 2-core CPU: <= 1.0 s/step.
    .venv/bin/python benchmarks/train_step.py [--batch-size 32 --duration 4 --steps 3 --threads 2]

The step is the trainer's (synth procedure once the spectral ramp is on: encoder -> Chain.render ->
MRSTFT loss, AdamW with gradient clipping), run in timed parts. Each backward part stops at a
detached leaf, so the parts add up to the step and do the same work as one backward:
features, encoder forward, render forward, loss forward, loss backward (to the audio), render
backward (to the encoder's outputs), encoder backward, optimizer (clip + AdamW).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from diffmoog import Chain
from diffmoog.train.config import FeatureConfig, LossConfig, ModelConfig, Ramp
from diffmoog.train.encoders import Encoder
from diffmoog.train.objective import Objective

PARTS = ("features", "encoder_forward", "render_forward", "loss_forward", "loss_backward", "render_backward",
         "encoder_backward", "optimizer")


def _leaf(outputs: dict) -> dict:
    return {k: v.detach().requires_grad_(True) for k, v in outputs.items()}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--chain", default="REDUCED_SIMPLE_OSC")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--duration", type=float, default=4.0)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--device", default="cpu")
    p.add_argument("--mrstft-impl", default="fast", choices=("fast", "autograd", "auraloss"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    chain = Chain.load(args.chain)
    model = Encoder.for_chain(chain, FeatureConfig(), ModelConfig(kind="gru")).to(device)
    losses = LossConfig()
    losses.param.weight = Ramp(start=0.0)
    losses.mrstft.weight = Ramp(start=1.0)  # 3 resolutions: 2048/1024/512
    losses.mrstft.impl = args.mrstft_impl
    objective = Objective(chain, losses, Ramp(start=0.0)).to(device)
    mrstft = objective.terms["mrstft"]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    params = chain.sample(args.batch_size, seed=0, device=device)
    with torch.no_grad():
        audio = chain.render(params, duration=args.duration)
    n_samples, note_off = audio.shape[-1], chain.spec.note_off

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def step() -> tuple[dict, torch.Tensor]:
        marks = [time.perf_counter()]

        def mark():
            sync()
            marks.append(time.perf_counter())
        feats = model.features(audio)
        mark()
        outputs = model.from_features(feats)
        mark()
        out_leaf = _leaf(outputs)
        pred = objective.render(out_leaf, params, n_samples, note_off)
        mark()
        pred_leaf = pred.detach().requires_grad_(True)
        loss = mrstft(pred_leaf, audio)
        mark()
        loss.backward()
        mark()
        pred.backward(pred_leaf.grad)
        mark()
        torch.autograd.backward(list(outputs.values()), [out_leaf[k].grad for k in outputs])
        mark()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        mark()
        return {name: b - a for name, a, b in zip(PARTS, marks, marks[1:])}, loss.detach()

    with torch.no_grad():  # the split step computes the trainer's loss
        whole, _ = objective(model(audio), {"audio": audio, "params": params}, 0, note_off)
    _, loss = step()  # also the warm-up (allocator, kernels)
    assert torch.allclose(loss, whole, rtol=1e-4), (float(loss), float(whole))
    runs = [step()[0] for _ in range(args.steps)]
    totals = [sum(r.values()) for r in runs]
    median = sorted(range(len(runs)), key=totals.__getitem__)[len(runs) // 2]
    seconds = totals[median]
    print(json.dumps({"benchmark": "train_step", "chain": args.chain, "batch_size": args.batch_size,
                      "duration_s": args.duration, "encoder": "gru",
                      "loss": f"mrstft x3 via Chain.render ({args.mrstft_impl})", "threads": args.threads,
                      "device": args.device, "seconds_per_step": round(seconds, 4),
                      "all_steps_s": [round(t, 4) for t in totals],
                      "breakdown_s": {k: round(v, 4) for k, v in runs[median].items()},
                      "breakdown_min_s": {k: round(min(r[k] for r in runs), 4) for k in PARTS},
                      "target_s": 1.0, "meets_target": seconds <= 1.0, "torch": torch.__version__,
                      "cpu": platform.processor() or platform.machine(), "load_avg_1m": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
