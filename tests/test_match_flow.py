"""diffmoog-match with the committed flow checkpoint, as a user runs it: best-of-K candidates,
the pitch it used and oscillator Hz in the preset, the default checkpoint, bad flags and inputs."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from diffmoog.analysis.pitch import cents_between, midi_to_hz

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FLOW = REPO / "examples" / "checkpoints" / "reduced_simple_osc_flow"
NOTE = "organ_sf_020-048-100"


def match(args, cwd):
    return subprocess.run([str(BIN / "diffmoog-match"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def short_note(tmp_path, nsynth_fixture_dir):
    audio, rate = sf.read(nsynth_fixture_dir / "audio" / f"{NOTE}.wav")
    path = tmp_path / f"{NOTE}.wav"
    sf.write(path, audio[: rate], rate)
    return path


def test_flow_checkpoint_samples_candidates_and_writes_hz_and_pitch(tmp_path, short_note):
    done = match([str(short_note), "--checkpoint", str(FLOW), "--candidates", "6", "--refine-steps", "2",
                  "--restarts", "2", "-o", "out"], tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "out" / f"{NOTE}.json").read_text())
    assert record["settings"]["candidates"] == 6 and record["final_stage"] == "refined"
    assert record["metrics"]["encoder"]["lsd"] < record["metrics"]["random"]["lsd"]
    assert abs(float(cents_between(torch.tensor(record["pitch"]["hz"]), torch.tensor(midi_to_hz(48.0))))) < 50
    preset = yaml.safe_load((tmp_path / "out" / f"{NOTE}.preset.yaml").read_text())
    assert preset["preset"]["pitch"]["source"] == "audio"
    # Oscillators are stored in Hz, whatever the flow's internal (pitch-relative) parameterisation.
    for node in ("saw", "square"):
        assert 32.7 <= float(preset["preset"]["params"][f"{node}.freq_hz"]) <= 2093.0
    rerun = match([str(short_note), "--checkpoint", str(FLOW), "--candidates", "6", "--refine-steps", "2",
                   "--restarts", "2", "-o", "out"], tmp_path)
    assert rerun.returncode == 0 and (tmp_path / "out" / f"{NOTE}.json").read_text() == json.dumps(record, indent=1)


def test_default_is_the_committed_flow(tmp_path, short_note):
    done = match([str(short_note), "--candidates", "4", "--refine-steps", "1", "--restarts", "1", "-o", "out"],
                 tmp_path)
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "out" / f"{NOTE}.json").read_text())
    assert record["settings"]["encoder"] == str(FLOW.resolve()) and record["settings"]["candidates"] == 4


@pytest.mark.parametrize("flag, value", [("--candidates", "0"), ("--candidates", "100000")])
def test_bad_candidates_are_one_line(tmp_path, short_note, flag, value):
    done = match([str(short_note), "--checkpoint", str(FLOW), flag, value, "-o", "out"], tmp_path)
    assert done.returncode == 2 and flag in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()


def test_candidates_without_a_flow_warn(tmp_path, short_note):
    done = match([str(short_note), "--chain", "REDUCED_SIMPLE_OSC", "--candidates", "8", "--refine-steps", "1",
                  "--restarts", "1", "-o", "out"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "--candidates applies to a flow checkpoint" in done.stderr


def test_noise_has_no_pitch_and_still_matches(tmp_path):
    noise = np.random.default_rng(0).normal(0, 0.2, 16000)
    sf.write(tmp_path / "noise.wav", noise, 16000)
    done = match(["noise.wav", "--checkpoint", str(FLOW), "--candidates", "4", "--refine-steps", "1",
                  "--restarts", "1", "-o", "out"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "no clear pitch" in done.stderr
    assert json.loads((tmp_path / "out" / "noise.json").read_text())["pitch"] is None
