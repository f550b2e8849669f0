"""Preset YAML: exact round trip, loadable by Chain.load, clear errors; render-preset CLI."""
import subprocess
import sys

import pytest
import soundfile as sf
import torch
import yaml

import diffmoog
from diffmoog.errors import SpecError
from diffmoog.preset import load_preset, save_preset
from diffmoog.analysis.pitch import midi_to_hz
from diffmoog.spec import builtin_chains

BIN = sys.executable


@pytest.mark.parametrize("name", list(builtin_chains()))
def test_round_trip_is_exact(tmp_path, name):
    chain = diffmoog.Chain.load(name)
    params = chain.sample(3, seed=11)
    path = save_preset(tmp_path / "p.preset.yaml", chain, params, index=2)
    preset = load_preset(path)
    assert preset.chain.param_keys == chain.param_keys
    for key in chain.param_keys:
        assert torch.equal(preset.params[key], params[key][2:3].float()), key
    assert int(preset.params["seed"][0]) == int(params["seed"][2])
    one = {k: v[2:3] for k, v in params.items()}
    assert torch.equal(preset.chain.render(preset.params, duration=0.2), chain.render(one, duration=0.2))
    # A preset is also a chain file.
    assert diffmoog.Chain.load(path).param_keys == chain.param_keys


def test_preset_lists_physical_values_and_choice_names(tmp_path):
    chain = diffmoog.Chain.load("MODULAR")
    params = chain.sample(1, seed=0)
    path = save_preset(tmp_path / "m.preset.yaml", chain, params)
    values = yaml.safe_load(path.read_text())["preset"]["params"]
    physical = chain.to_physical(params)
    for fp in chain.free_params:
        if fp.param.is_categorical:
            assert values[fp.key] == fp.param.choices[int(physical[fp.key][0])]
        else:
            assert values[fp.key] == pytest.approx(float(physical[fp.key][0]), rel=1e-6)


def test_bad_presets_name_the_key(tmp_path):
    chain = diffmoog.Chain.load("REDUCED_SIMPLE_OSC")
    path = save_preset(tmp_path / "p.preset.yaml", chain, chain.sample(1))
    text = path.read_text()
    cases = {"saw.freq_hz:": ("saw.freq_hzz:", "did you mean 'saw.freq_hz'"),
             "  seed:": ("  seeed:", "unknown field")}
    for old, (new, message) in cases.items():
        bad = tmp_path / "bad.yaml"
        bad.write_text(text.replace(old, new, 1))
        with pytest.raises(SpecError, match=message):
            load_preset(bad)
    bad.write_text(text.replace("lpf.q: ", "lpf.q: loud #", 1))
    with pytest.raises(SpecError, match="preset.params.lpf.q.*expected a number"):
        load_preset(bad)
    with pytest.raises(SpecError, match="not a preset"):
        load_preset(diffmoog.spec.resolve_chain("REDUCED_SIMPLE_OSC"))


def test_render_preset_cli(tmp_path):
    chain = diffmoog.Chain.load("REDUCED_SIMPLE_OSC")
    params = chain.sample(1, seed=5)
    path = save_preset(tmp_path / "p.preset.yaml", chain, params)
    out, high = tmp_path / "out.wav", tmp_path / "high.wav"
    run = subprocess.run([BIN, "-m", "diffmoog.match.render_preset", str(path), "-o", str(out),
                          "--duration", "0.5", "--note-off", "0.3"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    audio, rate = sf.read(out, dtype="float32")
    assert rate == chain.sample_rate
    expected = chain.render(params, duration=0.5, note_off=0.3)[0].numpy()
    assert abs(audio - expected).max() == 0.0
    # --pitch: the first oscillator lands on the MIDI note, the others keep their ratio to it.
    run = subprocess.run([BIN, "-m", "diffmoog.match.render_preset", str(path), "-o", str(high),
                          "--duration", "0.5", "--pitch", "72", "--sample-rate", "22050"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    from diffmoog.match.render_preset import transpose
    moved = chain.to_physical(transpose(chain, load_preset(path).params, 72))
    before = chain.to_physical(params)
    first, second = chain.pitch_keys
    assert float(moved[first]) == pytest.approx(midi_to_hz(72), rel=1e-5)
    assert float(moved[second] / moved[first]) == pytest.approx(float(before[second] / before[first]), rel=1e-5)
    assert sf.info(high).samplerate == 22050


def test_render_preset_bad_input_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("preset: {params: {}}\nnodes: {}\noutput: x\n")
    for args in ([str(tmp_path / "missing.yaml")], [str(bad)]):
        run = subprocess.run([BIN, "-m", "diffmoog.match.render_preset", *args, "-o", str(tmp_path / "x.wav")],
                             capture_output=True, text=True)
        assert run.returncode == 2
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("render-preset: error:") and args[0] in lines[0]
    assert not (tmp_path / "x.wav").exists()
