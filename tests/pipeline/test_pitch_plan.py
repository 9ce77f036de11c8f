from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from autovoice.analysis import F0Track, VocalRange, cents, hz_to_midi, midi_to_hz
from autovoice.analysis.vocal_range import SPEECH_TO_SINGING_SEMITONES
from autovoice.errors import AudioError, ParameterError
from autovoice.pipeline import plan_pitch
from autovoice.pipeline.pitch_plan import (
    BAND_MIN_DB,
    CONTENT_MARGIN,
    MOVE_MARGIN,
    PHRASE_GAP_S,
    decide_content,
    octave_decisions,
)
from tests.support import SONG


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

SYLLABLE, SYLLABLE_GAP, PHRASE_GAP = 15, 8, 60  # frames of 10 ms: 150 ms syllables, 80 ms / 600 ms gaps


def _phrases(phrases: list[list[float]]) -> F0Track:
    """Phrases of syllables (one MIDI note each), 80 ms apart inside a phrase and 600 ms between."""
    parts: list[np.ndarray] = []
    for p, notes in enumerate(phrases):
        if p:
            parts.append(np.zeros(PHRASE_GAP - SYLLABLE_GAP))
        for note in notes:
            parts += [np.full(SYLLABLE, float(midi_to_hz(note))), np.zeros(SYLLABLE_GAP)]
    return F0Track(np.concatenate(parts).astype(np.float32), 0.01, "fcpe")


def _phrase_offsets(track: F0Track, planned: np.ndarray) -> list[float]:
    """The octave move (cents, to the nearest cent) of each syllable, in order."""
    edges = np.diff(np.concatenate([[0], track.voiced.astype(np.int8), [0]]))
    out = []
    for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        c = cents(planned[s:e], track.f0[s:e])
        assert np.ptp(c) < 0.01  # one move per syllable at most
        out.append(round(float(c[0])))
    return out


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


def test_cap_moves_a_phrase_outside_the_range_by_an_octave() -> None:
    target = _range(50, span=4)  # D3 +- 4 semitones
    src = _track([50, 50, 62], frames_per_note=30)
    src = F0Track(
        np.concatenate([src.f0[:35], np.zeros(50), src.f0[35:70], np.zeros(50), src.f0[70:]]), 0.01, "x"
    )
    plan = plan_pitch(src, target=target, semitones=0, cap_to_range=True)  # three phrases, 0.55 s apart
    assert plan.phrases == 3
    assert plan.capped_frames == 30
    high = plan.target_f0[170:200]
    assert abs(np.median(cents(high, float(midi_to_hz(50))))) < 1


def test_a_melody_wider_than_the_range_moves_no_syllable_alone() -> None:
    # One phrase of syllables from A#2 to F#4 (20 semitones) onto a range of D3..A#3 (median F#3):
    # the lowest syllables sit 8 below the range, the highest 8 above. The old per-syllable cap moved
    # those by octaves and broke the line; the phrase's median is inside, so nothing moves.
    melody = [46, 50, 54, 58, 62, 66, 62, 58, 54, 50, 46, 54]
    src = _phrases([melody])
    target = _range(54, span=4)
    plan = plan_pitch(src, target=target, semitones=0, cap_to_range=True)
    assert plan.phrases == 1
    assert plan.phrases_moved == 0
    assert plan.capped_frames == 0
    assert _phrase_offsets(src, plan.target_f0) == [0] * len(melody)


def test_a_phrase_far_outside_moves_by_exactly_one_octave_as_a_whole() -> None:
    # Three phrases; the middle one is an octave up (median 66, 12 above the range's top 62 after the
    # global shift) and itself spans 9 semitones. It moves down 12 semitones, every syllable alike.
    low, high = [50, 53, 55, 52], [62, 66, 71, 67, 64]
    src = _phrases([low, high, low])
    target = _range(54, span=8)
    plan = plan_pitch(src, target=target, semitones=0, cap_to_range=True)
    assert plan.phrases == 3
    assert _phrase_offsets(src, plan.target_f0) == [0] * 4 + [-1200] * 5 + [0] * 4
    assert plan.phrases_moved == 1
    assert plan.octave_moves[0].semitones == -12
    assert plan.capped_frames == 5 * SYLLABLE
    assert plan.moved_share == pytest.approx(5 / 13)
    # The same phrase alone, only 2 semitones over the top edge (median 64): not clearly outside.
    plan = plan_pitch(
        _phrases([low, [n - 2 for n in high], low]), target=target, semitones=0, cap_to_range=True
    )
    assert plan.phrases_moved == 0


def test_auto_key_and_cap_a_wide_male_speaker_onto_a_narrow_range() -> None:
    # Auto key moves the medians together (46 -> 56: +10); the phrase of high excitement, 14 semitones
    # over the rest, lands 10.5 semitones above the target's top (59) and moves down an octave whole.
    calm, excited = [45, 47, 43, 46, 44], [59, 61, 57, 60]
    src = _phrases([calm, calm, excited, calm])
    plan = plan_pitch(src, target=_range(56, span=3), auto_key=True, mode="speech", cap_to_range=True)
    assert plan.shift_semitones == pytest.approx(10, abs=0.01)
    assert plan.ideal_shift_semitones == pytest.approx(plan.shift_semitones)
    offsets = np.array(_phrase_offsets(src, plan.target_f0))
    np.testing.assert_allclose(offsets, [1000] * 10 + [-200] * 4 + [1000] * 5, atol=1)


@pytest.mark.parametrize(
    ("medians", "expected"),
    [
        # Inside or just over the top edge (62): nothing moves.
        ([60.0, 63.0, 64.5, 61.0], [0, 0, 0, 0]),
        # Clearly over (> 3 above): moves; then hovering 1.5..3.5 over keeps the move; back inside returns.
        ([65.5, 64.0, 65.5, 63.5, 65.5, 58.0, 64.0], [-1, -1, -1, -1, -1, 0, 0]),
        # Clearly under the bottom edge (54): moves up.
        ([50.0, 52.0, 57.0], [1, 1, 0]),
        # Two octaves over: moves two.
        ([88.0], [-2]),
    ],
)
def test_octave_decisions_have_hysteresis(medians: list[float], expected: list[int]) -> None:
    assert octave_decisions(medians, lowest_midi=54, highest_midi=62) == expected


def test_phrases_hovering_at_the_edge_do_not_flap() -> None:
    # Phrases alternating 3.5 and 2 semitones over the top edge (62): the first moves down, and the
    # rest keep that decision; the last, back at the median, returns. Without hysteresis (return
    # margin = move margin) every other phrase flips.
    notes = [65.5, 64.0] * 4 + [58.0]
    src = _phrases([[m - 1, m + 1, m, m] for m in notes])
    target = _range(58, span=4)
    plan = plan_pitch(src, target=target, semitones=0, cap_to_range=True)
    per_phrase = _phrase_offsets(src, plan.target_f0)[::4]
    assert per_phrase == [-1200] * 8 + [0]
    assert len(plan.octave_moves) == 8
    flappy = plan_pitch(src, target=target, semitones=0, cap_to_range=True, return_margin=MOVE_MARGIN)
    assert _phrase_offsets(src, flappy.target_f0)[::4] == [-1200, 0] * 4 + [0]


def test_phrases_join_across_short_gaps_only() -> None:
    gap = int(PHRASE_GAP_S / 0.01)
    f = float(midi_to_hz(57))
    f0 = np.concatenate([np.full(20, f), np.zeros(gap - 1), np.full(20, f), np.zeros(gap), np.full(20, f)])
    plan = plan_pitch(
        F0Track(f0.astype(np.float32), 0.01, "x"), target=_range(57), semitones=0, cap_to_range=True
    )
    assert plan.phrases == 2


def test_manual_shift_is_not_capped_unless_asked() -> None:
    src = _phrases([[50, 53, 55, 52], [62, 66, 71, 67, 64]])
    plan = plan_pitch(src, target=_range(54, span=8), semitones=-3)
    v = src.voiced
    np.testing.assert_allclose(cents(plan.target_f0[v], src.f0[v]), -300, atol=0.01)
    assert plan.phrases == plan.phrases_moved == plan.capped_frames == 0
    assert plan.shift_semitones == -3
    assert plan.ideal_shift_semitones == pytest.approx(54 - np.median([50, 53, 55, 52, 62, 66, 71, 67, 64]))


def test_speech_mode_keeps_the_exact_shift_with_the_cap() -> None:
    src = _phrases([[45.3, 47.3, 46.3], [46.3, 44.3, 46.3]])
    plan = plan_pitch(src, target=_range(56.6), auto_key=True, mode="speech", cap_to_range=True)
    assert plan.shift_semitones == pytest.approx(10.3, abs=0.01)
    assert plan.phrases_moved == 0
    v = src.voiced
    np.testing.assert_allclose(cents(plan.target_f0[v], src.f0[v]), 1030, atol=0.1)


def test_report_fields() -> None:
    src = _phrases([[50, 53, 55, 52], [62, 66, 71, 67, 64], [50, 53, 55, 52]])
    # Source median 55 -> target 57: +2; the middle phrase (median 66 + 2) is 5 over the top (63).
    plan = plan_pitch(src, target=_range(57, span=6), auto_key=True, mode="song", cap_to_range=True)
    d = plan.to_dict()
    assert d == {
        "shift_semitones": 2.0,
        "auto_key": True,
        "ideal_shift_semitones": 2.0,
        "capped_frames": 5 * SYLLABLE,
        "phrases": 3,
        "phrases_moved": 1,
        "moved_share": round(5 / 13, 4),
        "octave_moves": [{"start_s": 1.44, "end_s": 2.51, "semitones": -12.0}],
    }


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
        ({"phrase_gap_s": -0.1}, "invalid_parameter"),
        ({"phrase_gap_s": 5.0}, "invalid_parameter"),
        ({"move_margin": -1.0}, "invalid_parameter"),
        ({"move_margin": 2.0, "return_margin": 3.0}, "invalid_parameter"),
        ({"cap_to_range": True}, "invalid_parameter"),
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


def _spoken_range(median_midi: float) -> VocalRange:
    """A speaking range (style ``spoken``), 4 semitones either side of its median."""
    return replace(_range(median_midi, span=4.0), style="spoken")


FEMALE_SINGER = _track([60, 62, 64, 62, 67, 65, 64, 62])  # C4..G4, median D#4 (63, 311 Hz), like the song
MALE_SINGER = _track([48, 50, 52, 50, 55, 53, 52, 50])  # an octave lower


def test_a_song_is_planned_against_the_speaking_profiles_singing_range() -> None:
    female_speech = _spoken_range(53.0)  # F3, 175 Hz: the median of speaker 3080, who reads
    male_speech = _spoken_range(46.0)  # A#2, 117 Hz
    # With accompaniment (whole octaves): a same-sex singer keeps the song's key, a cross-sex one moves.
    keep = {"auto_key": True, "mode": "song", "keep_key": True}
    assert plan_pitch(FEMALE_SINGER, target=female_speech, **keep).shift_semitones == 0  # was -12
    assert plan_pitch(MALE_SINGER, target=female_speech, **keep).shift_semitones == 12
    assert plan_pitch(MALE_SINGER, target=male_speech, **keep).shift_semitones == 0
    assert plan_pitch(FEMALE_SINGER, target=male_speech, **keep).shift_semitones == -12
    # A bare vocal aims at the singing median (53 + 5.3 semitones), not the speaking one.
    bare = plan_pitch(FEMALE_SINGER, target=female_speech, auto_key=True, mode="song")
    assert bare.ideal_shift_semitones == pytest.approx(53.0 + SPEECH_TO_SINGING_SEMITONES - 63.0, abs=0.01)
    assert bare.shift_semitones == -5
    # Speech is converted to the speaking median, as before.
    speech = plan_pitch(FEMALE_SINGER, target=female_speech, auto_key=True, mode="speech")
    assert speech.shift_semitones == pytest.approx(53.0 - 63.0, abs=0.01)


def test_the_shared_song_stays_in_key_for_a_female_speaking_profile(speech_dir: Path) -> None:
    """30 s of the shared song (female singer, median ~293 Hz), separated, into a profile of speaker
    3080's read speech (median ~178 Hz): auto key keeps it in the song's key (it used to drop an octave)."""
    from autovoice.audio import load
    from autovoice.pipeline import ConversionOptions, convert_audio
    from autovoice.pipeline.enroll import build_profile

    if not SONG.is_file():
        pytest.skip(f"shared song not found at {SONG}")
    profile = build_profile(sorted((speech_dir / "3080").glob("*.flac"))[:5], name="reader")
    assert profile.vocal_range is not None
    assert profile.vocal_range.style == "spoken"
    y, sr = load(SONG)
    excerpt = y[:, 30 * sr : 60 * sr]
    opts = ConversionOptions.parse(auto_key=True, separation="spleeter", metrics="off", preset="fast")
    res = convert_audio(excerpt, sr=sr, profile=profile, options=opts)
    assert res.plan.shift_semitones == 0
    assert res.plan.ideal_shift_semitones is not None
    assert abs(res.plan.ideal_shift_semitones) < 6  # was about -8.6 against the speaking median


# --- speech or song: the content decision -------------------------------------------------------------


def _sung(notes: list[float], *, note_s: float = 0.4, vibrato_cents: float = 20.0) -> np.ndarray:
    """Held notes with 5.5 Hz vibrato and 50 ms breaths: F0 per 10 ms frame."""
    t = np.arange(int(note_s * 100)) / 100
    parts = []
    for m in notes:
        parts += [midi_to_hz(m) * 2 ** (vibrato_cents / 1200 * np.sin(2 * np.pi * 5.5 * t)), np.zeros(5)]
    return np.concatenate(parts)


def _glides(midis: list[float], *, syllable_s: float = 0.2, fall: float = 3.0) -> np.ndarray:
    """Spoken syllables: each falls by ``fall`` semitones over its length, 60 ms apart."""
    n = int(syllable_s * 100)
    parts = []
    for m in midis:
        parts += [midi_to_hz(m - fall * np.arange(n) / n), np.zeros(6)]
    return np.concatenate(parts)


def _f0(*parts: np.ndarray) -> F0Track:
    return F0Track(np.concatenate(parts).astype(np.float32), 0.01, "fcpe")


SUNG = _f0(_sung([57, 59, 60, 62, 64, 62, 60, 59] * 3))
SPOKEN = _f0(_glides([50, 48, 52, 49, 47, 51, 50, 46] * 6))
# About 0.6 steady: sung notes and spoken syllables in a ratio that lands near the classifier's boundary.
BORDERLINE = _f0(_sung([57, 59, 60, 62] * 4), _glides([50, 48, 52, 49] * 5))


def test_known_tracks_read_as_sung_spoken_and_borderline() -> None:
    from autovoice.analysis.vocal_range import SUNG_STEADY_SHARE, steady_share

    assert steady_share(SUNG) > SUNG_STEADY_SHARE + CONTENT_MARGIN
    assert steady_share(SPOKEN) < SUNG_STEADY_SHARE - CONTENT_MARGIN
    assert abs(steady_share(BORDERLINE) - SUNG_STEADY_SHARE) < CONTENT_MARGIN


@pytest.mark.parametrize("accompaniment", [False, True])
def test_content_auto_reads_the_input(accompaniment: bool) -> None:
    sung = decide_content(SUNG, accompaniment=accompaniment)
    assert (sung.used, sung.decided_by) == ("song", "auto")
    assert "holds on notes" in sung.reason
    spoken = decide_content(SPOKEN, accompaniment=accompaniment)
    assert (spoken.used, spoken.decided_by) == ("speech", "auto")
    assert "glides" in spoken.reason
    assert spoken.to_dict() == {
        "used": "speech",
        "decided_by": "auto",
        "steady_share": round(spoken.steady_share, 3),
        "accompaniment": accompaniment,
        "accompaniment_db": None,
        "reason": spoken.reason,
    }


def test_content_near_the_boundary_follows_what_a_mistake_costs() -> None:
    """Too close to call: with an accompaniment, a song (a song planned as speech would leave the band's
    key); without one, speech (speech planned as a song would aim a singing range too high)."""
    bare = decide_content(BORDERLINE, accompaniment=False)
    assert bare.used == "speech"
    assert "no accompaniment" in bare.reason
    with_band = decide_content(BORDERLINE, accompaniment=True)
    assert with_band.used == "song"
    assert "kept in key" in with_band.reason
    # A separated accompaniment counts when it is a band, not the residue separating a voice leaves.
    loud = decide_content(BORDERLINE, accompaniment=True, accompaniment_db=BAND_MIN_DB + 8)
    assert loud.used == "song"
    assert loud.to_dict()["accompaniment_db"] == BAND_MIN_DB + 8
    residue = decide_content(BORDERLINE, accompaniment=True, accompaniment_db=BAND_MIN_DB - 10)
    assert residue.used == "speech"
    assert "faint" in residue.reason
    # Far from the boundary the level does not matter.
    assert decide_content(SUNG, accompaniment=True, accompaniment_db=-40.0).used == "song"


@pytest.mark.parametrize("content", ["speech", "song"])
def test_content_option_overrides_the_input(content: str) -> None:
    for track in (SUNG, SPOKEN):
        d = decide_content(track, content=content, accompaniment=True)  # type: ignore[arg-type]
        assert (d.used, d.decided_by) == (content, "option")
        assert d.reason.startswith(f"the content option says {content}")


def test_speech_into_a_speaking_profile_moves_by_the_medians_difference() -> None:
    """The issue's case in miniature: a low male speaker (median ~D3) into a female speaking profile
    6.9 semitones up: planned as speech, the shift is the medians' difference, not an octave."""
    target = _spoken_range(float(np.median(hz_to_midi(SPOKEN.f0[SPOKEN.voiced]))) + 6.9)
    content = decide_content(SPOKEN, accompaniment=True)  # even with music under it
    plan = plan_pitch(SPOKEN, target=target, auto_key=True, mode=content.used, keep_key=True)
    assert plan.shift_semitones == pytest.approx(6.9, abs=0.01)
    as_song = plan_pitch(SPOKEN, target=target, auto_key=True, mode="song", keep_key=True)
    assert as_song.shift_semitones == 12  # what the singing-aware plan gave before the content decision
