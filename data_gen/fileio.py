"""Atomic file writes and OS errors turned into one-line messages that name the path."""
from __future__ import annotations

import contextlib
import errno
import json
import os
from pathlib import Path

from diffmoog.errors import DiffmoogError


class DiskError(DiffmoogError):
    """Writing or reading a dataset file failed (disk full, permission, missing folder...)."""


def describe(err: OSError, path) -> DiskError:
    reason = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded",
              errno.EACCES: "permission denied", errno.EPERM: "permission denied",
              errno.EROFS: "read-only file system"}.get(err.errno, err.strerror or str(err))
    return DiskError(f"{path}: {reason}")


@contextlib.contextmanager
def os_errors(path):
    """Re-raise any OSError inside the block as a DiskError naming `path`."""
    try:
        yield
    except DiskError:
        raise
    except OSError as err:
        raise describe(err, getattr(err, "filename", None) or path) from None


def temp_name(path: Path) -> Path:
    # A dot-prefixed sibling: same folder (so os.replace is atomic), ignored by "*.wav" globs.
    return path.with_name(temp_basename(path.name))


def temp_basename(name: str) -> str:
    return f".{name}.part"


def write_bytes_atomic(path: Path, *chunks) -> None:
    """Write chunks to a temp file, then rename over `path`: readers never see half a file."""
    tmp = temp_name(path)
    with os_errors(tmp):
        try:
            with open(tmp, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)  # e.g. disk full: leave no half-written temp behind
            raise


def write_json_atomic(path: Path, data) -> None:
    write_bytes_atomic(path, (json.dumps(data, indent=2, sort_keys=False) + "\n").encode())


def read_json(path: Path):
    with os_errors(path):
        return json.loads(Path(path).read_text())


def makedirs(path: Path) -> None:
    with os_errors(path):
        Path(path).mkdir(parents=True, exist_ok=True)
