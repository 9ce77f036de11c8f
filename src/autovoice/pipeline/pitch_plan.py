"""The pitch plan: what F0 the converted voice sings, given the source contour and the target's range.

Manual: shift by N semitones (-24..24). Auto key: move the source's median pitch onto the profile's
median. For songs the shift is whole semitones and octave-aware: with accompaniment the shift is a
whole number of octaves (the vocal stays in the song's key), so a male-to-female conversion lands on
+12 rather than +19 even when the singer's median sits 7 semitones off; for a bare vocal it is the
nearest semitone. For speech it is exact (fractional semitones). Optional median smoothing of the
contour, and a cap that moves notes outside the target's range by octaves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.ndimage import median_filter

from autovoice.analysis import F0Track, VocalRange, hz_to_midi, sustained_f0
from autovoice.errors import AudioError, ParameterError

PitchMode = Literal["song", "speech"]
MAX_SHIFT = 24.0


@dataclass(frozen=True)
class PitchPlan:
    """The planned output contour and how it was reached."""

    target_f0: np.ndarray  # Hz per frame of the source track, 0 = unvoiced
    shift_semitones: float
    auto_key: bool
    ideal_shift_semitones: float | None  # the exact median-to-median shift auto key started from
    capped_frames: int  # frames moved by an octave to stay inside the target's range

    def to_dict(self) -> dict[str, Any]:
        return {
            "shift_semitones": round(self.shift_semitones, 3),
            "auto_key": self.auto_key,
            "ideal_shift_semitones": (
                None if self.ideal_shift_semitones is None else round(self.ideal_shift_semitones, 3)
            ),
            "capped_frames": self.capped_frames,
        }


def auto_shift(
    source: F0Track, target: VocalRange, *, mode: PitchMode, keep_key: bool
) -> tuple[float, float]:
    """The auto-key shift in semitones and the exact ideal it was rounded from.

    ``keep_key`` (songs with accompaniment): round to whole octaves; otherwise songs round to whole
    semitones and speech keeps the exact value.
    """
    voiced = sustained_f0(source)
    if voiced.size == 0:
        voiced = source.f0[source.voiced]
    if voiced.size < 10:
        raise AudioError(
            "no_voiced_audio",
            "Auto key needs a voiced source, but almost no pitched voice was found in the input. "
            "Check that the input is (or contains) a vocal, or pass --pitch N.",
        )
    ideal = float(target.median_midi - np.median(hz_to_midi(voiced)))
    if mode == "speech":
        shift = ideal
    elif keep_key:
        shift = 12.0 * round(ideal / 12.0)
    else:
        shift = float(round(ideal))
    return float(np.clip(shift, -MAX_SHIFT, MAX_SHIFT)), ideal


def plan_pitch(
    source: F0Track,
    *,
    target: VocalRange | None = None,
    semitones: float | None = None,
    auto_key: bool = False,
    mode: PitchMode = "song",
    keep_key: bool = False,
    smooth_radius: int = 0,
    cap_to_range: bool = False,
) -> PitchPlan:
    """Plan the output F0.

    Parameters
    ----------
    source
        The source vocal's F0 track.
    target
        The profile's vocal range (needed for ``auto_key`` and ``cap_to_range``).
    semitones
        Manual shift, -24..24. Mutually exclusive with ``auto_key``.
    auto_key
        Compute the shift from the source and target medians (see module docs).
    mode
        ``song`` (whole semitones) or ``speech`` (exact).
    keep_key
        With ``auto_key`` on a song: shift by whole octaves only (the accompaniment is not transposed).
    smooth_radius
        Median-filter radius in frames applied within voiced runs (0 = off; 0..25).
    cap_to_range
        Move voiced runs whose median falls outside the target's lowest..highest by octaves.
    """
    if auto_key and semitones is not None:
        raise ParameterError(
            "invalid_parameter",
            "Pass either a manual pitch shift or auto key, not both.",
            {"semitones": semitones, "auto_key": True},
        )
    if semitones is not None and not (-MAX_SHIFT <= semitones <= MAX_SHIFT and np.isfinite(semitones)):
        raise ParameterError(
            "invalid_pitch_shift",
            f"Pitch shift must be within -24..24 semitones, got {semitones}.",
            {"semitones": semitones, "min": -MAX_SHIFT, "max": MAX_SHIFT},
        )
    if not 0 <= smooth_radius <= 25:
        raise ParameterError("invalid_parameter", f"smooth_radius must be 0..25 frames, got {smooth_radius}.")
    if (auto_key or cap_to_range) and target is None:
        raise ParameterError("invalid_parameter", "Auto key and the range cap need the target's vocal range.")

    ideal: float | None = None
    if auto_key:
        assert target is not None
        shift, ideal = auto_shift(source, target, mode=mode, keep_key=keep_key)
    else:
        shift = float(semitones or 0.0)

    f0 = source.f0.astype(np.float64).copy()
    voiced = f0 > 0
    runs = _runs(voiced)
    if smooth_radius > 0:
        for s, e in runs:
            if e - s > 2 * smooth_radius:
                f0[s:e] = median_filter(f0[s:e], size=2 * smooth_radius + 1, mode="nearest")
    f0[voiced] *= 2.0 ** (shift / 12.0)

    capped = 0
    if cap_to_range:
        assert target is not None
        lo, hi = target.lowest_hz, target.highest_hz
        for s, e in runs:
            med = float(np.median(f0[s:e]))
            factor = 1.0
            while med * factor > hi and med * factor / 2 >= lo * 0.75:
                factor /= 2
            while med * factor < lo and med * factor * 2 <= hi * 1.33:
                factor *= 2
            if factor != 1.0:
                f0[s:e] *= factor
                capped += e - s
    return PitchPlan(
        target_f0=f0.astype(np.float32),
        shift_semitones=shift,
        auto_key=auto_key,
        ideal_shift_semitones=ideal,
        capped_frames=capped,
    )


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))
