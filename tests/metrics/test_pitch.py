"""Known-answer tests for pitch accuracy on synthetic F0 contours."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from autovoice.errors import ParameterError
from autovoice.metrics import PitchAccuracy, pitch_accuracy

KEYS = {
    "rmse_hz",
    "rmse_cents",
    "median_abs_cents",
    "mean_cents",
    "frac_off_50_cents",
    "correlation",
    "voiced_frames_compared",
    "voicing_agreement",
}


def melody(n: int = 400) -> np.ndarray:
    """A glide from 200 to 400 Hz with vibrato and two unvoiced gaps (0 Hz)."""
    t = np.arange(n) / 100
    f0 = 200 * 2 ** (t / t[-1]) * 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5.5 * t))
    f0[50:70] = 0.0
    f0[300:320] = 0.0
    return np.asarray(f0, dtype=np.float64)


def test_identical_contours_have_no_error() -> None:
    f0 = melody()
    acc = pitch_accuracy(f0, f0.copy())
    assert acc.rmse_hz == 0
    assert acc.rmse_cents == 0
    assert acc.median_abs_cents == 0
    assert acc.mean_cents == 0
    assert acc.frac_off_50_cents == 0
    assert acc.correlation == pytest.approx(1.0)
    assert acc.voiced_frames_compared == 360
    assert acc.voicing_agreement == 1.0


def test_plus_100_cents_is_a_semitone_sharp_everywhere() -> None:
    f0 = melody()
    acc = pitch_accuracy(f0, f0 * 2 ** (100 / 1200))
    assert acc.rmse_cents == pytest.approx(100, abs=1e-6)
    assert acc.median_abs_cents == pytest.approx(100, abs=1e-6)
    assert acc.mean_cents == pytest.approx(100, abs=1e-6)  # sharp: positive bias
    assert acc.frac_off_50_cents == 1.0
    assert acc.correlation == pytest.approx(1.0)  # same melody, transposed
    expected_hz = np.sqrt(np.mean((f0[f0 > 0] * (2 ** (1 / 12) - 1)) ** 2))
    assert acc.rmse_hz == pytest.approx(expected_hz)


def test_flat_30_cents_is_within_tolerance() -> None:
    f0 = melody()
    acc = pitch_accuracy(f0, f0 * 2 ** (-30 / 1200))
    assert acc.mean_cents == pytest.approx(-30, abs=1e-6)
    assert acc.frac_off_50_cents == 0.0


def test_constant_contours_known_hz_error_and_undefined_correlation() -> None:
    acc = pitch_accuracy(np.full(100, 200.0), np.full(100, 210.0))
    assert acc.rmse_hz == pytest.approx(10.0)
    assert acc.rmse_cents == pytest.approx(1200 * math.log2(210 / 200))
    assert math.isnan(acc.correlation)  # nothing moves, so there is nothing to correlate


def test_inverted_melody_correlates_negatively() -> None:
    f0 = np.geomspace(200, 400, 200)
    acc = pitch_accuracy(f0, f0[::-1].copy())
    assert acc.correlation == pytest.approx(-1.0)


def test_unvoiced_frames_are_excluded_and_voicing_compared() -> None:
    intended = np.full(100, 220.0)
    intended[:20] = 0.0  # frames 0..19 unvoiced in the plan
    achieved = np.full(100, 220.0 * 2 ** (1 / 12))
    achieved[90:] = 0.0  # frames 90..99 unvoiced in the result
    achieved[40:50] = np.nan  # NaN counts as unvoiced
    achieved[10] = -1.0  # so does a negative value
    acc = pitch_accuracy(intended, achieved)
    assert acc.voiced_frames_compared == 100 - 20 - 10 - 10
    # Disagree on 0..19 except 10 (19 frames), on 40..49 and 90..99 (20 frames).
    assert acc.voicing_agreement == pytest.approx(1 - 39 / 100)
    assert acc.mean_cents == pytest.approx(100)


def test_no_common_voiced_frames_gives_nan_and_null() -> None:
    intended = np.r_[np.full(50, 220.0), np.zeros(50)]
    achieved = np.r_[np.zeros(50), np.full(50, 220.0)]
    acc = pitch_accuracy(intended, achieved)
    assert acc.voiced_frames_compared == 0
    assert acc.voicing_agreement == 0.0
    assert math.isnan(acc.rmse_cents)
    assert math.isnan(acc.frac_off_50_cents)
    d = acc.to_dict()
    assert set(d) == KEYS
    assert d["rmse_cents"] is None
    assert d["voiced_frames_compared"] == 0
    json.dumps(d, allow_nan=False)


def test_to_dict_has_stable_keys_and_plain_types() -> None:
    f0 = melody()
    d = pitch_accuracy(f0, f0 * 1.01).to_dict()
    assert set(d) == KEYS
    assert isinstance(d["voiced_frames_compared"], int)
    assert all(isinstance(d[k], float) for k in KEYS - {"voiced_frames_compared"})
    assert json.loads(json.dumps(d, allow_nan=False)) == d


def test_small_length_difference_is_truncated() -> None:
    f0 = melody(400)
    acc = pitch_accuracy(f0, np.r_[f0, 300.0, 300.0, 300.0])  # 3 extra frames < 5 %
    assert acc.rmse_cents == 0
    assert acc.voiced_frames_compared == 360
    short = pitch_accuracy(np.full(20, 200.0), np.full(22, 200.0))  # 2 frames of slack on short contours
    assert short.voiced_frames_compared == 20


@pytest.mark.parametrize(
    ("intended", "achieved"),
    [
        (np.full(100, 200.0), np.full(120, 200.0)),  # lengths differ by > 5 %
        (np.full(120, 200.0), np.full(100, 200.0)),
        (np.full((2, 50), 200.0), np.full(100, 200.0)),  # not 1-D
        (np.zeros(0), np.zeros(0)),  # empty
        (np.full(100, np.inf), np.full(100, 200.0)),  # infinite
    ],
)
def test_bad_contours_are_refused(intended: np.ndarray, achieved: np.ndarray) -> None:
    with pytest.raises(ParameterError) as err:
        pitch_accuracy(intended, achieved)
    assert err.value.code == "invalid_parameter"


def test_result_is_a_frozen_dataclass() -> None:
    acc = pitch_accuracy(melody(), melody())
    assert isinstance(acc, PitchAccuracy)
    with pytest.raises(AttributeError):
        acc.rmse_cents = 1.0  # type: ignore[misc]
