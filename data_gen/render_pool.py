"""Render SoundFont notes on every core and write their wavs, yielding each note as it is done.

Each worker process builds its own NoteRenderer (a TinySoundFont object lives in one process)
and writes the wavs itself (atomically), so only short (path, written) pairs travel back.
Workers ignore Ctrl-C (the parent stops the pool and says how to resume) and die with the
parent if it is killed, so a killed run leaves no renderers behind.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import signal
import sys
from pathlib import Path
from typing import Iterator

from diffmoog.data.items import to_pcm16
from diffmoog.data_gen import wavfile
from diffmoog.data_gen.soundfont import NoteRenderer, peak_normalised

PR_SET_PDEATHSIG = 1
_renderer: NoteRenderer | None = None  # this process's renderer


def _start(fonts, sample_rate, duration_s, note_off_s, in_worker: bool = True) -> None:
    global _renderer
    if in_worker:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _die_with_parent()
    _renderer = NoteRenderer(fonts, sample_rate, duration_s, note_off_s)


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):  # no prctl: an orphan then exits when its next task fails
            pass


def _render(job: tuple) -> tuple[str, bool]:
    """Render one note to `path`; False (and no file) when it is silent."""
    path, font, bank, program, pitch, velocity = job
    audio = peak_normalised(_renderer.render(font, bank, program, pitch, velocity))
    if audio is None:
        return path, False
    wavfile.write(Path(path), to_pcm16(audio), _renderer.sample_rate)
    return path, True


def render_notes(jobs: list[tuple], fonts: list[str], sample_rate: int, duration_s: float, note_off_s: float,
                 workers: int) -> Iterator[tuple[str, bool]]:
    """(path, written) for every job, in completion order; `workers` processes (1: this one)."""
    settings = (fonts, sample_rate, duration_s, note_off_s)
    if workers == 1 or len(jobs) < 2:
        _start(*settings, in_worker=False)
        yield from map(_render, jobs)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")  # fork: no re-import
    with context.Pool(min(workers, len(jobs)), _start, settings) as pool:  # leaving terminates the workers
        yield from pool.imap_unordered(_render, jobs, chunksize=8)
