"""The voice-alone check of ``separation=auto``: known answers on generated signals and the shared
recordings, and ``separate`` skipping separation for a voice alone (and saying why)."""

from __future__ import annotations

import numpy as np
import pytest

from autovoice.separation import SeparationChoice, Stems, separate, voice_alone
from autovoice.separation.detect import MAX_FLOOR_DB, MIN_PAUSES_PER_S, MIN_PERIODICITY
from tests.support import SONG, SPEECH, speaker_files

SR = 16_000


def _tone(f0: float, seconds: float, *, sr: int = SR, glide: float = 0.0) -> np.ndarray:
    """A harmonic tone whose pitch moves by ``glide`` semitones over its length, with 10 ms ramps."""
    t = np.arange(int(seconds * sr)) / sr
    f = f0 * 2 ** (glide * t / max(seconds, 1e-9) / 12)
    phase = 2 * np.pi * np.cumsum(f) / sr
    y = sum((0.5 / h) * np.sin(h * phase) for h in range(1, 10))
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
    return np.asarray(0.3 * ramp * y, dtype=np.float32)


def spoken(seconds: float = 8.0, *, seed: int = 0, noise_db: float = -60.0) -> np.ndarray:
    """Speech-like: gliding syllables of 120-300 ms, 40-120 ms gaps inside words, 300-600 ms pauses
    every few syllables, over a noise floor ``noise_db`` below full scale."""
    rng = np.random.default_rng(seed)
    parts: list[np.ndarray] = []
    n = 0
    while sum(len(p) for p in parts) < seconds * SR:
        parts.append(_tone(float(rng.uniform(100, 160)), float(rng.uniform(0.12, 0.3)), glide=-2.0))
        n += 1
        gap = rng.uniform(0.3, 0.6) if n % 4 == 0 else rng.uniform(0.04, 0.12)
        parts.append(np.zeros(int(gap * SR), dtype=np.float32))
    y = np.concatenate(parts)[: int(seconds * SR)]
    return (y + rng.standard_normal(len(y)).astype(np.float32) * 10 ** (noise_db / 20)).astype(np.float32)


def music(seconds: float = 8.0, *, seed: int = 1) -> np.ndarray:
    """A band: sustained three-note chords of 0.5-1 s, one after another, and a noise hit every beat."""
    rng = np.random.default_rng(seed)
    parts: list[np.ndarray] = []
    while sum(len(p) for p in parts) < seconds * SR:
        root = float(rng.uniform(110, 220))
        dur = float(rng.uniform(0.5, 1.0))
        parts.append(sum(_tone(root * r, dur) for r in (1.0, 1.26, 1.5)) / 3)
    y = np.concatenate(parts)[: int(seconds * SR)]
    beat = int(0.5 * SR)
    hit = rng.standard_normal(int(0.08 * SR)) * np.exp(-np.arange(int(0.08 * SR)) / (0.02 * SR))
    for start in range(0, len(y) - len(hit), beat):
        y[start : start + len(hit)] += 0.15 * hit.astype(np.float32)
    return y.astype(np.float32)


def test_speech_like_voice_is_alone_and_says_why() -> None:
    check = voice_alone(spoken(), sr=SR)
    assert check.alone
    assert check.pauses_per_s >= MIN_PAUSES_PER_S
    assert check.floor_db <= MAX_FLOOR_DB
    assert check.reason.startswith("a voice alone, quiet between words")
    assert check.to_dict()["voice_alone"] is True


@pytest.mark.parametrize("channels", [1, 2])
def test_music_is_not_alone(channels: int) -> None:
    y = music()
    check = voice_alone(np.stack([y, 0.8 * y]) if channels == 2 else y, sr=SR)
    assert not check.alone
    assert "music likely" in check.reason


def legato(seconds: float = 8.0, *, seed: int = 2) -> np.ndarray:
    """A sung line: held notes of 0.4-0.9 s with 5.5 Hz vibrato, joined legato, a 0.5 s breath every
    four notes (too few pauses to pass for speech, but quiet between phrases)."""
    rng = np.random.default_rng(seed)
    parts: list[np.ndarray] = []
    n = 0
    while sum(len(p) for p in parts) < seconds * SR:
        dur = float(rng.uniform(0.4, 0.9))
        t = np.arange(int(dur * SR)) / SR
        f = 220.0 * 2 ** (int(rng.integers(-5, 8)) / 12) * 2 ** (25 / 1200 * np.sin(2 * np.pi * 5.5 * t))
        phase = 2 * np.pi * np.cumsum(f) / SR
        parts.append((0.3 * sum((0.5 / h) * np.sin(h * phase) for h in range(1, 10))).astype(np.float32))
        n += 1
        if n % 4 == 0:
            parts.append(np.zeros(int(0.5 * SR), dtype=np.float32))
    y = np.concatenate(parts)[: int(seconds * SR)]
    return (y + rng.standard_normal(len(y)).astype(np.float32) * 1e-3).astype(np.float32)


def test_a_legato_sung_line_is_alone_by_its_single_pitch() -> None:
    check = voice_alone(legato(), sr=SR)
    assert not check.pauses_like_speech
    assert check.periodicity >= MIN_PERIODICITY
    assert check.alone
    assert "one pitch at a time" in check.reason


def test_a_sung_line_over_music_is_not_alone() -> None:
    check = voice_alone(legato() + 0.5 * music(), sr=SR)
    assert not check.alone


def test_voice_over_music_is_not_alone() -> None:
    y = spoken() + 0.7 * music()
    assert not voice_alone(y, sr=SR).alone


def test_a_break_in_the_music_is_not_a_voice() -> None:
    """A silent fifth of a mix makes its quiet frames very quiet, but it is one pause, not speech's many."""
    y = spoken() + 0.7 * music()
    y[len(y) // 3 : len(y) // 3 + len(y) // 5] = 0.0
    check = voice_alone(y, sr=SR)
    assert check.floor_db < -60
    assert not check.alone


def test_silence_around_a_mix_does_not_count() -> None:
    """Leading and trailing silence is outside the active span: no pauses, no floor from it."""
    pad = np.zeros(3 * SR, dtype=np.float32)
    y = np.concatenate([pad, music(), pad])
    check = voice_alone(y, sr=SR)
    assert not check.alone
    assert check.active_s == pytest.approx(8.0, abs=0.1)


def test_voice_with_a_noise_floor_still_alone() -> None:
    assert voice_alone(spoken(noise_db=-45.0), sr=SR).alone


def test_too_short_to_judge_is_not_alone() -> None:
    assert not voice_alone(spoken(0.03), sr=SR).alone
    assert voice_alone(np.zeros(10, dtype=np.float32), sr=SR).active_s == 0.0


def test_separate_auto_skips_a_voice_alone() -> None:
    y = spoken()
    stems = separate(y, sr=SR, method="auto")
    assert stems.method == "none"
    assert stems.accompaniment is None
    assert stems.vocals is y  # untouched: not degraded, no copy
    assert isinstance(stems.choice, SeparationChoice)
    doc = stems.choice.to_dict()
    assert doc["used"] == "none"
    assert doc["decided_by"] == "auto"
    assert doc["voice_alone"] is True
    assert doc["reason"].startswith("skipped: a voice alone")


def test_separate_auto_separates_music_and_says_why() -> None:
    y = spoken() + 0.7 * music()
    stems = separate(y, sr=SR, method="auto")
    assert stems.method in ("spleeter", "demucs")
    assert stems.accompaniment is not None
    assert stems.choice is not None
    doc = stems.choice.to_dict()
    assert doc["used"] == stems.method
    assert doc["decided_by"] == "auto"
    assert doc["voice_alone"] is False
    assert "music likely" in doc["reason"]


@pytest.mark.parametrize("method", ["none", "spleeter"])
def test_a_method_asked_by_name_is_not_second_guessed(method: str) -> None:
    y = spoken(3.0)
    stems = separate(y, sr=SR, method=method)  # type: ignore[arg-type]
    assert stems.method == method
    assert stems.choice == SeparationChoice(asked=method, used=method)  # type: ignore[arg-type]
    assert stems.choice.to_dict() == {
        "used": method,
        "decided_by": "option",
        "reason": f"the separation option says {method}",
    }
    assert isinstance(stems, Stems)


@pytest.mark.shared_data
def test_recordings_speech_alone_and_the_song_not() -> None:
    """Real recordings: LibriSpeech utterances are voices alone; the shared song (a band under a singer)
    is not, in any 10 s stretch; the speech under the song's music is not either."""
    from autovoice.audio import load, resample

    if not SPEECH.is_dir() or not SONG.is_file():
        pytest.skip(f"shared recordings not found at {SPEECH.parent.parent}")
    speech = [load(f, mono=True)[0] for f in speaker_files("1688")[:3] + speaker_files("367")[:3]]
    assert all(voice_alone(y, sr=SR).alone for y in speech)
    song, sr = load(SONG)
    n = 10 * sr
    assert not any(voice_alone(song[:, i : i + n], sr=sr).alone for i in range(0, song.shape[1] - n, n))
    band = resample(song[:, 30 * sr : 45 * sr].mean(axis=0), orig_sr=sr, target_sr=SR)
    under = speech[0] + band[: len(speech[0])]
    assert not voice_alone(under, sr=SR).alone
