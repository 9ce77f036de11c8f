"""Level helpers: peak, RMS and integrated loudness (ITU-R BS.1770 via pyloudnorm)."""

from __future__ import annotations

import numpy as np


def peak_dbfs(y: np.ndarray) -> float:
    """Sample peak in dBFS (``-inf`` for all-zero input)."""
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    return 20 * np.log10(peak) if peak > 0 else float("-inf")


def rms_dbfs(y: np.ndarray) -> float:
    """RMS level in dBFS over all samples and channels."""
    rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) if y.size else 0.0
    return 20 * np.log10(rms) if rms > 0 else float("-inf")


def loudness_lufs(y: np.ndarray, *, sr: int) -> float:
    """Integrated loudness in LUFS; ``-inf`` for audio shorter than one 400 ms block or silent."""
    import pyloudnorm

    data = y.T if y.ndim == 2 else y
    if data.shape[0] < int(0.4 * sr) + 1:
        return float("-inf")
    return float(pyloudnorm.Meter(sr).integrated_loudness(np.asarray(data, dtype=np.float64)))


def frame_rms_db(y: np.ndarray, *, sr: int, frame_s: float = 0.02) -> np.ndarray:
    """RMS level in dB of consecutive non-overlapping frames of a mono signal."""
    n = max(1, int(frame_s * sr))
    frames = y[: len(y) // n * n].reshape(-1, n)
    if frames.size == 0:
        return np.zeros(0)
    rms = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))
    return np.asarray(20 * np.log10(np.maximum(rms, 1e-10)))
