"""The progress manifest that makes a killed run resumable.

.progress/run.json           what is being generated (chain, split, seed, size, audio format);
                             a rerun must match it, or it is refused (unless --force).
.progress/shard-K-of-N.json  items done (a prefix of the shard's range) and the byte length of
                             the two CSV part files at that moment.
.progress/shard-K-of-N.*.csv rows of this shard, appended batch by batch (no header).

Order per batch: wavs (atomic renames) -> CSV rows appended -> manifest replaced atomically.
So after a kill, the manifest never claims more than is on disk; a resume truncates the
CSV parts back to the recorded lengths and continues from `done`.
"""
from __future__ import annotations

import fcntl
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from diffmoog.data.fileio import os_errors, read_json
from diffmoog.data_gen.fileio import write_json_atomic
from diffmoog.errors import DiffmoogError


@dataclass
class ShardProgress:
    shard: int
    shards: int
    start: int
    end: int
    done: int = 0  # items start..start+done-1 are complete
    params_bytes: int = 0
    normalized_bytes: int = 0
    retried_items: int = 0
    clipped_items: int = 0
    elapsed_s: float = 0.0

    @property
    def complete(self) -> bool:
        return self.done >= self.end - self.start


class ShardFiles:
    """The manifest and CSV part files of one shard."""

    def __init__(self, stem: Path):
        self.manifest = stem.with_name(stem.name + ".json")
        self.params = stem.with_name(stem.name + ".params.csv")
        self.normalized = stem.with_name(stem.name + ".normalized.csv")
        self.lock_path = stem.with_name(stem.name + ".lock")

    def load(self) -> ShardProgress | None:
        return ShardProgress(**read_json(self.manifest)) if self.manifest.is_file() else None

    def save(self, progress: ShardProgress) -> None:
        write_json_atomic(self.manifest, asdict(progress))

    def resume_point(self, progress: ShardProgress) -> ShardProgress:
        """Drop CSV rows written after the last manifest update (a kill between the two).

        A part file shorter than the manifest says (lost in a crash of the whole machine)
        cannot be trusted: the shard then starts over.
        """
        parts = ((self.params, progress.params_bytes), (self.normalized, progress.normalized_bytes))
        with os_errors(self.params):
            if any(path.exists() and path.stat().st_size < length or not path.exists() and length
                   for path, length in parts):
                progress = ShardProgress(progress.shard, progress.shards, progress.start, progress.end)
                parts = ((self.params, 0), (self.normalized, 0))
            for path, length in parts:
                with open(path, "ab") as f:
                    f.truncate(length)
        return progress


def identity_mismatch(saved: dict, wanted: dict) -> str | None:
    """Name the first setting that differs between an unfinished run and this command."""
    for key in wanted:
        if saved.get(key) != wanted[key]:
            return key
    return None


class FileLock:
    """An advisory lock released automatically if the process dies (no stale locks)."""

    def __init__(self, path: Path):
        self.path, self.fd = path, None

    def acquire(self, blocking: bool = False) -> bool:
        with os_errors(self.path):
            self.fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            return True
        except BlockingIOError:
            os.close(self.fd)
            self.fd = None
            return False

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def require(self, what: str) -> "FileLock":
        if not self.acquire():
            raise DiffmoogError(f"another create-data process is writing {what}; wait for it or stop it")
        return self
