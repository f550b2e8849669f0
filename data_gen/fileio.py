"""Atomic file writes: a reader never sees half a file (errors as in diffmoog.data.fileio)."""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from diffmoog.data.fileio import os_errors


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


def makedirs(path: Path) -> None:
    with os_errors(path):
        Path(path).mkdir(parents=True, exist_ok=True)
