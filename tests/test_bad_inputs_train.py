"""diffmoog-train given bad input, run as a user runs it (a subprocess in an unrelated folder):
built-in configs by name, misspelt config keys, a diverging run, broken or unsafe checkpoints and a
missing dataset all give one clear line and exit code 2, and never damage what is on disk."""
import hashlib
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from diffmoog.train import checkpoint

BIN = Path(sys.executable).parent
CONFIGS = ("mixed", "params_only", "real", "synth")


def run(cmd, cwd):
    return subprocess.run([str(BIN / cmd[0]), *cmd[1:]], cwd=cwd, capture_output=True, text=True, timeout=600)


def one_line_error(out, *needles):
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("diffmoog-train: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def tiny(data: Path, out: Path, steps: int = 2) -> list[str]:
    sets = [f"data.train={data / 'train'}", f"data.val={data / 'val'}", f"train.steps={steps}",
            "train.batch_size=3", "train.val_every=2", "train.ckpt_every=1", "train.log_every=1",
            "train.val_batch_size=6", "train.audio_items=1", "model.hidden=32", "model.layers=1",
            "run.threads=1", "train.progress=false", "optim.warmup_steps=0", f"run.output_dir={out}"]
    return [arg for s in sets for arg in ("--set", s)]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """12 training and 6 validation sounds of 0.5 s, made by create-data."""
    root = tmp_path_factory.mktemp("data")
    for split, size in (("train", 12), ("val", 6)):
        out = run(["create-data", "-c", "REDUCED_SIMPLE_OSC", "--size", str(size), "-s", split, "-sd", "0.5",
                   "-o", str(root), "--no-progress"], cwd=root)
        assert out.returncode == 0, out.stderr
    return root / "reduced_simple_osc"


@pytest.fixture(scope="module")
def good_run(tiny_data, tmp_path_factory):
    """A finished 2-step run of the built-in params_only config, named from an unrelated folder."""
    cwd = tmp_path_factory.mktemp("elsewhere")
    out = run(["diffmoog-train", "-c", "params_only", *tiny(tiny_data, cwd / "exp")], cwd=cwd)
    assert out.returncode == 0, out.stderr
    run_dir = cwd / "exp" / "params_only"
    assert (run_dir / "checkpoints" / "last" / checkpoint.TRAINING_FILE).is_file()
    return run_dir


def copy_run(good_run, tmp_path) -> Path:
    dest = tmp_path / "run"
    shutil.copytree(good_run, dest)
    return dest


# -- 5: built-in configs by name from any folder ---------------------------------------------------------
@pytest.mark.parametrize("name", ["params_only", "params_only.yaml"])
def test_builtin_config_by_name_from_any_folder(tmp_path, name):
    # No dataset here, so the run stops at the data: proof that the built-in config was read.
    out = run(["diffmoog-train", "-c", name], cwd=tmp_path)
    line = one_line_error(out, "data/reduced_simple_osc/train: dataset folder not found")
    assert "cannot read config" not in line


def test_builtin_config_trains(good_run):
    assert (good_run / "checkpoints" / "best" / checkpoint.MODEL_FILE).is_file()
    assert "name: params_only" in (good_run / "config.yaml").read_text()


def test_list_configs(tmp_path):
    out = run(["diffmoog-train", "--list-configs"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(None, 1) for line in out.stdout.strip().splitlines())
    assert sorted(lines) == sorted(CONFIGS)
    assert lines["params_only"].startswith("Parameter loss only")
    assert all(lines.values())


def test_unknown_config_name_suggests(tmp_path):
    line = one_line_error(run(["diffmoog-train", "-c", "parms_only"], cwd=tmp_path),
                          "parms_only", "did you mean 'params_only'?")
    for name in CONFIGS:
        assert name in line


def test_missing_config_path(tmp_path):
    one_line_error(run(["diffmoog-train", "-c", "sub/params_only.yaml"], cwd=tmp_path),
                   "sub/params_only.yaml: config file not found")


def test_existing_path_wins_over_builtin(tmp_path):
    (tmp_path / "params_only.yaml").write_text("chain: REDUCED_SIMPLE_OSC\nrun: {nmae: mine}\n")
    one_line_error(run(["diffmoog-train", "-c", "params_only.yaml"], cwd=tmp_path),
                   "params_only.yaml: unknown key 'run.nmae'; did you mean 'name'?")


# -- 4: unknown config-file keys at every level -------------------------------------------------------------
@pytest.mark.parametrize("text, needle", [
    ("chian: REDUCED_SIMPLE_OSC\n", "unknown key 'chian'; did you mean 'chain'?"),
    ("optim: {lr: 0.001, wieght_decay: 0.0}\n", "unknown key 'optim.wieght_decay'; did you mean 'weight_decay'?"),
    ("losses:\n  param:\n    weight: {strat: 1.0}\n", "unknown key 'losses.param.weight.strat'; did you mean 'start'?"),
    ("lr: 0.001\n", "unknown key 'lr'; did you mean 'optim.lr'?"),
    ("optim: {zzzz: 1}\n", "unknown key 'optim.zzzz' (valid keys under 'optim': lr,"),
])
def test_unknown_config_key_did_you_mean(tmp_path, text, needle):
    (tmp_path / "my.yaml").write_text(text)
    one_line_error(run(["diffmoog-train", "-c", "my.yaml"], cwd=tmp_path), "my.yaml: ", needle)


# -- 1: a diverging run ---------------------------------------------------------------------------------------
def test_diverging_run_one_line_and_no_bad_checkpoint(tiny_data, tmp_path):
    out = run(["diffmoog-train", "-c", "params_only", *tiny(tiny_data, tmp_path / "exp", steps=4),
               "--set", "optim.lr=1e30"], cwd=tmp_path)
    one_line_error(out, "training diverged", "optim.lr")
    for folder in (tmp_path / "exp").rglob(checkpoint.MODEL_FILE):
        assert checkpoint.check_finite(checkpoint.load_model(folder.parent)[0]) is None, folder


def test_diverged_model_never_overwrites_a_checkpoint(good_run, tmp_path):
    run_dir = copy_run(good_run, tmp_path)
    last = run_dir / "checkpoints" / "last"
    before = digest(last)
    model, _, _ = checkpoint.load_model(last)
    state = checkpoint.read_state(last)
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    with pytest.raises(checkpoint.DivergedError, match="training diverged .* is kept"):
        checkpoint.save(last, model, state, None)
    assert digest(last) == before
    assert not last.with_name("last.tmp").exists()
    checkpoint.load_model(last)  # still loadable


# -- 2, 3: broken or unsafe checkpoint files -------------------------------------------------------------
@pytest.mark.parametrize("size", [100, 0])
def test_resume_truncated_weights(good_run, tmp_path, size):
    run_dir = copy_run(good_run, tmp_path)
    bad = run_dir / "checkpoints" / "last" / checkpoint.MODEL_FILE
    with open(bad, "r+b") as f:
        f.truncate(size)
    before = digest(run_dir)
    line = one_line_error(run(["diffmoog-train", "--resume", str(run_dir), "--set", "train.steps=4"], cwd=tmp_path),
                          f"{bad}: cannot read weights", "run.init_from=")
    assert "checkpoints/best" in line
    assert digest(run_dir) == before


def test_truncated_training_state(good_run, tmp_path):
    run_dir = copy_run(good_run, tmp_path)
    bad = run_dir / "checkpoints" / "last" / checkpoint.TRAINING_FILE
    bad.write_bytes(bad.read_bytes()[:100])
    before = digest(run_dir)
    one_line_error(run(["diffmoog-train", "--resume", str(run_dir)], cwd=tmp_path),
                   f"{bad}: cannot read training state", "broken or truncated")
    assert digest(run_dir) == before


class _Payload:
    def __reduce__(self):
        return (print, ("payload ran",))


def test_pickle_payload_training_state_refused(good_run, tmp_path):
    run_dir = copy_run(good_run, tmp_path)
    bad = run_dir / "checkpoints" / "last" / checkpoint.TRAINING_FILE
    bad.write_bytes(pickle.dumps({"optimizer": _Payload()}))
    out = run(["diffmoog-train", "--resume", str(bad)], cwd=tmp_path)
    one_line_error(out, f"{bad}: cannot read training state", "pickled Python objects")
    assert "payload ran" not in out.stdout + out.stderr


def test_broken_best_falls_back_to_last(good_run, tiny_data, tmp_path):
    run_dir = copy_run(good_run, tmp_path)
    bad = run_dir / "checkpoints" / "best" / checkpoint.MODEL_FILE
    bad.write_bytes(b"")
    out = run(["diffmoog-eval", "--checkpoint", str(run_dir), "--data", str(tiny_data / "val"), "--no-progress",
               "--threads", "1"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    warning = [line for line in out.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and str(bad) in warning[0] and "using" in warning[0], out.stderr
    assert warning[0].endswith(str(run_dir / "checkpoints" / "last") + " instead")


def test_broken_state_named_and_loading_falls_back(good_run, tmp_path):
    """A run folder whose `last` is broken names the broken file when resuming; loading uses `best`."""
    run_dir = copy_run(good_run, tmp_path)
    folder = checkpoint.resolve(run_dir, prefer="last")
    assert folder == run_dir / "checkpoints" / "last"
    (folder / checkpoint.STATE_FILE).write_text("{not json")
    with pytest.raises(checkpoint.ConfigError, match="state.json: unreadable checkpoint state"):
        checkpoint.resolve(run_dir, prefer="last")
    assert checkpoint.resolve(run_dir) == run_dir / "checkpoints" / "best"


# -- 6: a missing dataset names the create-data commands ----------------------------------------------------
def test_missing_dataset_prints_create_data_commands(tmp_path, tiny_data):
    line = one_line_error(run(["diffmoog-train", "-c", "params_only"], cwd=tmp_path),
                          "data/reduced_simple_osc/train: dataset folder not found")
    assert ("create-data -c REDUCED_SIMPLE_OSC --size 20000 -s train -o data && "
            "create-data -c REDUCED_SIMPLE_OSC --size 1000 -s val -o data") in line
    line = one_line_error(run(["diffmoog-train", "-c", "params_only", "--set", f"data.train={tiny_data / 'train'}",
                               "--set", "data.val=mine/osc/val"], cwd=tmp_path),
                          "mine/osc/val: dataset folder not found")
    assert line.endswith("create-data -c REDUCED_SIMPLE_OSC --size 1000 -s val -o mine -n osc")
    # The printed command (with a tiny size) makes exactly the folder the config names.
    out = run(["create-data", "-c", "REDUCED_SIMPLE_OSC", "--size", "2", "-s", "val", "-o", "mine", "-n", "osc",
               "-sd", "0.5", "--no-progress"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "mine" / "osc" / "val").is_dir()
