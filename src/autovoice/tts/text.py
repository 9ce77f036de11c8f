"""Text preparation for speech synthesis: validation, normalisation and sentence splitting.

Numbers, dates and abbreviations are *not* expanded here: Piper's phonemizer (espeak-ng) already reads
``3.14``, ``$5`` or ``Dr.`` correctly. This module only makes the text safe and splits it into the units
that are synthesised (and streamed) one by one.
"""

from __future__ import annotations

import re
import unicodedata

from autovoice.errors import ParameterError

#: Default limit on the length of one text, in characters (after normalisation).
DEFAULT_MAX_CHARS = 5000
#: Longest piece handed to the synthesiser at once; longer sentences are cut at a clause or word break so
#: that memory and the latency of a streamed chunk stay bounded.
MAX_SENTENCE_CHARS = 400

# Line and paragraph separators, unified to "\n" (a paragraph separator counts as a blank line).
_NEWLINES = re.compile(r"\r\n?|[\u2028\u0085]")
# Invisible characters that only confuse the phonemizer: C0/C1 controls other than whitespace, soft
# hyphen, zero-width space, direction marks and embeddings, word joiners, BOM. ZWJ/ZWNJ (U+200C/D) are
# kept: they are part of the spelling of Persian, Indic scripts and emoji.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\u00ad\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)
_HSPACE = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n[ \n]*\n")
_LINE_BREAK = re.compile(r" ?\n ?(.)")

# Sentence ends: terminal punctuation plus the closing quotes/brackets that belong to the sentence, then
# whitespace or the end of the text. CJK full stops need no space after them.
_SENTENCE_END = re.compile(
    r"""(?P<end>[.!?…‽؟।॥։።]+)(?P<close>["'”’»)\]]*)(?=\s|$)"""
    r"""|(?P<cjk>[。！？｡]+[」』”’）)]*)"""
)
# Words after which a single "." does not end a sentence (compared lowercased, without the dot). Kept
# to titles and Latin shorthands that almost never end a sentence ("etc.", "Inc.", "no." often do).
_ABBREVIATIONS = frozenset(
    {
        "mr", "mrs", "ms", "mx", "dr", "prof", "st", "mt", "ft", "capt", "gen", "lt", "col", "sgt",
        "rev", "hon", "gov", "sen", "pres", "e.g", "i.e", "cf", "vs", "viz", "approx", "fig", "figs",
        "vol", "vols", "pp", "ca", "dept", "z.b", "bzw", "nr", "mme", "mlle",
    }
)  # fmt: skip
_OPENERS = "\"'“‘«([¿¡"
_CLAUSE_BREAK = re.compile(r"[,;:—–](?= )")


def prepare_text(text: str, *, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """Validate and normalise text for synthesis.

    Unicode is composed (NFC); control and invisible formatting characters are removed; runs of spaces
    and tabs become one space; blank lines and line breaks become a single ``"\\n"`` (a sentence break),
    except a break before a lowercase letter (hard-wrapped text), which becomes a space.

    Parameters
    ----------
    text
        The text to speak.
    max_chars
        Largest accepted length in characters, counted after normalisation (``>= 1``).

    Returns
    -------
    str
        The normalised text, stripped, never empty.

    Raises
    ------
    ParameterError
        ``invalid_parameter`` when ``text`` is not a string; ``empty_text`` when nothing but whitespace
        or invisible characters is left; ``text_too_long`` when it exceeds ``max_chars``.
    """
    if not isinstance(text, str):
        raise ParameterError(
            "invalid_parameter",
            f"The text must be a string, not {type(text).__name__}.",
            {"parameter": "text", "type": type(text).__name__},
        )
    t = unicodedata.normalize("NFC", text)
    t = _NEWLINES.sub("\n", t).replace("\u2029", "\n\n")
    t = _INVISIBLE.sub("", t)
    t = _HSPACE.sub(" ", t)
    t = "\n".join(p for p in map(_join_wrapped_lines, _BLANK_LINES.split(t)) if p)
    if not t:
        raise ParameterError(
            "empty_text", "The text is empty or contains only whitespace; give some words to speak.", {}
        )
    if len(t) > max_chars:
        raise ParameterError(
            "text_too_long",
            f"The text has {len(t)} characters; the limit is {max_chars} (AUTOVOICE_TTS_MAX_CHARS). "
            "Split it into shorter requests or raise the limit.",
            {"chars": len(t), "max_chars": max_chars},
        )
    return t


def _join_wrapped_lines(paragraph: str) -> str:
    """Keep the line breaks of a paragraph, except before a lowercase letter (hard-wrapped text)."""
    return _LINE_BREAK.sub(
        lambda m: (" " if m.group(1).islower() else "\n") + m.group(1), paragraph.strip(" \n")
    )


def _ends_sentence(text: str, match: re.Match[str]) -> bool:
    """Whether the terminal punctuation in ``match`` really ends a sentence."""
    if match.group("cjk"):
        return True
    rest = text[match.end() :].lstrip(" ")
    if not rest:
        return True
    if rest.lstrip(_OPENERS)[:1].islower():
        # "e.g. apples", "Wait... what?", '"Hi!" she said': the sentence goes on.
        return False
    end = match.group("end")
    if end != ".":
        return True
    # A single period: is the word before it an abbreviation or an initial ("Dr. Smith", "J. R. R.")?
    start = text.rfind(" ", 0, match.start()) + 1
    word = text[start : match.start()].lstrip(_OPENERS)
    if len(word) == 1 and word.isalpha():
        return False
    return word.lower() not in _ABBREVIATIONS


def _cut_long(sentence: str, max_chars: int) -> list[str]:
    """Cut a sentence longer than ``max_chars`` at clause breaks, else word breaks, else anywhere."""
    pieces: list[str] = []
    rest = sentence
    while len(rest) > max_chars:
        window = rest[: max_chars + 1]
        clause = [m.end() for m in _CLAUSE_BREAK.finditer(window) if m.end() <= max_chars]
        # Prefer a clause break in the second half of the window, so pieces do not get tiny.
        cut = clause[-1] if clause and clause[-1] > max_chars // 2 else window.rfind(" ")
        if cut <= 0:
            cut = max_chars
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    if rest:
        pieces.append(rest)
    return pieces


def split_sentences(text: str, *, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Split text into sentences, the units that are synthesised and streamed one at a time.

    A sentence ends at ``. ! ? …`` (and their equivalents in other scripts) followed by whitespace, with
    any closing quotes or brackets, at a CJK full stop, and at a line break. It does not end at a period
    inside a number (``3.14``), after a common abbreviation or an initial (``Dr. Smith``, ``e.g. Paris``,
    ``J. R. R. Tolkien``), or when the next word starts with a lowercase letter (``etc. and``,
    ``Wait... what``). Sentences longer than ``max_chars`` are cut at a clause break (``, ; : —``) or
    between words.

    Parameters
    ----------
    text
        Normalised text (see :func:`prepare_text`).
    max_chars
        Longest piece returned, in characters (``>= 1``).

    Returns
    -------
    list of str
        Stripped, non-empty sentences in order; ``" ".join(...)`` gives back the text up to whitespace.
        Splitting a returned sentence again returns it unchanged.
    """
    sentences: list[str] = []
    for line in text.split("\n"):
        start = 0
        for match in _SENTENCE_END.finditer(line):
            if _ends_sentence(line, match):
                sentences.extend(_cut_long(line[start : match.end()].strip(), max_chars))
                start = match.end()
        sentences.extend(_cut_long(line[start:].strip(), max_chars))
    return [s for s in sentences if s]
