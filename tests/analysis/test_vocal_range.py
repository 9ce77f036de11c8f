from __future__ import annotations

import numpy as np
import pytest

from autovoice.analysis import F0Track, cents, estimate_f0, midi_to_hz, vocal_range
from autovoice.errors import AudioError
from tests.support import harmonic_tone

SR = 22_050


def _melody(midis: list[int], note_s: float = 0.4, gap_s: float = 0.1) -> np.ndarray:
    parts = []
    for m in midis:
        parts.append(harmonic_tone(float(midi_to_hz(m)), sr=SR, seconds=note_s))
        parts.append(np.zeros(int(gap_s * SR), np.float32))
    return np.concatenate(parts)


def test_synthetic_voice_reports_its_range() -> None:
    midis = list(range(45, 70))  # A2 .. A4, every semitone once
    track = estimate_f0(_melody(midis), sr=SR)
    r = vocal_range(track)
    assert r.lowest_note == "A2"
    assert r.highest_note == "A4"
    assert abs(cents(r.lowest_hz, 110.0)) < 50
    assert abs(cents(r.highest_hz, 440.0)) < 50
    # Tessitura: 10th..90th percentile of an even spread over 24 semitones.
    assert 110 < r.tessitura_low_hz < r.median_hz < r.tessitura_high_hz < 440
    assert abs(cents(r.median_hz, float(midi_to_hz(57)))) < 60
    assert r.voiced_seconds == pytest.approx(25 * 0.4, rel=0.1)
    assert r.confidence == "medium"
    d = r.to_dict()
    assert d["lowest_note"] == "A2"
    assert d["span_semitones"] == pytest.approx(24, abs=1)


def test_blips_are_not_part_of_the_range() -> None:
    f0 = np.zeros(500, np.float32)
    f0[:300] = 200.0
    f0[400:405] = 900.0  # 50 ms blip: shorter than a sustained note
    r = vocal_range(F0Track(f0, 0.01, "fcpe"))
    assert r.highest_hz == pytest.approx(200.0, rel=1e-3)
    assert r.confidence == "low"


def test_no_voice_is_a_clear_error() -> None:
    with pytest.raises(AudioError) as err:
        vocal_range(F0Track(np.zeros(300, np.float32), 0.01, "fcpe"))
    assert err.value.code == "no_voiced_audio"
