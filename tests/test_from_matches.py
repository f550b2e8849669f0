"""Distillation from matching, as a user runs it: diffmoog-match --limit on a folder, then
create-data --from-matches turns the results into a labelled split (the real audio, labelled with
the matched presets), and diffmoog-train reads it alone or listed beside a synthetic split.
Bad input (missing folders and sources, another chain, flags that don't apply) is one line."""
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch

from diffmoog import Chain
from diffmoog.data.audio_io import load_audio
from diffmoog.data.dataset import ParamsDataset
from diffmoog.data_gen import cli as create_cli
from diffmoog.errors import ConfigError
from diffmoog.match.cli import spread
from diffmoog.preset import load_preset, save_preset
from diffmoog.train import cli as train_cli
from diffmoog.train.data import SyntheticSplit

BIN = Path(sys.executable).parent
FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures"
NOTES = ("organ_sf_020-048-100", "bass_sf_035-040-100", "flute_sf_079-072-100")


def run(cmd, cwd):
    return subprocess.run([str(BIN / cmd[0]), *cmd[1:]], cwd=cwd, capture_output=True, text=True, timeout=600)


def in_process(tool, args, cwd, capsys, monkeypatch):
    monkeypatch.chdir(cwd)
    capsys.readouterr()
    try:
        code = tool.main(args)
    except SystemExit as stop:  # argparse's one-line errors exit
        code = stop.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def matched(tmp_path_factory):
    """A folder of 3 fixture notes (1 s each), 2 of them matched by diffmoog-match --limit 2."""
    nsynth_fixture_dir = FIXTURES / "nsynth_format_notes"
    if not nsynth_fixture_dir.is_dir():
        pytest.skip(f"shared fixture folder not found at {nsynth_fixture_dir}")
    root = tmp_path_factory.mktemp("distill")
    (root / "notes").mkdir()
    for note in NOTES:
        audio, rate = sf.read(nsynth_fixture_dir / "audio" / f"{note}.wav")
        sf.write(root / "notes" / f"{note}.wav", audio[:rate], rate)
    done = run(["diffmoog-match", "notes", "--chain", "REDUCED_SIMPLE_OSC", "--refine-steps", "1", "--limit", "2",
                "-o", "matches"], root)
    assert done.returncode == 0, done.stderr
    return root


def records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json")) if p.name != "summary.json"]


def test_limit_spreads_over_the_sorted_inputs(matched):
    paths = [Path(f"{i}.wav") for i in range(10)]
    assert spread(paths, 3) == [Path("0.wav"), Path("3.wav"), Path("6.wav")]
    assert spread(paths, 10) == paths and spread(paths, 50) == paths and spread(paths, None) == paths
    with pytest.raises(ConfigError, match="--limit must be >= 1"):
        spread(paths, 0)
    # Sorted inputs are bass, flute, organ: --limit 2 takes positions 0 and 1.
    assert [r["name"] for r in records(matched / "matches")] == [NOTES[1], NOTES[2]]


def test_matches_become_a_labelled_split_of_the_real_audio(matched):
    done = run(["create-data", "--from-matches", "matches", "-n", "distill", "--no-progress"], matched)
    assert done.returncode == 0, done.stderr
    split = matched / "data" / "distill" / "train"
    chain = Chain.load("REDUCED_SIMPLE_OSC")
    data = ParamsDataset(split, chain=chain)  # recorded as the built-in chain, so configs naming it accept it
    assert len(data) == 2
    meta = json.loads((split / "metadata.json").read_text())
    assert meta["source"] == "matches" and meta["count"] == 2 and meta["left_out"] == 0
    with open(split / "match_sources.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for index, (row, record) in enumerate(zip(rows, records(matched / "matches"))):
        assert row["match"] == record["name"] and row["source"] == record["source"]
        preset = load_preset(matched / "matches" / f"{record['name']}.preset.yaml")
        assert torch.allclose(data[index]["params"], chain.to_vector(preset.params)[0], atol=1e-6)
        real = load_audio(matched / record["source"], chain.sample_rate, chain.spec.duration)
        assert torch.allclose(data[index]["audio"], real, atol=1.0 / 32768)
    again = run(["create-data", "--from-matches", "matches", "-n", "distill"], matched)
    assert again.returncode == 2 and "already holds a finished dataset" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    assert ParamsDataset(split, chain=chain)[1]["id"] == "000001"  # nothing lost
    assert run(["create-data", "--from-matches", "matches", "-n", "distill", "--force", "--no-progress"],
               matched).returncode == 0


def test_max_lsd_leaves_out_poor_matches(matched, capsys, monkeypatch):
    lsds = sorted(r["metrics"][r["final_stage"]]["lsd"] for r in records(matched / "matches"))
    code, out, _ = in_process(create_cli, ["--from-matches", "matches", "-n", "good", "--no-progress",
                                           "--max-lsd", f"{(lsds[0] + lsds[1]) / 2}"], matched, capsys, monkeypatch)
    assert code == 0 and "1 left out by --max-lsd" in out
    assert len(ParamsDataset(matched / "data" / "good" / "train")) == 1
    code, _, err = in_process(create_cli, ["--from-matches", "matches", "-n", "none", "--max-lsd", "0.001"],
                              matched, capsys, monkeypatch)
    assert code == 2 and "leaves none of the 2 matches" in err and not (matched / "data" / "none").exists()


@pytest.mark.parametrize("args, expected", [
    (["--from-matches", "nowhere"], "nowhere: no such folder"),
    (["--from-matches", "notes"], "notes: holds no diffmoog-match results"),
    (["--from-matches", "matches", "--size", "3"], "--size does not apply to --from-matches"),
    (["--from-matches", "matches", "-c", "DRUM"], "-c/--chain does not apply to --from-matches"),
    (["--from-matches", "matches", "-s", "tset"], "unknown split 'tset'; did you mean 'test'?"),
    (["--from-matches", "matches", "--max-lsd", "-1"], "--max-lsd must be > 0"),
    (["-c", "REDUCED_SIMPLE_OSC", "--size", "2", "--max-lsd", "3"], "--max-lsd does not apply to -c/--chain"),
])
def test_bad_arguments_are_one_line(matched, args, expected, capsys, monkeypatch):
    code, _, err = in_process(create_cli, args, matched, capsys, monkeypatch)
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1


def test_moved_source_and_another_chain_are_refused(matched, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "matches"
    shutil.copytree(matched / "matches", folder)
    first = sorted(folder.glob("*_*.json"))[0]
    record = json.loads(first.read_text())
    first.write_text(json.dumps({**record, "source": "gone/missing.wav"}))
    code, _, err = in_process(create_cli, ["--from-matches", str(folder)], matched, capsys, monkeypatch)
    assert code == 2 and "source gone/missing.wav not found" in err and first.name in err
    first.write_text(json.dumps(record))
    drum = Chain.load("DRUM")
    save_preset(folder / "kick.preset.yaml", drum, drum.sample(1, seed=0))
    (folder / "kick.json").write_text(json.dumps({**record, "name": "kick"}))
    code, _, err = in_process(create_cli, ["--from-matches", str(folder), "-o", str(tmp_path / "data")],
                              matched, capsys, monkeypatch)
    assert code == 2 and "one split holds one chain" in err and not (tmp_path / "data").exists()


def test_training_reads_matches_beside_synthetic_data(matched, capsys, monkeypatch):
    if not (matched / "data" / "distill").exists():
        assert run(["create-data", "--from-matches", "matches", "-n", "distill", "--no-progress"],
                   matched).returncode == 0
    made = run(["create-data", "-c", "REDUCED_SIMPLE_OSC", "--size", "5", "-o", "data", "--no-progress"], matched)
    assert made.returncode == 0, made.stderr
    both = ["data/reduced_simple_osc/train", "data/distill/train"]
    split = SyntheticSplit([str(matched / b) for b in both], Chain.load("REDUCED_SIMPLE_OSC"))
    assert len(split) == 7
    batch = next(split.sequential(7))
    assert batch["index"].tolist() == list(range(7))  # positions, though the two splits' ids repeat
    threads = torch.get_num_threads()
    sets = [f"data.train=[{', '.join(both)}]", "data.val=data/distill/train", "train.steps=2", "train.batch_size=4",
            "train.val_every=2", "train.log_every=1", "train.audio_items=0", "model.hidden=16", "model.layers=1",
            "run.threads=1", "train.progress=false", "run.output_dir=runs"]
    try:
        code, _, err = in_process(train_cli, ["-c", "params_only", *[a for s in sets for a in ("--set", s)]],
                                  matched, capsys, monkeypatch)
        assert code == 0, err
        assert (matched / "runs" / "params_only" / "checkpoints" / "best").is_dir()
        short = run(["create-data", "-c", "REDUCED_SIMPLE_OSC", "--size", "2", "-sd", "0.5", "-n", "short",
                     "-o", "data", "--no-progress"], matched)
        assert short.returncode == 0, short.stderr
        sets[0] = "data.train=[data/short/train, data/distill/train]"
        code, _, err = in_process(train_cli, ["-c", "params_only", *[a for s in sets for a in ("--set", s)]],
                                  matched, capsys, monkeypatch)
        assert code == 2 and "listed splits must match" in err and len(err.strip().splitlines()) == 1
    finally:
        torch.set_num_threads(threads)


def test_flow_pitch_cache_tracks_each_listed_folder_once(matched, tmp_path):
    from diffmoog.train.pitch_cache import split_pitches
    if not (matched / "data" / "distill").exists():
        assert run(["create-data", "--from-matches", "matches", "-n", "distill", "--no-progress"],
                   matched).returncode == 0
    distill = str(matched / "data" / "distill" / "train")
    split = SyntheticSplit([distill, distill, distill], Chain.load("REDUCED_SIMPLE_OSC"))
    pitches = split_pitches(split, tmp_path / "pitch", 16000, progress=False)
    assert pitches.shape == (6,) and torch.equal(pitches[:2], pitches[2:4]) and torch.equal(pitches[:2], pitches[4:])
    assert len(list((tmp_path / "pitch").glob("*.safetensors"))) == 1  # a repeated folder is tracked once
    # The matched notes are bass E2 (82.4 Hz) and flute C5 (523.3 Hz): the tracker finds them.
    assert abs(float(pitches[0]) - 82.4) < 3 and abs(float(pitches[1]) - 523.3) < 15
