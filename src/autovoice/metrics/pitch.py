"""Pitch accuracy: how closely an achieved F0 contour follows the intended one.

Both contours live on the same frame grid (the grid of :class:`autovoice.analysis.F0Track`) in Hz, with
0 (or any non-positive or non-finite value) marking an unvoiced frame. Errors are measured in cents on
the frames voiced in both contours; voicing is compared on all frames.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from autovoice.analysis import cents
from autovoice.errors import ParameterError

#: Lengths may differ by this fraction of the longer contour (or by :data:`LENGTH_SLACK_FRAMES`,
#: whichever is larger) before :func:`pitch_accuracy` refuses them; trackers round the frame count of
#: the same audio differently, an engine may pad its output by a few samples.
LENGTH_TOLERANCE = 0.05
LENGTH_SLACK_FRAMES = 2
#: A frame is "off" when its error exceeds this many cents (a quarter tone: a clearly wrong note).
OFF_CENTS = 50.0


@dataclass(frozen=True)
class PitchAccuracy:
    """Pitch error of an achieved F0 contour against the intended one.

    Every error statistic is taken over the frames voiced in *both* contours. When there is no such
    frame they are all NaN (``null`` in :meth:`to_dict`) and ``voiced_frames_compared`` is 0.

    Attributes
    ----------
    rmse_hz
        Root-mean-square error in Hz (>= 0).
    rmse_cents
        Root-mean-square error in cents (>= 0; 100 cents = one semitone).
    median_abs_cents
        Median absolute error in cents (>= 0); robust to octave slips.
    mean_cents
        Mean signed error in cents: positive when the achieved pitch is sharp (a constant bias, such as
        a transposition the engine did not apply, shows here).
    frac_off_50_cents
        Fraction (0..1) of compared frames more than 50 cents away from the intended pitch.
    correlation
        Pearson correlation (-1..1) of log-F0 over compared frames: does the melody move the same way.
        NaN with fewer than 2 compared frames or when either contour is constant over them.
    voiced_frames_compared
        Number of frames voiced in both contours.
    voicing_agreement
        Fraction (0..1) of all frames on which both contours agree about voiced vs unvoiced.
    """

    rmse_hz: float
    rmse_cents: float
    median_abs_cents: float
    mean_cents: float
    frac_off_50_cents: float
    correlation: float
    voiced_frames_compared: int
    voicing_agreement: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with stable keys; NaN becomes ``None``."""
        return json_safe(asdict(self))  # type: ignore[no-any-return]


def pitch_accuracy(intended_f0: np.ndarray, achieved_f0: np.ndarray) -> PitchAccuracy:
    """Compare an achieved F0 contour with the intended one, frame by frame.

    Parameters
    ----------
    intended_f0
        ``(frames,)`` planned F0 in Hz; ``<= 0`` or NaN = unvoiced.
    achieved_f0
        ``(frames,)`` F0 in Hz measured on the result, on the same frame grid.

    Returns
    -------
    PitchAccuracy
        Errors in Hz and cents over frames voiced in both, voicing agreement over all frames.

    Raises
    ------
    ParameterError
        ``invalid_parameter`` when an input is not 1-D, is empty, holds infinities, or when the lengths
        differ by more than 5 % of the longer contour (and by more than 2 frames): the contours are then
        not on the same grid. Smaller differences are truncated to the shorter contour.
    """
    intended = _contour(intended_f0, "intended_f0")
    achieved = _contour(achieved_f0, "achieved_f0")
    n_long, n_short = max(len(intended), len(achieved)), min(len(intended), len(achieved))
    if n_long - n_short > max(LENGTH_SLACK_FRAMES, LENGTH_TOLERANCE * n_long):
        raise ParameterError(
            "invalid_parameter",
            f"The F0 contours have {len(intended)} (intended) and {len(achieved)} (achieved) frames; "
            f"they must be on the same frame grid (lengths within {LENGTH_TOLERANCE:.0%}). Track both "
            "with the same hop_s over audio of the same duration.",
            {"intended_frames": len(intended), "achieved_frames": len(achieved)},
        )
    intended, achieved = intended[:n_short], achieved[:n_short]
    v_int, v_ach = intended > 0, achieved > 0
    agreement = float(np.mean(v_int == v_ach))
    both = v_int & v_ach
    n = int(both.sum())
    if n == 0:
        nan = math.nan
        return PitchAccuracy(nan, nan, nan, nan, nan, nan, 0, agreement)
    f_int, f_ach = intended[both], achieved[both]
    err_c = cents(f_ach, f_int)
    abs_c = np.abs(err_c)
    return PitchAccuracy(
        rmse_hz=float(np.sqrt(np.mean((f_ach - f_int) ** 2))),
        rmse_cents=float(np.sqrt(np.mean(err_c**2))),
        median_abs_cents=float(np.median(abs_c)),
        mean_cents=float(np.mean(err_c)),
        frac_off_50_cents=float(np.mean(abs_c > OFF_CENTS)),
        correlation=_pearson(np.log(f_int), np.log(f_ach)),
        voiced_frames_compared=n,
        voicing_agreement=agreement,
    )


def _contour(f0: np.ndarray, name: str) -> np.ndarray:
    """``f0`` as float64 with every unvoiced frame (non-positive or NaN) set to 0."""
    arr = np.asarray(f0, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ParameterError(
            "invalid_parameter",
            f"{name} must be a non-empty 1-D array of F0 values in Hz, got shape {arr.shape}.",
            {"name": name, "shape": list(arr.shape)},
        )
    if np.isinf(arr).any():
        raise ParameterError(
            "invalid_parameter",
            f"{name} contains infinite values; mark unvoiced frames with 0.",
            {"name": name},
        )
    return np.where(arr > 0, arr, 0.0)  # NaN > 0 is False, so NaN counts as unvoiced


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when it is undefined (< 2 points or a constant input)."""
    if len(a) < 2:
        return math.nan
    da, db = a - a.mean(), b - b.mean()
    denom = math.sqrt(float(np.dot(da, da)) * float(np.dot(db, db)))
    # A contour flat to within float rounding has no direction to correlate with.
    if denom <= 1e-12 * len(a):
        return math.nan
    return float(np.clip(np.dot(da, db) / denom, -1.0, 1.0))


def json_safe(value: Any) -> Any:
    """Turn ``value`` into plain JSON types: numpy scalars/arrays to Python, NaN and +-inf to ``None``.

    Dict keys become strings; tuples become lists. The result passes ``json.dumps(..., allow_nan=False)``.
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
