"""Validation of audio at every entry point, with stable error codes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from autovoice.config import Settings, get_settings
from autovoice.errors import AudioError

#: Peak level (dBFS) under which a signal counts as silent.
SILENCE_PEAK_DBFS = -60.0
#: A sample whose magnitude reaches this is counted as clipped.
CLIP_LEVEL = 0.999


@dataclass
class AudioCheck:
    """What :func:`validate_audio` found that is worth reporting but not fatal."""

    duration_s: float
    clipped_fraction: float
    peak_dbfs: float
    warnings: list[str] = field(default_factory=list)


def check_samples(y: np.ndarray) -> np.ndarray:
    """Shape, emptiness and finiteness of in-memory audio; returns it as float32.

    Raises ``invalid_audio_shape`` (not 1-D/2-D, or not floating point), ``audio_empty`` or
    ``audio_invalid_samples`` (NaN/inf). The cheap checks every entry point shares.
    """
    arr = np.asarray(y)
    if arr.ndim not in (1, 2) or not np.issubdtype(arr.dtype, np.floating):
        raise AudioError(
            "invalid_audio_shape",
            f"Audio must be floating point, (samples,) or (channels, samples); got {arr.dtype} {arr.shape}.",
            {"shape": list(arr.shape), "dtype": str(arr.dtype)},
        )
    if arr.size == 0 or arr.shape[-1] == 0:
        raise AudioError("audio_empty", "The audio contains no samples.")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise AudioError(
            "audio_invalid_samples",
            f"The audio contains {bad} NaN or infinite samples; re-export it from the source.",
            {"bad_samples": bad},
        )
    return arr


def check_channels(channels: int, *, settings: Settings | None = None) -> None:
    """``too_many_channels`` unless ``channels`` is within 1..``settings.max_channels``."""
    s = settings or get_settings()
    if channels < 1 or channels > s.max_channels:
        raise AudioError(
            "too_many_channels",
            f"The audio has {channels} channels; at most {s.max_channels} are accepted. "
            "Downmix to mono or stereo first.",
            {"channels": channels, "max_channels": s.max_channels},
        )


def check_limits(*, duration_s: float, sr: int, channels: int, settings: Settings | None = None) -> None:
    """Reject durations, sample rates and channel counts outside the configured limits.

    Cheap: works on probed metadata, so a 3-hour file is refused before it is decoded.
    """
    s = settings or get_settings()
    check_channels(channels, settings=s)
    if not s.min_sample_rate <= sr <= s.max_sample_rate:
        raise AudioError(
            "unsupported_sample_rate",
            f"Sample rate {sr} Hz is outside {s.min_sample_rate}..{s.max_sample_rate} Hz.",
            {"sample_rate": sr, "min": s.min_sample_rate, "max": s.max_sample_rate},
        )
    if duration_s > s.max_audio_seconds:
        raise AudioError(
            "audio_too_long",
            f"The audio lasts {duration_s:.1f} s; the limit is {s.max_audio_seconds:.0f} s "
            "(AUTOVOICE_MAX_AUDIO_SECONDS). Trim it or raise the limit.",
            {"duration_s": round(duration_s, 3), "max_s": s.max_audio_seconds},
        )


def validate_audio(
    y: np.ndarray,
    *,
    sr: int,
    min_seconds: float | None = None,
    settings: Settings | None = None,
) -> AudioCheck:
    """Check decoded audio and return non-fatal findings (clipping).

    Parameters
    ----------
    y
        ``(samples,)`` or ``(channels, samples)`` floating-point audio.
    sr
        Sample rate in Hz.
    min_seconds
        Shortest accepted duration; default ``settings.min_audio_seconds``.

    Raises
    ------
    AudioError
        ``audio_empty``, ``audio_invalid_samples`` (NaN/inf), ``audio_too_short``, ``audio_too_long``,
        ``too_many_channels``, ``unsupported_sample_rate`` or ``audio_silent``.
    """
    s = settings or get_settings()
    y = check_samples(y)
    channels = 1 if y.ndim == 1 else y.shape[0]
    n = y.shape[-1]
    duration = n / sr
    check_limits(duration_s=duration, sr=sr, channels=channels, settings=s)
    min_s = s.min_audio_seconds if min_seconds is None else min_seconds
    if duration < min_s:
        raise AudioError(
            "audio_too_short",
            # Rounded down, so 0.999 s does not read "1.00 s; at least 1.0 s is needed".
            f"The audio lasts {math.floor(duration * 100) / 100:.2f} s; at least {min_s:.1f} s is needed.",
            {"duration_s": round(duration, 3), "min_s": min_s},
        )
    peak = float(np.max(np.abs(y)))
    peak_db = 20 * np.log10(max(peak, 1e-12))
    if peak_db < SILENCE_PEAK_DBFS:
        raise AudioError(
            "audio_silent",
            f"The audio is silent (peak {peak_db:.0f} dBFS). Check the recording level or the file.",
            {"peak_dbfs": round(peak_db, 1)},
        )
    clipped = float(np.mean(np.abs(y) >= CLIP_LEVEL))
    check = AudioCheck(duration_s=duration, clipped_fraction=clipped, peak_dbfs=peak_db)
    if clipped > 1e-4:
        check.warnings.append(f"{clipped * 100:.2f}% of samples are clipped; the result may sound distorted.")
    return check
