"""Whisper's front end and the position-free content features (what is said, frame by frame)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autovoice.analysis.content import (
    CONTENT_RATE,
    POSITIONS,
    SR,
    content_features,
    encode_window,
    log_mel,
    mel_filters,
)
from autovoice.errors import ParameterError


def test_mel_filterbank_matches_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    expected = librosa.filters.mel(sr=SR, n_fft=400, n_mels=80)
    np.testing.assert_allclose(mel_filters(), expected, rtol=1e-4, atol=1e-7)


def test_log_mel_of_a_1khz_tone_peaks_in_the_1khz_band() -> None:
    t = np.arange(2 * SR) / SR
    feats = log_mel((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    assert feats.shape == (80, 3000)
    assert feats.dtype == np.float32
    band = int(np.argmax(feats[:, 100]))
    # Slaney mel: 1 kHz is mel 15 and 8 kHz mel 45.25; 82 band edges evenly spaced in mel put band k's
    # centre at mel (k + 1) * 45.25 / 81, so band 26 is centred on mel 15.08 (1.006 kHz).
    assert band == 26
    # the zero padding after 2 s sits 8 decades below the peak: the floor, (max - 8 + 4) / 4
    assert feats[:, 2500].max() == pytest.approx(feats.max() - 2.0, abs=1e-5)


def test_log_mel_of_a_short_window_is_not_padded() -> None:
    t = np.arange(SR) / SR
    feats = log_mel((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), frames=100)
    assert feats.shape == (80, 100)
    assert int(np.argmax(feats[:, 50])) == 26


def test_content_features_one_unit_row_per_20_ms_in_any_length() -> None:
    rng = np.random.default_rng(0)
    for seconds in (0.5, 3.0, 25.0):  # one window; two windows with context
        x = (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
        feats = content_features(x)
        assert feats.shape == (int(np.ceil(seconds * CONTENT_RATE)), 512)
        np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-4)
    with pytest.raises(ParameterError):
        encode_window(np.zeros(int((POSITIONS + 10) / CONTENT_RATE * SR), np.float32))


def test_the_position_mean_takes_position_out_of_the_match(speech_dir: Path) -> None:
    """Raw encoder frames of two speakers' utterances match by their position in the window (Whisper's
    positional embedding); with the position mean removed that pull is mostly gone."""
    from autovoice.audio import load

    def clip(speaker: str, i: int) -> np.ndarray:
        return load(sorted((speech_dir / speaker).glob("*.flac"))[i], sr=SR, mono=True)[0]

    shares = {}
    for name, encode in (("raw", encode_window), ("free", content_features)):
        same_place = []
        for i in range(3):
            a, b = encode(clip("3080", i)), encode(clip("2609", i))
            n = min(len(a), len(b))
            a = a / np.linalg.norm(a, axis=1, keepdims=True)
            b = b / np.linalg.norm(b, axis=1, keepdims=True)
            j = np.argmax(a[:n] @ b[:n].T, axis=1)
            same_place.append(np.mean(np.abs(j - np.arange(n)) <= 5))
        shares[name] = float(np.mean(same_place))
    assert shares["raw"] > 0.3
    assert shares["free"] < shares["raw"] / 2  # measured: 0.33 raw, 0.11 free (chance ~0.04)
