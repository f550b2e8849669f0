"""Seconds per training step: batch 32 x 4 s, GRU encoder, 3-resolution STFT loss through Chain.render.

Prints JSON. Target on the 2-core CPU: <= 1.0 s/step.
    .venv/bin/python benchmarks/train_step.py [--batch-size 32 --duration 4 --steps 3 --threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from diffmoog import Chain
from diffmoog.train.config import FeatureConfig, ModelConfig, Ramp, LossConfig
from diffmoog.train.encoders import Encoder
from diffmoog.train.objective import Objective


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--chain", default="REDUCED_SIMPLE_OSC")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--duration", type=float, default=4.0)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    chain = Chain.load(args.chain)
    model = Encoder.for_chain(chain, FeatureConfig(), ModelConfig(kind="gru")).to(args.device)
    losses = LossConfig()
    losses.param.weight = Ramp(start=0.0)
    losses.mrstft.weight = Ramp(start=1.0)  # 3 resolutions: 2048/1024/512
    objective = Objective(chain, losses, Ramp(start=0.0)).to(args.device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    params = chain.sample(args.batch_size, seed=0, device=args.device)
    with torch.no_grad():
        audio = chain.render(params, duration=args.duration)
    batch = {"audio": audio, "params": params}

    def step():
        parts = {}
        t0 = time.perf_counter()
        out = model(audio)
        t1 = time.perf_counter()
        loss, _ = objective(out, batch, step=0, note_off=chain.spec.note_off)
        t2 = time.perf_counter()
        opt.zero_grad()
        loss.backward()
        opt.step()
        t3 = time.perf_counter()
        parts.update(encoder_forward_s=t1 - t0, render_and_loss_forward_s=t2 - t1, backward_and_update_s=t3 - t2)
        return t3 - t0, parts

    step()  # warm-up (allocator, kernels)
    times, parts = [], []
    for _ in range(args.steps):
        total, part = step()
        times.append(total)
        parts.append(part)
    seconds = sorted(times)[len(times) // 2]
    median_parts = {k: sorted(p[k] for p in parts)[len(parts) // 2] for k in parts[0]}
    print(json.dumps({"benchmark": "train_step", "chain": args.chain, "batch_size": args.batch_size,
                      "duration_s": args.duration, "encoder": "gru", "loss": "mrstft x3 via Chain.render",
                      "threads": args.threads, "device": args.device, "seconds_per_step": round(seconds, 4),
                      "all_steps_s": [round(t, 4) for t in times], "breakdown_s": {k: round(v, 4) for k, v in
                                                                                  median_parts.items()},
                      "target_s": 1.0, "meets_target": seconds <= 1.0, "torch": torch.__version__,
                      "cpu": platform.processor() or platform.machine(), "load_avg_1m": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
