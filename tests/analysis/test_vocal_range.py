from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from autovoice.analysis import F0Track, VocalRange, cents, estimate_f0, midi_to_hz, vocal_range
from autovoice.analysis.vocal_range import SPEECH_TO_SINGING_SEMITONES, steady_share
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


def _glides(centres: list[float], seconds: float = 0.3, sr: int = 100) -> np.ndarray:
    """Speech-like F0 (per 10 ms frame): syllables that glide 3 semitones around each centre note."""
    parts = []
    for m in centres:
        n = int(seconds * sr)
        parts += [midi_to_hz(m + np.linspace(1.5, -1.5, n)), np.zeros(8)]
    return np.concatenate(parts).astype(np.float32)


def test_held_notes_are_sung_and_glides_are_spoken() -> None:
    sung = vocal_range(estimate_f0(_melody([57, 59, 60, 62, 64, 62, 60] * 2, note_s=0.5), sr=SR))
    assert sung.style == "sung"
    assert sung.steady_share is not None
    assert sung.steady_share > 0.8
    spoken = vocal_range(F0Track(_glides([50, 52, 49, 51] * 10), 0.01, "fcpe"))
    assert spoken.style == "spoken"
    assert spoken.steady_share is not None
    assert spoken.steady_share < 0.3
    assert steady_share(F0Track(np.zeros(50, np.float32), 0.01, "fcpe")) == 0.0


def test_singing_range_of_a_spoken_voice_is_higher() -> None:
    spoken = vocal_range(F0Track(_glides([50, 52, 49, 51] * 10), 0.01, "fcpe"))
    sings = spoken.singing()
    up = SPEECH_TO_SINGING_SEMITONES * 100
    assert cents(sings.median_hz, spoken.median_hz) == pytest.approx(up, abs=0.1)
    assert cents(sings.highest_hz, spoken.highest_hz) == pytest.approx(up, abs=0.1)
    assert sings.lowest_hz == spoken.lowest_hz
    assert sings.singing() == sings  # idempotent
    sung = vocal_range(estimate_f0(_melody([57, 59, 60, 62] * 3, note_s=0.5), sr=SR))
    assert sung.singing() == sung


def test_ranges_stored_before_the_style_read_as_unknown() -> None:
    d = vocal_range(F0Track(_glides([50, 52] * 10), 0.01, "fcpe")).to_dict()
    for key in ("style", "steady_share"):
        d.pop(key)
    old = VocalRange.from_dict(d)
    assert old.style == "unknown"
    assert old.singing() == old  # no guess for a range whose style was never measured


def test_shared_speech_reads_as_spoken(speech_dir: Path) -> None:
    from autovoice.audio import load

    for speaker in ("3080", "2609"):  # 2609 holds its pitch the most of the ten
        f0 = [
            estimate_f0(load(f, mono=True)[0], sr=16_000)
            for f in sorted((speech_dir / speaker).glob("*.flac"))[:5]
        ]
        track = F0Track(np.concatenate([t.f0 for t in f0]), 0.01, "fcpe")
        assert vocal_range(track).style == "spoken", speaker
