"""Decode, resample and encode audio.

Decoding uses libsndfile (``soundfile``: wav, flac, ogg/vorbis, ogg/opus, mp3) and falls back to FFmpeg
(``av``: m4a/aac, opus in webm/mka, anything else FFmpeg reads). Resampling uses soxr at very high quality.
Audio inside AutoVoice is ``float32`` shaped ``(channels, samples)``, or ``(samples,)`` when mono was asked
for, and always travels with its sample rate ``sr`` in Hz.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf

from autovoice.audio.validate import check_channels
from autovoice.config import Settings, get_settings
from autovoice.errors import (
    AudioError,
    NotFoundError,
    ParameterError,
    PayloadTooLargeError,
    UnsupportedFormatError,
)

#: Formats :func:`save` can write, by file extension.
OutputFormat = Literal["wav", "flac", "ogg", "mp3"]
OUTPUT_FORMATS: tuple[str, ...] = ("wav", "flac", "ogg", "mp3")
SUPPORTED_INPUTS = "wav, flac, ogg (vorbis/opus), mp3, m4a/aac, opus, webm"


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read without decoding all of it."""

    path: str
    sample_rate: int
    channels: int
    duration_s: float
    format: str


def probe(path: str | os.PathLike[str], *, settings: Settings | None = None) -> AudioInfo:
    """Read a file's sample rate, channel count and duration, checking existence and size first.

    Raises
    ------
    NotFoundError
        ``file_not_found``.
    AudioError
        ``audio_empty`` for a zero-byte file.
    PayloadTooLargeError
        ``file_too_large`` above ``settings.max_file_bytes``.
    UnsupportedFormatError
        ``unsupported_format`` when neither libsndfile nor FFmpeg recognises it as audio (random
        bytes, text, no audio stream); ``audio_corrupt`` when it is an audio file that ends early.
    """
    settings = settings or get_settings()
    p = Path(path)
    if not p.is_file():
        raise NotFoundError("file_not_found", f"No such audio file: {p}", {"path": str(p)})
    size = p.stat().st_size
    if size == 0:
        raise AudioError("audio_empty", f"{p.name} is empty (0 bytes).", {"path": str(p)})
    if size > settings.max_file_bytes:
        raise PayloadTooLargeError(
            "file_too_large",
            f"{p.name} is {size / 2**20:.1f} MiB; the limit is "
            f"{settings.max_file_bytes / 2**20:.0f} MiB (AUTOVOICE_MAX_FILE_BYTES).",
            {"path": str(p), "bytes": size, "limit_bytes": settings.max_file_bytes},
        )
    try:
        info = sf.info(str(p))
        if info.frames > 0 and info.samplerate > 0:
            return AudioInfo(
                str(p),
                int(info.samplerate),
                int(info.channels),
                info.frames / info.samplerate,
                info.format.lower(),
            )
    except (sf.LibsndfileError, RuntimeError, TypeError):
        pass
    declared = _wav_channels(_head(p, 4096))
    if declared is not None:
        # More channels than the decoders open (libsndfile stops at 1,024): say that, not "not audio".
        check_channels(declared, settings=settings)
    return _probe_ffmpeg(p)


def _wav_channels(head: bytes) -> int | None:
    """The channel count a WAV (RIFF or RF64) header announces in its ``fmt`` chunk, from the file's first
    bytes; ``None`` when they hold no such chunk."""
    import struct

    if head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        return None
    at = 12
    while at + 8 <= len(head):
        chunk, size = head[at : at + 4], struct.unpack("<I", head[at + 4 : at + 8])[0]
        if chunk == b"fmt ":
            # A real fmt chunk is 16..40 bytes (PCM, float, extensible); anything else is no header.
            if not 16 <= size <= 64 or at + 12 > len(head):
                return None
            return int(struct.unpack("<H", head[at + 10 : at + 12])[0])
        at += 8 + size + (size & 1)  # chunks are padded to an even size
    return None


def _probe_ffmpeg(p: Path) -> AudioInfo:
    import av  # lazy: FFmpeg bindings are only needed for formats libsndfile lacks

    try:
        with av.open(str(p)) as container:
            if not container.streams.audio:
                raise _not_audio(p)
            stream = container.streams.audio[0]
            ctx = stream.codec_context
            sr = int(ctx.sample_rate or 0)
            channels = int(ctx.channels or 0)
            if sr <= 0 or channels <= 0:
                # FFmpeg "opens" some non-audio bytes (random data named .flac, text) as a stream
                # without channels or rate: that is not audio, not a channel-count problem.
                raise _not_audio(p)
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            else:
                duration = 0.0
            return AudioInfo(str(p), sr, channels, duration, container.format.name.split(",")[0])
    except av.error.FFmpegError as exc:
        raise _unreadable(p, exc) from None


def _head(p: Path, n: int = 512) -> bytes:
    with p.open("rb") as fh:
        return fh.read(n)


def _audio_signature(head: bytes) -> str | None:
    """The audio container a file's first bytes announce (its "magic"), or ``None``."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "WAV"
    if head[:4] == b"fLaC":
        return "FLAC"
    if head[:4] == b"OggS":
        return "Ogg"
    if head[4:8] == b"ftyp":
        return "MP4/M4A"
    if head[:4] == b"\x1aE\xdf\xa3":
        return "WebM/Matroska"
    return None


def _looks_like_text(head: bytes) -> bool:
    """Whether the bytes are printable UTF-8 text (a common wrong upload: notes, HTML, JSON)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return bool(text) and all(c.isprintable() or c in "\t\r\n" for c in text)


def _not_audio(p: Path) -> UnsupportedFormatError:
    text = _looks_like_text(_head(p))
    what = "holds text, not audio" if text else "is not audio in a format AutoVoice reads"
    return UnsupportedFormatError(
        "unsupported_format",
        f"{p.name} {what}. Supported inputs: {SUPPORTED_INPUTS}.",
        {"path": str(p)},
    )


def _corrupt(
    p: Path, *, decoded_s: float | None = None, reason: str = "", kind: str | None = None
) -> UnsupportedFormatError:
    where = f" after {decoded_s:.1f} s of audio" if decoded_s else ""
    what = f"{kind} audio" if kind else "audio"
    details: dict[str, object] = {"path": str(p)}
    if decoded_s is not None:
        details["decoded_s"] = round(decoded_s, 3)
    if reason:
        details["reason"] = reason
    return UnsupportedFormatError(
        "audio_corrupt",
        f"{p.name} looks like {what} but is damaged or incomplete: it could not be read{where}. "
        "Export or download it again.",
        details,
    )


def _unreadable(p: Path, exc: Exception, *, decoded_s: float | None = None) -> UnsupportedFormatError:
    """FFmpeg's failure in plain words: a file that announces an audio container (or ends early, or
    breaks part-way through decoding) is ``audio_corrupt``; one that is not recognisable as audio at all
    is ``unsupported_format``. The library's own text (an errno, the path) stays out of the message."""
    import av

    reason = str(getattr(exc, "strerror", "") or "").strip()
    kind = _audio_signature(_head(p))
    if kind or isinstance(exc, av.error.EOFError) or decoded_s is not None:
        return _corrupt(p, decoded_s=decoded_s, reason=reason, kind=kind)
    return _not_audio(p)


def decode(path: str | os.PathLike[str], *, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Decode a whole file to ``float32`` of shape ``(channels, samples)`` at its own rate.

    Raises ``unsupported_format`` when the file is not audio, ``audio_corrupt`` when its data breaks
    part-way (truncated, damaged frames), and ``audio_too_long`` as soon as
    more than ``max_seconds`` are decoded (a container can claim 2 s and hold hours of silence).
    """
    p = Path(path)
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
        if data.shape[0] > 0:
            return np.ascontiguousarray(data.T), int(sr)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        pass
    return _decode_ffmpeg(p, max_seconds)


def _decode_ffmpeg(p: Path, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    import av

    chunks: list[np.ndarray] = []
    sr, decoded = 0, 0
    try:
        with av.open(str(p)) as container:
            if not container.streams.audio:
                raise _not_audio(p)
            stream = container.streams.audio[0]
            sr = int(stream.codec_context.sample_rate or 0)
            if sr <= 0 or not stream.codec_context.channels:
                raise _not_audio(p)
            resampler = av.AudioResampler(format="fltp", layout=stream.codec_context.layout, rate=sr)
            cap = (max_seconds or 0) * sr
            try:
                for frame in container.decode(stream):
                    assert isinstance(frame, av.AudioFrame)
                    for out in resampler.resample(frame):
                        chunks.append(out.to_ndarray())
                    decoded += frame.samples
                    if cap and decoded > cap:  # stop a decompression bomb before it fills the memory
                        raise AudioError(
                            "audio_too_long",
                            f"{p.name} holds more than {max_seconds:.0f} s of audio although its header "
                            "says less; the limit is AUTOVOICE_MAX_AUDIO_SECONDS.",
                            {"path": str(p), "duration_s": round(decoded / sr, 3), "max_s": max_seconds},
                        )
                for out in resampler.resample(None):
                    chunks.append(out.to_ndarray())
            except av.error.FFmpegError as exc:
                # The container and codec were recognised: the data itself breaks part-way.
                raise _unreadable(p, exc, decoded_s=decoded / sr) from None
    except av.error.FFmpegError as exc:
        raise _unreadable(p, exc) from None
    if not chunks or sr <= 0:
        raise AudioError("audio_empty", f"{p.name} contains no audio samples.", {"path": str(p)})
    return np.ascontiguousarray(np.concatenate(chunks, axis=1), dtype=np.float32), sr


def to_mono(y: np.ndarray) -> np.ndarray:
    """Average channels: ``(channels, samples)`` -> ``(samples,)``; 1-D input is returned as is."""
    if y.ndim == 1:
        return y
    return np.asarray(y.mean(axis=0), dtype=np.float32)


def resample(y: np.ndarray, *, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample with soxr (very high quality). Works on ``(samples,)`` and ``(channels, samples)``."""
    if orig_sr <= 0 or target_sr <= 0:
        raise ParameterError(
            "invalid_parameter", f"Sample rates must be positive, got {orig_sr} -> {target_sr}."
        )
    if orig_sr == target_sr:
        return y.astype(np.float32, copy=False)
    import soxr

    if y.ndim == 1:
        return np.asarray(soxr.resample(y, orig_sr, target_sr, quality="VHQ"), dtype=np.float32)
    out = soxr.resample(np.ascontiguousarray(y.T), orig_sr, target_sr, quality="VHQ")
    return np.ascontiguousarray(np.asarray(out, dtype=np.float32).T)


def load(
    path: str | os.PathLike[str],
    *,
    sr: int | None = None,
    mono: bool = False,
    validate: bool = True,
    settings: Settings | None = None,
) -> tuple[np.ndarray, int]:
    """Load an audio file as ``float32``, optionally resampled and downmixed, and validate it.

    Parameters
    ----------
    path
        Any format in :data:`SUPPORTED_INPUTS`.
    sr
        Target sample rate in Hz; ``None`` keeps the file's rate.
    mono
        Return ``(samples,)`` instead of ``(channels, samples)``.
    validate
        Run :func:`autovoice.audio.validate_audio` (duration, silence, NaN, channels, rate).

    Returns
    -------
    (y, sr)
        The samples and their sample rate in Hz.
    """
    from autovoice.audio.validate import check_limits, validate_audio

    settings = settings or get_settings()
    info = probe(path, settings=settings)
    if validate:
        check_limits(
            duration_s=info.duration_s, sr=info.sample_rate, channels=info.channels, settings=settings
        )
    y, file_sr = decode(path, max_seconds=settings.max_audio_seconds if validate else None)
    if validate:
        validate_audio(y, sr=file_sr, settings=settings)
    if mono:
        y = to_mono(y)
    if sr is not None and sr != file_sr:
        y = resample(y, orig_sr=file_sr, target_sr=sr)
        file_sr = sr
    return y, file_sr


def save(
    path: str | os.PathLike[str],
    y: np.ndarray,
    *,
    sr: int,
    format: OutputFormat | None = None,
) -> Path:
    """Write audio atomically: to a temporary file in the same directory, then renamed into place.

    A failure leaves no partial file behind. ``format`` defaults to the file extension. ``y`` is
    ``(samples,)`` or ``(channels, samples)`` float audio in [-1, 1]; wav and flac are written as 24-bit
    PCM, ogg as Vorbis and mp3 as MPEG layer III (libsndfile).
    """
    p = Path(path)
    fmt = (format or p.suffix.lstrip(".").lower()) or "wav"
    if fmt not in OUTPUT_FORMATS:
        raise ParameterError(
            "unsupported_output_format",
            f"Cannot write '{fmt}'. Choose one of: {', '.join(OUTPUT_FORMATS)}.",
            {"format": fmt, "valid": list(OUTPUT_FORMATS)},
        )
    data = np.asarray(y, dtype=np.float32)
    data = data.T if data.ndim == 2 else data
    subtype = {"wav": "PCM_24", "flac": "PCM_24", "ogg": "VORBIS", "mp3": "MPEG_LAYER_III"}[fmt]
    sf_format = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG", "mp3": "MP3"}[fmt]
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=p.parent)
    os.close(fd)
    try:
        sf.write(tmp, np.clip(data, -1.0, 1.0), sr, format=sf_format, subtype=subtype)
        publish_file(tmp, p)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return p


def publish_file(tmp: str | os.PathLike[str], dest: str | os.PathLike[str]) -> None:
    """Move a finished temporary file into place with the mode a plain ``open()`` would give it.

    ``mkstemp`` creates files ``0600``; outputs (audio and reports alike) get ``0666 & ~umask``.
    """
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, dest)
