"""diffmoog-eval given bad input, run as a user runs it: out-of-range flags fail with one line and
exit code 2 before any work; too few, unreadable or silent sounds are handled (exit 0) with the
counts in the report, every metric finite, and unreadable files skipped, never replaced by copies.

The reported cases run the installed `diffmoog-eval` in a subprocess; the variations run its
main() in-process (each subprocess spends ~5 s importing torch on the shared 2-core machine)."""
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from diffmoog.data.audio_folder import AudioFolderDataset
from diffmoog.data.audio_io import UnreadableItem, no_substitution
from diffmoog.train import eval_cli

REPO = Path(__file__).resolve().parent.parent
EVAL = Path(sys.executable).parent / "diffmoog-eval"
CHECKPOINT = REPO / "examples" / "checkpoints" / "reduced_simple_osc_params_only"
GOOD = ["bass_sf_035-040-100", "brass_sf_058-050-100", "flute_sf_079-072-100", "guitar_sf_026-055-100"]


def run_eval(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """The installed diffmoog-eval, as a user runs it."""
    return subprocess.run([str(EVAL), "--checkpoint", str(CHECKPOINT), "--no-progress", "--threads", "1", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture
def eval_in_process(capsys):
    """diffmoog-eval's main() in this process -> CompletedProcess-like (returncode, stdout, stderr)."""
    threads = torch.get_num_threads()

    def call(cwd: Path, *args: str) -> subprocess.CompletedProcess:
        capsys.readouterr()
        old = os.getcwd()
        os.chdir(cwd)
        try:
            code = eval_cli.main(["--checkpoint", str(CHECKPOINT), "--no-progress", "--threads", "1", *args])
        except SystemExit as exit_:  # argparse's own errors
            code = exit_.code
        finally:
            os.chdir(old)
        captured = capsys.readouterr()
        return subprocess.CompletedProcess([], code, captured.out, captured.err)

    yield call
    torch.set_num_threads(threads)


def folder(root: Path, name: str, notes: list[str], fixture: Path) -> Path:
    out = root / name
    out.mkdir()
    for note in notes:
        shutil.copy(fixture / "audio" / f"{note}.wav", out / f"{note}.wav")
    return out


def check_handled(out: subprocess.CompletedProcess, report_path: Path) -> dict:
    """Exit 0, stderr only one-line warnings, and a report whose every number is finite."""
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    for line in out.stderr.splitlines():
        assert line.startswith("diffmoog-eval: warning: "), line
    report = json.loads(report_path.read_text())  # json's parser accepts NaN: check explicitly
    for name, metrics in report["metrics"].items():
        assert metrics, name
        for key, value in metrics.items():
            assert value is not None and math.isfinite(value), (name, key, value)
    return report


def check_refused(out: subprocess.CompletedProcess, cwd: Path, flag: str, message: str) -> None:
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith("diffmoog-eval: error: ") and flag in out.stderr and message in out.stderr
    assert not list(cwd.glob("eval_*.json"))  # refused before any work: no report


def test_batch_size_zero_fails_with_one_line(tmp_path, nsynth_fixture_dir):
    data = folder(tmp_path, "sounds", GOOD[:2], nsynth_fixture_dir)
    check_refused(run_eval(tmp_path, "--data", str(data), "--batch-size", "0"), tmp_path,
                  "--batch-size", "must be >= 1, got 0")


@pytest.mark.parametrize("args, flag, message", [
    (["--batch-size", "-2"], "--batch-size", "must be >= 1, got -2"),
    (["--max-items", "-3"], "--max-items", "must be >= 1"),
    (["--max-items", "0"], "--max-items", "must be >= 1"),
    (["--threads", "-1"], "--threads", "must be >= 0"),
    (["--batch-size", "many"], "--batch-size", "invalid int value: 'many'"),
])
def test_bad_integer_flags_fail_with_one_line(args, flag, message, tmp_path, nsynth_fixture_dir, eval_in_process):
    data = folder(tmp_path, "sounds", GOOD[:2], nsynth_fixture_dir)
    check_refused(eval_in_process(tmp_path, "--data", str(data), *args), tmp_path, flag, message)


def test_one_sound_reports_frechet_unavailable(tmp_path, nsynth_fixture_dir):
    data = folder(tmp_path, "one", GOOD[:1], nsynth_fixture_dir)
    out = run_eval(tmp_path, "--data", str(data), "--baseline", "random")
    report = check_handled(out, tmp_path / "eval_one.json")
    assert report["items"] == {"considered": 1, "scored": 1, "skipped_unreadable": 0, "skipped_silent": 0,
                               "skipped_at_index": 0}
    assert set(report["metrics"]) == {"encoder", "random_preset"}
    for key in ("frechet_logmel", "frechet_logmel_random_preset"):
        assert report[key]["value"] is None and "at least 2" in report[key]["reason"]
        assert f"{key}: unavailable (needs at least 2 scored sounds, got 1)" in out.stdout


def test_max_items_one_keeps_the_other_metrics(tmp_path, nsynth_fixture_dir, eval_in_process):
    data = folder(tmp_path, "four", GOOD, nsynth_fixture_dir)
    out = eval_in_process(tmp_path, "--data", str(data), "--max-items", "1", "-o", "one.json")
    report = check_handled(out, tmp_path / "one.json")
    assert report["n_items"] == 1 and report["items"]["considered"] == 1 and report["items"]["scored"] == 1
    assert report["frechet_logmel"]["value"] is None
    assert 0 < report["metrics"]["encoder"]["spectral_convergence"] < 10


def test_silent_target_is_skipped_and_counted(tmp_path, nsynth_fixture_dir):
    data = folder(tmp_path, "with_silence", GOOD[:2], nsynth_fixture_dir)
    sf.write(data / "silent.wav", np.zeros(16000, dtype=np.float32), 16000, subtype="PCM_16")
    out = run_eval(tmp_path, "--data", str(data))
    report = check_handled(out, tmp_path / "eval_with_silence.json")
    assert report["items"] == {"considered": 3, "scored": 2, "skipped_unreadable": 0, "skipped_silent": 1,
                               "skipped_at_index": 0}
    assert [Path(p).name for p in report["skipped_silent"]] == ["silent.wav"]
    assert "silent.wav" in out.stderr and "1 skipped as silent" in out.stdout
    # A silent target used to put spectral convergence in the hundreds of millions.
    assert report["metrics"]["encoder"]["spectral_convergence"] < 10
    assert math.isfinite(report["frechet_logmel"]["value"])


def test_unreadable_files_are_skipped_not_replaced(tmp_path, nsynth_fixture_dir, eval_in_process):
    clean = folder(tmp_path, "clean", GOOD, nsynth_fixture_dir)
    broken = folder(tmp_path, "broken", GOOD, nsynth_fixture_dir)
    bad = ["a_not_audio.wav", "c_empty.wav", "z_truncated_header.flac"]
    (broken / bad[0]).write_text("this is not audio\n")
    (broken / bad[1]).write_bytes(b"")
    (broken / bad[2]).write_bytes((broken / f"{GOOD[0]}.wav").read_bytes()[:30])
    ok = eval_in_process(tmp_path, "--data", str(clean), "-o", "clean.json")
    out = run_eval(tmp_path, "--data", str(broken), "-o", "broken.json")
    expected = check_handled(ok, tmp_path / "clean.json")
    report = check_handled(out, tmp_path / "broken.json")
    assert report["items"] == {"considered": 7, "scored": 4, "skipped_unreadable": 3, "skipped_silent": 0,
                               "skipped_at_index": 0}
    assert report["n_items"] == 4
    assert sorted(Path(p).name for p in report["skipped_unreadable"]) == bad
    for name in bad:
        assert name in out.stderr
    assert "4 scored of 7 (3 skipped as unreadable, 0 skipped as silent)" in out.stdout
    # The same numbers as the folder without the bad files: nothing was scored twice.
    for key, value in expected["metrics"]["encoder"].items():
        assert report["metrics"]["encoder"][key] == pytest.approx(value, rel=1e-5), key
    assert report["frechet_logmel"]["value"] == pytest.approx(expected["frechet_logmel"]["value"], rel=1e-4)


def test_nsynth_split_counts_unreadable_and_missing_notes(tmp_path, nsynth_fixture_dir, eval_in_process):
    data = tmp_path / "nsynth-test"
    (data / "audio").mkdir(parents=True)
    examples = json.loads((nsynth_fixture_dir / "examples.json").read_text())
    keep = {note: examples[note] for note in GOOD}
    (data / "examples.json").write_text(json.dumps(keep))
    for note in GOOD[1:]:
        shutil.copy(nsynth_fixture_dir / "audio" / f"{note}.wav", data / "audio" / f"{note}.wav")
    (data / "audio" / f"{GOOD[1]}.wav").write_text("corrupt")  # GOOD[0]'s wav is missing altogether
    out = eval_in_process(tmp_path, "--data", str(data))
    report = check_handled(out, tmp_path / "eval_nsynth-test.json")
    assert report["data_kind"] == "real"
    assert report["items"] == {"considered": 3, "scored": 2, "skipped_unreadable": 1, "skipped_silent": 0,
                               "skipped_at_index": 1}
    assert list(report["skipped_unreadable"]) == [GOOD[1]]
    assert report["skipped_at_index"] == {"notes without a wav file": 1}
    assert GOOD[0] in out.stderr and GOOD[1] in out.stderr


def test_training_still_substitutes_and_eval_mode_does_not(tmp_path, nsynth_fixture_dir):
    """The one skip loop (audio_io.first_readable) serves training a copy of the next readable
    file (batch shapes hold), and raises UnreadableItem only inside no_substitution()."""
    data = folder(tmp_path, "sounds", GOOD[:2], nsynth_fixture_dir)
    (data / "bf_bad.wav").write_text("not audio")  # sorted between the two good files
    dataset = AudioFolderDataset(data, sample_rate=16000, duration=0.5)
    assert [Path(f).name for f in dataset.files] == [f"{GOOD[0]}.wav", "bf_bad.wav", f"{GOOD[1]}.wav"]
    with pytest.warns(UserWarning, match="bf_bad.wav"):
        item = dataset[1]
    assert Path(item["path"]).name == f"{GOOD[1]}.wav" and item["audio"].shape == (8000,)
    with no_substitution():
        assert Path(dataset[0]["path"]).name == f"{GOOD[0]}.wav"
        with pytest.raises(UnreadableItem) as error:
            dataset[1]
    assert error.value.key == str(data / "bf_bad.wav") and "bf_bad.wav" in str(error.value)
    assert Path(dataset[1]["path"]).name == f"{GOOD[1]}.wav"  # substitution is back outside the block
