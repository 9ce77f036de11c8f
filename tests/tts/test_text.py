"""Text preparation and sentence splitting for TTS."""

from __future__ import annotations

from typing import Any

import pytest

from autovoice.errors import ParameterError
from autovoice.tts.text import DEFAULT_MAX_CHARS, prepare_text, split_sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, world!", ["Hello, world!"]),
        ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
        ("Dr. Smith went home. He was tired!", ["Dr. Smith went home.", "He was tired!"]),
        ("Mr. and Mrs. Jones came. Then left.", ["Mr. and Mrs. Jones came.", "Then left."]),
        ("Use e.g. Paris. Or i.e. London.", ["Use e.g. Paris.", "Or i.e. London."]),
        ("Pi is 3.14 exactly. It costs $3.50.", ["Pi is 3.14 exactly.", "It costs $3.50."]),
        ("J. R. R. Tolkien wrote it. OK.", ["J. R. R. Tolkien wrote it.", "OK."]),
        ("Apples, pears, etc. are fruit. Yes.", ["Apples, pears, etc. are fruit.", "Yes."]),
        ("Wait... what? Yes: no; maybe", ["Wait... what?", "Yes: no; maybe"]),
        ("Wait... Then go.", ["Wait...", "Then go."]),
        ('"Hello!" she said. "Bye." He left.', ['"Hello!" she said.', '"Bye."', "He left."]),
        ("He said (really!) so. Fine.", ["He said (really!) so.", "Fine."]),
        ("Really?! Yes.", ["Really?!", "Yes."]),
        ("Chapter one\nIt was dark.", ["Chapter one", "It was dark."]),
        ("你好。我很好！谢谢", ["你好。", "我很好！", "谢谢"]),
        ("क्या हाल है? ठीक है।", ["क्या हाल है?", "ठीक है।"]),
        ("version1.2.3 is out", ["version1.2.3 is out"]),
        ("", []),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Dr. Smith went home. He was tired! Was he? Yes... he was.",
        "word " * 300,
        "a, " * 400,
        "x" * 1000,
        "One.\nTwo, three; four: five. Six",
    ],
)
def test_split_sentences_is_idempotent_and_lossless(text: str) -> None:
    sentences = split_sentences(prepare_text(text), max_chars=100)
    assert all(0 < len(s) <= 100 for s in sentences)
    assert "".join(sentences).replace(" ", "") == prepare_text(text).replace(" ", "").replace("\n", "")
    for s in sentences:
        assert split_sentences(s, max_chars=100) == [s]


def test_long_sentence_cut_at_clause_break() -> None:
    text = ("alpha " * 12).strip() + ", " + ("beta " * 12).strip() + "."
    assert split_sentences(text, max_chars=120) == [
        ("alpha " * 12).strip() + ",",
        ("beta " * 12).strip() + ".",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Hello  world  ", "Hello world"),
        ("tab\tand\u00a0nbsp", "tab and nbsp"),
        ("zero\u200bwidth soft\u00adhyphen \ufeffbom nul\x00l", "zerowidth softhyphen bom null"),
        ("keep\u200cZWNJ", "keep\u200cZWNJ"),
        ("line one\r\nLine two", "line one\nLine two"),
        ("hard wrapped\nsentence goes on", "hard wrapped sentence goes on"),
        ("para one\n\n\n  para two", "para one\npara two"),
        ("a\u2029b", "a\nb"),
        ("e\u0301", "é"),  # composed (NFC)
    ],
)
def test_prepare_text_normalises(text: str, expected: str) -> None:
    assert prepare_text(text) == expected


def test_prepare_text_limit_is_inclusive() -> None:
    assert len(prepare_text("a" * 10, max_chars=10)) == 10
    assert len(prepare_text("a" * DEFAULT_MAX_CHARS)) == DEFAULT_MAX_CHARS
    # The limit counts normalised characters: collapsed whitespace does not count.
    assert prepare_text("a" + " " * 50 + "b", max_chars=3) == "a b"


@pytest.mark.parametrize(
    ("text", "kwargs", "code"),
    [
        ("", {}, "empty_text"),
        ("   \n\t  ", {}, "empty_text"),
        ("\u200b\ufeff\x00", {}, "empty_text"),
        ("a" * (DEFAULT_MAX_CHARS + 1), {}, "text_too_long"),
        ("hello world", {"max_chars": 5}, "text_too_long"),
        (None, {}, "invalid_parameter"),
        (b"bytes", {}, "invalid_parameter"),
    ],
)
def test_prepare_text_rejects(text: Any, kwargs: dict[str, Any], code: str) -> None:
    with pytest.raises(ParameterError) as err:
        prepare_text(text, **kwargs)
    assert err.value.code == code
    assert err.value.http_status == 422


def test_too_long_says_the_limit() -> None:
    with pytest.raises(ParameterError) as err:
        prepare_text("a" * 20, max_chars=10)
    assert err.value.details == {"chars": 20, "max_chars": 10}
    assert "10" in err.value.message
