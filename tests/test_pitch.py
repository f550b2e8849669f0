"""The pitch tracker (diffmoog/analysis/pitch.py): synthetic tones, real notes, silence, batching."""
import json

import pytest
import soundfile as sf
import torch

from diffmoog.analysis.pitch import cents_between, hz_to_midi, midi_to_hz, note_pitch, track_pitch

SR = 16000


def harmonic_tones(f0_hz: torch.Tensor, seconds: float = 1.0, n_harmonics: int = 12, seed: int = 0,
                   noise: float = 0.0) -> torch.Tensor:
    """Tones with random harmonic amplitudes (some fundamentals weaker than the 2nd harmonic)
    and phases, below Nyquist, plus optional white noise."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * SR), dtype=torch.float64) / SR
    k = torch.arange(1, n_harmonics + 1, dtype=torch.float64)
    amps = torch.rand(len(f0_hz), n_harmonics, generator=g, dtype=torch.float64) / k
    amps[:, 0] = amps[:, 0].clamp_min(0.3 * amps[:, 1])  # a weak but present fundamental
    amps = amps * (f0_hz[:, None] * k < 0.45 * SR)
    phases = 2 * torch.pi * torch.rand(len(f0_hz), n_harmonics, generator=g, dtype=torch.float64)
    waves = (amps[..., None] * torch.sin(2 * torch.pi * f0_hz[:, None, None] * k[:, None] * t
                                         + phases[..., None])).sum(1)
    waves = waves + noise * torch.randn(waves.shape, generator=g, dtype=torch.float64)
    return (waves / waves.abs().amax(-1, keepdim=True)).float()


def test_midi_conversions_round_trip():
    assert midi_to_hz(69.0) == 440.0
    assert hz_to_midi(midi_to_hz(40.5)) == pytest.approx(40.5)
    assert float(cents_between(torch.tensor(880.0), torch.tensor(440.0))) == pytest.approx(1200.0)


def test_harmonic_tones_across_the_range_are_exact():
    midi = torch.linspace(24.0, 96.0, 40, dtype=torch.float64)  # 32.7 Hz .. 2093 Hz
    f0 = midi_to_hz(midi)
    note = note_pitch(harmonic_tones(f0), SR)
    cents = cents_between(note.f0_hz.double(), f0).abs()
    assert bool(note.voiced.all())
    assert float(cents.max()) < 10.0, cents
    assert float(cents.median()) < 2.0
    assert float(note.confidence.min()) > 0.8


def test_noisy_tones_stay_within_a_quarter_tone():
    f0 = midi_to_hz(torch.linspace(30.0, 90.0, 16, dtype=torch.float64))
    note = note_pitch(harmonic_tones(f0, noise=0.1, seed=3), SR)
    assert float(cents_between(note.f0_hz.double(), f0).abs().max()) < 50.0


def test_real_fixture_notes(nsynth_fixture_dir):
    meta = json.loads((nsynth_fixture_dir / "examples.json").read_text())
    names = sorted(meta)
    audio = torch.stack([torch.from_numpy(sf.read(nsynth_fixture_dir / "audio" / f"{n}.wav", dtype="float32")[0])
                         for n in names])
    note = note_pitch(audio, SR)
    true_hz = midi_to_hz(torch.tensor([float(meta[n]["pitch"]) for n in names], dtype=torch.float64))
    cents = cents_between(note.f0_hz.double(), true_hz).abs()
    pitched = torch.tensor([meta[n]["instrument_family_str"] != "drum" for n in names])
    # The one known miss is the synth_lead "fifths" patch: its waveform repeats two octaves
    # below the played note (partials at 3x and 4x 82.5 Hz), so any period detector says 82.5 Hz.
    assert int((cents[pitched] > 50).sum()) <= 1, dict(zip(names, cents.tolist()))
    assert float(cents[pitched].median()) < 10.0
    assert bool(note.voiced[pitched].all())
    snare_and_hat = torch.tensor([n.startswith(("drum_sf_025-038", "drum_sf_025-042")) for n in names])
    assert not bool(note.voiced[snare_and_hat].any())  # noise-like hits are unvoiced


def test_silence_and_near_silence_are_unvoiced_and_finite():
    audio = torch.zeros(3, SR)
    audio[1] = 1e-9 * torch.randn(SR, generator=torch.Generator().manual_seed(0))
    audio[2, SR // 2:] = harmonic_tones(torch.tensor([220.0], dtype=torch.float64), 0.5)[0]
    note = note_pitch(audio, SR)
    assert bool(torch.isfinite(note.f0_hz).all()) and bool(torch.isfinite(note.confidence).all())
    assert note.voiced.tolist() == [False, False, True]
    assert note.confidence[:2].tolist() == [0.0, 0.0]
    assert float(cents_between(note.f0_hz[2].double(), torch.tensor(220.0, dtype=torch.float64)).abs()) < 10
    track = track_pitch(audio, SR)
    assert not bool(track.voiced[0].any())
    assert track.f0_hz.shape == track.confidence.shape == track.voiced.shape == (3, SR // track.hop)


def test_batched_equals_one_at_a_time_and_is_deterministic():
    f0 = midi_to_hz(torch.tensor([33.0, 57.0, 81.0], dtype=torch.float64))
    audio = harmonic_tones(f0, 0.5, seed=1)
    batch = note_pitch(audio, SR).f0_hz
    singles = torch.cat([note_pitch(audio[i:i + 1], SR).f0_hz for i in range(3)])
    torch.testing.assert_close(batch, singles)
    assert torch.equal(batch, note_pitch(audio, SR).f0_hz)
    assert note_pitch(audio[0], SR).f0_hz.shape == (1,)  # a 1-D sound is a batch of one


def test_dtypes_and_devices():
    f0 = midi_to_hz(torch.tensor([45.0, 70.0], dtype=torch.float64))
    audio = harmonic_tones(f0, 0.5, seed=2)
    as32 = note_pitch(audio, SR).f0_hz
    as64 = note_pitch(audio.double(), SR).f0_hz
    assert as32.dtype == torch.float32 and as64.dtype == torch.float64
    torch.testing.assert_close(as32.double(), as64, rtol=1e-4, atol=0)
    if torch.cuda.is_available():
        on_gpu = note_pitch(audio.cuda(), SR).f0_hz.cpu()
        torch.testing.assert_close(on_gpu, as32, rtol=1e-4, atol=0)


@pytest.mark.parametrize("fmin, fmax", [(0.0, 1000.0), (500.0, 100.0), (50.0, 9000.0)])
def test_bad_ranges_are_refused(fmin, fmax):
    with pytest.raises(ValueError, match="fmin_hz"):
        track_pitch(torch.zeros(1, SR), SR, fmin, fmax)
