"""Fundamental-frequency (F0) tracking.

Two backends, chosen by :data:`F0Method`:

``fcpe``
    FCPE (``torchfcpe``), a fast neural estimator with bundled weights; robust on singing and noisy
    speech. The default.
``world``
    WORLD's Harvest (``pyworld``), a classic DSP estimator; no neural network, slower. It needs a
    harmonic signal (a voice): a bare sine wave is reported unvoiced.

Both return an :class:`F0Track` on a fixed 10 ms grid (by default) with 0 Hz marking unvoiced frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from autovoice.audio import frame_rms_db, resample, to_mono
from autovoice.errors import ParameterError

F0Method = Literal["fcpe", "world"]
F0_METHODS: tuple[str, ...] = get_args(F0Method)

#: Default search range: covers bass singing to soprano whistle-free range.
DEFAULT_FMIN = 50.0
DEFAULT_FMAX = 1100.0
_ANALYSIS_SR = 16_000
_FCPE_HOP = 160  # samples at 16 kHz = 10 ms
_FCPE_WINDOW_S = 30.0  # FCPE attends over whole input: bounded windows keep memory flat
_FCPE_PAD_S = 1.0
#: FCPE voicing confidence threshold. The package default (0.006) reports white noise as 90 % voiced;
#: 0.02 reports it unvoiced while keeping ~94 % of the voiced frames of clean speech.
_FCPE_THRESHOLD = 0.02
#: Voiced runs shorter than this are estimator blips (clicks, breaths), not notes.
_MIN_VOICED_RUN_S = 0.03


@dataclass(frozen=True)
class F0Track:
    """An F0 contour on a regular frame grid.

    Attributes
    ----------
    f0
        ``(frames,)`` float32 fundamental frequency in Hz; 0 where unvoiced. Frame ``i`` is centred at
        ``i * hop_s`` seconds.
    hop_s
        Frame period in seconds.
    method
        The backend that produced it.
    """

    f0: np.ndarray
    hop_s: float
    method: str

    @property
    def voiced(self) -> np.ndarray:
        """Boolean ``(frames,)`` mask of voiced frames."""
        return self.f0 > 0

    @property
    def times(self) -> np.ndarray:
        """Frame centre times in seconds."""
        return np.arange(len(self.f0)) * self.hop_s

    @property
    def voiced_seconds(self) -> float:
        return float(self.voiced.sum() * self.hop_s)

    def resampled(self, n_frames: int) -> np.ndarray:
        """F0 on a grid of ``n_frames`` spanning the same duration (nearest frame; keeps 0 = unvoiced)."""
        if n_frames == len(self.f0):
            return self.f0.copy()
        idx = np.minimum(
            np.round(np.arange(n_frames) * len(self.f0) / max(n_frames, 1)).astype(int), len(self.f0) - 1
        )
        return np.asarray(self.f0[idx])


def estimate_f0(
    y: np.ndarray,
    *,
    sr: int,
    method: F0Method = "fcpe",
    hop_s: float = 0.01,
    fmin: float = DEFAULT_FMIN,
    fmax: float = DEFAULT_FMAX,
    device: str = "cpu",
    silence_db: float = -50.0,
) -> F0Track:
    """Track the F0 of a monophonic voice.

    Parameters
    ----------
    y
        ``(samples,)`` or ``(channels, samples)`` float audio (channels are averaged).
    sr
        Sample rate in Hz.
    method
        One of :data:`F0_METHODS`.
    hop_s
        Output frame period in seconds (0.005..0.05).
    fmin, fmax
        Search range in Hz; frames outside it are reported unvoiced.
    device
        Torch device for ``fcpe`` (``"cpu"``, ``"cuda:0"``); ignored by ``world``.
    silence_db
        Frames whose RMS is this many dB below the loudest frame are unvoiced (avoids pitch in noise).

    Returns
    -------
    F0Track
        ``ceil(duration / hop_s)`` frames.
    """
    if method not in F0_METHODS:
        raise ParameterError(
            "invalid_f0_method",
            f"Unknown F0 method '{method}'. Valid methods: {', '.join(F0_METHODS)}.",
            {"method": method, "valid": list(F0_METHODS)},
        )
    if not 0.005 <= hop_s <= 0.05:
        raise ParameterError("invalid_parameter", f"hop_s must be within 0.005..0.05 s, got {hop_s}.")
    if not 0 < fmin < fmax:
        raise ParameterError("invalid_parameter", f"Need 0 < fmin < fmax, got fmin={fmin}, fmax={fmax}.")
    mono = to_mono(np.asarray(y, dtype=np.float32))
    n_frames = int(np.ceil(len(mono) / sr / hop_s))
    if method == "fcpe":
        f0 = _fcpe(mono, sr=sr, n_frames=n_frames, hop_s=hop_s, fmin=fmin, device=device)
    else:
        f0 = _harvest(mono, sr=sr, n_frames=n_frames, hop_s=hop_s, fmin=fmin, fmax=fmax)
    f0[(f0 < fmin) | (f0 > fmax)] = 0.0
    level = frame_rms_db(np.pad(mono, (int(hop_s * sr) // 2, 0)), sr=sr, frame_s=hop_s)
    if len(level):
        level = np.pad(level, (0, max(0, n_frames - len(level))), constant_values=-200.0)[:n_frames]
        f0[level < level.max() + silence_db] = 0.0
    _drop_short_runs(f0, min_frames=max(2, int(round(_MIN_VOICED_RUN_S / hop_s))))
    return F0Track(f0=f0.astype(np.float32), hop_s=hop_s, method=method)


def _fcpe(y: np.ndarray, *, sr: int, n_frames: int, hop_s: float, fmin: float, device: str) -> np.ndarray:
    import torch

    from autovoice.models.cache import load_fcpe

    model = load_fcpe(device)
    # FCPE prints a complaint to stdout for samples outside [-1, 1] (lossy decodes overshoot).
    x = np.clip(resample(y, orig_sr=sr, target_sr=_ANALYSIS_SR), -1.0, 1.0)
    win = int(_FCPE_WINDOW_S * _ANALYSIS_SR) // _FCPE_HOP * _FCPE_HOP
    pad = int(_FCPE_PAD_S * _ANALYSIS_SR) // _FCPE_HOP * _FCPE_HOP
    parts: list[np.ndarray] = []
    for start in range(0, max(len(x), 1), win):
        lo = max(0, start - pad)
        seg = x[lo : start + win + pad]
        with torch.no_grad():
            out = model.infer(
                torch.from_numpy(np.ascontiguousarray(seg)).float()[None, :, None],
                sr=_ANALYSIS_SR,
                decoder_mode="local_argmax",
                threshold=_FCPE_THRESHOLD,
                f0_min=fmin,
                interp_uv=False,
            )
        f = out.squeeze().cpu().numpy().astype(np.float32).reshape(-1)
        skip = (start - lo) // _FCPE_HOP
        keep = min(win, len(x) - start) // _FCPE_HOP + (1 if start + win >= len(x) else 0)
        parts.append(f[skip : skip + keep])
    native = np.concatenate(parts) if parts else np.zeros(1, np.float32)
    return _regrid(native, native_hop_s=_FCPE_HOP / _ANALYSIS_SR, hop_s=hop_s, n_frames=n_frames)


def _harvest(y: np.ndarray, *, sr: int, n_frames: int, hop_s: float, fmin: float, fmax: float) -> np.ndarray:
    import pyworld

    # Harvest's cost grows with the sample rate; 16 kHz keeps every F0 we search for (< 1.1 kHz)
    # with all the harmonics its voicing test needs. (Harvest expects a harmonic voice: a bare sine
    # is reported unvoiced.)
    x = np.ascontiguousarray(resample(y, orig_sr=sr, target_sr=_ANALYSIS_SR), dtype=np.float64)
    f0, t = pyworld.harvest(x, _ANALYSIS_SR, f0_floor=fmin, f0_ceil=fmax, frame_period=hop_s * 1000)
    f0 = pyworld.stonemask(x, f0, t, _ANALYSIS_SR)
    return _regrid(np.asarray(f0, np.float32), native_hop_s=hop_s, hop_s=hop_s, n_frames=n_frames)


def _regrid(f0: np.ndarray, *, native_hop_s: float, hop_s: float, n_frames: int) -> np.ndarray:
    """Nearest-frame resampling of an F0 contour onto ``n_frames`` frames of ``hop_s``."""
    idx = np.round(np.arange(n_frames) * hop_s / native_hop_s).astype(int)
    idx = np.clip(idx, 0, len(f0) - 1)
    return np.asarray(f0[idx], dtype=np.float32)


def _drop_short_runs(f0: np.ndarray, *, min_frames: int) -> None:
    """Mark voiced runs shorter than ``min_frames`` as unvoiced, in place."""
    voiced = (f0 > 0).astype(np.int8)
    edges = np.diff(np.concatenate([[0], voiced, [0]]))
    for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        if e - s < min_frames:
            f0[s:e] = 0.0
