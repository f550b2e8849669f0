"""diffmoog-train / diffmoog-eval as a user runs them: every shipped config trains a few steps on a
tiny dataset, checkpoints, resumes and is evaluated; a killed run resumes to identical metrics;
bad configs fail with one line and exit code 2."""
import csv
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from diffmoog.train import cli, eval_cli
from diffmoog.train.checkpoint import load_model

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(cmd, cwd, **kw):
    return subprocess.run([str(BIN / cmd[0]), *cmd[1:]], cwd=cwd, capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """12 training and 6 validation sounds of 0.5 s, made by create-data."""
    root = tmp_path_factory.mktemp("data")
    for split, size in (("train", 12), ("val", 6)):
        out = run(["create-data", "-c", "REDUCED_SIMPLE_OSC", "--size", str(size), "-s", split, "-sd", "0.5",
                   "-o", str(root), "--no-progress"], cwd=root)
        assert out.returncode == 0, out.stderr
    return root / "reduced_simple_osc"


def tiny(data: Path, out: Path, steps: int = 2) -> list[str]:
    sets = [f"data.train={data / 'train'}", f"data.val={data / 'val'}", f"train.steps={steps}",
            "train.batch_size=3", "train.val_every=2", "train.ckpt_every=1", "train.log_every=1",
            "train.val_batch_size=6", "train.audio_items=1", "model.hidden=32", "model.layers=1",
            "run.threads=1", "train.progress=false", "optim.warmup_steps=0", f"run.output_dir={out}"]
    return [arg for s in sets for arg in ("--set", s)]


# Move every procedure's ramps into the first steps so a 3-step run passes through all phases.
RAMPS = {
    "params_only": [],
    "synth": ["losses.param.weight.start_step=1", "losses.param.weight.end_step=2",
              "losses.mrstft.weight.start_step=1", "losses.mrstft.weight.end_step=2"],
    "real": ["losses.param.weight.start_step=0", "losses.param.weight.end_step=1",
             "losses.mrstft.weight.start_step=0", "losses.mrstft.weight.end_step=1",
             "data.real_weight.start_step=0", "data.real_weight.end_step=1"],
    "mixed": [],
    "flow": ["model.flow.hidden=32", "model.flow.blocks=1", "model.flow.sample_steps=2"],
}


@pytest.fixture
def keep_threads():
    """In-process runs set run.threads=1; give the rest of the suite its thread count back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def cli_run(tool, args, cwd, capsys):
    """A CLI in-process (subprocess start-up costs seconds on the shared CPU) -> (code, out, err)."""
    capsys.readouterr()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        code = tool.main(args)
    finally:
        os.chdir(old)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def read_metrics(run_dir: Path) -> list[dict]:
    with (run_dir / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("name", ["params_only", "synth", "real", "mixed", "flow"])
def test_shipped_config_trains_resumes_evaluates(name, tiny_data, tmp_path, nsynth_fixture_dir, capsys,
                                                 keep_threads):
    """params_only goes through real subprocesses; the others run the same entry points in-process."""
    extra = [f"data.real_train={nsynth_fixture_dir}", f"data.real_val={nsynth_fixture_dir}",
             "data.max_val_items=2"] if name in ("real", "mixed") else []
    sets = tiny(tiny_data, tmp_path / "exp") + [a for s in RAMPS[name] + extra for a in ("--set", s)]
    run_dir = tmp_path / "exp" / name
    report = tmp_path / "report.json"
    steps = [(cli, "diffmoog-train", ["-c", str(REPO / "configs" / f"{name}.yaml"), *sets]),
             (cli, "diffmoog-train", ["--resume", str(run_dir), "--set", "train.steps=3"]),
             (eval_cli, "diffmoog-eval", ["--checkpoint", str(run_dir), "--data", str(tiny_data / "val"),
                                          "--baseline", "random", "-o", str(report), "--no-progress"])]
    outputs = []
    for tool, command, args in steps:
        if name == "params_only":
            out = run([command, *args], cwd=tmp_path)
            code, stdout, stderr = out.returncode, out.stdout, out.stderr
        else:
            code, stdout, stderr = cli_run(tool, args, tmp_path, capsys)
        assert code == 0, stderr
        outputs.append(stdout + stderr)
        if command == "diffmoog-train" and len(outputs) == 1:
            check_first_run(run_dir, name)
    # The resumed run continues at step 2 instead of starting over.
    assert f"resumed {run_dir} at step 2" in outputs[1]
    assert json.loads((run_dir / "checkpoints/last/state.json").read_text())["step"] == 3
    result = json.loads(report.read_text())
    assert result["n_items"] == 6 and result["checkpoint_step"] in (2, 3)
    if importlib.util.find_spec("diffmoog.analysis.frechet") is not None:
        assert result["frechet_logmel"]["value"] >= 0 and result["frechet_logmel_random_preset"]["value"] >= 0
    for who in ("encoder", "random_preset"):
        metrics = result["metrics"][who]
        assert metrics["lsd"] > 0 and "param_mae/saw.freq_hz" in metrics and "mfcc_mae" in metrics


def test_drum_flow_config_trains_on_drum_hits(tmp_path, capsys, keep_threads):
    """configs/drum_flow.yaml (the drum flow checkpoint's recipe) on a tiny DRUM_METAL dataset."""
    for split, size in (("train", 6), ("val", 3)):
        out = run(["create-data", "-c", "DRUM_METAL", "--size", str(size), "-s", split, "-sd", "0.5",
                   "-o", str(tmp_path), "--no-progress"], cwd=tmp_path)
        assert out.returncode == 0, out.stderr
    data = tmp_path / "drum_metal"
    sets = tiny(data, tmp_path / "exp") + [a for s in RAMPS["flow"] + ["train.val_batch_size=3"]
                                           for a in ("--set", s)]
    code, _, stderr = cli_run(cli, ["-c", "drum_flow", *sets], tmp_path, capsys)
    assert code == 0, stderr
    model, chain, _ = load_model(tmp_path / "exp" / "drum_flow")
    assert chain.name == "DRUM_METAL" and hasattr(model, "sample")


def check_first_run(run_dir: Path, name: str) -> None:
    for path in ("config.yaml", "metrics.csv", "checkpoints/last/model.safetensors",
                 "checkpoints/last/training.pt", "checkpoints/best/state.json"):
        assert (run_dir / path).exists(), path
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"audio": 0, "images": 0}).Reload()
    tags = events.Tags()
    assert {"audio/0_target", "audio/0_predicted"} <= set(tags["audio"])
    assert "spectrogram/0" in tags["images"]
    term = "flow" if name == "flow" else "param"
    assert {"train/loss", f"train/{term}_raw", "val/lsd"} <= set(tags["scalars"])
    rows = read_metrics(run_dir)
    names = {r["metric"] for r in rows if r["split"] == "train"}
    assert {"loss", f"{term}_raw", f"{term}_weighted", "lr"} <= names
    if name == "flow":  # the pitch of every training item, tracked once for the run
        assert len(list((run_dir / "pitch").glob("reduced_simple_osc-train-*.safetensors"))) == 1
    if name not in ("params_only", "flow"):
        assert {"mrstft_raw", "mrstft_weighted"} <= names
    if name in ("real", "mixed"):
        assert "real_mrstft_weighted" in names
        assert any(r["split"] == "val_real" for r in rows)
    assert {"lsd", "param_mae/lpf.cutoff_hz"} <= {r["metric"] for r in rows if r["split"] == "val"}


def test_load_model_renders_predictions(tiny_data, tmp_path, keep_threads):
    assert cli.main(["-c", str(REPO / "configs/params_only.yaml"), *tiny(tiny_data, tmp_path / "exp", steps=1)]) == 0
    model, chain, features = load_model(tmp_path / "exp" / "params_only")
    audio = torch.zeros(2, 8000)
    with torch.no_grad():
        outputs = model(audio)
    assert set(outputs) == set(chain.param_keys)
    assert all(((v >= 0) & (v <= 1)).all() for v in outputs.values())
    assert chain.render(chain.from_logits(outputs), duration=0.5).shape == (2, 8000)
    assert features.kind == "logmel"


def test_killed_run_resumes_to_identical_metrics(tiny_data, tmp_path, keep_threads):
    """SIGKILL a run mid-training, resume it, and compare with an uninterrupted run at step 6."""
    spectral = ["losses.mrstft.weight={start: 0.0, end: 1.0, start_step: 1, end_step: 3}",
                "train.val_every=3", "optim.lr=0.003"]
    common = tiny(tiny_data, tmp_path / "a", steps=6) + [a for s in spectral for a in ("--set", s)]
    assert cli.main(["-c", str(REPO / "configs/synth.yaml"), *common]) == 0
    killed_sets = [a.replace(str(tmp_path / "a"), str(tmp_path / "b")) for a in common]
    proc = subprocess.Popen([str(BIN / "diffmoog-train"), "-c", str(REPO / "configs/synth.yaml"), *killed_sets],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = tmp_path / "b" / "synth" / "checkpoints" / "last" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        try:
            if json.loads(state.read_text())["step"] >= 2:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = json.loads(state.read_text())["step"]
    assert 2 <= killed_at < 6, f"the run was not killed mid-training (step {killed_at})"
    assert cli.main(["--resume", str(tmp_path / "b" / "synth")]) == 0
    a, b = tmp_path / "a" / "synth", tmp_path / "b" / "synth"
    val = lambda rows: {(r["step"], r["metric"]): r["value"] for r in rows if r["split"] == "val"}  # noqa: E731
    rows_a, rows_b = read_metrics(a), read_metrics(b)
    assert val(rows_a) and val(rows_a) == val(rows_b)
    losses = lambda rows: [(r["step"], r["metric"], r["value"]) for r in rows  # noqa: E731
                           if r["split"] == "train" and r["metric"] != "steps_per_s"]
    assert losses(rows_a) == losses(rows_b)
    wa = load_file(str(a / "checkpoints/last/model.safetensors"))
    wb = load_file(str(b / "checkpoints/last/model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_dataset_chain_mismatch_is_one_line(tiny_data, tmp_path, capsys, keep_threads):
    bad = tmp_path / "other" / "train"
    bad.mkdir(parents=True)
    meta = json.loads((tiny_data / "train" / "metadata.json").read_text())
    meta["chain"]["nodes"]["lpf"]["fixed"] = {"filter_type": "highpass"}
    meta["chain"]["name"] = meta["chain_name"] = "MY_HIGHPASS"
    (bad / "metadata.json").write_text(json.dumps(meta))
    code, _, err = cli_run(cli, ["-c", str(REPO / "configs/params_only.yaml"), *tiny(tiny_data, tmp_path / "exp"),
                                 "--set", f"data.train={bad}"], tmp_path, capsys)
    assert code == 2
    assert err.count("\n") == 1 and "MY_HIGHPASS" in err and "differs" in err


@pytest.mark.parametrize("args, expected", [
    (["--set", "train.stesp=3"], "unknown key 'train.stesp'; did you mean 'steps'?"),
    (["--set", "optim.lr=fast"], "key 'optim.lr': expected a number, got 'fast'"),
    (["--set", "model.kind=transformer"], "unknown value 'transformer'"),
    (["--set", "chain=REDUCED_SIMPLE_OSX"], "did you mean 'REDUCED_SIMPLE_OSC'"),
    (["--set", "data.train=/nonexistent/split"], "/nonexistent/split: dataset folder not found"),
])
def test_bad_config_cli(args, expected, tmp_path, capsys, keep_threads):
    code, _, err = cli_run(cli, ["-c", str(REPO / "configs/params_only.yaml"), *args,
                                 "--set", f"run.output_dir={tmp_path}"], tmp_path, capsys)
    assert code == 2, err
    assert err.count("\n") == 1 and expected in err, err


def test_bad_yaml_file_and_eval_errors(tmp_path):
    cfg = tmp_path / "typo.yaml"
    cfg.write_text("chain: REDUCED_SIMPLE_OSC\ntrain:\n  batch_sise: 8\n")
    out = run(["diffmoog-train", "-c", str(cfg)], cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert str(cfg) in out.stderr and "did you mean 'batch_size'" in out.stderr
    out = run(["diffmoog-eval", "--checkpoint", str(tmp_path / "nothing"), "--data", str(tmp_path)], cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "no checkpoint found" in out.stderr
    assert eval_cli.main(["--data", str(tmp_path)]) == 2


def test_time_budget_stops_with_a_resumable_checkpoint(tmp_path, keep_threads):
    sets = ["data.train=null", "data.val=null", "data.duration_s=0.25", "data.val_size=2", "train.steps=50",
            "train.batch_size=2", "train.max_minutes=1e-9", "model.hidden=16", "model.layers=1",
            "train.progress=false", "run.threads=1", f"run.output_dir={tmp_path}"]
    assert cli.main(["-c", str(REPO / "configs/params_only.yaml"), *[a for s in sets for a in ("--set", s)]]) == 0
    state = json.loads((tmp_path / "params_only/checkpoints/last/state.json").read_text())
    assert state["step"] == 1 and state["total_steps"] == 50
    assert any(r["split"] == "val" and r["step"] == "1" for r in read_metrics(tmp_path / "params_only"))
