"""The one pitch tracker: batched YIN in PyTorch, with a voiced/unvoiced confidence.

YIN (de Cheveigné and Kawahara, 2002) finds the period as the first deep dip of the
cumulative-mean-normalised difference function d'(tau). Why YIN and not a learned tracker:
it needs no weights (none can be downloaded here), runs on any device in a few batched FFTs,
and its dip depth is a usable voicing confidence. The difference function comes from one
FFT cross-correlation per frame plus running energies, so a 4-second note costs a few ms.

    track = track_pitch(audio, 16000)        # per frame: f0_hz, confidence, voiced
    note = note_pitch(audio, 16000)          # per sound: one f0 (Hz), confidence, voiced
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

# Pitch range of the built-in chains' oscillators (C1 .. C7), widened a little.
DEFAULT_FMIN_HZ = 30.0
DEFAULT_FMAX_HZ = 2200.0
# A frame is voiced when its dip falls below this (the YIN paper uses 0.1-0.15 for clean
# speech; a little higher keeps tones in moderate noise voiced, noise hits stay far above).
DEFAULT_THRESHOLD = 0.25
RELATIVE_DIP = 0.1
# Frames quieter than this, relative to the loudest frame of the sound, count as silence.
SILENCE_DB = -50.0


def midi_to_hz(midi: float | torch.Tensor) -> float | torch.Tensor:
    """Equal temperament, A4 = MIDI 69 = 440 Hz."""
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


def hz_to_midi(hz: float | torch.Tensor) -> float | torch.Tensor:
    if isinstance(hz, torch.Tensor):
        return 69.0 + 12.0 * torch.log2(hz / 440.0)
    return 69.0 + 12.0 * math.log2(hz / 440.0)


def cents_between(hz: torch.Tensor, reference_hz: torch.Tensor) -> torch.Tensor:
    return 1200.0 * torch.log2(hz / reference_hz)


@dataclass(frozen=True)
class PitchTrack:
    """Per-frame estimates, each `[batch, frames]`; frame i is centred on sample i * hop."""

    f0_hz: torch.Tensor
    confidence: torch.Tensor  # 1 - d'(period): near 1 for a clean periodic frame, 0 for silence
    voiced: torch.Tensor  # bool: the dip fell below the threshold and the frame is not silent
    rms: torch.Tensor
    hop: int
    sample_rate: int


@dataclass(frozen=True)
class NotePitch:
    """One pitch per sound, each `[batch]`. `f0_hz` is also filled for unvoiced sounds (the
    best guess), so a caller can choose to use it; `voiced` says whether to trust it."""

    f0_hz: torch.Tensor
    confidence: torch.Tensor  # mean confidence of the frames the estimate came from
    voiced: torch.Tensor  # bool
    voiced_fraction: torch.Tensor  # of the non-silent frames


def _frames(audio: torch.Tensor, length: int, hop: int) -> torch.Tensor:
    """`[batch, frames, length]` frames starting every hop samples (zero-padded at the end)."""
    samples = audio.shape[-1]
    n_frames = max(1, math.ceil(samples / hop))
    padded = torch.nn.functional.pad(audio, (0, n_frames * hop + length - samples))
    return padded.unfold(-1, length, hop)[:, :n_frames]


def _difference(frames: torch.Tensor, window: int, max_lag: int) -> torch.Tensor:
    """YIN's d(tau) for tau in [0, max_lag], `[..., max_lag + 1]`, in float64.

    d(tau) = sum_j (x_j - x_{j+tau})^2 over j < window
           = e(0) + e(tau) - 2 r(tau), with r the cross-correlation of the first window
    samples with the frame (one FFT product; n covers window + max_lag, so nothing wraps)
    and e(tau) the energy of samples [tau, tau + window) from a running sum.
    """
    x = frames.to(torch.float64)
    n = 1 << (frames.shape[-1] - 1).bit_length()
    spectrum = torch.fft.rfft(x, n)
    head = torch.fft.rfft(x[..., :window], n)
    correlation = torch.fft.irfft(head.conj() * spectrum, n)[..., :max_lag + 1]
    cumulative = torch.nn.functional.pad(torch.cumsum(x * x, -1), (1, 0))
    lags = torch.arange(max_lag + 1, device=x.device)
    energy = cumulative[..., lags + window] - cumulative[..., lags]
    return (energy[..., :1] + energy - 2.0 * correlation).clamp_min(0.0)


def track_pitch(audio: torch.Tensor, sample_rate: int, fmin_hz: float = DEFAULT_FMIN_HZ,
                fmax_hz: float = DEFAULT_FMAX_HZ, hop: int | None = None,
                threshold: float = DEFAULT_THRESHOLD) -> PitchTrack:
    """YIN on `audio` `[batch, samples]` (or `[samples]`), on its device.

    The integration window is one longest period (sample_rate / fmin_hz); hop defaults to
    about 16 ms.
    """
    if audio.dim() == 1:
        audio = audio[None]
    if not 0 < fmin_hz < fmax_hz < sample_rate / 2:
        raise ValueError(f"need 0 < fmin_hz < fmax_hz < sample_rate / 2, got {fmin_hz}, {fmax_hz}, {sample_rate}")
    hop = hop or max(1, sample_rate // 64)
    max_lag = math.ceil(sample_rate / fmin_hz) + 1  # +1: the parabola's right neighbour
    min_lag = max(2, math.floor(sample_rate / fmax_hz))
    window = max_lag
    frames = _frames(audio, window + max_lag, hop)
    diff = _difference(frames, window, max_lag)  # [batch, frames, lags]
    lags = torch.arange(max_lag + 1, device=audio.device, dtype=torch.float64)
    # Cumulative mean normalisation: d'(0) = 1, d'(tau) = d(tau) * tau / sum_{1..tau} d.
    running = torch.cumsum(diff[..., 1:], -1)
    norm = torch.ones_like(diff)
    norm[..., 1:] = diff[..., 1:] * lags[1:] / running.clamp_min(1e-300)
    norm[..., 1:] = torch.where(running > 0, norm[..., 1:], torch.ones_like(running))
    # Each lag in [min_lag, max_lag) with its neighbours, and the parabola through the three:
    # its vertex is the dip's sub-sample position and depth. Comparing vertex depths (not
    # raw samples) matters at short periods, where a dip can fall between two lags.
    left, centre, right = (norm[..., min_lag - 1 + i:max_lag - 1 + i] for i in range(3))
    curvature = left - 2.0 * centre + right
    bend = curvature > 1e-12
    shift = torch.where(bend, 0.5 * (left - right) / curvature.clamp_min(1e-12), torch.zeros_like(centre))
    shift = shift.clamp(-1.0, 1.0)
    depth = torch.where(bend, centre - 0.25 * (left - right) * shift, centre).clamp_min(0.0)
    # The shortest period whose dip is nearly as deep as the deepest: d' dips at every
    # multiple of the period too, and in noise all those dips sit at the noise floor, so "the
    # first local minimum within RELATIVE_DIP of the deepest" avoids octave-down errors both
    # in clean frames (like YIN's absolute threshold) and in noisy ones (none is below it).
    local_min = (centre <= left) & (centre <= right)
    deepest = torch.where(local_min, depth, torch.ones_like(depth)).amin(-1, keepdim=True)
    accept = local_min & (depth <= deepest + RELATIVE_DIP * (1.0 - deepest))
    accept[..., -1] |= ~accept.any(-1)  # no dip at all (a ramp): the longest period, unvoiced
    bottom = accept.double().argmax(-1, keepdim=True)
    period = (bottom + min_lag).double() + shift.gather(-1, bottom)
    period, dip = period[..., 0], depth.gather(-1, bottom)[..., 0]
    rms = frames[..., :window].double().square().mean(-1).sqrt()
    loudest = rms.amax(-1, keepdim=True)
    audible = (rms > loudest * 10.0 ** (SILENCE_DB / 20.0)) & (rms > 1e-6)
    confidence = torch.where(audible, (1.0 - dip).clamp(0.0, 1.0), torch.zeros_like(dip))
    voiced = audible & (dip < threshold)
    return PitchTrack(f0_hz=(sample_rate / period).to(audio.dtype), confidence=confidence.to(audio.dtype),
                      voiced=voiced, rms=rms.to(audio.dtype), hop=hop, sample_rate=sample_rate)


def _weighted_median(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Row-wise weighted median of `[batch, n]` values (weights >= 0; all-zero rows: plain median)."""
    weights = torch.where(weights.sum(-1, keepdim=True) > 0, weights, torch.ones_like(weights))
    order = values.argsort(-1)
    v, w = values.gather(-1, order), weights.gather(-1, order)
    cumulative = torch.cumsum(w, -1)
    half = cumulative[..., -1:] * 0.5
    return v.gather(-1, (cumulative < half).sum(-1, keepdim=True).clamp_max(v.shape[-1] - 1))[..., 0]


def note_pitch(audio: torch.Tensor, sample_rate: int, fmin_hz: float = DEFAULT_FMIN_HZ,
               fmax_hz: float = DEFAULT_FMAX_HZ, threshold: float = DEFAULT_THRESHOLD,
               min_voiced_fraction: float = 0.2) -> NotePitch:
    """One pitch per sound: the loudness- and confidence-weighted median (in log frequency)
    of the voiced frames. A sound is voiced when at least `min_voiced_fraction` of its
    audible frames are; otherwise the estimate uses every audible frame and is flagged."""
    track = track_pitch(audio, sample_rate, fmin_hz, fmax_hz, threshold=threshold)
    audible = track.confidence > 0
    n_audible = audible.sum(-1)
    fraction = track.voiced.sum(-1) / n_audible.clamp_min(1)
    voiced = (fraction >= min_voiced_fraction) & (n_audible > 0)
    use = torch.where(voiced[:, None], track.voiced, audible)
    weight = use * track.confidence * track.rms
    log_f0 = torch.log2(track.f0_hz.double())
    f0 = 2.0 ** _weighted_median(log_f0, weight.double())
    confidence = (track.confidence * use).sum(-1) / use.sum(-1).clamp_min(1)
    return NotePitch(f0_hz=f0.to(audio.dtype), confidence=confidence, voiced=voiced,
                     voiced_fraction=fraction.to(audio.dtype))
