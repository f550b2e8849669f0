"""Benchmark `create-data --from-soundfont`: notes/s, real-time factor and bytes on disk, as JSON.

Two numbers: the CLI as a user runs it (rendering + wav writing on every core, from the
corpus's metadata.json, without Python start-up; plus wall time with it), and TinySoundFont
alone on one core (render + peak-normalise into memory, nothing written). The notes are a
seeded --size subset of the whole font (all programs, pitches 21-108, NSynth's 5 velocities),
so they are typical of a corpus. Target (issue 14): >= 100 notes/s, i.e. 400x real time.

    python benchmarks/soundfont.py --size 3000
    python benchmarks/soundfont.py --font /usr/share/sounds/sf3/MuseScore_General_Lite.sf3
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from diffmoog.data_gen.from_soundfont import DEFAULT_FONT
from diffmoog.data_gen.sf2_presets import read_presets
from diffmoog.data_gen.soundfont import NoteRenderer, peak_normalised, renderer_version


def create_data_cmd() -> list[str]:
    script = Path(sys.executable).parent / "create-data"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "diffmoog.data_gen.cli"]


def bench_cli(args, out: Path) -> dict:
    cmd = create_data_cmd() + ["--from-soundfont", str(args.font), "--size", str(args.size), "-o", str(out),
                               "--no-progress"] + (["--workers", str(args.workers)] if args.workers else [])
    began = time.perf_counter()
    result = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if result.returncode:
        return {"command": " ".join(cmd), "error": (result.stderr.strip().splitlines() or ["?"])[-1]}
    meta = json.loads((out / "metadata.json").read_text())
    disk = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    rate = meta["rendered_now"] / meta["render_s"]
    return {"command": " ".join(cmd), "notes": meta["count"], "silent": len(meta["silent"]),
            "instruments": len(meta["instruments"]), "notes_per_s": round(rate, 1),
            "realtime_factor": round(rate * meta["duration_s"], 1), "wall_notes_per_s": round(meta["count"] / wall, 1),
            "wall_s": round(wall, 2), "bytes_on_disk": disk, "bytes_per_note": round(disk / max(meta["count"], 1))}


def bench_render_only(args) -> dict:
    """One core, no files: what TinySoundFont itself costs per note (font loading excluded)."""
    melodic = [p for p in read_presets(args.font) if p.bank == 0 and p.keys]
    renderer = NoteRenderer([str(args.font)], 16000, 4.0, 3.0)
    renderer.synth(0)  # load the font before the clock starts
    notes = [(p.bank, p.program, sorted(p.keys)[len(p.keys) // 2], 100) for p in melodic]
    notes = (notes * (args.render_only // len(notes) + 1))[:args.render_only]
    began = time.perf_counter()
    for bank, program, pitch, velocity in notes:
        peak_normalised(renderer.render(0, bank, program, pitch, velocity))
    rate = len(notes) / (time.perf_counter() - began)
    return {"notes": len(notes), "notes_per_s": round(rate, 1), "realtime_factor": round(rate * 4.0, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--font", type=Path, default=DEFAULT_FONT)
    parser.add_argument("--size", type=int, default=2000, help="notes rendered by the CLI run")
    parser.add_argument("--workers", type=int, help="rendering processes (default: create-data's, one per core)")
    parser.add_argument("--render-only", type=int, default=1000, help="notes of the one-core render-only run")
    parser.add_argument("--tmp-dir", help="where the corpus is written (and deleted)")
    args = parser.parse_args()
    if not args.font.is_file():
        sys.exit(f"{args.font}: not found (make corpus installs FluidR3_GM.sf2)")
    with tempfile.TemporaryDirectory(dir=args.tmp_dir) as tmp:
        cli = bench_cli(args, Path(tmp) / "corpus")
    report = {"font": str(args.font), "renderer": renderer_version(), "cores": os.cpu_count(),
              "note": "4 s at 16 kHz, note-off at 3 s, 16-bit PCM", "create_data": cli,
              "render_only_one_core": bench_render_only(args)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
