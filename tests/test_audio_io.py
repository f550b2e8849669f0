"""load_audio on odd files: widths, stereo, other rates, truncated, unreadable."""
import numpy as np
import pytest
import soundfile as sf
import torch

from diffmoog.data.audio_io import AudioReadError, fit_length, load_audio
from diffmoog.errors import DiffmoogError


def sine(freq_hz, rate, seconds, amplitude=0.5):
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def peak_hz(audio, rate):
    spectrum = np.abs(np.fft.rfft(audio.numpy()))
    return np.argmax(spectrum) * rate / len(audio)


@pytest.mark.parametrize("subtype,tolerance", [("PCM_U8", 1 / 128), ("PCM_16", 1 / 32768), ("PCM_24", 1e-6),
                                               ("PCM_32", 1e-7), ("FLOAT", 0.0), ("DOUBLE", 1e-7)])
def test_every_sample_width_is_scaled_once(tmp_path, subtype, tolerance):
    x = sine(440, 16000, 0.25)
    path = tmp_path / f"{subtype}.wav"
    sf.write(path, x, 16000, subtype=subtype)
    audio = load_audio(path, 16000)
    assert audio.dtype == torch.float32 and audio.shape == (4000,)
    # int16 divided by 32768 twice (DiffMoog's bug) would give a peak near 1.5e-5, not 0.5.
    assert abs(float(audio.abs().max()) - 0.5) < 0.01
    assert np.abs(audio.numpy() - x).max() <= tolerance + 1e-7


def test_int16_matches_raw_integer_scale(tmp_path):
    ints = np.array([0, 16384, -16384, 32767, -32768, 1], dtype=np.int16)
    path = tmp_path / "ints.wav"
    sf.write(path, ints, 16000, subtype="PCM_16")
    assert torch.equal(load_audio(path, 16000), torch.from_numpy(ints.astype(np.float32) / 32768.0))


def test_stereo_44k_is_mono_16k_and_keeps_pitch(tmp_path):
    x = sine(1000, 44100, 0.5)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([x, x], axis=1), 44100, subtype="PCM_24")
    audio = load_audio(path, 16000)
    assert audio.shape == (8000,)
    assert abs(peak_hz(audio, 16000) - 1000) <= 2
    assert abs(float(audio.abs().max()) - 0.5) < 0.02
    both = load_audio(path, 16000, mono=False)
    assert both.shape == (2, 8000)


def test_opposite_channels_average_to_silence(tmp_path):
    x = sine(300, 16000, 0.1)
    path = tmp_path / "phase.wav"
    sf.write(path, np.stack([x, -x], axis=1), 16000, subtype="FLOAT")
    assert float(load_audio(path, 16000).abs().max()) == 0.0


def test_duration_trims_and_pads(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, sine(200, 16000, 0.1), 16000)
    padded = load_audio(path, 16000, duration=0.5)
    assert padded.shape == (8000,) and float(padded[1600:].abs().max()) == 0.0
    assert load_audio(path, 8000, duration=0.05).shape == (400,)
    assert torch.equal(fit_length(torch.ones(2, 5), 3), torch.ones(2, 3))


def test_truncated_file_gives_the_samples_that_are_there(tmp_path):
    x = sine(440, 16000, 0.5)
    full = tmp_path / "full.wav"
    sf.write(full, x, 16000, subtype="PCM_16")
    data = full.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2 + 1])  # also cuts mid-sample
    audio = load_audio(cut, 16000, duration=0.5)
    kept = (len(data) // 2 + 1 - 44) // 2
    assert audio.shape == (8000,)
    assert np.abs(audio[:kept].numpy() - x[:kept]).max() < 1e-4
    assert float(audio[kept + 1:].abs().max()) == 0.0


def test_hot_float_file_is_scaled_into_range(tmp_path):
    path = tmp_path / "hot.wav"
    sf.write(path, 2.0 * sine(100, 16000, 0.1, amplitude=1.0), 16000, subtype="FLOAT")
    audio = load_audio(path, 16000)
    assert float(audio.abs().max()) == pytest.approx(1.0, abs=1e-6)


def test_flac_ogg_and_mp3(tmp_path):
    x = sine(440, 22050, 0.2)
    for name in ("a.flac", "a.ogg", "a.mp3"):
        sf.write(tmp_path / name, x, 22050)
        audio = load_audio(tmp_path / name, 16000)
        assert audio.shape == (3200,) and abs(peak_hz(audio, 16000) - 440) <= 6


@pytest.mark.parametrize("case", ["garbage", "header_only", "empty", "nan", "missing", "folder"])
def test_unreadable_files_raise_one_error_naming_the_path(tmp_path, case):
    path = tmp_path / f"{case}.wav"
    if case == "garbage":
        path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt not really a wav")
    elif case == "header_only":
        sf.write(path, sine(100, 16000, 0.1), 16000)
        path.write_bytes(path.read_bytes()[:30])
    elif case == "empty":
        sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    elif case == "nan":
        sf.write(path, np.array([0.1, np.nan, 0.2], dtype=np.float32), 16000, subtype="FLOAT")
    elif case == "folder":
        path.mkdir()
    with pytest.raises(AudioReadError) as info:
        load_audio(path, 16000)
    assert isinstance(info.value, DiffmoogError)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_duration_reads_only_the_window_and_matches_a_full_read(tmp_path):
    x = sine(700, 44100, 3.0)
    path = tmp_path / "long.wav"
    sf.write(path, x, 44100, subtype="FLOAT")
    window = load_audio(path, 16000, duration=0.5)
    full = load_audio(path, 16000)[:8000]
    assert window.shape == (8000,) and torch.allclose(window, full, atol=1e-5)
