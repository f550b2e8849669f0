"""`python -m diffmoog.demo` as `make demo` runs it, into a temporary folder, on a few chains."""
import subprocess
import sys
from pathlib import Path

import soundfile as sf

from diffmoog import demo

REPO = Path(__file__).resolve().parent.parent
CHAINS = ["OSC", "DRUM", "reduced"]  # any case, as users type them


def test_demo_writes_wavs_pictures_dataset_and_matches(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-m", "diffmoog.demo", "--out", str(out), "--chains", *CHAINS,
                             "--size", "8", "--refine-steps", "2"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("osc", "drum", "reduced"):
        audio, rate = sf.read(out / "chains" / f"{name}.wav")
        assert rate >= 16000 and audio.ndim == 1 and abs(audio).max() > 1e-3, name
        assert (out / "chains" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = out / "data" / "demo" / "train"
    assert len(list((data / "wav_files").glob("*.wav"))) == 8
    assert (data / "metadata.json").is_file() and (out / "data" / "dataset.png").is_file()
    assert str(out / "chains") in result.stdout  # it says where to look
    if demo.find_checkpoint() is None:
        # Only until a checkpoint is committed: the demo says why it skipped the step.
        assert "matching the example notes: skipped (no committed checkpoint" in result.stdout
    else:
        notes = sorted(p.stem for p in demo.EXAMPLE_AUDIO.glob("*.wav"))
        for note in notes:
            assert (out / "match" / f"{note}.preset.yaml").is_file(), note
            assert (out / "match" / f"{note}.match.wav").is_file(), note
            assert (out / "match" / f"{note}.png").is_file(), note
        assert "skipped" not in result.stdout
    # The kit from the committed drum flow (examples/checkpoints/drum_flow).
    for kind in demo.KIT:
        assert (out / "kit" / kind / "gen_00.preset.yaml").is_file(), kind
        audio, _ = sf.read(out / "kit" / kind / "gen_00.wav")
        assert abs(audio).max() > 1e-3, kind
    assert (out / "kit" / "kit.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(out / "kit") in result.stdout
    # A second `make demo` redoes its own outputs instead of refusing to touch them.
    again = subprocess.run([sys.executable, "-m", "diffmoog.demo", "--out", str(out), "--chains", "OSC",
                            "--size", "8", "--skip-match", "--skip-kit"], cwd=tmp_path, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "skipped (--skip-match given)" in again.stdout and "skipped (--skip-kit given)" in again.stdout


def test_demo_unknown_chain_is_one_line_exit_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "diffmoog.demo", "--out", str(tmp_path), "--chains", "MODULR"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "MODULR" in result.stderr and "did you mean 'MODULAR'" in result.stderr
    assert "Traceback" not in result.stderr
