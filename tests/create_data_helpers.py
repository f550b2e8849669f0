"""Shared helpers for the create-data tests: run the CLI as a user would, snapshot a folder."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

CHAIN = "REDUCED_SIMPLE_OSC"
TINY = ["-sd", "0.1", "-sr", "8000", "--no-progress"]  # 800-sample sounds keep the tests fast
# metadata.json keys that describe the run rather than the data
VOLATILE = {"created", "finished", "args", "elapsed_s", "shards", "repaired_wavs"}


def cli() -> list[str]:
    script = Path(sys.executable).parent / "create-data"
    found = script if script.is_file() else shutil.which("create-data")
    return [str(found)] if found else [sys.executable, "-m", "diffmoog.data_gen.cli"]


def run(*args, cwd=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cli() + [str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, **kw)


def popen(*args, cwd=None) -> subprocess.Popen:
    return subprocess.Popen(cli() + [str(a) for a in args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def generate(out: Path, size: int, *extra, split: str = "train") -> Path:
    result = run("-c", CHAIN, "--size", size, "-o", out, "-s", split, *TINY, *extra)
    assert result.returncode == 0, result.stderr
    return out / CHAIN.lower() / split


def snapshot(split_dir: Path) -> dict[str, bytes]:
    """Every file's bytes (relative path -> bytes), metadata.json minus run-specific keys."""
    files = {}
    for path in sorted(split_dir.rglob("*")):
        if path.is_file():
            rel = str(path.relative_to(split_dir))
            data = path.read_bytes()
            if rel == "metadata.json":
                meta = {k: v for k, v in json.loads(data).items() if k not in VOLATILE}
                data = json.dumps(meta, sort_keys=True).encode()
            files[rel] = data
    return files


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = path.read_text().splitlines()
    return lines[0].split(","), [line.split(",") for line in lines[1:]]
