"""The words check: what a recording says (Whisper base), and how far two transcripts are apart (CER).

A conversion must keep the words. :func:`transcribe` runs OpenAI's multilingual Whisper base (MIT; the
CTranslate2 conversion shipped in two PyPI packages, see :func:`autovoice.models.cache.load_whisper`) with
the language forced, and :func:`character_error_rate` compares the converted audio's transcript with the
source's. Comparing two transcripts by the same recogniser measures what the conversion changed, not how
good the recogniser is; a plain WORLD resynthesis of the source gives the floor (``bench/quality.py``).

Features are Whisper's own: an 80-bin log-mel spectrogram of 16 kHz audio (400-point FFT, 160-sample
hop, 30 s windows; :func:`autovoice.analysis.content.log_mel`). Decoding is deterministic (beam search,
no temperature fallback, no timestamps). Audio longer than 30 s is cut into windows at the quietest point
near each boundary; a window that is silent, or that Whisper judges to hold no speech, adds nothing.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from autovoice.analysis.content import HOP as _HOP
from autovoice.analysis.content import log_mel
from autovoice.audio import check_samples, resample, to_mono
from autovoice.errors import ParameterError, unknown_choice

#: Sample rate Whisper listens at, Hz.
WHISPER_SR = 16_000
#: Longest audio Whisper reads at once, seconds (shorter windows are padded with zeros).
WINDOW_SECONDS = 30
#: A window whose peak is below this level (dBFS) is silence and is not decoded.
SILENCE_PEAK_DBFS = -60.0
#: Whisper's no-speech probability above which a window with a low-confidence transcript adds nothing.
NO_SPEECH_PROBABILITY = 0.6
#: ... the low confidence: mean log-probability per token below this (faster-whisper's rule).
LOW_LOGPROB = -1.0
#: Beam width of the decoder (Whisper's default for deterministic decoding).
BEAM_SIZE = 5
#: Languages written without spaces between words: their CER is on characters with all spaces removed.
UNSPACED_LANGUAGES = frozenset({"zh", "ja", "yue", "th", "lo", "my", "bo"})

_N_SAMPLES = WINDOW_SECONDS * WHISPER_SR
#: Where a cut between windows may move to reach a quiet point, seconds either side.
_CUT_SEARCH_SECONDS = 1.0
#: Upper bound of tokens per second of audio, so a decoder caught in a loop stops early.
_TOKENS_PER_SECOND = 12
_EOT = "<|endoftext|>"


def transcribe(y: np.ndarray, *, sr: int, language: str, device: str = "cpu") -> str:
    """What is said in a recording, as text (Whisper base, the language forced).

    Parameters
    ----------
    y
        ``(samples,)`` or ``(channels, samples)`` float audio in -1..1 (channels are averaged).
    sr
        Sample rate of ``y`` in Hz (resampled to 16 kHz here).
    language
        The spoken language as a Whisper language code (``"en"``, ``"de"``, ``"zh"``, ...; 99 codes).
        It is forced: Whisper does not detect it.
    device
        ``"cpu"`` or ``"cuda:N"``.

    Returns
    -------
    str
        The transcript, stripped; ``""`` when no speech was found (silence, or Whisper's no-speech rule).

    Raises
    ------
    ParameterError
        ``invalid_parameter`` for a non-positive ``sr``; ``unknown_language`` for a language Whisper does
        not know (the message lists the codes).
    AudioError
        ``audio_empty``, ``audio_invalid_samples`` or ``invalid_audio_shape`` for unusable audio.
    ModelUnavailableError
        ``model_unavailable`` when ``ctranslate2`` or the Whisper packages are not installed (the message
        says how to install them); ``weights_corrupt`` when a model file fails its hash check.
    """
    if sr <= 0:
        raise ParameterError("invalid_parameter", f"sr must be a positive sample rate in Hz, got {sr}.")
    x = check_samples(np.asarray(y))
    tokens = _tokens()
    lang = str(language).strip().lower()
    if lang not in tokens.languages:
        raise unknown_choice("unknown_language", "language", language, sorted(tokens.languages))
    x = np.clip(resample(to_mono(x.astype(np.float32, copy=False)), orig_sr=sr, target_sr=WHISPER_SR), -1, 1)
    windows = [w for w in split_windows(x) if _peak_dbfs(w) >= SILENCE_PEAK_DBFS]
    if not windows:
        return ""

    import ctranslate2

    from autovoice.models.cache import load_whisper

    model = load_whisper(device)
    features = np.stack([log_mel(w) for w in windows])
    prompt = [tokens.sot, tokens.languages[lang], tokens.transcribe, tokens.no_timestamps]
    longest = max(w.size for w in windows) / WHISPER_SR
    results = model.generate(
        ctranslate2.StorageView.from_array(features),
        [prompt] * len(windows),
        beam_size=BEAM_SIZE,
        max_length=min(448, len(prompt) + int(_TOKENS_PER_SECOND * longest) + 16),
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=True,
    )
    texts = []
    for res in results:
        ids = [t for t in res.sequences_ids[0] if t < tokens.eot]
        # A score is the sum of log-probabilities over the length (length penalty 1): the mean per token.
        if res.no_speech_prob > NO_SPEECH_PROBABILITY and res.scores[0] < LOW_LOGPROB:
            continue
        texts.append(tokens.decode(ids).strip())
    return " ".join(t for t in texts if t)


def normalize_text(text: str, *, language: str | None = None) -> str:
    """Text as the CER compares it: NFKC, case-folded, punctuation and symbols dropped, spaces collapsed.

    For languages written without spaces (:data:`UNSPACED_LANGUAGES`, or with ``language=None`` a text
    that is mostly Chinese or Japanese script) every space is removed, so the comparison is on
    characters alone.
    """
    folded = unicodedata.normalize("NFKC", str(text)).casefold()
    # Apostrophes inside words ("don't") join rather than split.
    kept = "".join("" if ch in "'’" else " " if unicodedata.category(ch)[0] in "PSC" else ch for ch in folded)
    out = " ".join(kept.split())
    unspaced = language in UNSPACED_LANGUAGES if language is not None else _mostly_cjk(out)
    return out.replace(" ", "") if unspaced else out


def character_error_rate(reference: str, hypothesis: str, *, language: str | None = None) -> float:
    """Character error rate of ``hypothesis`` against ``reference``, after :func:`normalize_text`.

    The Levenshtein distance (substitutions, deletions, insertions of one character each; spaces count
    as characters in spaced languages) divided by the reference's length. 0 for identical texts;
    insertions can take it above 1. An empty reference gives 0 against an empty hypothesis, else 1.

    Parameters
    ----------
    reference, hypothesis
        The two texts.
    language
        Whisper language code of both texts, which decides whether spaces are compared (see
        :func:`normalize_text`); ``None`` guesses from the script.
    """
    ref = normalize_text(reference, language=language)
    hyp = normalize_text(hypothesis, language=language)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings (unit costs), one numpy row per character of the longer."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    codes = np.array([ord(c) for c in b], dtype=np.int64)
    cols = np.arange(len(b) + 1)
    prev = cols.copy()
    cur = np.empty_like(prev)
    for i, ch in enumerate(a, start=1):
        cur[0] = i
        # deletion (from above) and substitution/match (diagonal)...
        np.minimum(prev[1:] + 1, prev[:-1] + (codes != ord(ch)), out=cur[1:])
        # ...then insertion (from the left): cur[j] = min over k <= j of cur[k] + (j - k).
        prev = np.minimum.accumulate(cur - cols) + cols
    return int(prev[-1])


def split_windows(x: np.ndarray) -> list[np.ndarray]:
    """Cut 16 kHz audio into windows of at most 30 s, each cut at the quietest 20 ms near its boundary."""
    if x.size <= _N_SAMPLES:
        return [x]
    search = int(_CUT_SEARCH_SECONDS * WHISPER_SR)
    count = math.ceil(x.size / (_N_SAMPLES - 2 * search))
    frame = WHISPER_SR // 50
    cuts = [0]
    for k in range(1, count):
        nominal = k * x.size // count
        lo = max(nominal - search, cuts[-1] + frame)
        seg = x[lo : nominal + search]
        energy = np.convolve(seg.astype(np.float64) ** 2, np.ones(frame), mode="valid")
        cuts.append(lo + int(np.argmin(energy[::_HOP])) * _HOP + frame // 2)
    cuts.append(x.size)
    return [x[a:b] for a, b in itertools.pairwise(cuts)]


@dataclass(frozen=True)
class _Tokens:
    """Whisper's vocabulary: the special tokens used here, the language tokens, and byte-level decoding."""

    vocabulary: tuple[str, ...]
    languages: dict[str, int]
    sot: int
    transcribe: int
    no_timestamps: int
    eot: int

    def decode(self, ids: list[int]) -> str:
        decoder = _byte_decoder()
        raw = bytes(decoder[c] for i in ids for c in self.vocabulary[i] if c in decoder)
        return raw.decode("utf-8", errors="replace")


def _tokens() -> _Tokens:
    """The vocabulary of the registry's ``whisper-base-vocabulary`` file, loaded once per process."""
    from autovoice.models.cache import CACHE

    def factory() -> _Tokens:
        from autovoice.models.weights import ensure_weights

        vocabulary: list[str] = json.loads(ensure_weights("whisper-base-vocabulary").read_text("utf-8"))
        config: dict[str, Any] = json.loads(ensure_weights("whisper-base-config").read_text("utf-8"))
        index = {tok: i for i, tok in enumerate(vocabulary)}
        languages = {vocabulary[i][2:-2]: int(i) for i in config["lang_ids"]}
        return _Tokens(
            vocabulary=tuple(vocabulary),
            languages=languages,
            sot=index["<|startoftranscript|>"],
            transcribe=index["<|transcribe|>"],
            no_timestamps=index["<|notimestamps|>"],
            eot=index[_EOT],
        )

    return CACHE.get("whisper-base-vocabulary", "cpu", factory)


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet, reversed: one printable character per byte value."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return {c: b for b, c in table.items()}


def _peak_dbfs(x: np.ndarray) -> float:
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return 20 * math.log10(peak) if peak > 0 else -math.inf


_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _mostly_cjk(text: str) -> bool:
    letters = text.replace(" ", "")
    return bool(letters) and len(_CJK.findall(letters)) > len(letters) / 2
