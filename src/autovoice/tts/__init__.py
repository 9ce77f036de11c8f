"""Text to speech: Piper voices, text chunking and streaming synthesis.

``text -> prepare_text -> split_sentences -> voice.synthesize_stream -> (optional) convert_speech``

:func:`synthesize` returns the whole utterance; :func:`stream` yields it sentence by sentence. Both run
the same per-sentence synthesis, so the concatenated stream is the one-shot audio: given the same voice
state they are identical sample for sample. (Piper voices draw random noise inside the ONNX graph from a
generator that advances on every run, so two calls, like two calls of Piper itself, differ slightly.)

Example
-------
>>> from autovoice import tts
>>> y, sr = tts.synthesize("Hello, world!")  # doctest: +SKIP
>>> for chunk in tts.stream("One. Two."):  # doctest: +SKIP
...     play(chunk, sr=tts.load_voice().sample_rate)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from autovoice.config import Settings, get_settings
from autovoice.errors import ParameterError
from autovoice.models.cache import CACHE
from autovoice.progress import ProgressCallback, no_progress, sub_progress
from autovoice.tts.piper_voice import (
    BUILTIN_VOICE,
    PEAK_DBFS,
    PiperTtsVoice,
    download_voice,
    find_voice_files,
)
from autovoice.tts.piper_voice import list_voices as _list_piper_voices
from autovoice.tts.text import DEFAULT_MAX_CHARS, prepare_text, split_sentences

if TYPE_CHECKING:
    from autovoice.profiles.profile import VoiceProfile

__all__ = [
    "BUILTIN_VOICE",
    "PEAK_DBFS",
    "SPEED_MAX",
    "SPEED_MIN",
    "PiperTtsVoice",
    "TtsVoice",
    "download_voice",
    "list_voices",
    "load_voice",
    "prepare_text",
    "split_sentences",
    "stream",
    "synthesize",
]

#: Slowest and fastest accepted speaking rate, relative to the voice's own.
SPEED_MIN = 0.5
SPEED_MAX = 2.0
# Share of synthesize()'s progress given to Piper when the speech is then converted to a profile's voice.
_TTS_SHARE_WITH_PROFILE = 0.3

_Converter = Callable[[np.ndarray], np.ndarray]


@runtime_checkable
class TtsVoice(Protocol):
    """A loaded text-to-speech voice."""

    @property
    def name(self) -> str:
        """The voice's name."""
        ...

    @property
    def sample_rate(self) -> int:
        """Sample rate of the synthesised audio, in Hz."""
        ...

    def synthesize_stream(self, text: str, *, speed: float = 1.0) -> Iterator[np.ndarray]:
        """Yield ``(samples,)`` float32 mono chunks at :attr:`sample_rate`, in order.

        ``text`` is normalised (:func:`prepare_text`) and ``speed`` already validated (0.5..2.0).
        """
        ...


def _device(settings: Settings) -> tuple[str, bool]:
    """``("cuda", True)`` when settings allow a GPU and ONNX Runtime has CUDA, else ``("cpu", False)``.

    Piper is fast on CPU; a GPU is used only when the installed ONNX Runtime was built with CUDA.
    """
    if settings.device.strip().lower() == "cpu":
        return "cpu", False
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        return "cuda", True
    return "cpu", False


def load_voice(
    name_or_path: str | os.PathLike[str] | None = None, *, settings: Settings | None = None
) -> TtsVoice:
    """Load a voice, once per process (later calls return the cached instance).

    Parameters
    ----------
    name_or_path
        ``None`` or ``"joe"``: the built-in voice (``en_US-joe-medium``, works offline). A path to a Piper
        ``.onnx`` model whose ``.onnx.json`` config sits next to it. Or a Piper voice name such as
        ``en_US-lessac-medium``, looked up in ``<model_cache_dir>/piper/`` and downloaded there when
        missing, if ``settings.allow_downloads`` is on.
    settings
        Defaults to :func:`autovoice.config.get_settings`.

    Returns
    -------
    TtsVoice
        The loaded voice; its ``sample_rate`` is the rate of everything it synthesises.

    Raises
    ------
    NotFoundError
        ``voice_not_found``: no model at the path, or an unknown name.
    ModelUnavailableError
        ``voice_unavailable``: a Piper voice not installed while downloads are off (the message says
        how to get it), or a model without its config, or unreadable files; ``download_failed``.
    ParameterError
        ``invalid_parameter``: a malformed name.
    """
    s = settings or get_settings()
    files = find_voice_files(name_or_path, settings=s)
    device, use_cuda = _device(s)
    return CACHE.get(
        f"piper:{files.model}",
        device,
        lambda: PiperTtsVoice.load(files, use_cuda=use_cuda, threads=s.tts_threads),
    )


def list_voices(settings: Settings | None = None) -> list[dict[str, Any]]:
    """The voices usable without a download: the built-in ``joe`` first, then cached Piper voices.

    Returns
    -------
    list of dict
        ``name``, ``id``, ``builtin``, ``language`` (e.g. ``en_US``), ``language_name``, ``quality``,
        ``sample_rate`` (Hz), ``num_speakers``, ``license`` (``None`` when unknown).
    """
    return _list_piper_voices(settings or get_settings())


def _check_speed(speed: float) -> float:
    if (
        isinstance(speed, bool)
        or not isinstance(speed, (int, float))
        or not math.isfinite(speed)
        or not SPEED_MIN <= speed <= SPEED_MAX
    ):
        raise ParameterError(
            "invalid_parameter",
            f"speed must be a number from {SPEED_MIN} to {SPEED_MAX} (1.0 is the voice's own pace), "
            f"not {speed!r}.",
            {"parameter": "speed", "value": repr(speed), "min": SPEED_MIN, "max": SPEED_MAX},
        )
    return float(speed)


def _resolve_voice(voice: str | os.PathLike[str] | TtsVoice | None, settings: Settings) -> TtsVoice:
    if isinstance(voice, TtsVoice):
        return voice
    return load_voice(voice, settings=settings)


def _converter(
    profile: VoiceProfile, *, sr: int, settings: Settings, progress: ProgressCallback
) -> _Converter:
    """``y -> y`` in the profile's voice, via :func:`autovoice.pipeline.convert_speech` (same ``sr``).

    Conversion refuses audio shorter than ``settings.min_audio_seconds``, and a short sentence ("Yes.")
    can be; such audio is padded with silence for the conversion and trimmed back to its length after.
    """
    from autovoice.models.devices import resolve_device
    from autovoice.pipeline import convert_speech

    device = resolve_device(settings.device)
    min_len = math.ceil(settings.min_audio_seconds * sr)

    # The first call (the whole text in one-shot mode, the first sentence when streaming) gets an
    # exact auto-key shift; later sentences reuse it, so a stream does not jump in pitch.
    shift: list[float] = []

    def convert(y: np.ndarray) -> np.ndarray:
        n = len(y)
        padded = np.pad(y, (0, min_len - n)) if n < min_len else y
        out, used = convert_speech(
            padded,
            sr=sr,
            profile=profile,
            pitch_shift=shift[0] if shift else None,
            device=device,
            settings=settings,
            progress=progress,
        )
        shift[:] = [used]
        return np.asarray(out[:n], dtype=np.float32)

    return convert


def _sentence_audio(
    voice: TtsVoice, sentences: list[str], speed: float, done: Callable[[int], None]
) -> Iterator[np.ndarray]:
    """The chunks of every sentence in order; ``done(i)`` after sentence ``i``; the one synthesis path.

    Raises ``empty_text`` at the end when nothing at all was pronounceable (e.g. ``"..."``).
    """
    produced = False
    for i, sentence in enumerate(sentences):
        for chunk in voice.synthesize_stream(sentence, speed=speed):
            produced = True
            yield chunk
        done(i)
    if not produced:
        raise ParameterError(
            "empty_text",
            "The text produced no speech: it has no words the voice can pronounce.",
            {"voice": voice.name},
        )


def _prepare(
    text: str,
    voice: str | os.PathLike[str] | TtsVoice | None,
    speed: float,
    settings: Settings,
) -> tuple[list[str], TtsVoice, float]:
    """Validate everything and load the voice, before any audio is made."""
    max_chars = int(getattr(settings, "tts_max_chars", DEFAULT_MAX_CHARS))
    clean = prepare_text(text, max_chars=max_chars)
    speed = _check_speed(speed)
    return split_sentences(clean), _resolve_voice(voice, settings), speed


def synthesize(
    text: str,
    *,
    voice: str | os.PathLike[str] | TtsVoice | None = None,
    profile: VoiceProfile | None = None,
    speed: float = 1.0,
    settings: Settings | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[np.ndarray, int]:
    """Speak a text.

    Parameters
    ----------
    text
        The text; at most ``Settings.tts_max_chars`` characters (5000 by default) after normalisation.
    voice
        A voice name or path (see :func:`load_voice`) or a loaded :class:`TtsVoice`; default ``joe``.
    profile
        When given, the speech is converted into this profile's voice with
        :func:`autovoice.pipeline.convert_speech` (on the whole utterance, on ``settings.device``).
    speed
        Speaking rate relative to the voice's own, ``0.5..2.0``.
    settings
        Defaults to :func:`autovoice.config.get_settings`.
    progress
        ``progress(fraction, stage)``; stages ``"tts"`` then, with a profile, the converter's.

    Returns
    -------
    y : numpy.ndarray
        ``(samples,)`` float32 mono audio in ``[-1, 1]``; without a profile it equals the concatenation
        of :func:`stream`'s chunks for the same voice state.
    sr : int
        Its sample rate in Hz (the voice's).

    Raises
    ------
    ParameterError
        ``empty_text``, ``text_too_long``, ``invalid_parameter`` (bad speed, malformed voice name).
    NotFoundError, ModelUnavailableError
        See :func:`load_voice`.
    """
    s = settings or get_settings()
    sentences, v, speed = _prepare(text, voice, speed, s)
    report = progress or no_progress
    tts_share = _TTS_SHARE_WITH_PROFILE if profile is not None else 1.0
    convert = (
        _converter(profile, sr=v.sample_rate, settings=s, progress=sub_progress(report, tts_share, 1.0))
        if profile is not None
        else None
    )
    total = sum(len(s) for s in sentences)
    cumulative = np.cumsum([len(s) for s in sentences])

    def done(i: int) -> None:
        report(tts_share * float(cumulative[i]) / total, "tts")

    chunks = list(_sentence_audio(v, sentences, speed, done))
    y = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
    if convert is not None:
        y = convert(y)
    return y, v.sample_rate


def stream(
    text: str,
    *,
    voice: str | os.PathLike[str] | TtsVoice | None = None,
    profile: VoiceProfile | None = None,
    speed: float = 1.0,
    settings: Settings | None = None,
) -> Iterator[np.ndarray]:
    """Speak a text sentence by sentence, as soon as each sentence is synthesised.

    Everything is validated and the voice loaded when this is *called*, so bad input raises here, before
    the first chunk (an HTTP response can still report the error properly).

    Parameters
    ----------
    text, voice, speed, settings
        As for :func:`synthesize`.
    profile
        When given, each sentence's chunk is converted into the profile's voice on its own.

    Returns
    -------
    Iterator of numpy.ndarray
        ``(samples,)`` float32 mono chunks at the voice's sample rate (``load_voice(voice).sample_rate``).
        Iterating raises ``empty_text`` at the end if nothing was pronounceable.
    """
    s = settings or get_settings()
    sentences, v, speed = _prepare(text, voice, speed, s)
    chunks = _sentence_audio(v, sentences, speed, lambda i: None)
    if profile is None:
        return chunks
    convert = _converter(profile, sr=v.sample_rate, settings=s, progress=no_progress)
    return (convert(chunk) for chunk in chunks)
