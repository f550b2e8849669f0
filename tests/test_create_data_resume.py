"""Kill create-data midway (SIGKILL), run the same command again: the same bytes as an unbroken run."""
from __future__ import annotations

import json
import time

import pytest

from create_data_helpers import CHAIN, TINY, popen, run, snapshot

SIZE = 300
ARGS = ("-c", CHAIN, "--size", SIZE, "-bs", "1", *TINY)  # batch size 1: many small steps to land a kill in


def wait_for_progress(manifest, proc, at_least: int, timeout_s: float = 300.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            done = json.loads(manifest.read_text())["done"]
        except (OSError, ValueError, KeyError):
            done = 0  # not written yet (or caught mid-rename)
        if done >= at_least:
            return done
        time.sleep(0.02)
    raise AssertionError(f"create-data made no progress before the kill (exit code {proc.poll()})")


def test_kill_then_rerun_finishes_with_identical_bytes(tmp_path):
    reference = run(*ARGS, "-o", tmp_path / "ref", "-bs", "64")  # batch size never changes bytes; 64 is quicker
    assert reference.returncode == 0, reference.stderr

    out = tmp_path / "killed"
    root = out / CHAIN.lower() / "train"
    proc = popen(*ARGS, "-o", out)
    done = wait_for_progress(root / ".progress" / "shard-0-of-1.json", proc, at_least=10)
    proc.kill()
    proc.communicate()
    assert not (root / "metadata.json").exists(), "the run finished before it could be killed"
    assert done < SIZE

    # The worst moments a kill can hit: CSV rows appended but not yet in the manifest,
    # and a wav temp file not yet renamed. Make both happen for certain.
    part = root / ".progress" / "shard-0-of-1.params.csv"
    with open(part, "a") as f:
        f.write("000999,0.5,0.")  # half a row
    (root / "wav_files" / ".000299.wav.part").write_bytes(b"RIFF")
    (root / "wav_files" / "000001.wav").unlink()  # a finished wav lost (e.g. a power cut): re-rendered
    (root / "wav_files" / "000002.wav").write_bytes(b"RIFF")  # ... or truncated

    other = run(*ARGS, "-o", out, "--seed", "5")  # a different command must not resume it
    assert other.returncode == 2 and "different seed" in other.stderr and "Traceback" not in other.stderr

    resumed = run(*ARGS, "-o", out)
    assert resumed.returncode == 0, resumed.stderr
    assert snapshot(root) == snapshot(tmp_path / "ref" / CHAIN.lower() / "train")
    assert json.loads((root / "metadata.json").read_text())["repaired_wavs"] == 2
    assert not (root / ".progress").exists()
    assert not list((root / "wav_files").glob(".*"))  # no temp files left


def test_a_manifest_claiming_more_than_the_disk_holds_restarts_the_shard(tmp_path):
    import diffmoog
    from diffmoog.data_gen.create import create
    from diffmoog.data_gen.manifest import ShardFiles, ShardProgress
    from diffmoog.data_gen.options import GenOptions

    def options(out):
        return GenOptions(chain=diffmoog.Chain.load(CHAIN), size=10, out=out, sample_rate=8000, duration=0.1,
                          batch_size=4, progress_bar=False)
    create(options(tmp_path / "ref"))
    opts = options(tmp_path / "lost")
    opts.layout.progress.mkdir(parents=True)
    (opts.layout.run_file).write_text(json.dumps({"identity": opts.identity(), "created": "earlier"}))
    # as after a power cut: the manifest survived, the CSV rows it counts did not
    ShardFiles(opts.layout.shard_stem(0, 1)).save(ShardProgress(0, 1, 0, 10, done=8, params_bytes=900,
                                                                normalized_bytes=900))
    assert create(opts).finished
    assert snapshot(opts.layout.root) == snapshot(options(tmp_path / "ref").layout.root)


def test_a_disk_error_midway_stops_cleanly_and_a_rerun_finishes_with_identical_bytes(tmp_path, monkeypatch):
    """Wavs are written off the main thread: their error must stop the run before that batch's CSV rows."""
    import errno
    import os

    import diffmoog
    from diffmoog.data_gen import wavfile
    from diffmoog.data_gen.create import create
    from diffmoog.data_gen.options import GenOptions
    from diffmoog.errors import DiffmoogError

    def options(out):
        return GenOptions(chain=diffmoog.Chain.load(CHAIN), size=12, out=out, sample_rate=8000, duration=0.1,
                          batch_size=3, progress_bar=False)
    create(options(tmp_path / "ref"))
    real_open = os.open

    def fills_up(path, *args, **kwargs):
        if path == ".000007.wav.part":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, *args, **kwargs)

    opts = options(tmp_path / "full")
    monkeypatch.setattr(wavfile.os, "open", fills_up)
    with pytest.raises(DiffmoogError, match="000007.wav: disk full"):
        create(opts)
    monkeypatch.setattr(wavfile.os, "open", real_open)
    done = json.loads((opts.layout.root / ".progress" / "shard-0-of-1.json").read_text())["done"]
    assert done == 6  # batches 0-1 committed; batch 2 (items 6-8) failed, nothing after it was recorded
    assert create(opts).finished
    assert snapshot(opts.layout.root) == snapshot(options(tmp_path / "ref").layout.root)
