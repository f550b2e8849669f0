"""Before generating: refuse to clobber, resume only a matching run, --force starts over.

prepare(opts) is for synthesized datasets (run.json holds their identity and a timestamp);
prepare_plan(...) for the copying/rendering modes whose whole plan is their identity.
"""
from __future__ import annotations

import shutil
from datetime import datetime, timezone

from diffmoog.data.fileio import os_errors, read_json
from diffmoog.data.layout import METADATA, NORMALIZED_CSV, PARAMS_CSV, PROGRESS_DIR, WAV_DIR, SplitLayout
from diffmoog.data_gen.fileio import makedirs, write_json_atomic
from diffmoog.data_gen.manifest import identity_mismatch
from diffmoog.errors import ConfigError, DiffmoogError

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


def prepare_plan(layout: SplitLayout, plan: dict, force: bool, ours: set[str], folders) -> None:
    """Refuse to touch a finished folder (or another run's partial one) unless --force, then
    create `folders` and record `plan` in run.json. `ours` names what --force may delete: a
    folder holding anything else (the user's files) is never deleted."""
    root = layout.root
    if root.exists():
        with os_errors(root):
            foreign = sorted({p.name for p in root.iterdir()} - ours)
        if foreign and (force or not layout.run_file.is_file()):
            raise ConfigError(f"{root} is not empty and holds files create-data did not write ({foreign[0]}); "
                              "choose another --out")
        if force:
            with os_errors(root):
                shutil.rmtree(root)
    if layout.is_finished():
        raise ConfigError(f"{root} already holds a finished dataset; pass --force to overwrite it")
    if layout.run_file.is_file():
        if read_json(layout.run_file) != plan:
            raise ConfigError(f"{root} holds an unfinished copy made with other arguments; "
                              "run that command again to finish it, or pass --force to start over")
    elif root.exists() and any(root.iterdir()):
        raise ConfigError(f"{root} is not empty; pass --force to overwrite it")
    for folder in folders:
        makedirs(folder)
    write_json_atomic(layout.run_file, plan)
