"""Small pieces the sound-design CLIs share: CPU threads, writing wavs and presets, error exit."""
from __future__ import annotations

import sys
from pathlib import Path

import soundfile as sf
import torch

from diffmoog.errors import DiffmoogError
from diffmoog.match.preset import save_preset


def set_threads(device: str) -> None:
    """One intra-op thread on CPU: these renders are small tensors, and on a busy 2-core
    machine extra threads spin-wait (measured 50x slower refinement steps with 2 threads)."""
    if torch.device(device).type == "cpu":
        torch.set_num_threads(1)


def write_wav(path: str | Path, audio: torch.Tensor, sample_rate: int) -> Path:
    """Mono float32 wav; written beside and renamed, so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.wav")
    sf.write(str(tmp), audio.detach().reshape(-1).cpu().float().numpy(), int(sample_rate), subtype="FLOAT")
    tmp.replace(path)
    return path


def render_and_save(out: Path, stem: str, chain, params: dict, source: str) -> tuple[torch.Tensor, Path]:
    """Render one preset to `out/<stem>.wav` and save it as `out/<stem>.preset.yaml`:
    (its audio, the wav's path)."""
    with torch.no_grad():
        audio = chain.render(params)[0]
    wav = write_wav(out / f"{stem}.wav", audio, chain.sample_rate)
    save_preset(out / f"{stem}.preset.yaml", chain, params, source=source)
    return audio, wav


def fail(prog: str, error: DiffmoogError) -> int:
    print(f"{prog}: error: {error}", file=sys.stderr)
    return 2
