"""Our numpy mel spectrogram equals librosa's (the encoders we feed were trained on librosa's)."""

from __future__ import annotations

import numpy as np
import pytest

from autovoice.audio.spectral import mel_power, power_to_db


def _signal(seconds: float, sr: int = 16_000) -> np.ndarray:
    rng = np.random.default_rng(1)
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t * (1 + 0.2 * t)) + 0.02 * rng.standard_normal(t.size)).astype(
        np.float32
    )


@pytest.mark.parametrize(("n_fft", "hop", "n_mels"), [(400, 160, 40), (321, 160, 120), (1024, 256, 80)])
def test_mel_power_matches_librosa(n_fft: int, hop: int, n_mels: int) -> None:
    import librosa

    y = _signal(2.3)
    theirs = librosa.feature.melspectrogram(y=y, sr=16_000, n_fft=n_fft, hop_length=hop, n_mels=n_mels).T
    ours = mel_power(y, sr=16_000, n_fft=n_fft, hop_length=hop, n_mels=n_mels)
    assert ours.shape == theirs.shape == (1 + (len(y) + 2 * (n_fft // 2) - n_fft) // hop, n_mels)
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6 * float(theirs.max()))


def test_dnsmos_p808_features_match_speechmos() -> None:
    from autovoice.metrics.dnsmos import load_dnsmos, p808_features

    seg = _signal(9.0)
    theirs = load_dnsmos().audio_melspec(audio=seg)
    np.testing.assert_allclose(p808_features(seg), theirs, atol=1e-4)


def test_power_to_db_floors_80_db_below_the_peak() -> None:
    db = power_to_db(np.array([1.0, 1e-3, 1e-12]))
    np.testing.assert_allclose(db, [0.0, -30.0, -80.0])
