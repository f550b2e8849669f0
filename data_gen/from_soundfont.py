"""`create-data --from-soundfont FONT...`: real instrument notes rendered into NSynth's own layout.

  OUT/nsynth-{train,valid,test}/examples.json   NSynth's fields per note (see soundfont_plan)
  OUT/nsynth-{train,valid,test}/audio/<note_str>.wav   16-bit PCM mono
  OUT/metadata.json   fonts, filters, the instrument table, skipped presets, silent notes, timing
                      (written last: its presence marks a finished corpus)

NSynth's protocol: every pitch of a piano (21-108) at velocities 25, 50, 75, 100 and 127 by
default, note-on at 0, note-off at 3 s, 4 s at 16 kHz, each note peak-normalised. Pitches are
those the preset has samples for; notes that render silent are left out and counted.

Safe and resumable, like --from-nsynth: the plan is recorded in OUT/.progress/run.json, each
wav is written atomically, silent notes are listed in .progress/silent.txt, and the same
command run again renders only what is missing. A finished corpus is never overwritten
without --force.
"""
from __future__ import annotations

import math
import os
import shutil
import sys
import time
from pathlib import Path

from tqdm import tqdm

from diffmoog import __version__
from diffmoog.data.fileio import os_errors
from diffmoog.data.items import SILENCE_PEAK
from diffmoog.data.layout import METADATA, PROGRESS_DIR, SplitLayout
from diffmoog.data.nsynth_meta import SOURCES
from diffmoog.data_gen import fileio, gm_families as gm, soundfont_plan as planning, wavfile
from diffmoog.data_gen.from_nsynth import DEST_TO_NSYNTH, listed
from diffmoog.data_gen.prepare import prepare_plan, utc_now
from diffmoog.data_gen.render_pool import render_notes
from diffmoog.data_gen.sf2_presets import read_presets
from diffmoog.data_gen.soundfont import renderer_version, tinysoundfont
from diffmoog.errors import ConfigError, did_you_mean

DEFAULT_FONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")  # Debian's fluid-soundfont-gm
FONT_DIRS = (Path("/usr/share/sounds/sf2"), Path("/usr/share/sounds/sf3"), Path("/usr/share/soundfonts"))
DEFAULT_OUT = Path("data") / "soundfont"
PIANO_KEYS = (21, 108)
NSYNTH_VELOCITIES = [25, 50, 75, 100, 127]
SPLIT_DIRS = {split: f"nsynth-{split}" for split in DEST_TO_NSYNTH.values()}
OURS = {*SPLIT_DIRS.values(), METADATA, PROGRESS_DIR}  # what --force may delete in OUT
SILENT_LIST = "silent.txt"


def find_font(text: str) -> Path:
    """A font path as given, or a bare file name found among the system's SoundFonts."""
    path = Path(text).expanduser()
    if path.is_file():
        return path.absolute()
    bare = path.name == text
    for folder in FONT_DIRS if bare else ():
        if (folder / path.name).is_file():
            return folder / path.name
    where = f" (nor in {', '.join(map(str, FONT_DIRS))})" if bare else ""
    hint = "; `make corpus` installs it (Debian: apt-get install fluid-soundfont-gm)" if path.name == DEFAULT_FONT.name else ""
    raise ConfigError(f"{text}: SoundFont not found{where}{hint}")


def _ints(values, flag: str, low: int, high: int) -> list[int] | None:
    items = listed(values)
    if items is None:
        return None
    if not all(item.lstrip("-").isdigit() and low <= int(item) <= high for item in items):
        raise ConfigError(f"{flag} must be integers from {low} to {high}, got {' '.join(items)}")
    return sorted({int(item) for item in items})


def _names(values, flag: str, known) -> list[str] | None:
    items = listed(values)
    for item in items or ():
        if item not in known:
            raise ConfigError(f"{flag}: unknown name '{item}'{did_you_mean(item, known)} (known: {', '.join(known)})")
    return items


def plan_from_args(args) -> dict:
    """Everything that decides the bytes written (a resume must match it), validated."""
    pitches = _ints(args.pitches, "--pitches", 0, 127)
    if pitches is not None and (args.pitch_min is not None or args.pitch_max is not None):
        raise ConfigError("--pitches cannot be combined with --pitch-min/--pitch-max")
    low = PIANO_KEYS[0] if args.pitch_min is None else args.pitch_min
    high = PIANO_KEYS[1] if args.pitch_max is None else args.pitch_max
    if not 0 <= low <= high <= 127:
        raise ConfigError(f"--pitch-min/--pitch-max must satisfy 0 <= min <= max <= 127, got {low} and {high}")
    rate = 16000 if args.sample_rate is None else args.sample_rate
    duration = 4.0 if args.signal_duration is None else args.signal_duration
    note_off = 3.0 if args.note_off is None else args.note_off
    if rate < 1000 or not duration > 0 or note_off < 0:
        raise ConfigError(f"need --sample-rate >= 1000, --signal-duration > 0 and --note-off >= 0, "
                          f"got {rate}, {duration:g} and {note_off:g}")
    if args.size is not None and args.size < 1:
        raise ConfigError(f"--size must be >= 1, got {args.size}")
    fonts = [find_font(text) for text in args.from_soundfont or [str(DEFAULT_FONT)]]
    with os_errors(fonts[0]):
        font_ids = [{"path": str(path), "bytes": path.stat().st_size} for path in fonts]
    filters = {"families": _names(args.families, "--families", gm.FAMILY_NAMES),
               "sources": _names(args.sources, "--sources", SOURCES),
               "programs": _ints(args.programs, "--programs", 0, 127), "banks": _ints(args.banks, "--banks", 0, 16383),
               "pitches": pitches,
               "pitch_range": None if pitches is not None else [low, high],
               "velocities": _ints(args.velocities, "--velocities", 1, 127) or NSYNTH_VELOCITIES}
    return {"source": "soundfont", "fonts": font_ids, "sample_rate": rate, "duration_s": duration,
            "note_off_s": note_off, "filters": filters, "size": args.size, "seed": args.seed, "format": "pcm16",
            "renderer": renderer_version(), "version": __version__}


def main(args) -> int:
    began, started = time.perf_counter(), utc_now()
    plan = plan_from_args(args)
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    tinysoundfont()  # missing: say so now, not from inside a worker
    layout = SplitLayout(Path(args.out))
    if layout.is_finished() and not args.force:  # before reading the fonts
        raise ConfigError(f"{layout.root} already holds a finished corpus; pass --force to overwrite it")
    fonts = [Path(font["path"]) for font in plan["fonts"]]
    instruments, skipped = planning.usable_instruments([(path, read_presets(path)) for path in fonts])
    named = ", ".join(path.name for path in fonts)
    chosen = planning.assign_splits(planning.select(instruments, plan["filters"], named))
    notes = planning.plan_notes(chosen, plan["filters"]["velocities"], plan["size"], plan["seed"])
    audio = {split: layout.root / folder / "audio" for split, folder in SPLIT_DIRS.items()}
    prepare_plan(layout, plan, args.force, OURS, [layout.progress, *audio.values()])

    rendering = time.perf_counter()
    rendered_now, silent = _render_missing(notes, audio, layout.progress / SILENT_LIST, plan, args)
    render_s = time.perf_counter() - rendering
    kept = [n for n in notes if n.note_str not in silent]
    if not kept:
        raise ConfigError(f"{named}: all {len(notes)} notes rendered silent "
                          f"(peak below {20 * math.log10(SILENCE_PEAK):.0f} dBFS)")
    for split, folder in SPLIT_DIRS.items():
        examples = {n.note_str: n.example(plan["sample_rate"]) for n in kept if n.instrument.split == split}
        fileio.write_json_atomic(layout.root / folder / "examples.json", examples)
        _remove_partial_files(audio[split])
    counts = {split: {"notes": sum(n.instrument.split == split for n in kept),
                      "instruments": sum(i.split == split for i in chosen)} for split in SPLIT_DIRS}
    metadata = {**plan, "package_version": __version__, "count": len(kept), "splits": counts,
                "silent": sorted(silent), "skipped_presets": skipped,
                "instruments": [_instrument_row(inst) for inst in chosen],
                "rendered_now": rendered_now, "render_s": round(render_s, 3), "started_at": started,
                "finished_at": utc_now(), "elapsed_s": round(time.perf_counter() - began, 3)}
    fileio.write_json_atomic(layout.metadata, metadata)  # last: the corpus is finished
    shutil.rmtree(layout.progress, ignore_errors=True)
    disk_bytes = len(kept) * wavfile.file_size(int(round(plan["duration_s"] * plan["sample_rate"])))
    print(_summary(metadata, layout.root, disk_bytes, sum(len(i.preset.copies) for i in instruments)))
    return 0


def _render_missing(notes, audio: dict[str, Path], silent_list: Path, plan: dict, args) -> tuple[int, set[str]]:
    """Render the notes with neither a wav nor a place in the silent list (all, on a first run);
    returns how many were rendered and the names of every silent note."""
    silent = _silent_so_far(silent_list)
    with os_errors(silent_list.parent):
        present = {split: set(os.listdir(folder)) for split, folder in audio.items()}
    todo = [n for n in notes if f"{n.note_str}.wav" not in present[n.instrument.split] and n.note_str not in silent]
    jobs = [(str(audio[n.instrument.split] / f"{n.note_str}.wav"), n.instrument.font, n.instrument.preset.bank,
             n.instrument.preset.program, n.pitch, n.velocity) for n in todo]
    fonts = [font["path"] for font in plan["fonts"]]
    workers = args.workers or os.cpu_count() or 1
    with os_errors(silent_list), open(silent_list, "a") as listing:
        done = render_notes(jobs, fonts, plan["sample_rate"], plan["duration_s"], plan["note_off_s"], workers)
        for path, written in tqdm(done, total=len(jobs), desc=f"soundfont -> {args.out}", unit="note",
                                  disable=True if args.no_progress else None, file=sys.stderr):
            if not written:
                silent.add(Path(path).stem)
                listing.write(Path(path).stem + "\n")
                listing.flush()  # a kill keeps every line but maybe the one being written
    return len(jobs), silent


def _silent_so_far(path: Path) -> set[str]:
    """Silent notes of an interrupted run (a line cut short by a kill does not count)."""
    if not path.is_file():
        return set()
    with os_errors(path):
        text = path.read_text()
    return set(text.splitlines()) if text.endswith("\n") else set(text.splitlines()[:-1])


def _remove_partial_files(folder: Path) -> None:
    """Temp files of wavs a killed run was writing (their notes have been rendered again since)."""
    for part in folder.glob(fileio.temp_basename("*")):
        with os_errors(part):
            part.unlink(missing_ok=True)


def _instrument_row(inst: planning.Instrument) -> dict:
    return {"instrument": inst.id, "instrument_str": inst.instrument_str, "split": inst.split,
            "soundfont": inst.font_name, "bank": inst.preset.bank, "program": inst.preset.program,
            "preset_name": inst.preset.name, "gm_name": inst.gm_name, "family": inst.family, "source": inst.source,
            "pitches": [inst.keys[0], inst.keys[-1]], "copies": [list(c) for c in inst.preset.copies]}


def _summary(meta: dict, root: Path, disk_bytes: int, copies: int) -> str:
    splits = meta["splits"]
    rate = meta["rendered_now"] / meta["render_s"] if meta["render_s"] > 0 else 0.0
    resumed = meta["rendered_now"] < meta["count"] + len(meta["silent"])
    return (f"create-data: {meta['count']} notes of {len(meta['instruments'])} instruments "
            f"(train/valid/test: {splits['train']['notes']}/{splits['valid']['notes']}/{splits['test']['notes']} notes, "
            f"{splits['train']['instruments']}/{splits['valid']['instruments']}/{splits['test']['instruments']} "
            f"instruments) in {root}; {meta['rendered_now']} rendered"
            f"{' now (the rest by the interrupted run)' if resumed else ''} in {meta['render_s']:.1f} s "
            f"({rate:.0f} notes/s), {disk_bytes / 1e6:.1f} MB of wavs; left out: {len(meta['silent'])} silent notes, "
            f"{len(meta['skipped_presets'])} presets without an NSynth family, {copies} duplicate presets")
