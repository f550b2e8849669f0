"""diffmoog-train given bad input, run as a user runs it (a subprocess in an unrelated folder):
built-in configs by name, misspelt config keys, a diverging run, broken or unsafe checkpoints and a
missing dataset all give one clear line and exit code 2, and never damage what is on disk; a
broken checkpoint falls back to the run's other one with a warning line (also in diffmoog-eval
and diffmoog-match, which share the loader)."""
import hashlib
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from diffmoog.train import checkpoint

BIN = Path(sys.executable).parent
CONFIGS = ("drum_flow", "flow", "mixed", "params_only", "real", "synth")


def run(cmd, cwd):
    return subprocess.run([str(BIN / cmd[0]), *cmd[1:]], cwd=cwd, capture_output=True, text=True, timeout=600)


def one_line_error(out, *needles, prog="diffmoog-train"):
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith(f"{prog}: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def warnings_of(out, prog):
    lines = [line for line in out.stderr.splitlines() if ": warning: " in line]
    assert all(line.startswith(f"{prog}: warning: ") for line in lines), out.stderr
    return lines


def digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def loads_finite(folder: Path) -> None:
    model, _, _ = checkpoint.load_model(folder)
    state = checkpoint.read_state(folder)
    assert checkpoint.check_finite(model, state) is None, folder


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


# -- 5: built-in configs by name from any folder; 6: a missing dataset names create-data commands ---------------
@pytest.mark.parametrize("name", ["params_only", "params_only.yaml"])
def test_builtin_config_by_name_from_any_folder(tmp_path, name):
    # No dataset here, so the run stops at the data: proof that the built-in config was read, and the
    # line gives the create-data commands that make exactly the folders it names (relative to the cwd).
    line = one_line_error(run(["diffmoog-train", "-c", name], cwd=tmp_path),
                          "data.train: data/reduced_simple_osc/train and data.val: data/reduced_simple_osc/val: "
                          f"dataset folders not found in {tmp_path}")
    assert line.endswith("make them with: create-data -c REDUCED_SIMPLE_OSC --size 20000 -s train -o data && "
                         "create-data -c REDUCED_SIMPLE_OSC --size 1000 -s val -o data")
    assert not any(tmp_path.iterdir())  # nothing written


def test_builtin_config_trains(good_run):
    assert (good_run / "checkpoints" / "best" / checkpoint.MODEL_FILE).is_file()
    assert "name: params_only" in (good_run / "config.yaml").read_text()


def test_list_configs(tmp_path):
    out = run(["diffmoog-train", "--list-configs"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(None, 1) for line in out.stdout.strip().splitlines())
    assert sorted(lines) == sorted(CONFIGS)
    assert lines["params_only"].startswith("Parameter loss only")
    assert all(text.endswith(".") for text in lines.values()), lines  # whole sentences, not cut lines


def test_unknown_config_name_suggests(tmp_path):
    line = one_line_error(run(["diffmoog-train", "-c", "parms_only"], cwd=tmp_path),
                          "parms_only", "did you mean 'params_only'?", "--list-configs")
    for name in CONFIGS:
        assert name in line


def test_missing_config_path_points_at_the_builtin(tmp_path):
    one_line_error(run(["diffmoog-train", "-c", "configs/params_only.yaml"], cwd=tmp_path),
                   "configs/params_only.yaml: config file not found; the built-in one is -c params_only")


def test_existing_path_wins_over_builtin(tmp_path):
    (tmp_path / "params_only.yaml").write_text("chain: REDUCED_SIMPLE_OSC\nrun: {nmae: mine}\n")
    one_line_error(run(["diffmoog-train", "-c", "params_only.yaml"], cwd=tmp_path),
                   "params_only.yaml: unknown key 'run.nmae'; did you mean 'name'?")


def test_missing_val_split_command_matches_the_train_split(tmp_path, tiny_data):
    line = one_line_error(run(["diffmoog-train", "-c", "params_only", "--set", f"data.train={tiny_data / 'train'}",
                               "--set", "data.val=mine/osc/val"], cwd=tmp_path),
                          f"data.val: mine/osc/val: dataset folder not found in {tmp_path}")
    # The train split is 0.5 s long, so the val split must be too.
    command = "create-data -c REDUCED_SIMPLE_OSC --size 1000 -s val -o mine -n osc -sd 0.5"
    assert line.endswith(command)
    # The printed command (with a tiny size) makes exactly the folder the config names.
    out = run([*command.replace("1000", "2").split(), "--no-progress"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "mine" / "osc" / "val" / "metadata.json").is_file()


def test_missing_real_audio_names_the_key(tmp_path, tiny_data):
    one_line_error(run(["diffmoog-train", "-c", "real", "--set", f"data.train={tiny_data / 'train'}",
                        "--set", f"data.val={tiny_data / 'val'}", "--set", "data.real_train=no/such/notes"],
                       cwd=tmp_path),
                   f"data.real_train: no/such/notes: real-audio folder not found in {tmp_path}",
                   "--set data.real_train=PATH")


# -- 4: unknown config-file keys at every level ---------------------------------------------------------------
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
def test_huge_learning_rate_one_line_and_no_checkpoint(tiny_data, tmp_path):
    out = run(["diffmoog-train", "-c", "params_only", *tiny(tiny_data, tmp_path / "exp", steps=4),
               "--set", "optim.lr=1e30", "--set", "train.ckpt_every=50"], cwd=tmp_path)
    one_line_error(out, "training diverged: non-finite loss at step 2", "no checkpoint had been written",
                   "optim.lr is 1e+30; try a lower one")
    assert not (tmp_path / "exp" / "params_only" / "checkpoints").exists()


@pytest.mark.parametrize("every, needle", [
    (4, "training diverged at step 4: its output"),  # caught when saving (after a NaN validation)
    (5, "training diverged: non-finite loss at step 5"),  # caught by the loss of the next step
])
def test_blow_up_keeps_the_good_checkpoints(good_run, tmp_path, every, needle):
    """A resumed run blows up at step 4 (the step schedule multiplies the learning rate by 1e30 from
    then on): the step-2 checkpoints stay byte for byte, and loadable; no non-finite model is written."""
    run_dir = copy_run(good_run, tmp_path)
    before = digest(run_dir / "checkpoints")
    out = run(["diffmoog-train", "--resume", str(run_dir), "--set", "train.steps=8", "--set", "optim.scheduler=step",
               "--set", "optim.step_size=3", "--set", "optim.gamma=1e30", "--set", f"train.ckpt_every={every}",
               "--set", f"train.val_every={every}"], cwd=tmp_path)
    one_line_error(out, needle, "the checkpoints from before are kept intact: last (step 2) and best (step 2)",
                   "optim.lr is 0.001")
    assert digest(run_dir / "checkpoints") == before
    for name in ("last", "best"):
        loads_finite(run_dir / "checkpoints" / name)


def test_diverged_model_never_overwrites_a_checkpoint(good_run, tmp_path):
    run_dir = copy_run(good_run, tmp_path)
    last = run_dir / "checkpoints" / "last"
    before = digest(last)
    model, _, _ = checkpoint.load_model(last)
    state = checkpoint.read_state(last)
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    with pytest.raises(checkpoint.DivergedError, match="training diverged at step 2: weight .* is not finite; "
                                                       "the checkpoints from before are kept intact"):
        checkpoint.save(last, model, state, None)
    assert digest(last) == before
    assert not last.with_name("last.tmp").exists()
    loads_finite(last)


def test_resume_refuses_a_learning_rate_it_would_ignore(good_run, tmp_path):
    """The saved optimiser state sets the learning rate on resume, so a new one is refused, not ignored."""
    run_dir = copy_run(good_run, tmp_path)
    before = digest(run_dir)
    line = one_line_error(run(["diffmoog-train", "--resume", str(run_dir), "--set", "optim.lr=1e30"], cwd=tmp_path),
                          "optim.lr is 1e+30 here but 0.001 in the run", "would be ignored",
                          f"--set run.init_from={run_dir / 'checkpoints' / 'last'}")
    assert "--set optim.lr=1e+30" in line
    assert digest(run_dir) == before


# -- 2, 3: broken or unsafe checkpoint files -------------------------------------------------------------
@pytest.mark.parametrize("size", [100, 0])
def test_resume_truncated_weights(good_run, tmp_path, size):
    run_dir = copy_run(good_run, tmp_path)
    bad = run_dir / "checkpoints" / "last" / checkpoint.MODEL_FILE
    with open(bad, "r+b") as f:
        f.truncate(size)
    before = digest(run_dir)
    line = one_line_error(run(["diffmoog-train", "--resume", str(run_dir), "--set", "train.steps=4"], cwd=tmp_path),
                          f"{bad}: cannot read weights", "broken or truncated",
                          "checkpoints/best is readable but has no optimiser state")
    assert digest(run_dir) == before
    if size == 0:  # the suggested command works: a new run from best's weights
        command = line.split("start a new run from its weights with ", 1)[1].split()
        assert command[:2] == ["diffmoog-train", "-c"]
        assert f"run.init_from={run_dir / 'checkpoints' / 'best'}" in command
        out = run([*command, "--set", "train.steps=1", "--set", f"run.output_dir={tmp_path / 'new'}"], cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert (tmp_path / "new" / "params_only-from-best" / "checkpoints" / "last").is_dir()
        assert digest(run_dir) == before


@pytest.mark.parametrize("size", [100, 0])
def test_truncated_training_state(good_run, tmp_path, size):
    run_dir = copy_run(good_run, tmp_path)
    bad = run_dir / "checkpoints" / "last" / checkpoint.TRAINING_FILE
    bad.write_bytes(bad.read_bytes()[:size])
    before = digest(run_dir)
    one_line_error(run(["diffmoog-train", "--resume", str(run_dir)], cwd=tmp_path),
                   f"{bad}: cannot read training state", "broken or truncated")
    assert digest(run_dir) == before


def test_broken_best_resumes_from_last_with_a_warning(good_run, tmp_path):
    run_dir = copy_run(good_run, tmp_path)
    bad = run_dir / "checkpoints" / "best" / checkpoint.MODEL_FILE
    bad.write_bytes(bad.read_bytes()[:100])
    out = run(["diffmoog-train", "--resume", str(run_dir), "--set", "train.steps=3"], cwd=tmp_path)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    [warning] = warnings_of(out, "diffmoog-train")
    assert str(bad) in warning and f"resuming from {run_dir / 'checkpoints' / 'last'}" in warning
    assert checkpoint.read_state(run_dir / "checkpoints" / "last")["step"] == 3


def test_interrupted_save_resumes_from_the_old_copy(good_run, tmp_path):
    """Killed between a save's two renames, `last` is missing and `last.old` holds it."""
    run_dir = copy_run(good_run, tmp_path)
    last = run_dir / "checkpoints" / "last"
    os.replace(last, last.with_name("last.old"))
    out = run(["diffmoog-train", "--resume", str(run_dir), "--set", "train.steps=3"], cwd=tmp_path)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    [warning] = warnings_of(out, "diffmoog-train")
    assert warning.endswith(f"{last} is missing (a save was interrupted); using {last}.old (step 2)")
    assert checkpoint.read_state(last)["step"] == 3 and not last.with_name("last.old").exists()


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_pickle_payload_training_state_refused(good_run, tmp_path, writer):
    run_dir = copy_run(good_run, tmp_path)
    bad = run_dir / "checkpoints" / "last" / checkpoint.TRAINING_FILE
    marker = tmp_path / "payload_ran"
    if writer == "pickle":
        bad.write_bytes(pickle.dumps({"optimizer": _Payload(marker)}))
    else:
        torch.save({"optimizer": _Payload(marker)}, bad)
    before = digest(run_dir)
    one_line_error(run(["diffmoog-train", "--resume", str(run_dir)], cwd=tmp_path),
                   f"{bad}: cannot read training state", "pickled Python objects", "refused for safety")
    assert not marker.exists()
    # Loading for inference falls back the same way when best is broken too: both files named, one line.
    best = run_dir / "checkpoints" / "best" / checkpoint.MODEL_FILE
    best.write_bytes(b"")
    out = run(["diffmoog-eval", "--checkpoint", str(run_dir), "--data", str(tmp_path), "--no-progress"], cwd=tmp_path)
    one_line_error(out, f"{run_dir}: no readable checkpoint", str(best), str(bad), prog="diffmoog-eval")
    assert not marker.exists()
    assert digest(run_dir) == {**before, str(best.relative_to(run_dir)): hashlib.sha256(b"").hexdigest()}


@pytest.mark.parametrize("tool", ["diffmoog-eval", "diffmoog-match"])
def test_broken_best_falls_back_to_last_when_loading(good_run, tiny_data, tmp_path, tool):
    run_dir = copy_run(good_run, tmp_path)
    bad = run_dir / "checkpoints" / "best" / checkpoint.MODEL_FILE
    bad.write_bytes(b"")
    if tool == "diffmoog-eval":
        args = ["--data", str(tiny_data / "val"), "--no-progress", "--threads", "1", "-o", str(tmp_path / "r.json")]
    else:
        args = [str(tiny_data / "val" / "wav_files" / "000000.wav"), "--refine-steps", "0", "--device", "cpu",
                "-o", str(tmp_path / "matches")]
    out = run([tool, "--checkpoint", str(run_dir), *args], cwd=tmp_path)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    [warning] = warnings_of(out, tool)
    assert str(bad) in warning and "cannot read weights" in warning
    assert warning.endswith(f"using {run_dir / 'checkpoints' / 'last'} (step 2) instead")


def test_broken_state_named_and_loading_falls_back(good_run, tmp_path):
    """A run folder whose `last` is broken names the broken file when resuming; loading uses `best`."""
    run_dir = copy_run(good_run, tmp_path)
    folder = checkpoint.resolve(run_dir, prefer="last")
    assert folder == run_dir / "checkpoints" / "last"
    (folder / checkpoint.STATE_FILE).write_text("{not json")
    with pytest.raises(checkpoint.ConfigError, match="state.json: unreadable checkpoint state"):
        checkpoint.resolve(run_dir, prefer="last")
    assert checkpoint.resolve(run_dir) == run_dir / "checkpoints" / "best"
    (folder / checkpoint.STATE_FILE).write_text("[]")
    with pytest.raises(checkpoint.ConfigError, match="state.json: not a diffmoog checkpoint state"):
        checkpoint.resolve(folder)
