"""AudioFolderDataset: drum one-shots at 44.1 kHz, trimming/padding, normalisation, odd files."""
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from diffmoog.data.audio_folder import LOUDNESS_DBFS, AudioFolderDataset, collate
from diffmoog.errors import ConfigError


def decaying_hit(rate, seconds, freq_hz, amplitude):
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.exp(-t * 20) * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


@pytest.fixture
def drum_folder(tmp_path):
    root = tmp_path / "kit"
    (root / "snares").mkdir(parents=True)
    sf.write(root / "kick.wav", decaying_hit(44100, 0.3, 60, 0.9), 44100, subtype="PCM_24")
    hat = decaying_hit(44100, 1.2, 5000, 0.2)
    sf.write(root / "snares" / "snare.flac", np.stack([hat, 0.5 * hat], 1), 44100)
    sf.write(root / "tom.ogg", decaying_hit(48000, 0.2, 120, 0.5), 48000)
    (root / "notes.txt").write_text("not audio")
    (root / "._kick.wav").write_bytes(b"\x00\x05\x16\x07 AppleDouble junk")  # macOS metadata twin
    return root


def test_items_are_converted_and_trimmed_or_padded(drum_folder):
    data = AudioFolderDataset(drum_folder, sample_rate=16000, duration=0.5)
    assert [item["name"] for item in (data[0], data[1], data[2])] == ["kick", "snares/snare", "tom"]
    for i in range(3):
        item = data[i]
        assert item["audio"].shape == (8000,) and item["audio"].dtype == torch.float32
        assert float(item["audio"].abs().max()) <= 1.0 and item["path"].startswith(str(drum_folder))
    kick = data[0]["audio"]
    expected_peak = float(np.abs(decaying_hit(44100, 0.3, 60, 0.9)).max())
    assert abs(float(kick.abs().max()) - expected_peak) < 0.01  # 24-bit scaled once
    assert float(kick[int(0.3 * 16000) + 20:].abs().max()) == 0.0  # 0.3 s hit padded to 0.5 s
    assert data[1]["audio"].abs().max() > 0.1  # 1.2 s stereo flac trimmed
    batch = next(iter(DataLoader(data, batch_size=3, collate_fn=collate)))
    assert batch["audio"].shape == (3, 8000) and batch["name"][2] == "tom"
    at_44k = AudioFolderDataset(drum_folder, sample_rate=44100, duration=0.25)
    assert at_44k[0]["audio"].shape == (11025,)
    flat = AudioFolderDataset(drum_folder, duration=0.1, recursive=False)
    assert [item["name"] for item in flat] == ["kick", "tom"]  # plain iteration ends
    with pytest.raises(IndexError):
        flat[2]


def test_normalisation(drum_folder):
    peak = AudioFolderDataset(drum_folder, duration=0.5, normalize="peak")
    assert all(float(peak[i]["audio"].abs().max()) == pytest.approx(1.0, abs=1e-6) for i in range(3))
    loud = AudioFolderDataset(drum_folder, duration=0.5, normalize="loudness")
    for i in range(3):
        audio = loud[i]["audio"]
        rms_db = 20 * np.log10(float(audio.pow(2).mean().sqrt()))
        peak_value = float(audio.abs().max())
        # Either at the target RMS, or as loud as the peak allows.
        assert peak_value <= 1.0 + 1e-6
        assert rms_db == pytest.approx(LOUDNESS_DBFS, abs=0.01) or peak_value == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ConfigError, match="did you mean 'peak'"):
        AudioFolderDataset(drum_folder, normalize="peek")


def test_unreadable_file_is_replaced_and_counted(drum_folder):
    (drum_folder / "broken.wav").write_bytes(b"RIFF....WAVEjunk")
    sf.write(drum_folder / "silent.wav", np.zeros(100, dtype=np.float32), 16000)
    data = AudioFolderDataset(drum_folder, duration=0.2, normalize="peak")
    assert data.files[0].name == "broken.wav"
    with pytest.warns(UserWarning, match="broken.wav.*next readable file"):
        first = data[0]
    assert first["name"] == "kick" and list(data.failed) == [str(drum_folder / "broken.wav")]
    silent = data[data.files.index(drum_folder / "silent.wav")]
    assert float(silent["audio"].abs().max()) == 0.0  # silence stays silent, no NaN from peak-normalising
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert sum(len(b["name"]) for b in DataLoader(data, batch_size=2, collate_fn=collate)) == len(data)


def test_bad_folders(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        AudioFolderDataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no wav/flac/ogg"):
        AudioFolderDataset(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.wav").write_bytes(b"junk")
    data = AudioFolderDataset(tmp_path / "bad")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ConfigError, match="none of the 1 audio files"):
            data[0]


def test_fixture_drums_at_44k(nsynth_fixture_dir, tmp_path):
    from diffmoog.data.audio_io import load_audio
    for name in ("drum_sf_025-036-100", "drum_sf_025-038-100"):
        audio = load_audio(nsynth_fixture_dir / "audio" / f"{name}.wav", 44100)
        sf.write(tmp_path / f"{name}.wav", audio.numpy(), 44100, subtype="PCM_16")
    data = AudioFolderDataset(tmp_path, sample_rate=16000, duration=1.0)
    original = load_audio(nsynth_fixture_dir / "audio" / "drum_sf_025-036-100.wav", 16000, duration=1.0)
    # 16 kHz -> 44.1 kHz -> 16 kHz keeps the hit (band-limited both ways).
    assert torch.allclose(data[0]["audio"], original, atol=0.02)
