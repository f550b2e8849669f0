"""Matching at a pitch: retuning presets, where the pitch comes from, and what gets recorded."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch
import yaml

from diffmoog.analysis.pitch import cents_between, midi_to_hz
from diffmoog.chain import Chain
from diffmoog.errors import ConfigError
from diffmoog.match.inputs import metadata_pitch_hz
from diffmoog.match.matcher import Matcher
from diffmoog.match.refine import Refiner
from diffmoog.match.tuning import retune

BIN = Path(sys.executable).parent
CHAIN = "REDUCED_SIMPLE_OSC"  # saw.freq_hz and square.freq_hz, both 32.7 .. 2093 Hz


def physical_hz(chain, params, key):
    return chain.free_param(key).param.to_physical(params[key].double())


def test_retune_moves_the_first_oscillator_and_keeps_intervals():
    chain = Chain.load(CHAIN)
    first, second = chain.pitch_keys
    params = chain.sample(16, seed=3)
    before = physical_hz(chain, params, second) / physical_hz(chain, params, first)
    target = torch.full((16,), 330.0, dtype=torch.float64)
    moved = retune(chain, params, target)
    assert moved[first].dtype == params[first].dtype
    torch.testing.assert_close(physical_hz(chain, moved, first), target, rtol=1e-5, atol=0)
    torch.testing.assert_close(physical_hz(chain, moved, second) / physical_hz(chain, moved, first), before,
                               rtol=1e-4, atol=0)
    assert torch.equal(moved["env.attack_s"], params["env.attack_s"])  # nothing else moves
    clamped = retune(chain, params, 2000.0, clamp=True)
    assert float(clamped[second].max()) <= 1.0 and float(clamped[second].min()) >= 0.0


def test_retune_to_octaves_puts_every_oscillator_on_the_pitch_class():
    chain = Chain.load(CHAIN)
    params = chain.sample(32, seed=5)
    moved = retune(chain, params, 220.0, clamp=True, octaves=True)
    octaves = torch.log2(physical_hz(chain, moved, "square.freq_hz") / 220.0)
    inside = (physical_hz(chain, moved, "square.freq_hz") > 33.0) & (physical_hz(chain, moved, "square.freq_hz") < 2090.0)
    torch.testing.assert_close(octaves[inside], octaves[inside].round(), rtol=0, atol=1e-4)
    assert len(set(octaves[inside].round().tolist())) > 1  # the random octaves are kept as variety


def test_refinement_keeps_a_measured_pitch():
    chain = Chain.load(CHAIN)
    target = tone(chain, 311.13, seed=2)[: chain.sample_rate // 2]
    result = Refiner(chain, lr=0.3).refine(target, None, steps=6, restarts=3, seed=0, pitch_hz=311.13)
    for key in chain.pitch_keys:
        octaves = torch.log2(physical_hz(chain, result.params, key) / 311.13)
        assert abs(float(octaves - octaves.round())) * 12 <= 0.5 + 1e-3, key


def test_retune_refuses_a_chain_without_oscillator_pitch():
    chain = Chain.from_dict({"name": "NOISE_ONLY", "nodes": {"n": {"module": "noise"}}, "output": "n"})
    with pytest.raises(ConfigError, match=r"chain NOISE_ONLY has no pitch to set: no parameter is marked `pitch: note`"):
        retune(chain, chain.sample(1), 440.0)
    assert Matcher(chain, steps=0).pitch_from == "none"  # nothing to move: pitch is not used


def test_random_refinement_starts_begin_at_the_pitch():
    chain = Chain.load(CHAIN)
    refiner = Refiner(chain)
    target = chain.render(chain.sample(1, seed=9))[0:1]
    starts = refiner.random_starts(target, restarts=3, seed=1, pitch_hz=196.0)
    for value in physical_hz(chain, starts, "saw.freq_hz"):
        assert float(value) == pytest.approx(196.0, rel=1e-5)


def tone(chain, hz: float, seed: int = 0) -> torch.Tensor:
    params = chain.sample(1, seed=seed)
    params = retune(chain, params, hz)
    params["square.freq_hz"] = params["saw.freq_hz"]  # one pitch in the sound
    params["square.amp"] = torch.zeros(1)  # (saw - square/2 would sound an octave up)
    params["lpf.cutoff_hz"] = torch.ones(1)
    params["env.sustain_level"] = torch.ones(1)
    with torch.no_grad():
        return chain.render(params)[0]


def test_the_matcher_estimates_the_pitch_and_says_when_there_is_none():
    chain = Chain.load(CHAIN)
    warnings = []
    matcher = Matcher(chain, steps=0, warn=warnings.append)
    pitch = matcher.pitch(tone(chain, 261.63), "c4")
    assert pitch["source"] == "audio" and abs(float(cents_between(torch.tensor(pitch["hz"]),
                                                                  torch.tensor(261.63)))) < 10
    assert pitch["midi"] == pytest.approx(60.0, abs=0.1) and 0.9 < pitch["confidence"] <= 1.0
    noise = torch.rand(chain.sample_rate, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert matcher.pitch(noise, "hiss") is None
    assert len(warnings) == 1 and warnings[0].startswith("hiss: no clear pitch")
    assert Matcher(chain, steps=0, pitch_from="none").pitch(tone(chain, 440.0), "a4") is None
    by_metadata = Matcher(chain, steps=0, pitch_from="metadata", warn=warnings.append)
    assert by_metadata.pitch(tone(chain, 440.0), "a4", metadata_hz=110.0)["hz"] == 110.0
    assert by_metadata.pitch(tone(chain, 440.0), "a4")["source"] == "audio"  # no metadata: the estimate
    assert warnings[-1] == "a4: no metadata pitch; estimating it from the audio"
    with pytest.raises(ConfigError, match="--pitch-from"):
        Matcher(chain, pitch_from="midi")


def test_matching_at_the_pitch_lands_on_it():
    chain = Chain.load(CHAIN)
    target = tone(chain, 146.83, seed=4)[: chain.sample_rate]
    matcher = Matcher(chain, steps=3, restarts=2)
    result = matcher.match(target, "d3")
    assert result.pitch["source"] == "audio"
    found = physical_hz(chain, result.params, "saw.freq_hz")
    assert abs(float(cents_between(found, torch.tensor(146.83, dtype=torch.float64)))) < 30


def test_metadata_pitch_reads_nsynth_layout(tmp_path, nsynth_fixture_dir):
    note = nsynth_fixture_dir / "audio" / "flute_sf_079-072-100.wav"
    assert metadata_pitch_hz(note) == pytest.approx(float(midi_to_hz(72.0)))
    (tmp_path / "examples.json").write_text('{"a": {"pitch": "high"}, "b": {"pitch": 300}, "c": 5}')
    for stem in ("a", "b", "c", "missing"):
        assert metadata_pitch_hz(tmp_path / f"{stem}.wav") is None
    (tmp_path / "examples.json").write_text("not json")
    assert metadata_pitch_hz(tmp_path / "a.wav") is None


def test_match_cli_records_the_pitch_it_used(tmp_path, nsynth_fixture_dir):
    layout = tmp_path / "notes"
    (layout / "audio").mkdir(parents=True)
    meta = json.loads((nsynth_fixture_dir / "examples.json").read_text())
    name = "organ_sf_020-048-100"
    (layout / "examples.json").write_text(json.dumps({name: meta[name]}))
    audio, rate = sf.read(nsynth_fixture_dir / "audio" / f"{name}.wav")
    sf.write(layout / "audio" / f"{name}.wav", audio[: rate // 2], rate)
    args = [str(BIN / "diffmoog-match"), str(layout / "audio"), "--chain", CHAIN, "--refine-steps", "2",
            "--restarts", "1", "-o", "out"]
    done = subprocess.run(args + ["--pitch-from", "metadata"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "out" / f"{name}.json").read_text())
    assert record["pitch"]["source"] == "metadata" and record["settings"]["pitch_from"] == "metadata"
    assert record["pitch"]["hz"] == pytest.approx(float(midi_to_hz(48.0)))
    preset = yaml.safe_load((tmp_path / "out" / f"{name}.preset.yaml").read_text())["preset"]
    assert preset["pitch"]["midi"] == pytest.approx(48.0)
    from diffmoog.preset import load_preset
    assert load_preset(tmp_path / "out" / f"{name}.preset.yaml").pitch["source"] == "metadata"
    bad = subprocess.run(args + ["--pitch-from", "midi"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "--pitch-from" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
