"""Before generating: refuse to clobber, resume only a matching run, --force starts over."""
from __future__ import annotations

import shutil
from datetime import datetime, timezone

from diffmoog.data.fileio import os_errors, read_json
from diffmoog.data.layout import METADATA, NORMALIZED_CSV, PARAMS_CSV, PROGRESS_DIR, WAV_DIR
from diffmoog.data_gen.fileio import makedirs, write_json_atomic
from diffmoog.data_gen.manifest import identity_mismatch
from diffmoog.errors import DiffmoogError

OURS = {METADATA, PARAMS_CSV, NORMALIZED_CSV, PROGRESS_DIR, WAV_DIR}


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def prepare(opts) -> dict:
    """Make the split folder ready; return run.json (identity + created timestamp)."""
    layout = opts.layout
    root = layout.root
    if root.exists():
        with os_errors(root):
            entries = {p.name for p in root.iterdir()}
        if entries - OURS:
            raise DiffmoogError(f"{root} exists and holds files create-data did not write "
                                f"({sorted(entries - OURS)[0]}); choose another --out/--name")
        if opts.force and entries:
            with os_errors(root):
                shutil.rmtree(root)
        elif layout.is_finished():
            if layout.progress.is_dir():  # killed between metadata.json and the clean-up
                shutil.rmtree(layout.progress, ignore_errors=True)
            count = read_json(layout.metadata).get("count", "?")
            raise DiffmoogError(f"{root} already holds a finished dataset ({count} sounds); "
                                f"use --force to overwrite it, or another --name/--split")
        elif layout.run_file.is_file():
            saved = read_json(layout.run_file)
            key = identity_mismatch(saved.get("identity", {}), opts.identity())
            if key:
                now = opts.identity()[key]
                shown = "" if key == "chain" else f" ({saved['identity'].get(key)!r}, now {now!r})"
                raise DiffmoogError(f"{root} holds an unfinished run with a different {key}{shown}; "
                                    f"rerun the original command to resume, or use --force to start over")
            makedirs(layout.wav_dir)  # (finalize re-renders any wav that went missing)
            return saved
        # else: killed before run.json existed, so nothing was recorded; start afresh.
    for folder in (layout.wav_dir, layout.progress):
        makedirs(folder)
    run = {"identity": opts.identity(), "created": utc_now()}
    if not layout.run_file.is_file():  # shards starting together: the first one wins
        write_json_atomic(layout.run_file, run)
    return read_json(layout.run_file)
