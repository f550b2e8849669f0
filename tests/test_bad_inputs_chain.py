"""Bad chain files and create-data flags, run as a user would: exit code 2, one line naming the
file, node and key, and nothing already written changed. (The other CLIs' bad inputs are in the
sibling test_bad_inputs_*.py modules; chain-spec mistakes one by one in test_core_spec_errors.py.)
"""
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import diffmoog
from diffmoog.spec import MAX_SOUND_SAMPLES

from create_data_helpers import TINY, generate, run, snapshot

BIN = Path(sys.executable).parent


def one_line_error(result, *needles):
    """Exit 2, stderr a single line without a traceback, naming every needle."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    message = result.stderr.strip()
    assert "Traceback" not in message and "\n" not in message, message
    for needle in needles:
        assert needle in message, (needle, message)
    return message


def chain_file(tmp_path, filename="chain.yaml", **changes) -> Path:
    raw = {"name": "SMALL", "nodes": {"osc": {"module": "oscillator", "fixed": {"waveform": "saw"}}},
           "output": "osc", "duration": 0.1, "sample_rate": 8000}
    for key, value in changes.items():
        if key.startswith("osc_"):
            raw["nodes"]["osc"][key[4:]] = value
        else:
            raw[key] = value
    path = tmp_path / filename
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def laughs(levels=9, width=9) -> str:
    """A YAML 'billion laughs' value: `levels` nested anchors, each aliasing the last `width` times."""
    text = "&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"
    for level in range(1, levels):
        text = f"&a{level} [{text}, " + ", ".join([f"*a{level - 1}"] * (width - 1)) + "]"
    return text


CHAIN_BODY = "nodes:\n  osc: {module: oscillator}\noutput: osc\n"


@pytest.mark.parametrize("where", ["top", "node"])
def test_billion_laughs_in_a_chain_is_refused_quickly(tmp_path, where):
    if where == "top":
        text = f"name: BOMB\ndescription: {laughs()}\n{CHAIN_BODY}"
    else:
        text = f"name: BOMB\nnodes:\n  osc: {{module: oscillator, description: {laughs()}}}\noutput: osc\n"
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    started = time.monotonic()
    result = run("-c", path, "--size", 2, "-o", tmp_path / "out", *TINY, cwd=tmp_path)
    one_line_error(result, str(path), "aliases expand beyond")
    assert time.monotonic() - started < 60  # it used to grow past 6 GB and hang
    assert not (tmp_path / "out").exists()


def test_billion_laughs_in_a_preset_and_a_config(tmp_path):
    preset = tmp_path / "bomb.preset.yaml"
    preset.write_text(f"name: BOMB\ndescription: {laughs()}\n{CHAIN_BODY}preset: {{format: 1, params: {{}}}}\n")
    result = subprocess.run([str(BIN / "render-preset"), str(preset), "-o", str(tmp_path / "x.wav")],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    one_line_error(result, str(preset), "aliases expand beyond")
    assert not (tmp_path / "x.wav").exists()
    config = tmp_path / "bomb_config.yaml"
    config.write_text(f"chain: REDUCED_SIMPLE_OSC\nrun: {{name: {laughs()}}}\n")
    result = subprocess.run([str(BIN / "diffmoog-train"), "-c", str(config)], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    one_line_error(result, str(config), "aliases expand beyond")


def test_recursive_alias_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text(f"description: &d [*d]\n{CHAIN_BODY}")
    one_line_error(run("-c", path, "--size", 1, *TINY, cwd=tmp_path), str(path), "refers to itself")


def test_fixed_value_beyond_float32_is_a_spec_error(tmp_path):
    path = chain_file(tmp_path, osc_fixed={"waveform": "saw", "amp": 3.402823466385289e38})
    one_line_error(run("-c", path, "--size", 1, *TINY, cwd=tmp_path), str(path), "node 'osc'", "key 'fixed.amp'")


def test_fixed_value_outside_its_range_is_a_spec_error(tmp_path):
    path = chain_file(tmp_path, osc_fixed={"waveform": "saw", "freq_hz": 99999})
    message = one_line_error(run("-c", path, "--size", 1, *TINY, cwd=tmp_path), str(path), "node 'osc'",
                             "key 'fixed.freq_hz'")
    assert "outside the parameter's range [32.7, 2093] Hz" in message


@pytest.mark.parametrize("duration", ["1000000.0", "1e6"])
def test_huge_chain_duration_names_the_limit(tmp_path, duration):
    path = tmp_path / "long.yaml"
    path.write_text(f"duration: {duration}\n{CHAIN_BODY}")
    message = one_line_error(run("-c", path, "--size", 1, "--no-progress", cwd=tmp_path), str(path),
                             "key 'duration'", f"{MAX_SOUND_SAMPLES:,}")
    assert "expected a number" not in message  # 1e6 is a number in chains as in configs


def test_yaml_12_numbers_load_in_chains(tmp_path):
    path = tmp_path / "sci.yaml"
    path.write_text("duration: 5e-1\nsample_rate: 8000\nnote_off: 2E-1\n" + CHAIN_BODY)
    chain = diffmoog.Chain.load(path)
    assert (chain.spec.duration, chain.spec.note_off) == (0.5, 0.2)


def test_huge_signal_duration_flag_leaves_the_dataset_alone(tmp_path):
    split = generate(tmp_path / "data", 3)
    before = snapshot(split)
    result = run("-c", "REDUCED_SIMPLE_OSC", "--size", 3, "-o", tmp_path / "data", "-sd", 1000000,
                 "--no-progress", cwd=tmp_path)
    one_line_error(result, "--signal-duration", "limit")
    assert snapshot(split) == before


def test_sample_rate_zero_is_refused_not_defaulted(tmp_path):
    one_line_error(run("-c", "OSC", "--size", 1, "-sr", 0, "-o", tmp_path / "d", cwd=tmp_path),
                   "--sample-rate must be >= 1000, got 0")
    assert not (tmp_path / "d").exists()


def test_bad_chain_name_blames_the_file_not_a_flag(tmp_path):
    path = chain_file(tmp_path, "escape.yaml", name="../../ESCAPE")
    message = one_line_error(run("-c", path, "--size", 1, *TINY, "-o", tmp_path / "d", cwd=tmp_path),
                             str(path), "key 'name'", "plain folder name")
    assert "--name" not in message
    one_line_error(run("-c", "OSC", "--size", 1, *TINY, "--name", "../x", cwd=tmp_path), "--name")
    assert not (tmp_path.parent / "escape").exists() and not (tmp_path / "d").exists()
