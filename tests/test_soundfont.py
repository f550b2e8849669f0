"""`create-data --from-soundfont`: a tiny SoundFont written by the test, rendered as a user would."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from create_data_helpers import cli, run
from diffmoog.analysis.pitch import note_pitch
from diffmoog.data.nsynth import NSynthDataset
from diffmoog.data.nsynth_meta import FAMILIES, SOURCES
from diffmoog.data_gen import cli as create_data_cli, from_nsynth, gm_families, render_pool, soundfont_plan
from diffmoog.data_gen.sf2_presets import Preset, read_presets
from diffmoog.data_gen.soundfont import PEAK, NoteRenderer
from soundfont_helpers import TinyPreset, write_soundfont

pytest.importorskip("tinysoundfont", reason="--from-soundfont renders with the tinysoundfont package")

# 2 drum hits + 6 sine piano + 3 saw piano (bank 8) + 2 saw lead + 1 silent flute note, at one velocity
PITCHES = ["--pitches", "36", "38", "57", "60", "69", "81", "--velocities", "100", "--no-progress"]
SPLITS = ("nsynth-train", "nsynth-valid", "nsynth-test")


@pytest.fixture(scope="module")
def font(tmp_path_factory) -> Path:
    return write_soundfont(tmp_path_factory.mktemp("font") / "tiny.sf2")


@pytest.fixture(scope="module")
def corpus(font, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The corpus as a user makes it: the CLI from the venv, two rendering processes."""
    cwd = tmp_path_factory.mktemp("user")
    result = run("--from-soundfont", font, *PITCHES, "-o", "corpus", "--workers", "2", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return cwd / "corpus", result


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "metadata.json"}


def examples(root: Path) -> dict[str, dict]:
    return {split: json.loads((root / split / "examples.json").read_text()) for split in SPLITS}


def test_gm_table_maps_every_program_onto_nsynth_names():
    assert sorted(gm_families.GM_PROGRAMS) == list(range(128))
    for name, family, source in gm_families.GM_PROGRAMS.values():
        assert family is None or family in FAMILIES
        assert source in SOURCES and name
    assert {f for _, f, _ in gm_families.GM_PROGRAMS.values()} - {None} == set(FAMILIES)  # every family is fed
    assert sorted(gm_families.GM_DRUMS) == list(gm_families.DRUM_KEYS)


def test_every_split_gets_whole_programs_from_three_on():
    def instruments(programs):
        return [soundfont_plan.Instrument(i, 0, "f.sf2", Preset("p", bank, program, frozenset([60])), "gm", "keyboard",
                                          "acoustic") for i, (bank, program) in enumerate(programs)]
    for n in range(3, 12):
        split = {(i.preset.bank, i.preset.program): i.split
                 for i in soundfont_plan.assign_splits(instruments([(b, p) for p in range(n) for b in (0, 8)]))}
        assert set(split.values()) == {"train", "valid", "test"}, n
        assert all(split[0, p] == split[8, p] for p in range(n))  # a program's variations go with it
    big = {i.preset.program: i.split for i in soundfont_plan.assign_splits(instruments([(0, p) for p in range(120)]))}
    fewer = {i.preset.program: i.split for i in soundfont_plan.assign_splits(instruments([(0, p) for p in range(60)]))}
    assert all(fewer[p] == big[p] for p in fewer)  # a program's split does not depend on the others
    assert 80 <= list(big.values()).count("train") <= 110


def test_presets_and_their_playable_keys_are_read_from_the_font(font):
    presets = {(p.bank, p.program): p for p in read_presets(font)}
    assert sorted(presets) == [(0, 0), (0, 73), (0, 81), (0, 121), (8, 0), (128, 0)]
    assert presets[0, 0].keys == frozenset(range(21, 109)) and presets[0, 0].copies == ((17, 0),)
    assert presets[128, 0].keys == frozenset(range(35, 41)) and presets[0, 81].name == "Saw Lead"


def test_a_rendered_note_has_its_pitch_length_note_off_and_level(font):
    renderer = NoteRenderer([str(font)], 16000, 4.0, 3.0)
    for pitch in (57, 69, 81):
        audio = renderer.render(0, 0, 0, pitch, 100)
        assert audio.shape == (64000,)
        f0 = float(note_pitch(torch.from_numpy(audio.copy())[None], 16000).f0_hz)
        assert abs(1200 * np.log2(f0 / (440 * 2 ** ((pitch - 69) / 12)))) < 20, (pitch, f0)
        held, released = audio[40000:48000], audio[48800:]  # 10 ms release: silent 50 ms after note-off
        assert np.sqrt(np.mean(held ** 2)) > 0.1 and np.sqrt(np.mean(released ** 2)) < 1e-4


def test_corpus_layout_fields_and_levels(corpus, nsynth_fixture_dir):
    root, result = corpus
    assert "13 notes of 5 instruments" in result.stdout and "1 silent notes" in result.stdout
    assert "1 presets without an NSynth family, 1 duplicate presets" in result.stdout
    fixture_fields = set(next(iter(json.loads((nsynth_fixture_dir / "examples.json").read_text()).values())))
    by_split = examples(root)
    notes = {k: v for split in by_split.values() for k, v in split.items()}
    assert len(notes) == 13 and all(by_split.values())
    for key, meta in notes.items():
        assert fixture_fields <= set(meta) and key == meta["note_str"]
        assert key == f"{meta['instrument_str']}-{meta['pitch']:03d}-{meta['velocity']:03d}"
        assert meta["sample_rate"] == 16000 and meta["velocity"] == 100 and meta["qualities"] == [0] * 10
        assert all(isinstance(meta[k], int) for k in ("note", "pitch", "instrument", "instrument_family"))
    assert notes["keyboard_acoustic_000-069-100"]["instrument_family_str"] == "keyboard"
    assert notes["synth_lead_synthetic_002-060-100"]["instrument_source"] == SOURCES.index("synthetic")
    drum = notes["drum_acoustic_004-038-100"]
    assert drum["instrument_family"] == -1 and drum["drum"] == "Acoustic Snare" and drum["bank"] == 128
    assert not any(k.startswith("flute") for k in notes)  # the silent preset
    for split, entries in by_split.items():
        wavs = sorted(p.stem for p in (root / split / "audio").iterdir())
        assert wavs == sorted(entries)
    audio, rate = sf.read(root / "nsynth-test" / "audio" / f"{next(iter(by_split['nsynth-test']))}.wav", dtype="int16")
    assert rate == 16000 and audio.shape == (64000,)
    assert sf.info(next((root / "nsynth-train" / "audio").iterdir())).subtype == "PCM_16"
    assert abs(np.abs(audio).max() / 32768 - PEAK) < 1e-4  # peak-normalised to -1 dBFS
    assert not (root / ".progress").exists() and json.loads((root / "metadata.json").read_text())["count"] == 13


def test_splits_hold_whole_programs(corpus):
    by_split = examples(corpus[0])
    programs = {split: {(m["instrument_family"] == -1, m["program"]) for m in entries.values()}
                for split, entries in by_split.items()}
    instruments = {split: {m["instrument"] for m in entries.values()} for split, entries in by_split.items()}
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert not programs[SPLITS[a]] & programs[SPLITS[b]] and not instruments[SPLITS[a]] & instruments[SPLITS[b]]
    assert len({m["instrument"] for e in by_split.values() for m in e.values() if m["program"] == 0
                and m["instrument_family"] != -1}) == 2  # bank 0 and bank 8 pianos, in one split


def test_the_nsynth_loader_and_from_nsynth_read_it_unchanged(corpus, tmp_path, monkeypatch):
    root = corpus[0]
    dataset = NSynthDataset(root)
    assert len(dataset) == 13 and {n.split for n in dataset.notes} == {"train", "valid", "test"}
    item = dataset[0]
    assert item["audio"].shape == (64000,) and abs(float(item["audio"].abs().max()) - PEAK) < 1e-4
    drums = NSynthDataset(root, families=["drum"])
    assert {n.pitch for n in drums.notes} == {36, 38}
    monkeypatch.setenv("DIFFMOOG_CACHE_DIR", str(tmp_path / "cache"))
    args = create_data_cli.build_parser().parse_args(["--from-nsynth", str(root), "-s", "test", "-o", str(tmp_path),
                                                      "--no-progress"])
    assert from_nsynth.main(args) == 0
    copied = (tmp_path / "nsynth" / "test" / "nsynth_labels.csv").read_text().splitlines()
    assert len(copied) - 1 == len(examples(root)["nsynth-test"])


def test_same_command_same_bytes_on_one_or_two_cores(corpus, font, tmp_path):
    again = create_data_cli.main(["--from-soundfont", str(font), *PITCHES, "-o", str(tmp_path / "again"),
                                  "--workers", "1"])
    assert again == 0 and files(tmp_path / "again") == files(corpus[0])


def test_size_caps_the_notes_with_a_seeded_choice(corpus, font, tmp_path):
    for name in ("a", "b"):
        assert create_data_cli.main(["--from-soundfont", str(font), *PITCHES, "--size", "5", "--seed", "3",
                                     "-o", str(tmp_path / name), "--workers", "1"]) == 0
    assert files(tmp_path / "a") == files(tmp_path / "b")
    chosen = {k for split in examples(tmp_path / "a").values() for k in split}
    assert 4 <= len(chosen) <= 5 and chosen <= {k for split in examples(corpus[0]).values() for k in split}


def test_a_stopped_run_resumes_without_rendering_done_notes(corpus, font, tmp_path, monkeypatch, capsys):
    out, rendered = tmp_path / "cut", []
    real_render = render_pool._render

    def dying_render(job):
        if len(rendered) == 4:
            raise KeyboardInterrupt
        rendered.append(Path(job[0]).stem)
        return real_render(job)

    flags = ["--from-soundfont", str(font), *PITCHES, "-o", str(out), "--workers", "1"]
    monkeypatch.setattr(render_pool, "_render", dying_render)
    assert create_data_cli.main(flags) == 130 and "run the same command again" in capsys.readouterr().err
    assert not (out / "metadata.json").exists() and (out / ".progress" / "run.json").is_file()
    other = ["--from-soundfont", str(font), *PITCHES, "--velocities", "99", "-o", str(out)]  # the last one counts
    assert create_data_cli.main(other) == 2
    assert "other arguments" in capsys.readouterr().err
    first = list(rendered)
    rendered.clear()
    monkeypatch.setattr(render_pool, "_render", lambda job: rendered.append(Path(job[0]).stem) or real_render(job))
    assert create_data_cli.main(flags) == 0
    assert not set(first) & set(rendered) and len(first) + len(rendered) == 14  # 13 notes + 1 silent
    assert files(out) == files(corpus[0])
    assert create_data_cli.main(flags) == 2 and "already holds a finished corpus" in capsys.readouterr().err


def test_flags_that_do_not_apply_are_refused(font, tmp_path, capsys):
    for flags, needle in ((["-c", "REDUCED_SIMPLE_OSC"], "-c/--chain does not apply"),
                          (["-s", "val"], "-s/--split does not apply"), (["--float"], "--float does not apply"),
                          (["--pitch-min", "30"], "--pitches cannot be combined")):
        try:
            code = create_data_cli.main(["--from-soundfont", str(font), *PITCHES, "-o", str(tmp_path), *flags])
        except SystemExit as stop:  # argparse's error exits by itself
            code = stop.code
        err = capsys.readouterr().err.strip()
        assert code == 2 and "\n" not in err and err.startswith("create-data: error: ") and needle in err, err
    assert not any(tmp_path.iterdir())


def test_force_never_deletes_files_it_did_not_write(font, tmp_path, capsys):
    (tmp_path / "thesis.txt").write_text("mine")
    code = create_data_cli.main(["--from-soundfont", str(font), *PITCHES, "-o", str(tmp_path), "--force"])
    assert code == 2 and "thesis.txt" in capsys.readouterr().err and (tmp_path / "thesis.txt").read_text() == "mine"


def test_bad_inputs_give_one_line_naming_the_culprit(font, tmp_path):
    (tmp_path / "notes.sf2").write_text("these are not samples")
    (tmp_path / "cut.sf2").write_bytes(font.read_bytes()[:300])
    write_soundfont(tmp_path / "quiet.sf2", [TinyPreset("Hush", 0, 0, "silence")])
    cases = {  # flags: what the single error line must name
        ("missing.sf2",): ["missing.sf2", "not found"],
        ("notes.sf2",): ["notes.sf2", "not a SoundFont"],
        ("cut.sf2",): ["cut.sf2", "corrupt SoundFont"],
        (str(font), "--programs", "0", "40"): ["--programs 40", "no preset for GM program 40 (Violin)"],
        (str(font), "--families", "brass"): ["--families brass", "no preset of tiny.sf2"],
        ("quiet.sf2", "--pitches", "60"): ["quiet.sf2", "all 5 notes rendered silent"],
    }
    running = {flags: subprocess.Popen(cli() + ["--from-soundfont", *flags, "--no-progress", "-o", "out"],
                                       cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for flags in cases}  # at once: most of each run is starting Python
    for flags, needles in cases.items():
        _, err = running[flags].communicate(timeout=300)
        lines = [line for line in err.splitlines() if line.strip()]
        assert running[flags].returncode == 2 and len(lines) == 1, (flags, err)
        assert lines[0].startswith("create-data: error: ") and all(n in lines[0] for n in needles), (flags, err)
