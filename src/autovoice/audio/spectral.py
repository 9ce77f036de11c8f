"""Mel spectrograms computed the way ``librosa.feature.melspectrogram`` does, in numpy.

The encoders we use (Resemblyzer, DNSMOS P.808) were trained on librosa's spectrogram. Calling librosa
for it costs the first call of every process about 1.6 s (``librosa.feature`` lazily imports much of
librosa and scipy.signal); this is the same computation (centred frames with zero padding, a periodic
Hann window, power 2, Slaney-normalised mel filters), tested against librosa.
"""

from __future__ import annotations

import functools

import numpy as np


def mel_power(y: np.ndarray, *, sr: int, n_fft: int, hop_length: int, n_mels: int) -> np.ndarray:
    """``(frames, n_mels)`` float64 mel power spectrogram of mono ``y``.

    Equal to ``librosa.feature.melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop_length,
    n_mels=n_mels).T``: ``1 + (len(y) + 2 * (n_fft // 2) - n_fft) // hop_length`` frames.
    """
    x = np.pad(np.asarray(y, dtype=np.float64), n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop_length]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
    return np.asarray(power @ _mel_basis(sr, n_fft, n_mels).T)


def power_to_db(s: np.ndarray, *, amin: float = 1e-10, top_db: float = 80.0) -> np.ndarray:
    """``librosa.power_to_db(s, ref=np.max)``: dB relative to the maximum, floored ``top_db`` below it."""
    db = 10.0 * np.log10(np.maximum(amin, s)) - 10.0 * np.log10(max(amin, float(np.max(s))))
    return np.asarray(np.maximum(db, db.max() - top_db))


@functools.cache
def _mel_basis(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    import librosa.filters

    return np.asarray(librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels), dtype=np.float64)
