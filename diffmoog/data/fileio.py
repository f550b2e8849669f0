"""OS errors on dataset files turned into one-line messages that name the path, and JSON reading."""
from __future__ import annotations

import contextlib
import errno
import json
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


def read_json(path: Path):
    with os_errors(path):
        return json.loads(Path(path).read_text())
