"""Remix converted vocals with the accompaniment: gains, loudness normalisation, true-peak limit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autovoice.audio import loudness_lufs, resample
from autovoice.errors import ParameterError

#: Streaming-platform loudness and true-peak ceiling used by default.
TARGET_LUFS = -14.0
TRUE_PEAK_DBTP = -1.0
_OVERSAMPLE = 4


@dataclass(frozen=True)
class MixResult:
    audio: np.ndarray  # (channels, samples)
    sr: int
    loudness_lufs: float
    true_peak_dbtp: float
    gain_db: float


def true_peak_dbtp(y: np.ndarray, *, sr: int) -> float:
    """True peak (dBTP): the sample peak of a 4x oversampled copy (ITU-R BS.1770-4 annex 2 style)."""
    up = resample(np.atleast_2d(y), orig_sr=sr, target_sr=sr * _OVERSAMPLE)
    peak = float(np.max(np.abs(up))) if up.size else 0.0
    return 20 * np.log10(peak) if peak > 0 else float("-inf")


def match_layout(y: np.ndarray, *, channels: int, length: int) -> np.ndarray:
    """``(channels, length)`` from mono or stereo input: duplicate or average channels, pad or trim."""
    y2 = np.atleast_2d(y)
    if y2.shape[0] != channels:
        mono = y2.mean(axis=0, keepdims=True)
        y2 = np.repeat(mono, channels, axis=0)
    if y2.shape[1] < length:
        y2 = np.pad(y2, ((0, 0), (0, length - y2.shape[1])))
    return np.ascontiguousarray(y2[:, :length], dtype=np.float32)


def remix(
    vocals: np.ndarray,
    accompaniment: np.ndarray | None,
    *,
    sr: int,
    channels: int,
    length: int,
    vocal_gain_db: float = 0.0,
    accompaniment_gain_db: float = 0.0,
    target_lufs: float | None = TARGET_LUFS,
    true_peak: float = TRUE_PEAK_DBTP,
) -> MixResult:
    """Sum vocals and accompaniment, normalise loudness, then keep the true peak under ``true_peak``.

    Parameters
    ----------
    vocals, accompaniment
        ``(samples,)`` or ``(channels, samples)`` at ``sr``; accompaniment may be ``None``.
    channels, length
        Output layout (the input song's): ``(channels, length)``.
    vocal_gain_db, accompaniment_gain_db
        Gains applied before summing, -24..24 dB.
    target_lufs
        Integrated loudness to normalise to, or ``None`` to keep the summed level.
    true_peak
        Ceiling in dBTP; the whole mix is turned down if its true peak exceeds it.
    """
    for name, g in (("vocal_gain_db", vocal_gain_db), ("accompaniment_gain_db", accompaniment_gain_db)):
        if not -24 <= g <= 24:
            raise ParameterError("invalid_parameter", f"{name} must be within -24..24 dB, got {g}.")
    mix = match_layout(vocals, channels=channels, length=length) * np.float32(10 ** (vocal_gain_db / 20))
    if accompaniment is not None:
        acc = match_layout(accompaniment, channels=channels, length=length)
        mix = (mix + acc * np.float32(10 ** (accompaniment_gain_db / 20))).astype(np.float32)
    gain_db = 0.0
    loud = loudness_lufs(mix, sr=sr)
    if target_lufs is not None and np.isfinite(loud):
        gain_db = target_lufs - loud
    tp = true_peak_dbtp(mix, sr=sr) + gain_db
    if tp > true_peak:
        gain_db -= tp - true_peak
    out = (mix * np.float32(10 ** (gain_db / 20))).astype(np.float32)
    return MixResult(
        audio=out,
        sr=sr,
        loudness_lufs=loud + gain_db if np.isfinite(loud) else loud,
        true_peak_dbtp=tp - max(0.0, tp - true_peak) if np.isfinite(tp) else tp,
        gain_db=gain_db,
    )
