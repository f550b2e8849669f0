"""`pitch: note` marks: which parameters follow the played note (Chain.pitch_keys), what moves
under render-preset --pitch, and stored chain copies from before the marks existed."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from diffmoog.analysis.pitch import midi_to_hz
from diffmoog.chain import Chain
from diffmoog.match.matcher import Matcher
from diffmoog.preset import load_preset, preset_text, save_preset
from diffmoog.match.render_preset import transpose
from diffmoog.match.tuning import retune
from diffmoog.spec import builtin_chains, load_spec, without_pitch_marks

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent
CHECKPOINT = REPO / "examples" / "checkpoints" / "reduced_simple_osc_params_only"

# One marked oscillator (lead) and one unmarked (drone): only the lead follows the note.
TWO_OSC = """\
name: TWO_OSC
sample_rate: 16000
duration: 0.25
note_off: 0.2
nodes:
  lead:  {module: oscillator, fixed: {waveform: saw, amp: 0.5}, params: {freq_hz: {pitch: note}}}
  drone: {module: oscillator, fixed: {waveform: sine, amp: 0.5}}
  mix:   {module: mixer, inputs: [lead, drone], fixed: {level_lead: 0.5, level_drone: 0.5}}
output: mix
"""


def hz(chain, params, key) -> float:
    return float(chain.free_param(key).param.to_physical(params[key].double()).reshape(-1)[0])


@pytest.mark.parametrize("name,keys", [
    ("REDUCED_SIMPLE_OSC", ["saw.freq_hz", "square.freq_hz"]),
    ("OSC", ["osc.freq_hz"]),
    ("MORPH_OSC", ["osc.freq_hz"]),
    ("FM_SINE", ["modulator.freq_hz", "carrier.freq_hz"]),  # the audio-rate modulator keeps its ratio
    ("FM_DX7", ["mod_a.freq_hz", "car_a.freq_hz", "mod_b.freq_hz", "car_b.freq_hz"]),
    ("MODULAR", ["sine.freq_hz", "saw.freq_hz", "square.freq_hz"]),  # its two LFOs are not marked
    ("DRUM", ["tone.freq_hz"]),
    ("LFO", []),  # the carrier's 440 Hz is fixed; an LFO rate never follows the note
    ("FILTER_ONLY", []),
])
def test_builtin_pitch_keys(name, keys):
    assert Chain.load(name).pitch_keys == keys


def test_builtins_mark_exactly_their_free_audio_oscillator_frequencies():
    """The rule the built-in chains follow (and the guess the marks replaced): every free
    `freq_hz` of an audio-rate oscillator is marked, nothing else is."""
    for name, path in builtin_chains().items():
        chain = Chain.load(path)
        oscillators = [fp.key for fp in chain.free_params if fp.param.name == "freq_hz"
                       and chain.spec.nodes[fp.node].module.endswith("oscillator")]
        assert chain.pitch_keys == oscillators, name
        assert set(chain.spec.pitch_marks.values()) <= {"note"}, name


def test_pitch_keys_follow_free_param_order_and_any_hz_log_param_may_be_marked():
    raw = yaml.safe_load(TWO_OSC)
    raw["nodes"]["lpf"] = {"module": "filter", "inputs": ["mix"],
                           "params": {"cutoff_hz": {"range": [100.0, 8000.0], "pitch": "note"}}}  # key tracking
    raw["nodes"]["drone"]["params"] = {"freq_hz": {"pitch": "note"}}
    raw["output"] = "lpf"
    chain = Chain.from_dict(raw)
    assert chain.pitch_keys == ["lead.freq_hz", "drone.freq_hz", "lpf.cutoff_hz"]
    assert chain.pitch_keys == [k for k in chain.param_keys if k in chain.pitch_keys]
    params = chain.sample(4, seed=1)
    moved = retune(chain, params, 440.0)
    for i in range(4):
        ratio = 440.0 / hz(chain, {k: v[i:i + 1] for k, v in params.items()}, "lead.freq_hz")
        for key in chain.pitch_keys:  # every marked parameter moves by the same factor
            assert hz(chain, {key: moved[key][i:i + 1]}, key) == pytest.approx(
                ratio * hz(chain, {key: params[key][i:i + 1]}, key), rel=1e-5)


def test_render_preset_pitch_moves_only_the_marked_oscillator(tmp_path):
    path = tmp_path / "two_osc.yaml"
    path.write_text(TWO_OSC)
    chain = Chain.load(path)
    assert chain.pitch_keys == ["lead.freq_hz"]
    params = chain.to_normalized({"lead.freq_hz": [300.0], "drone.freq_hz": [200.0]})
    params["seed"] = chain.item_seeds(1)
    preset = save_preset(tmp_path / "two.preset.yaml", chain, params)

    moved = transpose(chain, load_preset(preset).params, 69)
    assert hz(chain, moved, "lead.freq_hz") == pytest.approx(440.0, rel=1e-6)
    assert hz(chain, moved, "drone.freq_hz") == pytest.approx(200.0, rel=1e-6)  # unmarked: stays

    out = tmp_path / "a4.wav"
    run = subprocess.run([str(BIN / "render-preset"), str(preset), "-o", str(out), "--pitch", "69"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    audio, rate = sf.read(out, dtype="float32")
    expected = chain.render(moved)[0].numpy()
    assert rate == chain.sample_rate and np.array_equal(audio, expected)


def test_a_chain_without_marks_refuses_pitch_and_matches_without_one(tmp_path):
    raw = yaml.safe_load(TWO_OSC)
    del raw["nodes"]["lead"]["params"]
    chain = Chain.from_dict(raw, source="two_osc.yaml")
    assert chain.pitch_keys == []
    preset = save_preset(tmp_path / "p.preset.yaml", chain, chain.defaults(1))
    run = subprocess.run([str(BIN / "render-preset"), str(preset), "-o", str(tmp_path / "x.wav"), "--pitch", "60"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and not (tmp_path / "x.wav").exists()
    [line] = run.stderr.strip().splitlines()
    assert line.startswith("render-preset: error: --pitch: chain TWO_OSC has no pitch to set: "
                           "no parameter is marked `pitch: note`")
    warnings = []
    matcher = Matcher(chain, steps=0, warn=warnings.append)
    assert matcher.pitch_from == "none"
    assert warnings == ["chain TWO_OSC marks no parameter `pitch: note`, so sounds are matched without a pitch; "
                        "mark lead.freq_hz, drone.freq_hz to match at each sound's pitch"]
    Matcher(chain, steps=0, pitch_from="none", warn=warnings.append)  # asked for no pitch: no warning
    assert len(warnings) == 1


# -- stored copies from before the marks ---------------------------------------------------------

def test_the_committed_checkpoint_chain_takes_the_builtin_marks():
    """state.json holds REDUCED_SIMPLE_OSC as it was trained, without marks; inference
    (load_model, diffmoog-match, benchmarks/match.py) uses that copy, so it must follow the note,
    and resuming or warm-starting compares it equal to the built-in."""
    from diffmoog.train.checkpoint import load_model, read_state

    state = read_state(CHECKPOINT)
    assert "pitch" not in json.dumps(state["chain"])  # written before the marks existed
    builtin = Chain.load(state["chain"]["name"])
    copy = Chain.from_dict(state["chain"], source=state["chain_source"])
    assert copy.pitch_keys == builtin.pitch_keys == ["saw.freq_hz", "square.freq_hz"]
    assert copy.spec.raw == builtin.spec.raw  # what the trainer's resume/init_from checks compare
    _, chain, _ = load_model(CHECKPOINT)
    assert chain.pitch_keys == builtin.pitch_keys
    assert Matcher(chain, steps=0).pitch_from == "audio"


def test_every_builtin_copy_without_marks_takes_them_back():
    for name, path in builtin_chains().items():
        raw = load_spec(path).raw
        old = Chain.from_dict(json.loads(json.dumps(without_pitch_marks(raw))), source="state.json")
        assert old.pitch_keys == Chain.load(path).pitch_keys, name
        assert old.spec.raw == raw, name


def test_only_an_exact_copy_takes_the_marks():
    raw = without_pitch_marks(load_spec("REDUCED_SIMPLE_OSC").raw)
    changed = json.loads(json.dumps(raw))
    changed["nodes"]["lpf"]["params"]["cutoff_hz"]["range"] = [100.0, 8000.0]
    renamed = dict(json.loads(json.dumps(raw)), name="MY_PATCH")
    for other in (changed, renamed):
        assert Chain.from_dict(other).pitch_keys == []
    marked = Chain.load("REDUCED_SIMPLE_OSC").spec.raw
    assert without_pitch_marks(marked) == raw and "pitch" not in json.dumps(raw)
    assert marked["nodes"]["saw"]["params"] == {"freq_hz": {"pitch": "note"}}  # the original is untouched


def test_an_old_preset_of_a_builtin_still_transposes(tmp_path):
    chain = Chain.load("REDUCED_SIMPLE_OSC")
    params = chain.sample(1, seed=4)
    old = without_pitch_marks(yaml.safe_load(preset_text(chain, params)))
    path = tmp_path / "old.preset.yaml"
    path.write_text(yaml.safe_dump(old, sort_keys=False))
    loaded = load_preset(path)
    assert loaded.chain.pitch_keys == chain.pitch_keys
    moved = transpose(loaded.chain, loaded.params, 60)
    assert hz(loaded.chain, moved, "saw.freq_hz") == pytest.approx(float(midi_to_hz(60.0)), rel=1e-5)
    assert torch.equal(moved["env.attack_s"], loaded.params["env.attack_s"])
