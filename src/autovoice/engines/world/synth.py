"""WORLD synthesis for the engines that put new envelopes into a vocal (``bandcopy``, ``fullmap``).

Envelopes and aperiodicities are kept on the mel grid (:data:`~autovoice.engines.world.dsp.N_MEL` points,
0..8 kHz) as natural logarithms; :func:`synthesize` turns them, with an F0 contour, into 16 kHz audio, and
:func:`crossover` puts that audio into another conversion's output (the world engine's): above a split
frequency, where a voicing mask is on, with its level matched frame by frame to the band it replaces, and
never above :data:`~autovoice.engines.world.dsp.MERGE_HZ` (a 44.1/48 kHz input keeps its air).
"""

from __future__ import annotations

import numpy as np
import pyworld

from autovoice.analysis.f0 import FRAME_HOP_S
from autovoice.engines.world.dsp import (
    BINS_HZ,
    FFT_SIZE,
    INTERNAL_SR,
    MEL_HZ,
    MERGE_HZ,
    N_MEL,
    analyse,
    lerp_columns,
    smooth_time,
)

#: STFT of the crossover: window and hop, seconds (at any sample rate).
STFT_WIN_S, STFT_HOP_S = 0.032, 0.008
#: Log aperiodicity floor (D4C's values below 1e-4 carry nothing audible).
LOG_AP_FLOOR = float(np.log(1e-4))


def analyse_frames(x16: np.ndarray, f0: np.ndarray, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CheapTrick log power envelopes and D4C log aperiodicities of ``frames`` (10 ms frame indices of
    16 kHz audio ``x16``, F0 ``f0[frames]``) on the mel grid: two ``(len(frames), N_MEL)`` arrays."""
    sp = analyse(x16, f0[frames], frames, hop_s=FRAME_HOP_S)
    t = frames * FRAME_HOP_S
    s0 = max(int((t.min() - 0.05) * INTERNAL_SR), 0)
    s1 = min(int((t.max() + 0.05) * INTERNAL_SR) + 1, len(x16))
    ap = pyworld.d4c(
        np.ascontiguousarray(x16[s0:s1], dtype=np.float64),
        np.ascontiguousarray(f0[frames], dtype=np.float64),
        np.ascontiguousarray(t - s0 / INTERNAL_SR),
        INTERNAL_SR,
        fft_size=FFT_SIZE,
    )
    return on_mel(np.log(sp)), on_mel(np.log(np.clip(ap, 1e-4, 1.0)))


def on_mel(log_bins: np.ndarray) -> np.ndarray:
    """``(frames, bins)`` values on the analysis bins, read at the mel grid's points."""
    return lerp_columns(log_bins, np.interp(MEL_HZ, BINS_HZ, np.arange(len(BINS_HZ))))


def to_bins(log_mel: np.ndarray) -> np.ndarray:
    """``(frames, N_MEL)`` values on the mel grid, read at the analysis bins."""
    return lerp_columns(log_mel, np.interp(BINS_HZ, MEL_HZ, np.arange(N_MEL)))


def smooth_voiced(a: np.ndarray, voiced: np.ndarray, ms: float) -> np.ndarray:
    """``a`` smoothed over time at the ``voiced`` frame indices; while smoothing, every other frame
    holds the next voiced frame's value, so unvoiced neighbours do not pull the edges."""
    nearest = voiced[np.clip(np.searchsorted(voiced, np.arange(len(a))), 0, len(voiced) - 1)]
    out = a.copy()
    out[voiced] = smooth_time(a[nearest], ms, hop_s=FRAME_HOP_S)[voiced]
    return out


def synthesize(f0: np.ndarray, log_env: np.ndarray, log_ap: np.ndarray) -> np.ndarray:
    """16 kHz WORLD synthesis of 10 ms frames: F0 (Hz, 0 = unvoiced), log power envelopes and log
    aperiodicities on the analysis bins (``(frames, FFT_SIZE // 2 + 1)`` each). float32 samples."""
    out = pyworld.synthesize(
        np.ascontiguousarray(f0, dtype=np.float64),
        np.ascontiguousarray(np.exp(log_env), dtype=np.float64),
        np.ascontiguousarray(np.exp(np.clip(log_ap, LOG_AP_FLOOR, 0.0)), dtype=np.float64),
        INTERNAL_SR,
        frame_period=FRAME_HOP_S * 1000.0,
    )
    return np.asarray(out, dtype=np.float32)


def crossover(
    low: np.ndarray,
    high: np.ndarray,
    mask: np.ndarray,
    *,
    sr: int,
    split_hz: float,
    width_hz: float,
) -> np.ndarray:
    """``low`` with its band from ``split_hz`` up (a crossfade ``width_hz`` wide; ``split_hz`` 0: the
    whole band) replaced by ``high`` where ``mask`` (0..1 per 10 ms frame) is on, ``high``'s level
    matched per STFT frame to the band it replaces; above :data:`MERGE_HZ` ``low`` stays."""
    from scipy.signal import istft, stft

    n = len(low)
    high = np.pad(high[:n], (0, max(0, n - len(high))))
    nper = int(round(STFT_WIN_S * sr))
    hop = int(round(STFT_HOP_S * sr))
    freqs, times, a = stft(low, fs=sr, nperseg=nper, noverlap=nper - hop, boundary="even", padded=True)
    _, _, b = stft(high, fs=sr, nperseg=nper, noverlap=nper - hop, boundary="even", padded=True)
    lo_edge, hi_edge = MERGE_HZ
    w = (
        np.ones_like(freqs)
        if split_hz <= 0
        else np.clip((freqs - (split_hz - width_hz / 2)) / width_hz, 0, 1)
    )
    w = w * np.clip((hi_edge - freqs) / (hi_edge - lo_edge), 0.0, 1.0)
    m = np.interp(times, np.arange(len(mask)) * FRAME_HOP_S, mask)
    band = w[:, None] * m[None, :]
    ea = (np.abs(a) ** 2 * w[:, None]).sum(0)
    eb = (np.abs(b) ** 2 * w[:, None]).sum(0)
    b = b * np.sqrt(ea / np.maximum(eb, 1e-12))[None, :]
    _, out = istft(a * (1 - band) + b * band, fs=sr, nperseg=nper, noverlap=nper - hop, boundary=True)
    return np.asarray(out[:n], dtype=np.float32)
