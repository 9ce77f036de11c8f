"""Excerpt selection for the ``fast`` report: known positions of voiced, loud audio; bounds; short input."""

from __future__ import annotations

import numpy as np
import pytest

from autovoice.metrics import EXCERPT_SECONDS, FAST_EXCERPTS, select_excerpts
from tests.support import harmonic_tone

SR = 16_000
HOP = 0.01


def _song(seconds: float, loud: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Quiet hiss everywhere, a voiced tone over the ``loud`` spans; returns audio and per-frame voicing."""
    rng = np.random.default_rng(1)
    y = (1e-3 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
    voiced = np.zeros(int(np.ceil(seconds / HOP)), dtype=bool)
    for a, b in loud:
        tone = harmonic_tone(220.0, sr=SR, seconds=b - a)
        y[int(a * SR) : int(a * SR) + len(tone)] += tone
        voiced[round(a / HOP) : round(b / HOP)] = True
    return y, voiced


def test_excerpts_land_on_the_voiced_loud_parts() -> None:
    y, voiced = _song(120.0, [(30.0, 40.0), (70.0, 80.0), (100.0, 110.0)])
    ex = select_excerpts(y, sr=SR, voiced=voiced, hop_s=HOP)
    assert len(ex) == FAST_EXCERPTS
    for (a, b), (la, lb) in zip(ex, [(30.0, 40.0), (70.0, 80.0), (100.0, 110.0)], strict=True):
        assert b - a == pytest.approx(EXCERPT_SECONDS)
        assert a >= la - 1e-6, (a, b)  # wholly inside the 10 s voiced span
        assert b <= lb + 1e-6, (a, b)


def test_excerpts_do_not_overlap_and_stay_inside_the_audio() -> None:
    y, voiced = _song(25.0, [(0.0, 25.0)])  # room for two whole excerpts only
    ex = select_excerpts(y, sr=SR, voiced=voiced, hop_s=HOP, count=3)
    assert len(ex) == 2
    assert ex == sorted(ex)
    assert ex[0][1] <= ex[1][0] + 1e-9
    assert all(a >= 0.0 and b <= 25.0 + 1e-9 for a, b in ex)
    assert all(round(a / HOP) * HOP == pytest.approx(a) for a, _ in ex)  # starts on the frame grid


def test_loudness_decides_when_nothing_is_voiced() -> None:
    y, _ = _song(60.0, [(45.0, 55.0)])
    ex = select_excerpts(y, sr=SR, voiced=np.zeros(10, dtype=bool), hop_s=HOP, count=1)
    assert len(ex) == 1
    assert ex[0][0] >= 45.0 - 1e-6
    assert ex[0][1] <= 55.0 + 1e-6


def test_short_audio_is_one_excerpt_the_whole_of_it() -> None:
    y, voiced = _song(6.5, [(1.0, 5.0)])
    assert select_excerpts(y, sr=SR, voiced=voiced, hop_s=HOP) == [(0.0, 6.5)]
