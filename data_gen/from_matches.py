"""`create-data --from-matches FOLDER...`: a labelled split from diffmoog-match results.

This is distillation from matching: each matched sound becomes one training item, its own
(real) audio labelled with the preset the match found. A model trained on such a split
(`configs/params_only.yaml`, alone or listed beside a synthetic split in `data.train`) learns
from unlabelled audio without gradients through the synth.

Input: folders diffmoog-match wrote. Per sound, `<name>.json` names the source file (as given to
diffmoog-match, so run create-data from the same folder) and `<name>.preset.yaml` holds the
preset. All presets must share one chain. `--max-lsd X` leaves out matches whose final LSD is
above X (poor labels teach the wrong thing).

Output: OUT/NAME/SPLIT in create-data's layout (wav_files/<id>.wav at the chain's rate and
length, params_dataset.csv, params_normalized.csv, metadata.json written last), plus
match_sources.csv (id, source file, match name, final LSD, pitch used). A finished split is
never overwritten without --force; a stopped run, started again with the same arguments, writes
only the wavs that are missing. The presets' noise seeds are not kept: an item's noise key comes
from the split, as for create-data, since the audio is the real sound and not a render.
"""
from __future__ import annotations

import csv
import io
import json
import shutil
import sys
from pathlib import Path

import torch
from tqdm import tqdm

import diffmoog
from diffmoog.data import tables
from diffmoog.data.audio_io import AudioReadError, load_audio
from diffmoog.data.dataset import first_difference
from diffmoog.data.fileio import os_errors
from diffmoog.data.items import disk_samples
from diffmoog.data.layout import (METADATA, NORMALIZED_CSV, PARAMS_CSV, PROGRESS_DIR, WAV_DIR, SplitLayout,
                                  chain_json, id_width, item_id)
from diffmoog.data_gen import fileio, wavfile
from diffmoog.data_gen.prepare import prepare_plan, utc_now
from diffmoog.errors import ConfigError, DiffmoogError, did_you_mean
from diffmoog.params import SEED_KEY
from diffmoog.preset import load_preset
from diffmoog.spec import builtin_twin, without_pitch_marks

SOURCES_CSV = "match_sources.csv"
OURS = {WAV_DIR, PARAMS_CSV, NORMALIZED_CSV, SOURCES_CSV, METADATA, PROGRESS_DIR}
SPLITS = ("train", "val", "test")


class Match:
    """One diffmoog-match result: the record (<name>.json) and its preset."""

    def __init__(self, record_path: Path):
        self.record_path = record_path
        try:
            record = json.loads(record_path.read_text())
        except (OSError, ValueError) as err:
            raise DiffmoogError(f"{record_path}: unreadable match record ({err})") from None
        if not isinstance(record, dict) or not {"name", "source", "metrics", "final_stage"} <= set(record):
            raise DiffmoogError(f"{record_path}: not a diffmoog-match record (needs name, source, metrics, "
                                f"final_stage)")
        self.name, self.source = str(record["name"]), Path(str(record["source"]))
        final = record["metrics"].get(record["final_stage"], {})
        self.lsd = float(final.get("lsd", float("nan")))
        self.pitch_hz = (record.get("pitch") or {}).get("hz")
        self.settings = record.get("settings", {})
        self.preset_path = record_path.with_name(f"{self.name}.preset.yaml")


def find_matches(folders: list[Path]) -> list[Match]:
    matches = []
    for folder in folders:
        if not folder.is_dir():
            raise ConfigError(f"--from-matches: {folder}: no such folder (give the -o folder of diffmoog-match)")
        records = sorted(p for p in folder.glob("*.json") if p.name != "summary.json")
        found = [Match(p) for p in records]
        if not found:
            raise ConfigError(f"--from-matches: {folder}: holds no diffmoog-match results (<name>.json)")
        matches += found
    return matches


def chain_only(chain) -> dict:
    """A preset's chain as metadata.json stores a chain: without the preset's own section."""
    return {k: v for k, v in chain_json(chain).items() if k != "preset"}


def load_labels(matches: list[Match], warn) -> tuple[diffmoog.Chain, dict[str, torch.Tensor]]:
    """The presets as one batch of normalised params; every preset must use the first one's chain."""
    chain, first, rows = None, None, []
    for match in matches:
        if not match.preset_path.is_file():
            raise DiffmoogError(f"{match.preset_path}: preset missing for the match record {match.record_path}")
        preset = load_preset(match.preset_path, warn)
        if chain is None:
            chain, first = preset.chain, match.preset_path
        else:
            where = first_difference(without_pitch_marks(chain_only(chain)),
                                     without_pitch_marks(chain_only(preset.chain)))
            if where:
                raise DiffmoogError(f"{match.preset_path}: chain '{preset.chain.name}' differs from {first}'s "
                                    f"'{chain.name}' at '{where}'; one split holds one chain")
        rows.append({k: v for k, v in preset.params.items() if k != SEED_KEY})
    params = {key: torch.cat([row[key] for row in rows]) for key in rows[0]}
    twin = builtin_twin(chain.spec)  # recorded as the built-in, so configs naming it accept the split
    return (chain if twin is None else diffmoog.Chain(twin)), params


def sources_csv(ids: list[str], matches: list[Match]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "source", "match", "lsd", "pitch_hz"])
    for item, match in zip(ids, matches):
        writer.writerow([item, str(match.source), match.name, f"{match.lsd:.4f}",
                         "" if match.pitch_hz is None else f"{float(match.pitch_hz):.4f}"])
    return out.getvalue().encode("utf-8")


def main(args) -> int:
    started = utc_now()
    split = str(args.split).lower()
    if split not in SPLITS:
        raise ConfigError(f"-s/--split: unknown split '{split}'{did_you_mean(split, SPLITS)}")
    if args.max_lsd is not None and not args.max_lsd > 0:
        raise ConfigError(f"--max-lsd must be > 0, got {args.max_lsd}")
    folders = [Path(f) for f in args.from_matches]
    matches = find_matches(folders)
    kept = [m for m in matches if args.max_lsd is None or m.lsd <= args.max_lsd]
    if not kept:
        raise ConfigError(f"--max-lsd {args.max_lsd:g}: leaves none of the {len(matches)} matches "
                          f"(best LSD {min(m.lsd for m in matches):.2f})")
    for match in kept:  # every source before any work: a moved file fails the run in one line
        if not match.source.is_file():
            raise DiffmoogError(f"{match.record_path}: source {match.source} not found"
                                + (f" in {Path.cwd()} (run create-data in the folder diffmoog-match ran in)"
                                   if not match.source.is_absolute() else ""))
    chain, params = load_labels(kept, lambda message: print(f"create-data: warning: {message}", file=sys.stderr))
    name = args.name or f"{str(chain.name).lower()}_matches"
    if "/" in name or name in (".", ".."):
        raise ConfigError(f"-n/--name must be a plain folder name, got '{name}'")
    layout = SplitLayout(Path(args.out) / name / split)
    plan = {"source": "matches", "folders": [str(f.resolve()) for f in folders], "split": split,
            "max_lsd": args.max_lsd, "records": [str(m.record_path) for m in kept]}
    prepare_plan(layout, plan, bool(args.force), OURS, (layout.wav_dir, layout.progress))
    n_samples = int(round(chain.spec.duration * chain.sample_rate))
    width = id_width(len(kept))
    ids = [item_id(i, width) for i in range(len(kept))]
    for item, match in tqdm(list(zip(ids, kept)), desc=f"matches -> {layout.root}", unit="sound",
                            disable=True if args.no_progress else None, file=sys.stderr):
        path = layout.wav(item)
        if path.is_file():  # written atomically by an earlier, interrupted run
            continue
        try:
            audio = load_audio(match.source, chain.sample_rate, chain.spec.duration)
        except AudioReadError as error:
            raise DiffmoogError(f"{match.record_path}: {error}") from None
        if audio.shape[-1] != n_samples:  # load_audio pads or trims; guard the layout anyway
            raise DiffmoogError(f"{match.source}: read {audio.shape[-1]} samples, expected {n_samples}")
        wavfile.write(path, disk_samples(audio.numpy()[None])[0], chain.sample_rate)
    physical, normalized = tables.rows(chain, params, [0] * len(kept), ids)
    fileio.write_bytes_atomic(layout.params_csv, tables.header_line(tables.params_header(chain)).encode(),
                              physical.encode())
    fileio.write_bytes_atomic(layout.normalized_csv, tables.header_line(tables.normalized_header(chain)).encode(),
                              normalized.encode())
    fileio.write_bytes_atomic(layout.root / SOURCES_CSV, sources_csv(ids, kept))
    settings = [m.settings for m in kept]
    metadata = {
        "source": "matches", "chain_name": chain.name, "chain_source": chain.spec.source, "chain": chain_only(chain),
        "version": diffmoog.__version__, "seed": 0, "split": split, "sample_rate": chain.sample_rate,
        "duration": chain.spec.duration, "note_off": chain.spec.note_off, "n_samples": n_samples,
        "format": "pcm16", "count": len(kept), "id_width": width, "matches": plan["folders"],
        "match_settings": [s for i, s in enumerate(settings) if s not in settings[:i]],
        "max_lsd": args.max_lsd, "left_out": len(matches) - len(kept),
        "mean_lsd": round(sum(m.lsd for m in kept) / len(kept), 4), "sources_csv": SOURCES_CSV,
        "params_columns": tables.params_header(chain), "normalized_columns": tables.normalized_header(chain),
        "created": started, "finished": utc_now(),
    }
    fileio.write_json_atomic(layout.metadata, metadata)
    with os_errors(layout.progress):
        shutil.rmtree(layout.progress, ignore_errors=True)
    print(f"create-data: {len(kept)} matched sounds labelled in {layout.root}"
          + (f" ({len(matches) - len(kept)} left out by --max-lsd {args.max_lsd:g})" if len(kept) < len(matches)
             else "") + f", mean LSD {metadata['mean_lsd']:.2f}")
    return 0
