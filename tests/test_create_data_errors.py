"""create-data mistakes: one clear line on stderr, exit code 2, nothing already written is lost."""
from __future__ import annotations

import errno
import os

import pytest
import soundfile

import diffmoog.data_gen
import diffmoog
from create_data_helpers import CHAIN, TINY, run, snapshot
from diffmoog.data_gen.create import create
from diffmoog.data_gen.options import GenOptions
from diffmoog.data_gen import cli, fileio, wavfile
from diffmoog.errors import DiffmoogError


def assert_one_line_error(result, *needles):
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("create-data: error: "), result.stderr
    assert all(n in lines[0] for n in needles), result.stderr


def test_unknown_chain_name_suggests_the_right_one(tmp_path):
    result = run("-c", "REDUCED_SIMPLE_OCS", "--size", 3, "-o", tmp_path, *TINY)
    assert_one_line_error(result, "unknown chain 'REDUCED_SIMPLE_OCS'", "REDUCED_SIMPLE_OSC")
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("flags, needle", [
    (["--size", "0"], "--size must be >= 1"),  # caught by our validation
    (["--size", "3", "--sise", "4"], "unrecognized arguments: --sise"),  # caught by argparse
])
def test_bad_flags_exit_2_with_one_line(tmp_path, flags, needle):
    assert_one_line_error(run("-c", CHAIN, "-o", tmp_path, *TINY, *flags), needle)


@pytest.mark.parametrize("flags, needle", [
    (["--size", "3", "--shard", "2/2"], "--shard: expected i/N with 0 <= i < N"),
    (["--size", "3", "-s", "valid"], "--split must be one of train, val, test, got 'valid'; did you mean 'val'?"),
    (["--size", "3", "-bs", "0"], "--batch-size must be >= 1"),
    (["--size", "3", "-sd", "-1"], "--signal-duration must be > 0"),
])
def test_more_bad_flags_in_process(tmp_path, capsys, flags, needle):
    try:
        code = cli.main(["-c", CHAIN, "-o", str(tmp_path), *TINY, *flags])
    except SystemExit as stop:  # argparse exits by itself
        code = stop.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and needle in err, err
    assert not any(tmp_path.iterdir())


def test_a_finished_dataset_is_not_overwritten_without_force(tmp_path):
    opts = GenOptions(chain=diffmoog.Chain.load(CHAIN), size=4, out=tmp_path, sample_rate=8000, duration=0.1,
                      progress_bar=False)
    root = create(opts) and opts.layout.root
    before = snapshot(root)
    again = run("-c", CHAIN, "--size", 4, "-o", tmp_path, *TINY)
    assert_one_line_error(again, str(root), "already holds a finished dataset", "--force")
    assert snapshot(root) == before
    forced = run("-c", CHAIN, "--size", 5, "-o", tmp_path, *TINY, "--force")
    assert forced.returncode == 0, forced.stderr
    assert len(list((root / "wav_files").glob("*.wav"))) == 5


def test_an_unwritable_output_path_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run("-c", CHAIN, "--size", 3, "-o", blocker, *TINY)
    assert_one_line_error(result, str(blocker))
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions, so a read-only folder is writable")
def test_a_read_only_output_folder_is_named(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = run("-c", CHAIN, "--size", 3, "-o", locked, *TINY)
    finally:
        locked.chmod(0o700)
    assert_one_line_error(result, str(locked), "permission denied")


def test_disk_full_names_the_file(tmp_path, monkeypatch):
    class FullDisk:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio, "open", FullDisk, raising=False)
    target = tmp_path / "000001.wav"
    with pytest.raises(DiffmoogError, match="disk full") as caught:
        wavfile.write(target, wavfile.np.zeros(10, dtype="int16"), 8000)
    assert str(target.name) in str(caught.value)
    assert not target.exists()


def test_disk_full_in_the_batch_writer_names_the_wav_and_leaves_no_temp(tmp_path, monkeypatch):
    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    with wavfile.WavFolder(tmp_path, 10, 8000) as folder:
        data, samples = folder.image()
        samples[:] = 7
        folder.write("000000.wav", data)
        monkeypatch.setattr(wavfile.os, "write", full)
        with pytest.raises(DiffmoogError, match="disk full") as caught:
            folder.write("000001.wav", data)
    assert str(tmp_path / "000001.wav") in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["000000.wav"]  # no temp file left behind
    audio, rate = soundfile.read(tmp_path / "000000.wav", dtype="int16")
    assert rate == 8000 and audio.tolist() == [7] * 10


def test_missing_nsynth_module_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delattr(diffmoog.data_gen, "from_nsynth", raising=False)
    monkeypatch.setitem(__import__("sys").modules, "diffmoog.data_gen.from_nsynth", None)
    assert cli.main(["--from-nsynth", str(tmp_path), "-o", str(tmp_path)]) == 2
    assert "--from-nsynth is not available" in capsys.readouterr().err
