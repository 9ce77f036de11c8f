from __future__ import annotations

import numpy as np
import pytest

from autovoice.analysis import F0Track, VocalRange, cents, midi_to_hz
from autovoice.errors import AudioError, ParameterError
from autovoice.pipeline import plan_pitch


def _range(median_midi: float, span: float = 12.0) -> VocalRange:
    hz = lambda m: float(midi_to_hz(m))  # noqa: E731
    return VocalRange(
        lowest_hz=hz(median_midi - span),
        highest_hz=hz(median_midi + span),
        tessitura_low_hz=hz(median_midi - span / 2),
        tessitura_high_hz=hz(median_midi + span / 2),
        median_hz=hz(median_midi),
        voiced_seconds=60.0,
        confidence="high",
    )


def _track(midis: list[float], frames_per_note: int = 30) -> F0Track:
    f0 = np.concatenate([np.r_[np.full(frames_per_note, float(midi_to_hz(m))), np.zeros(5)] for m in midis])
    return F0Track(f0.astype(np.float32), 0.01, "fcpe")


MALE_SONG = _track([45, 47, 48, 50, 52, 50, 48, 47])  # A2..E3, median C3 (48)


def test_manual_shift_moves_every_voiced_frame() -> None:
    plan = plan_pitch(MALE_SONG, semitones=3)
    v = MALE_SONG.voiced
    np.testing.assert_allclose(cents(plan.target_f0[v], MALE_SONG.f0[v]), 300, atol=0.01)
    assert (plan.target_f0[~v] == 0).all()
    assert plan.shift_semitones == 3
    assert not plan.auto_key


def test_auto_key_song_with_accompaniment_is_octave_aware() -> None:
    # Source median C3 (48); a female target with median D4 (62): ideal +14, but the accompaniment
    # stays in its key, so the vocal moves by a whole octave.
    plan = plan_pitch(MALE_SONG, target=_range(62), auto_key=True, mode="song", keep_key=True)
    assert plan.ideal_shift_semitones == pytest.approx(14, abs=0.01)
    assert plan.shift_semitones == 12
    plan = plan_pitch(MALE_SONG, target=_range(53), auto_key=True, mode="song", keep_key=True)
    assert plan.shift_semitones == 0


def test_auto_key_song_without_accompaniment_rounds_to_semitones() -> None:
    plan = plan_pitch(MALE_SONG, target=_range(56.6), auto_key=True, mode="song")
    assert plan.ideal_shift_semitones == pytest.approx(8.6, abs=0.01)
    assert plan.shift_semitones == 9


def test_auto_key_speech_is_exact() -> None:
    plan = plan_pitch(MALE_SONG, target=_range(56.6), auto_key=True, mode="speech")
    assert plan.shift_semitones == pytest.approx(8.6, abs=0.01)


def test_cap_moves_notes_outside_the_range_by_octaves() -> None:
    target = _range(50, span=4)  # D3 +- 4 semitones
    src = _track([50, 50, 62])  # one note an octave too high
    plan = plan_pitch(src, target=target, semitones=0, cap_to_range=True)
    assert plan.capped_frames == 30
    high = plan.target_f0[70:100]
    assert abs(np.median(cents(high, float(midi_to_hz(50))))) < 1


def test_smoothing_removes_a_one_frame_glitch() -> None:
    src = _track([57])
    f0 = src.f0.copy()
    f0[10] *= 2
    plan = plan_pitch(F0Track(f0, 0.01, "fcpe"), semitones=0, smooth_radius=2)
    assert abs(cents(plan.target_f0[10], float(midi_to_hz(57)))) < 1


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"semitones": 25}, "invalid_pitch_shift"),
        ({"semitones": float("nan")}, "invalid_pitch_shift"),
        ({"semitones": 2, "auto_key": True, "target": _range(60)}, "invalid_parameter"),
        ({"auto_key": True}, "invalid_parameter"),
        ({"smooth_radius": 99}, "invalid_parameter"),
    ],
)
def test_bad_parameters(kwargs: dict[str, object], code: str) -> None:
    with pytest.raises(ParameterError) as err:
        plan_pitch(MALE_SONG, **kwargs)  # type: ignore[arg-type]
    assert err.value.code == code


def test_auto_key_needs_a_voice() -> None:
    with pytest.raises(AudioError) as err:
        plan_pitch(F0Track(np.zeros(100, np.float32), 0.01, "fcpe"), target=_range(60), auto_key=True)
    assert err.value.code == "no_voiced_audio"
