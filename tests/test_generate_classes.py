"""Class-conditional generation, as a user runs it: diffmoog-generate --build-classes on a tiny
NSynth-format folder made here (synthesised tones and drum hits, with an examples.json as the
SoundFont corpus writes it, GM drum names included), then --family / --kind with the committed
flow checkpoint. One subprocess for the happy path; the rest calls `main([...])` in-process.
Small --n, --steps and --per-class keep the file well within a minute."""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file

from diffmoog.match import generate
from diffmoog.match.classes import ClassTable, drum_kind
from diffmoog.match.prior import Prior

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FLOW = REPO / "examples" / "checkpoints" / "reduced_simple_osc_flow"
RATE = 16000


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)  # as the CLIs do: long jobs share this machine's two cores


def tone(hz, harmonics, seconds=4.0):
    t = np.arange(int(seconds * RATE)) / RATE
    wave = sum(np.sin(2 * math.pi * hz * k * t) / k for k in range(1, harmonics + 1))
    return 0.3 * wave * np.exp(-t) / np.abs(wave).max()


def hit(seed, low_hz=None, seconds=4.0):
    t = np.arange(int(seconds * RATE)) / RATE
    body = np.sin(2 * math.pi * low_hz * t) if low_hz else np.random.default_rng(seed).standard_normal(len(t))
    return 0.5 * body * np.exp(-t * 20)


def make_split(folder: Path) -> Path:
    """Brass (saw-like), flute (sine) and drum notes (a snare and a kick by GM name, one hand
    percussion note that has no kind) in the corpus's examples.json layout."""
    notes = {
        "brass_synthetic_001-045-100": ("brass", 45, tone(110.0, 12), None),
        "brass_synthetic_001-057-100": ("brass", 57, tone(220.0, 12), None),
        "brass_synthetic_001-069-100": ("brass", 69, tone(440.0, 12), None),
        "flute_acoustic_002-072-100": ("flute", 72, tone(523.25, 1), None),
        "flute_acoustic_002-076-100": ("flute", 76, tone(659.26, 1), None),
        "drum_acoustic_003-038-100": ("drum", 38, hit(1), "Acoustic Snare"),
        "drum_acoustic_003-040-100": ("drum", 40, hit(2), "Electric Snare"),
        "drum_acoustic_003-036-100": ("drum", 36, hit(3, 55.0), "Bass Drum 1"),
        "drum_acoustic_003-063-100": ("drum", 63, hit(4), "Open Hi Conga"),
    }
    (folder / "audio").mkdir(parents=True)
    examples = {}
    for name, (family, pitch, audio, drum) in notes.items():
        sf.write(folder / "audio" / f"{name}.wav", audio.astype(np.float32), RATE, subtype="PCM_16")
        examples[name] = {"note_str": name, "pitch": pitch, "velocity": 100, "instrument_str": name.rsplit("-", 2)[0],
                          "instrument_family_str": family, "instrument_source_str": "acoustic",
                          "sample_rate": RATE, "qualities": [0] * 10, "drum": drum}
    (folder / "examples.json").write_text(json.dumps(examples))
    return folder


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A class table of the tiny split, built in-process (2 notes per label)."""
    root = tmp_path_factory.mktemp("classes")
    split = make_split(root / "nsynth-train")
    out = root / "classes.safetensors"
    assert generate.main(["--build-classes", str(split), "--per-class", "2", "--classes-out", str(out)]) == 0
    return out


def one_line_error(code, err, *needles):
    lines = err.strip().splitlines()
    return code == 2 and len(lines) == 1 and "Traceback" not in err and all(n in lines[0] for n in needles)


def files(folder):
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}


def test_build_and_generate_as_a_user(tmp_path):
    split = make_split(tmp_path / "nsynth-train")
    build = subprocess.run([str(BIN / "diffmoog-generate"), "--build-classes", str(split), "--per-class", "2",
                            "--classes-out", "table.safetensors"], cwd=tmp_path, capture_output=True, text=True,
                           timeout=300)
    assert build.returncode == 0, build.stderr
    assert "brass 2" in build.stdout and "snare 2" in build.stdout
    done = subprocess.run([str(BIN / "diffmoog-generate"), "--family", "brass", "--classes", "table.safetensors",
                           "--n", "2", "--steps", "2", "-o", "out"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["settings"]["family"] == "brass" and summary["settings"]["guidance"] == generate.DEFAULT_GUIDANCE
    assert all(sound["like"].startswith("brass_") for sound in summary["sounds"])
    preset = yaml.safe_load((tmp_path / "out" / "gen_00.preset.yaml").read_text())["preset"]
    assert "brass" in preset["source"] and preset["pitch"]["source"] == "class note"


def test_table_reads_back_with_labels(table):
    prior = Prior(str(FLOW))
    read = ClassTable(table, str(FLOW), prior.condition_size, "--classes")
    # The conga is a drum note (family) but no kit piece (no kind).
    assert read.labels == {"family": ["brass", "drum", "flute"], "kind": ["kick", "snare"]}
    conditions, pitches, names = read.rows("family", "brass")
    assert conditions.shape == (2, prior.condition_size) and pitches.shape == (2,) and len(names) == 2
    assert torch.isfinite(conditions).all() and (pitches > 0).all()  # tones have a clear pitch
    assert read.rows("kind", "kick")[2] == ["drum_acoustic_003-036-100"]
    assert sorted(read.rows("kind", "snare")[2]) == ["drum_acoustic_003-038-100", "drum_acoustic_003-040-100"]
    assert read.metadata["per_class"] == "2" and read.metadata["checkpoint"] == str(FLOW.resolve())
    assert drum_kind("Closed Hi-Hat") == "hat" and drum_kind("Cowbell") is None and drum_kind(None) is None


def test_build_is_deterministic_per_seed(table, tmp_path):
    again = tmp_path / "again.safetensors"
    assert generate.main(["--build-classes", str(Path(table).parent / "nsynth-train"), "--per-class", "2",
                          "--classes-out", str(again)]) == 0
    # Compared by content: safetensors writes the metadata map in no fixed order.
    metadata = []
    for path in (table, again):
        with safe_open(str(path), "pt") as handle:
            metadata.append(handle.metadata())
    assert metadata[0] == metadata[1]
    first, second = load_file(str(table)), load_file(str(again))
    assert sorted(first) == sorted(second) and all(torch.equal(first[key], second[key]) for key in first)


def test_generation_per_label_is_deterministic_per_seed(table, tmp_path):
    def run(name, *flags):
        assert generate.main(["--classes", str(table), "--n", "2", "--steps", "2", *flags, "-o",
                              str(tmp_path / name)]) == 0
        return files(tmp_path / name)

    first = run("a", "--family", "flute", "--seed", "3")
    assert run("b", "--family", "flute", "--seed", "3") == first
    assert run("c", "--family", "flute", "--seed", "4")["gen_00.wav"] != first["gen_00.wav"]
    assert run("d", "--family", "brass", "--seed", "3")["gen_00.wav"] != first["gen_00.wav"]
    assert run("e", "--family", "flute", "--seed", "3", "--guidance", "1")["gen_00.wav"] != first["gen_00.wav"]
    kick = run("f", "--kind", "kick", "--seed", "3")
    sound = json.loads(kick["summary.json"])["sounds"][0]
    assert sound["like"] == "drum_acoustic_003-036-100"
    pitched = run("g", "--kind", "snare", "--pitch", "50")
    assert all(s["pitch"]["midi"] == 50.0 for s in json.loads(pitched["summary.json"])["sounds"])


def test_unknown_label_says_did_you_mean_and_lists_labels(table, tmp_path, capsys):
    code = generate.main(["--classes", str(table), "--family", "bras", "-o", str(tmp_path / "out")])
    assert one_line_error(code, capsys.readouterr().err, "--family 'bras'", "did you mean 'brass'",
                          "family: brass, drum, flute", "kind: kick, snare")
    code = generate.main(["--classes", str(table), "--family", "snare", "-o", str(tmp_path / "out")])
    assert one_line_error(code, capsys.readouterr().err, "'snare' is a --kind")
    code = generate.main(["--classes", str(table), "--kind", "hat", "-o", str(tmp_path / "out")])
    assert one_line_error(code, capsys.readouterr().err, "--kind 'hat'", "kind: kick, snare")
    assert not (tmp_path / "out").exists()  # nothing written


def test_missing_table_names_the_build_command(tmp_path, capsys):
    code = generate.main(["--classes", str(tmp_path / "none.safetensors"), "--family", "brass", "-o",
                          str(tmp_path / "out")])
    assert one_line_error(code, capsys.readouterr().err, "no class table", "--build-classes NSYNTH_SPLIT")
    (tmp_path / "junk.safetensors").write_text("not a table")
    code = generate.main(["--classes", str(tmp_path / "junk.safetensors"), "--family", "brass", "-o",
                          str(tmp_path / "out")])
    assert one_line_error(code, capsys.readouterr().err, "not a class table", "--build-classes")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags, needle", [
    (["--family", "brass", "--guidance", "0"], "--guidance must be > 0"),
    (["--family", "brass", "--guidance", "-1"], "--guidance must be > 0"),
    (["--family", "brass", "--guidance", "nan"], "--guidance must be a finite number"),
    (["--family", "brass", "--guidance", "100"], "--guidance must be <= 20"),
    (["--guidance", "2"], "--guidance needs --family or --kind"),
    (["--family", "brass", "--kind", "snare"], "not both"),
    (["--per-class", "4"], "--per-class belongs to --build-classes"),
    (["--build-classes", "nowhere"], "no such NSynth split folder"),
])
def test_bad_flags_are_one_line_errors(table, tmp_path, capsys, flags, needle):
    code = generate.main(["--classes", str(table), *flags, "-o", str(tmp_path / "out")]
                         if "--build-classes" not in flags else [*flags])
    assert one_line_error(code, capsys.readouterr().err, needle)
    assert not (tmp_path / "out").exists()


def test_build_refuses_generating_flags_and_writes_nothing(table, tmp_path, capsys):
    out = tmp_path / "t.safetensors"
    code = generate.main(["--build-classes", str(Path(table).parent / "nsynth-train"), "--family", "brass",
                          "--classes-out", str(out)])
    assert one_line_error(code, capsys.readouterr().err, "--family belongs to a generating run")
    assert not out.exists()


def test_committed_table_fits_the_committed_checkpoint(tmp_path):
    """examples/checkpoints/reduced_simple_osc_flow/classes.safetensors (built from the GM corpus's
    train split, 64 notes per label) is the default table, and belongs to that checkpoint."""
    read = ClassTable(FLOW / "classes.safetensors", str(FLOW), Prior(str(FLOW)).condition_size, "--classes")
    assert {"brass", "drum", "string"} <= set(read.labels["family"]) and "snare" in read.labels["kind"]
    assert generate.main(["--kind", "snare", "--n", "1", "--steps", "1", "-o", str(tmp_path / "out")]) == 0


DRUM_FLOW = REPO / "examples" / "checkpoints" / "drum_flow"


def test_drum_flow_generates_every_kit_piece(tmp_path):
    """examples/checkpoints/drum_flow (DRUM_METAL) and its table of GM-corpus drum hits: every kit
    piece `make demo` generates is a kind, the presets are DRUM_METAL's, audible, and the same
    seed writes the same kit."""
    read = ClassTable(DRUM_FLOW / "classes.safetensors", str(DRUM_FLOW), Prior(str(DRUM_FLOW)).condition_size,
                      "--classes")
    assert {"kick", "snare", "hat", "tom", "cymbal"} <= set(read.labels["kind"])
    outputs = []
    for attempt in ("a", "b"):
        out = tmp_path / attempt
        assert generate.main(["--checkpoint", str(DRUM_FLOW), "--kind", "cymbal", "--n", "2", "-o", str(out)]) == 0
        summary = json.loads((out / "summary.json").read_text())
        assert summary["settings"]["kind"] == "cymbal" and len(summary["sounds"]) == 2
        preset = yaml.safe_load((out / "gen_00.preset.yaml").read_text())
        assert preset["name"] == "DRUM_METAL" and "metal_bp.cutoff_hz" in preset["preset"]["params"]
        audio, _ = sf.read(out / "gen_01.wav")
        assert np.abs(audio).max() > 1e-3
        outputs.append([(out / f"gen_0{i}.wav").read_bytes() for i in range(2)])
    assert outputs[0] == outputs[1]
