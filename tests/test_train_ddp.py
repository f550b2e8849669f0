"""DDP on CPU: `torchrun --nproc_per_node 2` on the gloo backend matches one process with the
same global batch (parameter loss, on-the-fly data so no dataset is needed)."""
import csv
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def train(tmp_path, name, batch, launcher):
    sets = ["data.duration_s=0.25", "data.val_size=4", f"train.batch_size={batch}", "train.steps=2",
            "train.val_every=2", "train.ckpt_every=2", "train.log_every=1", "train.val_batch_size=4",
            "train.audio_items=0", "model.hidden=32", "model.layers=1", "run.threads=1", "train.progress=false",
            "optim.warmup_steps=0", f"run.output_dir={tmp_path}", f"run.name={name}", "run.device=cpu",
            "data.train=null", "data.val=null"]
    args = ["-c", str(REPO / "configs/params_only.yaml")] + [a for s in sets for a in ("--set", s)]
    out = subprocess.run(launcher + args, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    with (tmp_path / name / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    losses = {int(r["step"]): float(r["value"]) for r in rows if r["split"] == "train" and r["metric"] == "loss"}
    return losses, load_file(str(tmp_path / name / "checkpoints/last/model.safetensors"))


def test_ddp_two_cpu_processes_match_single_process(tmp_path):
    ddp_losses, ddp_weights = train(tmp_path, "ddp", 2, [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2",
                                                         "--module", "diffmoog.train.cli"])
    one_losses, one_weights = train(tmp_path, "single", 4, [str(BIN / "diffmoog-train")])
    assert sorted(ddp_losses) == [1, 2]
    # Rank 0 logs the mean over ranks: the loss of the same 4 sounds one process sees at once.
    for step in (1, 2):
        assert abs(ddp_losses[step] - one_losses[step]) < 1e-5, (ddp_losses, one_losses)
    # Averaged gradients give the same update as the full batch.
    assert all(torch.allclose(ddp_weights[k], one_weights[k], atol=1e-5) for k in one_weights)
    # Only rank 0 wrote the run folder.
    assert len(list((tmp_path / "ddp" / "tensorboard").glob("events.out.tfevents.*"))) == 1
