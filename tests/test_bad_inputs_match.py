"""Bad flags and bad presets for diffmoog-match, render-preset, diffmoog-morph and diffmoog-vary,
run as a user runs them (the console scripts, cwd = tmp_path): exit code 2 and one line naming the
flag, file or key; warnings that can be seen; no out-of-range value written; and nothing already
written changed by a failing command. (Chain files and create-data: test_bad_inputs_chain.py.)
"""
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

import diffmoog
from diffmoog.errors import SpecError
from diffmoog.preset import FORMAT, PresetWarning, load_preset, save_preset
from diffmoog.match.render_preset import transpose
from diffmoog.spec import MAX_SOUND_SAMPLES

BIN = Path(sys.executable).parent
CHAIN = "REDUCED_SIMPLE_OSC"  # saw.freq_hz 32.7 .. 2093 Hz, 16 kHz (Nyquist 8000 Hz)
# A tiny chain to match against: two free parameters, a quarter of a second.
TINY = {"name": "TINY", "sample_rate": 16000, "duration": 0.25, "note_off": 0.2,
        "nodes": {"osc": {"module": "oscillator", "fixed": {"waveform": "saw", "freq_hz": 220.0}},
                  "lpf": {"module": "filter", "inputs": ["osc"], "fixed": {"filter_type": "lowpass", "q": 0.707}}},
        "output": "lpf"}


def run(cwd, *args):
    return subprocess.run([str(BIN / args[0]), *map(str, args[1:])], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


MAINS = {"diffmoog-match": "diffmoog.match.cli", "render-preset": "diffmoog.match.render_preset",
         "diffmoog-morph": "diffmoog.match.morph", "diffmoog-vary": "diffmoog.match.vary"}


def run_in_process(cwd, capsys, monkeypatch, *args):
    """The console script's own main(), in this interpreter (no second torch import): the same
    code path, for the many one-flag cases; each CLI also runs as a subprocess below."""
    import importlib

    main = importlib.import_module(MAINS[args[0]]).main
    monkeypatch.chdir(cwd)
    threads = torch.get_num_threads()
    capsys.readouterr()
    try:
        code = main([str(a) for a in args[1:]])
    except SystemExit as exit_:  # argparse's errors
        code = exit_.code
    finally:
        torch.set_num_threads(threads)
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, captured.out, captured.err)


def one_line_error(result, *needles):
    """Exit 2, stderr a single line without a traceback, naming every needle."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    message = result.stderr.strip()
    assert "Traceback" not in message and "\n" not in message, message
    assert message.split(": error: ")[0] in ("diffmoog-match", "render-preset", "diffmoog-morph", "diffmoog-vary")
    for needle in needles:
        assert needle in message, (needle, message)
    return message


def warnings_of(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if ": warning: " in line]


def snapshot(root: Path) -> dict:
    return {path.relative_to(root): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def preset(tmp_path, name="p.preset.yaml", seed=3, **values) -> Path:
    """A REDUCED_SIMPLE_OSC preset, with `values` ("saw.freq_hz"="99999", or None to drop the
    line) edited into its text as a user would."""
    chain = diffmoog.Chain.load(CHAIN)
    path = save_preset(tmp_path / name, chain, chain.sample(1, seed=seed))
    text = path.read_text()
    for key, value in values.items():
        key = key.replace("__", ".")
        line = rf"\n    {re.escape(key)}: [^\n]*"
        assert re.search(line, text), key
        text = re.sub(line, "" if value is None else f"\n    {key}: {value}", text, count=1)
    path.write_text(text)
    return path


@pytest.fixture
def workspace(tmp_path):
    """A preset, a tiny chain and a sound made by it, an earlier output of every tool (which a
    failing command must leave alone) and `afile`, a regular file."""
    preset(tmp_path)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY, sort_keys=False))
    chain = diffmoog.Chain.from_dict(TINY)
    sf.write(tmp_path / "target.wav", chain.render(chain.sample(1, seed=1))[0].numpy(), 16000, subtype="FLOAT")
    (tmp_path / "out.wav").write_bytes(b"an earlier render")
    for folder in ("matches", "morph", "variations"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "earlier.txt").write_text("kept")
    (tmp_path / "afile").write_text("a regular file")
    return tmp_path


MATCH = ("diffmoog-match", "target.wav", "--chain", "tiny.yaml", "-o", "matches")
RENDER = ("render-preset", "p.preset.yaml", "-o", "out.wav")
MORPH = ("diffmoog-morph", "p.preset.yaml", "p.preset.yaml", "-o", "morph")
VARY = ("diffmoog-vary", "p.preset.yaml", "-o", "variations")
BAD_FLAGS = [
    (MATCH, ["--lr", "-5"], "--lr must be > 0, got -5"),
    (MATCH, ["--lr", "nan"], "--lr must be a finite number"),
    (MATCH, ["--refine-steps", "-1"], "--refine-steps must be >= 0"),
    (MATCH, ["--restarts", "0"], "--restarts must be >= 1"),
    (MATCH, ["--restarts", "1000000"], "--restarts 1000000: too many for chain TINY"),
    (MATCH, ["--device", "nonsense"], "--device"),
    (MATCH, ["--restarts", "two"], "argument --restarts: invalid int value: 'two'"),
    (RENDER, ["--pitch", "200"], "--pitch must be in 0 .. 127, got 200"),
    (RENDER, ["--pitch", "-1"], "--pitch must be in 0 .. 127"),
    (RENDER, ["--duration", "nan"], "--duration must be a finite number"),
    (RENDER, ["--note-off", "-1"], "--note-off must be >= 0"),
    (RENDER, ["--sample-rate", "10"], "--sample-rate must be in 1000 .. "),
    (MORPH, ["--steps", "1"], "--steps must be in 2 .. 1000, got 1"),
    (MORPH, ["--steps", "100000"], "--steps must be in 2 .. 1000"),
    (VARY, ["--n", "0"], "--n must be in 1 .. 1000, got 0"),
    (VARY, ["--amount", "2"], "--amount must be in 0 .. 1, got 2"),
    (VARY, ["--amount", "nan"], "--amount must be a finite number"),
]


@pytest.mark.parametrize("command, flags, message", BAD_FLAGS,
                         ids=[f"{c[0]} {' '.join(f)}" for c, f, _ in BAD_FLAGS])
def test_bad_numeric_flag_is_one_line_and_writes_nothing(workspace, capsys, monkeypatch, command, flags, message):
    before = snapshot(workspace)
    one_line_error(run_in_process(workspace, capsys, monkeypatch, *command, *flags), message)
    assert snapshot(workspace) == before


@pytest.mark.parametrize("command, flags, message", [
    (MATCH, ["--lr", "-5"], "diffmoog-match: error: --lr must be > 0, got -5"),
    (RENDER, ["--pitch", "200"], "render-preset: error: --pitch must be in 0 .. 127, got 200"),
    (MORPH, ["--steps", "1"], "diffmoog-morph: error: --steps must be in 2 .. 1000, got 1"),
    (VARY, ["--amount", "2", "--n", "x"], "diffmoog-vary: error: argument --n: invalid int value: 'x'")])
def test_bad_flag_as_a_user_runs_it(workspace, command, flags, message):
    before = snapshot(workspace)
    assert one_line_error(run(workspace, *command, *flags), message).startswith(message)
    assert snapshot(workspace) == before


@pytest.mark.parametrize("flag, value", [("--duration", "1000000"), ("--sample-rate", "2000000000")])
def test_render_length_is_bounded_before_rendering(workspace, flag, value):
    before = snapshot(workspace)
    one_line_error(run(workspace, *RENDER, flag, value), flag, f"the limit is {MAX_SOUND_SAMPLES:,}")
    assert snapshot(workspace) == before


def test_morph_length_is_bounded(workspace):
    """morph.wav holds every step in a row: 500 steps of 4 s (2000 s) exceed the 600 s render limit."""
    before = snapshot(workspace)
    one_line_error(run(workspace, *MORPH, "--steps", "500"), "--steps 500", "morph.wav", "the limit is")
    assert snapshot(workspace) == before


@pytest.mark.parametrize("command, output", [(RENDER, "afile/x.wav"), (MATCH, "afile/sub"), (MORPH, "afile"),
                                             (VARY, "afile/deeper/out"), (RENDER, "morph"), (RENDER, "out.flac")])
def test_unusable_output_path_is_one_line_naming_it(workspace, command, output):
    args = list(command)
    args[args.index("-o") + 1] = output
    before = snapshot(workspace)
    message = one_line_error(run(workspace, *args), f"-o {output}")
    if output.startswith("afile"):
        assert "afile is a file, not a folder" in message or "afile: is a file" in message
    assert snapshot(workspace) == before


def test_outputs_never_overwrite_the_input(workspace):
    (workspace / "variations" / "var_00.preset.yaml").write_bytes((workspace / "p.preset.yaml").read_bytes())
    before = snapshot(workspace)
    one_line_error(run(workspace, "diffmoog-vary", "variations/var_00.preset.yaml", "--n", "2", "-o", "variations"),
                   "var_00.preset.yaml", "overwrite an input")
    assert snapshot(workspace) == before


def test_pitch_beyond_nyquist_is_refused_and_outside_the_range_warns(workspace):
    before = snapshot(workspace)
    # MIDI 127 is 12544 Hz: above the 8 kHz Nyquist frequency of this 16 kHz preset.
    one_line_error(run(workspace, *RENDER, "--pitch", "127", "--duration", "0.2"),
                   "--pitch 127", "Nyquist", "--sample-rate 25088")
    assert snapshot(workspace) == before
    # MIDI 110 (4699 Hz) plays, beyond saw.freq_hz's 2093 Hz range: a warning names the key.
    result = run(workspace, *RENDER, "--pitch", "110", "--duration", "0.2")
    assert result.returncode == 0, result.stderr
    [warning] = [line for line in warnings_of(result) if "saw.freq_hz" in line]
    assert warning.startswith("render-preset: warning: --pitch 110") and "outside its range 32.7 .. 2093" in warning
    audio, rate = sf.read(workspace / "out.wav", dtype="float32")
    loaded = load_preset(workspace / "p.preset.yaml")
    expected = loaded.chain.render(transpose(loaded.chain, loaded.params, 110), duration=0.2)[0].numpy()
    assert rate == 16000 and np.array_equal(audio, expected)


def test_silent_render_warns(workspace):
    preset(workspace, "quiet.preset.yaml", **{"saw.amp": 0.0, "square.amp": 0.0})
    result = run(workspace, "render-preset", "quiet.preset.yaml", "-o", "quiet.wav", "--duration", "0.2")
    assert result.returncode == 0, result.stderr
    [warning] = warnings_of(result)
    assert "quiet.wav" in warning and "silent" in warning
    assert np.abs(sf.read(workspace / "quiet.wav", dtype="float32")[0]).max() == 0.0


def written_values(path: Path) -> dict:
    return yaml.safe_load(path.read_text())["preset"]["params"]


def assert_in_range(path: Path):
    chain = diffmoog.Chain.load(path)
    for key, value in written_values(path).items():
        param = chain.free_param(key).param
        if not param.is_categorical:
            assert param.low <= value <= param.high * (1 + 1e-12), (path, key, value)


def test_out_of_range_preset_value_is_clamped_with_a_warning_and_never_written(workspace):
    preset(workspace, "b.preset.yaml", seed=4, **{"saw.freq_hz": 99999, "env.attack_s": 0})
    result = run(workspace, "diffmoog-morph", "p.preset.yaml", "b.preset.yaml", "--steps", "3", "-o", "morph")
    assert result.returncode == 0, result.stderr
    warnings = warnings_of(result)
    [freq] = [line for line in warnings if "saw.freq_hz" in line]
    assert freq == ("diffmoog-morph: warning: b.preset.yaml: key 'preset.params.saw.freq_hz': 99999 Hz is "
                    "outside the range 32.7 .. 2093 Hz; clamped to 2093 Hz")
    [attack] = [line for line in warnings if "env.attack_s" in line]
    assert "b.preset.yaml" in attack and "clamped to 0.001 s" in attack
    for i in range(3):
        assert_in_range(workspace / "morph" / f"morph_{i:02d}.preset.yaml")
    end = written_values(workspace / "morph" / "morph_02.preset.yaml")
    assert end["saw.freq_hz"] == pytest.approx(2093.0) and end["env.attack_s"] == pytest.approx(0.001)

    result = run(workspace, "diffmoog-vary", "b.preset.yaml", "--n", "3", "--amount", "0.5", "-o", "variations")
    assert result.returncode == 0, result.stderr
    assert any("saw.freq_hz" in line and "clamped" in line for line in warnings_of(result))
    for i in range(3):
        assert_in_range(workspace / "variations" / f"var_{i:02d}.preset.yaml")
    assert (workspace / "variations" / "earlier.txt").read_text() == "kept"


def test_missing_parameter_warns_naming_key_and_default(workspace):
    preset(workspace, "short.preset.yaml", **{"lpf.q": None})
    result = run(workspace, "render-preset", "short.preset.yaml", "-o", "short.wav", "--duration", "0.2")
    assert result.returncode == 0, result.stderr
    [warning] = warnings_of(result)
    assert warning == ("render-preset: warning: short.preset.yaml: key 'preset.params': missing lpf.q; "
                       "using the chain's default: lpf.q = 0.707")
    assert (workspace / "short.wav").is_file()


@pytest.mark.parametrize("version, message", [(99, f"format 99 is newer than this diffmoog reads (up to {FORMAT})"),
                                              (0, "unknown format 0"), ("'1'", "expected an integer format version")])
def test_unknown_format_is_refused_naming_the_key(tmp_path, version, message):
    path = preset(tmp_path)
    path.write_text(path.read_text().replace(f"  format: {FORMAT}\n", f"  format: {version}\n", 1))
    with pytest.raises(SpecError, match=re.escape(f"{path}: key 'preset.format': {message}")):
        load_preset(path)


def test_newer_format_through_the_cli_leaves_the_output_alone(workspace):
    path = workspace / "p.preset.yaml"
    path.write_text(path.read_text().replace(f"  format: {FORMAT}\n", "  format: 99\n", 1))
    before = snapshot(workspace)
    one_line_error(run(workspace, *RENDER), "p.preset.yaml", "key 'preset.format'", "format 99 is newer")
    assert snapshot(workspace) == before


def test_bad_seed_and_metrics_name_their_key(tmp_path):
    for old, new, key in (("  seed: ", f"  seed: {2 ** 70} #", "preset.seed"),
                          ("\n  params:\n", "\n  metrics: 5\n  params:\n", "preset.metrics")):
        path = preset(tmp_path)
        path.write_text(path.read_text().replace(old, new, 1))
        with pytest.raises(SpecError, match=re.escape(f"key '{key}'")):
            load_preset(path)


def test_library_warnings_and_callback(tmp_path):
    path = preset(tmp_path, **{"saw.freq_hz": -5, "lpf.q": None})
    with pytest.warns(PresetWarning) as record:
        loaded = load_preset(path)
    messages = [str(w.message) for w in record]
    assert len(messages) == 2 and re.search("saw.freq_hz.*clamped to 32.7", messages[0]), messages
    assert float(loaded.params["saw.freq_hz"][0]) == 0.0
    seen = []
    load_preset(path, warn=seen.append)
    assert len(seen) == 2 and "lpf.q = 0.707" in seen[1]


def test_presets_at_the_range_edges_read_back_exactly_without_warnings(tmp_path):
    """Boundary values written in float64 may exceed the range by an ulp: no warning, no change."""
    for name in ("REDUCED_SIMPLE_OSC", "MODULAR", "FM_DX7"):
        chain = diffmoog.Chain.load(name)
        for edge in (0.0, 1.0):
            params = chain.sample(1, seed=0)
            for fp in chain.free_params:
                if not fp.param.is_categorical:
                    params[fp.key] = torch.full((1,), edge)
            seen = []
            loaded = load_preset(save_preset(tmp_path / f"{name}_{edge}.preset.yaml", chain, params), seen.append)
            assert seen == [], seen
            assert all(torch.equal(loaded.params[k], params[k].float()) for k in chain.param_keys)


def test_saving_an_out_of_range_value_is_refused_and_keeps_the_file(tmp_path):
    chain = diffmoog.Chain.load(CHAIN)
    path = save_preset(tmp_path / "p.preset.yaml", chain, chain.sample(1, seed=1))
    before = path.read_bytes()
    for bad in (1.5, -0.25, math.nan):
        params = chain.sample(1, seed=2)
        params["saw.freq_hz"] = torch.tensor([bad])
        with pytest.raises(SpecError, match="saw.freq_hz.*outside the range 32.7 .. 2093"):
            save_preset(path, chain, params)
        assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.preset.yaml"]


def test_match_redoes_a_sound_whose_record_is_not_json(workspace):
    (workspace / "matches" / "target.json").write_text("{ half a record")
    result = run(workspace, *MATCH, "--refine-steps", "1", "--restarts", "1")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert yaml.safe_load((workspace / "matches" / "target.json").read_text())["name"] == "target"
    assert (workspace / "matches" / "earlier.txt").read_text() == "kept"
