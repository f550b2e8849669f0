"""The flow's prior as a sound-design tool, as a user runs it: diffmoog-generate (sampling and
inpainting), diffmoog-vary --prior and diffmoog-morph --through-prior with the committed flow
checkpoint. One subprocess per CLI for the happy path; the rest calls `main([...])` in-process
(same code, no interpreter start-up). Small --n and --steps keep the file within a minute."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from diffmoog.chain import SEED_KEY, Chain
from diffmoog.match import generate, morph, vary
from diffmoog.match.prior import DEFAULT_INVERT_STEPS, Prior, midi_hz
from diffmoog.preset import load_preset, save_preset

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FLOW = REPO / "examples" / "checkpoints" / "reduced_simple_osc_flow"
REGRESSION = REPO / "examples" / "checkpoints" / "reduced_simple_osc_params_only"
KNOBS = ["saw.freq_hz", "saw.amp", "square.freq_hz", "square.amp", "env.attack_s", "env.decay_s",
         "env.sustain_level", "env.release_s", "env.curve", "lpf.cutoff_hz", "lpf.q"]


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)  # as the CLIs do: long jobs share this machine's two cores


@pytest.fixture(scope="module")
def prior():
    return Prior(str(FLOW))


@pytest.fixture
def preset(tmp_path, prior):
    """A preset of the flow's chain as diffmoog writes one (a random one, no pitch recorded)."""
    params = prior.chain.sample(1, seed=7)
    return save_preset(tmp_path / "base.preset.yaml", prior.chain, params, source="test")


def run_cli(name, args, cwd):
    return subprocess.run([str(BIN / name), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def values(path):
    return yaml.safe_load(Path(path).read_text())["preset"]


def files(folder):
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}


def in_range(path):
    """Every value of a written preset lies in its parameter's range (loading warns otherwise)."""
    loaded = load_preset(path, warn=lambda message: pytest.fail(message))
    return all(0.0 <= float(loaded.params[k]) <= 1.0 for k in loaded.chain.param_keys)


def one_line_error(code, err, *needles):
    lines = err.strip().splitlines()
    return code == 2 and len(lines) == 1 and "Traceback" not in err and all(n in lines[0] for n in needles)


# -- diffmoog-generate --------------------------------------------------------------------

def test_generate_writes_n_presets_deterministically(tmp_path):
    done = run_cli("diffmoog-generate", ["--n", "3", "--steps", "4", "--seed", "5", "-o", "out"], tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    names = [f"gen_0{i}" for i in range(3)]
    assert sorted(files(out)) == sorted([f"{n}{s}" for n in names for s in (".preset.yaml", ".wav", ".png")]
                                        + ["summary.json"])
    for name in names:
        assert in_range(out / f"{name}.preset.yaml")
        assert values(out / f"{name}.preset.yaml")["pitch"] == {"hz": 261.6256, "midi": 60.0, "source": "prior"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["checkpoint"] == str(FLOW.resolve()) and summary["settings"]["steps"] == 4
    assert sorted(summary["spread"]) == sorted(KNOBS) and all(v > 0 for v in summary["spread"].values())
    # The same flags write the same bytes (wav, png, yaml, json); another seed, other presets.
    assert generate.main(["--n", "3", "--steps", "4", "--seed", "5", "-o", str(tmp_path / "again")]) == 0
    assert files(tmp_path / "again") == files(out)
    assert generate.main(["--n", "1", "--steps", "4", "--seed", "6", "-o", str(tmp_path / "other")]) == 0
    assert values(tmp_path / "other" / "gen_00.preset.yaml")["params"] != values(out / "gen_00.preset.yaml")["params"]


def test_preset_i_does_not_depend_on_n(tmp_path):
    assert generate.main(["--n", "1", "--steps", "4", "--seed", "5", "-o", str(tmp_path / "one")]) == 0
    assert generate.main(["--n", "2", "--steps", "4", "--seed", "5", "-o", str(tmp_path / "two")]) == 0
    assert (tmp_path / "one" / "gen_00.preset.yaml").read_bytes() == (tmp_path / "two" / "gen_00.preset.yaml").read_bytes()


def test_inpainting_keeps_knobs_exactly_and_samples_the_free_ones(tmp_path, preset):
    out = tmp_path / "inpainted"
    # --pitch 48 is not the pitch the preset's oscillators were encoded around (none recorded:
    # middle C), so the kept pitch-marked oscillators pass through the pitch-relative vector.
    assert generate.main(["--keep", str(preset), "--free", "lpf.*,env.attack_s", "--pitch", "48", "--n", "4",
                          "--steps", "4", "-o", str(out)]) == 0
    base, loaded = values(preset), load_preset(preset)
    free = ["env.attack_s", "lpf.cutoff_hz", "lpf.q"]
    written = [values(out / f"gen_0{i}.preset.yaml") for i in range(4)]
    for item in written:
        assert item["seed"] == base["seed"] and item["pitch"]["midi"] == 48.0
        for key in KNOBS:
            if key not in free:
                assert item["params"][key] == base["params"][key], key  # the same text: exact
    for i in range(4):
        again = load_preset(out / f"gen_0{i}.preset.yaml")
        assert all(torch.equal(again.params[k], loaded.params[k]) for k in KNOBS if k not in free)
        assert in_range(out / f"gen_0{i}.preset.yaml")
    for key in free:
        assert len({item["params"][key] for item in written}) == 4, key  # every free knob varies
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["spread"]) == free and all(summary["spread"][k] > 0.01 for k in free)
    assert summary["settings"]["free"] == free and sorted(summary["kept"]) == sorted(set(KNOBS) - set(free))


def test_held_columns_end_exactly_on_the_target(prior):
    params = prior.chain.sample(1, seed=3)
    hz = midi_hz(55)
    target = prior.encode(params, hz)
    mask = prior.columns(["saw.freq_hz", "lpf.q"])
    z = torch.randn(1, prior.vector.dim, generator=torch.Generator().manual_seed(0))
    for steps in (1, 3, 8):
        x = prior.forward(z, hz, steps, hold=(mask, z, target))
        assert torch.equal(x[:, mask], target[:, mask])
        assert not torch.equal(x[:, ~mask], target[:, ~mask])


@pytest.mark.parametrize("pattern, needles", [
    ("lfp.*", ["--free 'lfp.*'", "did you mean 'lpf.*'"]),
    ("env.atack_s", ["--free 'env.atack_s'", "did you mean 'env.attack_s'"]),
])
def test_a_pattern_that_matches_nothing_is_one_line(tmp_path, preset, capsys, pattern, needles):
    code = generate.main(["--keep", str(preset), "--free", f"lpf.q,{pattern}", "--n", "1", "-o",
                          str(tmp_path / "out")])
    assert one_line_error(code, capsys.readouterr().err, *needles)
    assert not (tmp_path / "out").exists()


def test_a_preset_of_another_chain_is_refused(tmp_path, capsys):
    other = Chain.load("OSC_FILTER")
    path = save_preset(tmp_path / "other.preset.yaml", other, other.sample(1, seed=0))
    code = generate.main(["--keep", str(path), "--free", "*", "-o", str(tmp_path / "out")])
    assert one_line_error(code, capsys.readouterr().err, str(path), "REDUCED_SIMPLE_OSC")
    # The same name with other knobs (a cutoff range edited) is refused too.
    text = (REPO / "chains" / "reduced_simple_osc.yaml").read_text()
    edited = tmp_path / "edited.yaml"
    edited.write_text(text.replace("range: [150.0, 8000.0]", "range: [100.0, 8000.0]"))
    assert text != edited.read_text()
    chain = Chain.load(edited)
    path = save_preset(tmp_path / "edited.preset.yaml", chain, chain.sample(1, seed=0))
    code = generate.main(["--keep", str(path), "--free", "lpf.*", "-o", str(tmp_path / "out")])
    assert one_line_error(code, capsys.readouterr().err, str(path), "differs from the checkpoint's")
    assert not (tmp_path / "out").exists()


def test_a_regression_checkpoint_is_refused(tmp_path, capsys, preset):
    code = generate.main(["--checkpoint", str(REGRESSION), "-o", str(tmp_path / "out")])
    assert one_line_error(code, capsys.readouterr().err, "--checkpoint", "not a flow")
    code = vary.main([str(preset), "--prior", "--checkpoint", str(REGRESSION), "-o", str(tmp_path / "out")])
    assert one_line_error(code, capsys.readouterr().err, "--checkpoint", "not a flow")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv, flag", [
    (["--n", "0"], "--n"), (["--n", "1001"], "--n"), (["--temperature", "0"], "--temperature"),
    (["--temperature", "-1"], "--temperature"), (["--temperature", "nan"], "--temperature"),
    (["--temperature", "11"], "--temperature"), (["--steps", "0"], "--steps"), (["--steps", "5000"], "--steps"),
    (["--pitch", "128"], "--pitch"), (["--free", "lpf.*"], "--free"), (["--keep", "x.yaml"], "--keep"),
    (["--n", "two"], "--n"),
])
def test_bad_values_are_one_line_before_any_work(tmp_path, capsys, argv, flag):
    try:
        code = generate.main([*argv, "-o", str(tmp_path / "out")])
    except SystemExit as exit:  # argparse's own errors (not a number), one line too
        code = exit.code
    assert one_line_error(code, capsys.readouterr().err, flag)
    assert not (tmp_path / "out").exists()


# -- the round trip, diffmoog-vary --prior, diffmoog-morph --through-prior -----------------

def test_inverting_then_integrating_reproduces_a_preset(prior):
    """Measured on the committed flow (64 random presets at middle C): largest normalised error
    0.0014 with 32 steps, 0.022 with 8. Checked here on 6, with room for other draws."""
    hz = midi_hz(60)
    batch = prior.chain.sample(6, seed=11)
    worst = {}
    for steps in (8, DEFAULT_INVERT_STEPS):
        errors = []
        for i in range(6):
            params = {k: v[i:i + 1] for k, v in batch.items()}
            back = prior.decode(prior.forward(prior.invert(params, hz, steps), hz, steps), hz, params[SEED_KEY])
            errors.append(max(float((back[k] - params[k]).abs().max()) for k in KNOBS))
        worst[steps] = max(errors)
    assert worst[DEFAULT_INVERT_STEPS] < 0.005 and worst[8] < 0.05, worst
    assert worst[DEFAULT_INVERT_STEPS] < worst[8]


def test_vary_prior_stays_in_range_and_is_deterministic(tmp_path, preset):
    done = run_cli("diffmoog-vary", [str(preset), "--prior", "--n", "2", "--amount", "0.5", "--ode-steps", "8",
                                     "-o", "out"], tmp_path)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    assert sorted(files(out)) == ["var_00.preset.yaml", "var_00.wav", "var_01.preset.yaml", "var_01.wav"]
    base = values(preset)
    for i in range(2):
        item = values(out / f"var_0{i}.preset.yaml")
        assert in_range(out / f"var_0{i}.preset.yaml") and item["seed"] == base["seed"]
        assert item["params"] != base["params"] and item["pitch"]["midi"] == 60.0
    assert vary.main([str(preset), "--prior", "--n", "2", "--amount", "0.5", "--ode-steps", "8", "-o",
                      str(tmp_path / "again")]) == 0
    assert files(tmp_path / "again") == files(out)
    # Amount 0 is the preset again, up to the round trip's error.
    assert vary.main([str(preset), "--prior", "--n", "1", "--amount", "0", "-o", str(tmp_path / "same")]) == 0
    again, loaded = load_preset(tmp_path / "same" / "var_00.preset.yaml"), load_preset(preset)
    assert max(float((again.params[k] - loaded.params[k]).abs().max()) for k in KNOBS) < 0.005


def test_vary_without_prior_is_unchanged_and_warns_about_prior_flags(tmp_path, preset, capsys):
    assert vary.main([str(preset), "--n", "1", "--ode-steps", "4", "-o", str(tmp_path / "plain")]) == 0
    assert "--ode-steps applies to --prior only" in capsys.readouterr().err
    assert "pitch" not in values(tmp_path / "plain" / "var_00.preset.yaml")


def test_morph_through_prior_keeps_endpoints_and_is_deterministic(tmp_path, preset, prior):
    other = save_preset(tmp_path / "b.preset.yaml", prior.chain, prior.chain.sample(1, seed=8), pitch={"hz": 440.0})
    argv = [str(preset), str(other), "--through-prior", "--steps", "3", "--ode-steps", "8"]
    assert morph.main([*argv, "-o", str(tmp_path / "m")]) == 0
    out = tmp_path / "m"
    assert values(out / "morph_00.preset.yaml")["params"] == values(preset)["params"]
    assert values(out / "morph_02.preset.yaml")["params"] == values(other)["params"]
    middle = values(out / "morph_01.preset.yaml")
    assert in_range(out / "morph_01.preset.yaml") and middle["params"] != values(preset)["params"]
    assert 261.0 < middle["pitch"]["hz"] < 440.0  # the geometric mean of the two pitches, at t = 0.5
    assert morph.main([*argv, "-o", str(tmp_path / "again")]) == 0
    assert files(tmp_path / "again") == files(out)


def test_morph_through_prior_refuses_a_preset_of_another_chain(tmp_path, preset, capsys):
    chain = Chain.load("OSC_FILTER")
    a = save_preset(tmp_path / "a.preset.yaml", chain, chain.sample(1, seed=0))
    b = save_preset(tmp_path / "b.preset.yaml", chain, chain.sample(1, seed=1))
    code = morph.main([str(a), str(b), "--through-prior", "--steps", "3", "-o", str(tmp_path / "m")])
    assert one_line_error(code, capsys.readouterr().err, str(a), "not the checkpoint's chain")
    assert not (tmp_path / "m").exists()


def test_a_long_source_still_reads_back(tmp_path, prior):
    """A source longer than a YAML line (an inpainting record names the preset and checkpoint)."""
    source = "inpainted from " + "/a/long/folder" * 12 + ": lpf.cutoff_hz sampled"
    path = save_preset(tmp_path / "long.preset.yaml", prior.chain, prior.chain.sample(1, seed=0), source=source)
    assert load_preset(path).source == source
