"""Measured DSP quality: oscillator aliasing and filter magnitude responses.

Run with `pytest -s` to see the measured numbers.
"""
import math

import numpy as np
import pytest
import torch

import diffmoog
from diffmoog.modules.base import RenderContext
from diffmoog.modules.filter import TYPES, Filter


def _oscillator(shape: str, band_limit: str, sample_rate: int):
    return diffmoog.Chain.from_dict({
        "sample_rate": sample_rate,
        "nodes": {"osc": {"module": "oscillator",
                          "fixed": {"waveform": shape, "band_limit": band_limit, "amp": 1.0},
                          "params": {"freq_hz": {"range": [20.0, 8000.0]}}}},
        "output": "osc"})


def alias_margin_db(shape: str, band_limit: str, freq_hz: float, sample_rate: int = 16000,
                    seconds: float = 2.0) -> float:
    """Fundamental energy over aliased energy, in dB, from a Blackman-windowed FFT.

    "Aliased" is every bin that is not within 8 bins of a true harmonic below Nyquist (nor DC);
    the Blackman main lobe is 3 bins wide each side, so the fundamental's own leakage is kept
    out. A frequency that divides the rate would fold aliases onto harmonics and hide them, so
    callers use frequencies that do not.
    """
    chain = _oscillator(shape, band_limit, sample_rate)
    params = chain.to_normalized({"osc.freq_hz": torch.tensor([freq_hz])})
    x = chain.render(params, duration=seconds)[0].double().numpy()
    n = len(x)
    spectrum = np.abs(np.fft.rfft(x * np.blackman(n))) ** 2
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    guard = 8 * sample_rate / n
    harmonic = np.zeros_like(spectrum, dtype=bool)
    k = 1
    while k * freq_hz < sample_rate / 2:
        harmonic |= np.abs(freqs - k * freq_hz) <= guard
        k += 1
    fundamental = spectrum[np.abs(freqs - freq_hz) <= guard].sum()
    aliased = spectrum[~harmonic & (freqs > guard)].sum()
    return float(10 * np.log10(fundamental / aliased))


# Around 4 kHz but not dividing 16 kHz (4 kHz exactly folds every alias onto a harmonic).
NEAR_4K = (3971.0, 4013.0, 4129.0)


@pytest.mark.parametrize("shape", ["saw", "square", "triangle"])
def test_band_limited_oscillator_at_4khz_keeps_aliasing_40db_down(shape):
    for freq in NEAR_4K:
        band_limited = alias_margin_db(shape, "polyblep", freq)
        naive = alias_margin_db(shape, "naive", freq)
        print(f"\n{shape} {freq:g} Hz @ 16 kHz: alias margin band-limited {band_limited:.1f} dB, "
              f"naive {naive:.1f} dB")
        assert band_limited >= 40.0
        assert naive <= band_limited - 20.0


def test_band_limited_saw_at_44k():
    for freq in (2531.0, 4013.0, 7919.0):
        band_limited = alias_margin_db("saw", "polyblep", freq, sample_rate=44100, seconds=1.0)
        naive = alias_margin_db("saw", "naive", freq, sample_rate=44100, seconds=1.0)
        print(f"\nsaw {freq:g} Hz @ 44.1 kHz: band-limited {band_limited:.1f} dB, naive {naive:.1f} dB")
        assert band_limited >= 40.0
        assert naive <= band_limited - 20.0


def test_band_limiting_beats_naive_for_low_notes():
    """Below the additive range PolyBLEP does the work; it must clearly beat the naive saw."""
    for freq in (261.0, 443.0, 1003.0):
        band_limited = alias_margin_db("saw", "polyblep", freq)
        naive = alias_margin_db("saw", "naive", freq)
        print(f"\nsaw {freq:g} Hz @ 16 kHz: band-limited {band_limited:.1f} dB, naive {naive:.1f} dB")
        assert band_limited >= naive + 10.0


def test_band_limited_saw_keeps_its_level_and_shape():
    """Band-limiting must not change what the waveform is: compare fundamentals."""
    chain_bl = _oscillator("saw", "polyblep", 16000)
    chain_naive = _oscillator("saw", "naive", 16000)
    for freq in (203.0, 4013.0):
        params = chain_bl.to_normalized({"osc.freq_hz": torch.tensor([freq])})
        a = chain_bl.render(params, duration=1.0)[0].double().numpy()
        b = chain_naive.render(params, duration=1.0)[0].double().numpy()
        window = np.blackman(len(a))
        bin_ = int(round(freq * len(a) / 16000))
        fa = np.abs(np.fft.rfft(a * window))[bin_ - 3:bin_ + 4].max()
        fb = np.abs(np.fft.rfft(b * window))[bin_ - 3:bin_ + 4].max()
        # The naive saw's fundamental is 2/pi; aliases landing nearby move it by a few percent.
        assert abs(fa / fb - 1.0) < 0.1
        assert np.abs(a).max() < 1.3


# -- filters -------------------------------------------------------------------------------------

def _impulse_response(kind: str, cutoff_hz: float, q: float, sample_rate: int, n: int = 1 << 15):
    ctx = RenderContext(sample_rate=sample_rate, n_samples=n, note_off_s=1.0,
                        seeds=torch.zeros(1, dtype=torch.int64), dtype=torch.float64)
    impulse = torch.zeros(1, n, dtype=torch.float64)
    impulse[0, 0] = 1.0
    weights = torch.zeros(1, len(TYPES), dtype=torch.float64)
    weights[0, TYPES.index(kind)] = 1.0
    params = {"cutoff_hz": torch.tensor([[cutoff_hz]], dtype=torch.float64),
              "q": torch.tensor([[q]], dtype=torch.float64), "filter_type": weights}
    y = Filter("f", ("x",), ()).render(ctx, [impulse], params, {})[0].numpy()
    magnitude = np.abs(np.fft.rfft(y))
    return np.fft.rfftfreq(n, 1.0 / sample_rate), magnitude


def _crossing(freqs, magnitude, level, rising):
    """Frequency where the magnitude crosses `level` (linear interpolation in dB)."""
    db = 20 * np.log10(np.maximum(magnitude, 1e-300))
    target = 20 * np.log10(level)
    above = db >= target
    idx = np.nonzero(above[1:] != above[:-1])[0]
    idx = [i for i in idx if above[i + 1] == rising]
    i = idx[0]
    frac = (target - db[i]) / (db[i + 1] - db[i])
    return freqs[i] + frac * (freqs[i + 1] - freqs[i])


@pytest.mark.parametrize("sample_rate", [16000, 44100])
@pytest.mark.parametrize("kind", ["lowpass", "highpass"])
def test_filter_minus_3db_point_is_the_cutoff(kind, sample_rate):
    for cutoff in (100.0, 1000.0, 5000.0):
        freqs, magnitude = _impulse_response(kind, cutoff, 1 / math.sqrt(2), sample_rate)
        measured = _crossing(freqs, magnitude, 1 / math.sqrt(2), rising=(kind == "highpass"))
        error = measured / cutoff - 1.0
        print(f"\n{kind} {cutoff:g} Hz @ {sample_rate}: -3 dB at {measured:.1f} Hz ({100 * error:+.2f}%)")
        assert abs(error) <= 0.05
        passband = magnitude[freqs < cutoff / 10] if kind == "lowpass" else magnitude[freqs > min(cutoff * 3, sample_rate * 0.45)]
        assert np.allclose(passband, 1.0, atol=0.02)  # flat (Butterworth) pass band


@pytest.mark.parametrize("q", [0.707, 2.0, 8.0])
def test_bandpass_peaks_at_its_centre(q):
    for centre in (200.0, 1500.0, 4000.0):
        freqs, magnitude = _impulse_response("bandpass", centre, q, 16000)
        peak = freqs[np.argmax(magnitude)]
        print(f"\nbandpass {centre:g} Hz q={q}: peak at {peak:.1f} Hz, gain {magnitude.max():.4f}")
        assert abs(peak / centre - 1.0) <= 0.05
        assert abs(magnitude.max() - 1.0) < 0.01  # constant 0 dB peak gain
        if centre > 2000:
            continue  # near fs/4 the bilinear transform warps the bandwidth away from centre/Q
        # Higher Q is narrower: the -3 dB bandwidth is about centre / Q.
        low = _crossing(freqs, magnitude, magnitude.max() / math.sqrt(2), rising=True)
        high = _crossing(freqs[freqs > peak], magnitude[freqs > peak], magnitude.max() / math.sqrt(2), rising=False)
        assert abs((high - low) / (centre / q) - 1.0) < 0.25


def test_resonance_boosts_the_cutoff():
    freqs, flat = _impulse_response("lowpass", 1000.0, 0.707, 16000)
    _, resonant = _impulse_response("lowpass", 1000.0, 8.0, 16000)
    at = np.argmin(np.abs(freqs - 1000.0))
    assert 20 * np.log10(resonant[at] / flat[at]) > 15.0  # Q=8 is +18 dB over Butterworth


def test_time_varying_cutoff_matches_static_when_the_control_is_constant():
    """The per-sample path (filter envelope) equals the static filter for a constant control."""
    n, sr = 4000, 16000
    ctx = RenderContext(sample_rate=sr, n_samples=n, note_off_s=1.0,
                        seeds=torch.zeros(1, dtype=torch.int64), dtype=torch.float64)
    x = torch.randn(1, n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    lp = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    static = Filter("f", ("x",), ()).render(
        ctx, [x], {"cutoff_hz": torch.tensor([[400.0 * 2 ** 1.5]], dtype=torch.float64),
                   "q": torch.tensor([[2.0]], dtype=torch.float64), "filter_type": lp}, {})
    swept = Filter("f", ("x",), ("cutoff_hz",)).render(
        ctx, [x], {"cutoff_hz": torch.tensor([[400.0]], dtype=torch.float64),
                   "q": torch.tensor([[2.0]], dtype=torch.float64), "filter_type": lp,
                   "cutoff_mod_oct": torch.tensor([[3.0]], dtype=torch.float64)},
        {"cutoff_hz": torch.full((1, n), 0.5, dtype=torch.float64)})
    assert torch.allclose(static, swept, atol=1e-9)
