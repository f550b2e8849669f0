"""diffmoog-match and the sound-design tools, on a tiny chain and short sounds."""
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

import diffmoog
from diffmoog.analysis.frechet import frechet_distance_audio
from diffmoog.analysis.metrics import lsd
from diffmoog.match.cli import main as match_main
from diffmoog.match.matcher import Matcher
from diffmoog.match.morph import interpolate
from diffmoog.preset import load_preset, save_preset
from diffmoog.match.refine import Refiner
from diffmoog.match.vary import vary

BIN = sys.executable
# Three free parameters (amp, decay, cutoff), half a second: small enough for a quick match.
TINY = {"name": "TINY", "sample_rate": 16000, "duration": 0.5, "note_off": 0.3,
        "nodes": {"osc": {"module": "oscillator", "fixed": {"waveform": "saw", "freq_hz": 220.0}},
                  "env": {"module": "adsr", "fixed": {"curve": 0.5, "sustain_level": 0.6, "release_s": 0.1,
                                                      "attack_s": 0.01}},
                  "vca": {"module": "vca", "inputs": ["osc"], "control": {"gain": "env"}, "fixed": {"gain": 1.0}},
                  "lpf": {"module": "filter", "inputs": ["vca"], "fixed": {"filter_type": "lowpass", "q": 0.707}}},
        "output": "lpf"}


@pytest.fixture(autouse=True)
def one_thread():
    """Small renders: one intra-op thread is much faster on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny():
    return diffmoog.Chain.from_dict(TINY)


@pytest.fixture
def tiny_files(tmp_path, tiny):
    """The chain as a YAML file and one sound it made (its true preset is seed 100)."""
    chain_path = tmp_path / "tiny.yaml"
    chain_path.write_text(yaml.safe_dump(TINY, sort_keys=False))
    target = tiny.render(tiny.sample(1, seed=100))[0]
    wav = tmp_path / "in" / "target.wav"
    wav.parent.mkdir()
    sf.write(wav, target.numpy(), 16000, subtype="FLOAT")
    return chain_path, wav, target


def cli(module, *args):
    return subprocess.run([BIN, "-m", f"diffmoog.match.{module}", *map(str, args)], capture_output=True, text=True)


def test_refinement_recovers_a_synthetic_sound(tiny):
    torch.manual_seed(0)
    truth = tiny.sample(1, seed=101)
    target = tiny.render(truth)[0]
    start = tiny.sample(1, seed=3)
    result = Refiner(tiny, lr=0.05).refine(target, start, steps=40, restarts=2, seed=0)
    before = float(lsd(tiny.render(start), target[None]))
    after = float(lsd(tiny.render(result.params), target[None]))
    assert after < 0.25 * before, (before, after)
    assert result.loss <= result.start_loss
    assert result.history[-1] <= result.history[0]


def test_refinement_is_deterministic(tiny):
    target = tiny.render(tiny.sample(1, seed=102))[0]
    runs = [Refiner(tiny).refine(target, None, steps=3, restarts=2, seed=7) for _ in range(2)]
    for key in tiny.param_keys:
        assert torch.equal(runs[0].params[key], runs[1].params[key])


def test_encoder_stage_uses_the_model(tiny):
    """An oracle 'encoder' that returns the true params: its stage matches almost exactly."""
    truth = tiny.sample(1, seed=103)
    target = tiny.render(truth)[0]

    class Oracle(torch.nn.Module):
        def forward(self, audio):
            assert audio.shape == (1, target.shape[-1])
            return {k: truth[k] for k in tiny.param_keys}

    matcher = Matcher(tiny, Oracle(), steps=2, restarts=2)
    noise_free = matcher.match(target, "oracle")
    assert noise_free.metrics["encoder"]["lsd"] < 1e-3 < noise_free.metrics["random"]["lsd"]
    assert noise_free.metrics["refined"]["lsd"] <= noise_free.metrics["encoder"]["lsd"] + 1e-3


def test_match_cli_outputs_resume_and_preset_round_trip(tmp_path, tiny_files):
    chain_path, wav, target = tiny_files
    out = tmp_path / "out"
    run = cli("cli", wav.parent, "--chain", chain_path, "--refine-steps", 15, "--restarts", 2, "-o", out)
    assert run.returncode == 0, run.stderr
    assert "LSD random" in run.stdout and "mean" in run.stdout
    for suffix in (".preset.yaml", ".match.wav", ".png", ".json"):
        assert (out / f"target{suffix}").is_file(), suffix
    record = json.loads((out / "target.json").read_text())
    metrics = record["metrics"]
    assert set(metrics) == {"random", "refined"}
    assert metrics["refined"]["lsd"] < metrics["random"]["lsd"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["count"] == 1 and summary["mean"]["refined"]["lsd"] == metrics["refined"]["lsd"]

    # Round trip: the preset renders exactly the match written next to it.
    replay = tmp_path / "replay.wav"
    run = cli("render_preset", out / "target.preset.yaml", "-o", replay)
    assert run.returncode == 0, run.stderr
    assert np.array_equal(sf.read(replay, dtype="float32")[0], sf.read(out / "target.match.wav", dtype="float32")[0])

    # Resume: a finished sound with the same settings is not redone.
    stamp = (out / "target.json").stat().st_mtime_ns
    run = cli("cli", wav, "--chain", chain_path, "--refine-steps", 15, "--restarts", 2, "-o", out)
    assert run.returncode == 0, run.stderr
    assert (out / "target.json").stat().st_mtime_ns == stamp


@pytest.mark.parametrize("case", ["silent", "short", "unreadable", "missing", "empty_folder"])
def test_bad_inputs_give_one_line_and_exit_2(tmp_path, capsys, case):
    path = tmp_path / f"{case}.wav"
    if case == "silent":
        sf.write(path, np.zeros(16000, dtype=np.float32), 16000)
    elif case == "short":
        sf.write(path, np.full(300, 0.5, dtype=np.float32), 16000)
    elif case == "unreadable":
        path.write_bytes(b"RIFF not really a wav")
    elif case == "empty_folder":
        path = tmp_path / "empty"
        path.mkdir()
    args = [path, "--chain", "REDUCED_SIMPLE_OSC", "--refine-steps", 1, "-o", tmp_path / "out"]
    if case in ("silent", "unreadable"):  # as a user runs it
        run = cli("cli", *args)
        code, stderr = run.returncode, run.stderr
    else:  # in-process: the same entry point, without another interpreter start
        code = match_main([str(a) for a in args])
        stderr = capsys.readouterr().err
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("diffmoog-match: error:") and str(path) in lines[0], stderr
    assert "Traceback" not in stderr
    expected = {"silent": "silent", "short": "too short", "unreadable": "cannot read audio",
                "missing": "no such file", "empty_folder": "no audio files"}[case]
    assert expected in lines[0]


def test_morph_endpoints_equal_the_presets(tmp_path):
    chain = diffmoog.Chain.load("REDUCED_SIMPLE_OSC")
    params = chain.sample(2, seed=21)
    a = save_preset(tmp_path / "a.preset.yaml", chain, params, 0)
    b = save_preset(tmp_path / "b.preset.yaml", chain, params, 1)
    run = cli("morph", a, b, "--steps", 3, "-o", tmp_path / "m")
    assert run.returncode == 0, run.stderr
    for index, path in ((0, "morph_00.wav"), (1, "morph_02.wav")):
        expected = chain.render({k: v[index:index + 1] for k, v in params.items()})[0].numpy()
        assert np.array_equal(sf.read(tmp_path / "m" / path, dtype="float32")[0], expected)
    middle = load_preset(tmp_path / "m" / "morph_01.preset.yaml").params
    # Log-scale params meet in log space: the midpoint frequency is the geometric mean.
    hz = chain.to_physical(params)["saw.freq_hz"]
    assert float(chain.to_physical(middle)["saw.freq_hz"]) == pytest.approx(float((hz[0] * hz[1]).sqrt()), rel=1e-4)
    assert sf.info(tmp_path / "m" / "morph.wav").frames == 3 * chain.render(params).shape[-1]


def test_morph_categoricals_fade_or_switch():
    chain = diffmoog.Chain.load("MODULAR")
    a, b = chain.sample(1, seed=1), chain.sample(1, seed=2)
    cats = [fp.key for fp in chain.free_params if fp.param.is_categorical]
    key = next(k for k in cats if not torch.equal(a[k], b[k]))
    fade = interpolate(chain, a, b, 0.25, "fade")[key]
    assert torch.allclose(fade, 0.75 * a[key] + 0.25 * b[key])
    assert torch.equal(interpolate(chain, a, b, 0.25, "switch")[key], a[key])
    assert torch.equal(interpolate(chain, a, b, 0.75, "switch")[key], b[key])
    for t, ref in ((0.0, a), (1.0, b)):
        ends = interpolate(chain, a, b, t, "fade")
        assert all(torch.equal(ends[k].float(), ref[k].float()) for k in chain.param_keys)


def test_morph_rejects_different_chains(tmp_path):
    one, two = diffmoog.Chain.load("REDUCED_SIMPLE_OSC"), diffmoog.Chain.load("FM_DX7")
    a = save_preset(tmp_path / "a.preset.yaml", one, one.sample(1))
    b = save_preset(tmp_path / "b.preset.yaml", two, two.sample(1))
    run = cli("morph", a, b, "-o", tmp_path / "m")
    assert run.returncode == 2 and "different chains" in run.stderr and len(run.stderr.strip().splitlines()) == 1


def test_vary_is_deterministic_and_scaled(tmp_path):
    chain = diffmoog.Chain.load("MODULAR")
    params = chain.sample(1, seed=5)
    first, again = vary(chain, params, 0.1, 3, 0), vary(chain, params, 0.1, 3, 0)
    other = vary(chain, params, 0.1, 3, 1)
    assert all(torch.equal(first[k], again[k]) for k in chain.param_keys)
    assert any(not torch.equal(first[k], other[k]) for k in chain.param_keys)
    same = vary(chain, params, 0.0, 3, 0)
    assert all(torch.equal(same[k].float(), params[k].float()) for k in chain.param_keys)
    preset = save_preset(tmp_path / "p.preset.yaml", chain, params)
    run = cli("vary", preset, "--n", 2, "--amount", 0.2, "--seed", 4, "-o", tmp_path / "v")
    assert run.returncode == 0, run.stderr
    expected = chain.render(vary(chain, load_preset(preset).params, 0.2, 4, 1))[0].numpy()
    assert np.array_equal(sf.read(tmp_path / "v" / "var_01.wav", dtype="float32")[0], expected)


def test_frechet_logmel_distance():
    chain = diffmoog.Chain.load("REDUCED_SIMPLE_OSC")
    a = chain.render(chain.sample(12, seed=1), duration=0.5)
    b = chain.render(chain.sample(12, seed=2), duration=0.5)
    noise = torch.rand(12, 8000) - 0.5
    assert frechet_distance_audio(a, a, 16000) == pytest.approx(0.0, abs=1e-3)
    near, far = frechet_distance_audio(a, b, 16000), frechet_distance_audio(a, noise, 16000)
    assert 0.0 < near < far
    assert frechet_distance_audio(b, a, 16000) == pytest.approx(near, rel=1e-4)


def test_morph_from_two_audio_files_matches_each_first(tmp_path, tiny_files, tiny):
    chain_path, wav, _ = tiny_files
    other = tmp_path / "in" / "other.wav"
    sf.write(other, tiny.render(tiny.sample(1, seed=104))[0].numpy(), 16000, subtype="FLOAT")
    run = cli("morph", wav, other, "--chain", chain_path, "--refine-steps", 3, "--restarts", 2, "--steps", 3,
              "-o", tmp_path / "m")
    assert run.returncode == 0, run.stderr
    ends = [load_preset(tmp_path / "m" / f"morph_{i:02d}.preset.yaml") for i in (0, 2)]
    assert all(p.chain.param_keys == tiny.param_keys for p in ends)
    audio = sf.read(tmp_path / "m" / "morph_00.wav", dtype="float32")[0]
    assert np.array_equal(audio, ends[0].chain.render(ends[0].params)[0].numpy())
