"""The quality report of one conversion: pitch accuracy, speaker similarity, DNSMOS and speed.

:func:`quality_report` measures a converted vocal against what was asked of it, using only the audio, the
intended F0 contour and the profile's embedding; it knows nothing of the engine that produced it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autovoice.analysis import F0Method, F0Track, estimate_f0
from autovoice.errors import AudioError, ParameterError
from autovoice.metrics.dnsmos import Dnsmos, check_hop, dnsmos_16k
from autovoice.metrics.pitch import PitchAccuracy, json_safe, pitch_accuracy
from autovoice.metrics.similarity import EMBEDDING_DIM, cosine_similarity, embedding_16k, to_16k
from autovoice.progress import ProgressCallback, no_progress, sub_progress

#: Version of the :meth:`QualityReport.to_dict` document; bump it when a key changes meaning or goes away.
REPORT_FORMAT_VERSION = 1


@dataclass(frozen=True)
class QualityReport:
    """Measured quality of one conversion. Serialise with :meth:`to_dict`.

    Attributes
    ----------
    pitch
        Intended F0 (the pitch plan) vs the F0 re-tracked on the converted vocal.
    similarity_to_target
        Cosine similarity (0..1 in practice) of the converted vocal's speaker embedding to the profile's.
    similarity_source_to_target
        The same for the unconverted source: the floor a conversion must beat.
    similarity_gain
        ``similarity_to_target - similarity_source_to_target``; > 0 means the voice moved toward the target.
    dnsmos
        DNSMOS scores of the converted vocal (1..5; NaN when it is too short to score).
    input_seconds, output_seconds
        Durations of the source and the converted vocal, seconds.
    processing_seconds
        Wall time the conversion took, seconds (as given by the caller).
    rtf
        Real-time factor, ``processing_seconds / input_seconds`` (< 1 is faster than real time).
    metrics_seconds
        Wall time spent computing this report, seconds.
    f0_method, hop_s
        How the converted vocal's F0 was tracked (method name, frame period in seconds).
    warnings
        Metrics that could not be measured and why (their values are NaN / ``null``).
    extra
        Free-form JSON-serialisable data added by the caller (engine name, preset, ...).
    format_version
        :data:`REPORT_FORMAT_VERSION`.
    """

    pitch: PitchAccuracy
    similarity_to_target: float
    similarity_source_to_target: float
    similarity_gain: float
    dnsmos: Dnsmos
    input_seconds: float
    output_seconds: float
    processing_seconds: float
    rtf: float
    metrics_seconds: float
    f0_method: str = "fcpe"
    hop_s: float = 0.01
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: int = REPORT_FORMAT_VERSION
    #: The F0 re-tracked on the converted vocal (Hz per ``hop_s`` frame, 0 = unvoiced); not serialised
    #: by :meth:`to_dict` (the pipeline adds contours to its own result).
    achieved_f0: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with stable keys (NaN becomes ``None``).

        Keys: ``format_version``, ``pitch`` (see :meth:`PitchAccuracy.to_dict`), ``similarity_to_target``,
        ``similarity_source_to_target``, ``similarity_gain``, ``dnsmos`` (see :meth:`Dnsmos.to_dict`),
        ``input_seconds``, ``output_seconds``, ``processing_seconds``, ``rtf``, ``metrics_seconds``,
        ``f0_method``, ``hop_s``, ``warnings``, ``extra``.
        """
        doc = {
            "format_version": self.format_version,
            "pitch": self.pitch.to_dict(),
            "similarity_to_target": self.similarity_to_target,
            "similarity_source_to_target": self.similarity_source_to_target,
            "similarity_gain": self.similarity_gain,
            "dnsmos": self.dnsmos.to_dict(),
            "input_seconds": self.input_seconds,
            "output_seconds": self.output_seconds,
            "processing_seconds": self.processing_seconds,
            "rtf": self.rtf,
            "metrics_seconds": self.metrics_seconds,
            "f0_method": self.f0_method,
            "hop_s": self.hop_s,
            "warnings": list(self.warnings),
            "extra": self.extra,
        }
        return json_safe(doc)  # type: ignore[no-any-return]


def rtf(processing_seconds: float, audio_seconds: float) -> float:
    """Real-time factor: seconds of processing per second of audio (< 1 is faster than real time).

    Raises
    ------
    ParameterError
        ``invalid_parameter`` when ``audio_seconds`` is not positive or ``processing_seconds`` is negative
        or not finite.
    """
    if not (math.isfinite(audio_seconds) and audio_seconds > 0):
        raise ParameterError(
            "invalid_parameter",
            f"The real-time factor needs a positive audio duration, got {audio_seconds} s.",
            {"audio_seconds": audio_seconds if math.isfinite(audio_seconds) else None},
        )
    if not (math.isfinite(processing_seconds) and processing_seconds >= 0):
        raise ParameterError(
            "invalid_parameter",
            f"processing_seconds must be a finite number >= 0, got {processing_seconds}.",
        )
    return processing_seconds / audio_seconds


def quality_report(
    *,
    source: np.ndarray,
    converted: np.ndarray,
    sr: int,
    intended_f0: np.ndarray | F0Track,
    profile_embedding: np.ndarray,
    processing_seconds: float,
    device: str = "cpu",
    f0_method: F0Method = "fcpe",
    hop_s: float = 0.01,
    dnsmos_hop_s: float = 1.0,
    extra: dict[str, Any] | None = None,
    progress: ProgressCallback = no_progress,
) -> QualityReport:
    """Measure a conversion.

    Parameters
    ----------
    source
        ``(samples,)`` mono float32 source vocal at ``sr`` (what went into the engine).
    converted
        ``(samples,)`` mono float32 converted vocal at ``sr``.
    sr
        Sample rate of both, Hz.
    intended_f0
        The planned output F0 in Hz (0 = unvoiced) on the ``hop_s`` grid of the source: a ``(frames,)``
        array or an :class:`~autovoice.analysis.F0Track` (regridded to ``hop_s`` if its hop differs).
    profile_embedding
        ``(256,)`` speaker embedding of the target voice (see :func:`speaker_embedding`).
    processing_seconds
        Wall time the conversion took, seconds (>= 0).
    device
        Torch device for F0 tracking and the speaker encoder (DNSMOS always runs on CPU).
    f0_method
        F0 tracker used to re-track the converted vocal; use the one that made ``intended_f0``.
    hop_s
        Frame period of ``intended_f0`` and of the re-tracked F0, seconds.
    dnsmos_hop_s
        Hop between DNSMOS windows, seconds (see :func:`dnsmos`); DNSMOS costs about one model run per hop.
    extra
        JSON-serialisable data copied into :attr:`QualityReport.extra`.
    progress
        ``progress(fraction, stage)`` callback; DNSMOS, the longest step on long audio, reports per window.

    Returns
    -------
    QualityReport
        A metric that cannot be measured on this audio (a converted vocal under 2 s for DNSMOS, audio in
        which the speaker encoder finds no voice) is NaN and explained in ``warnings``; the rest is still
        measured.

    Raises
    ------
    ParameterError
        Bad ``sr``, ``processing_seconds``, embedding shape, or F0 contours that are not on one grid.
    AudioError
        Empty or non-finite audio.
    """
    t0 = time.perf_counter()
    check_hop(dnsmos_hop_s)
    emb = np.asarray(profile_embedding, dtype=np.float32)
    if emb.shape != (EMBEDDING_DIM,):
        raise ParameterError(
            "invalid_parameter",
            f"profile_embedding must have shape ({EMBEDDING_DIM},), got {emb.shape}.",
            {"shape": list(emb.shape)},
        )
    src16, out16 = to_16k(source, sr=sr), to_16k(converted, sr=sr)
    input_seconds = np.asarray(source).shape[-1] / sr
    output_seconds = np.asarray(converted).shape[-1] / sr
    speed = rtf(processing_seconds, input_seconds)
    warnings: list[str] = []

    progress(0.0, "pitch accuracy")
    achieved = estimate_f0(converted, sr=sr, method=f0_method, hop_s=hop_s, device=device)
    if isinstance(intended_f0, F0Track):
        intended = (
            intended_f0.f0
            if math.isclose(intended_f0.hop_s, hop_s)
            else intended_f0.resampled(round(len(intended_f0.f0) * intended_f0.hop_s / hop_s))
        )
    else:
        intended = np.asarray(intended_f0)
    pitch = pitch_accuracy(intended, achieved.f0)

    progress(0.3, "speaker similarity")
    sim_source = _similarity(src16, emb, device=device, name="similarity_source_to_target", warnings=warnings)
    sim_target = _similarity(out16, emb, device=device, name="similarity_to_target", warnings=warnings)

    try:
        quality = dnsmos_16k(out16, hop_s=dnsmos_hop_s, progress=sub_progress(progress, 0.4, 1.0))
    except AudioError as exc:
        if exc.code != "audio_too_short":
            raise
        quality = Dnsmos.unmeasured()
        warnings.append(f"dnsmos: {exc.message}")

    progress(1.0, "measured")
    return QualityReport(
        pitch=pitch,
        similarity_to_target=sim_target,
        similarity_source_to_target=sim_source,
        similarity_gain=sim_target - sim_source,
        dnsmos=quality,
        input_seconds=input_seconds,
        output_seconds=output_seconds,
        processing_seconds=float(processing_seconds),
        rtf=speed,
        metrics_seconds=time.perf_counter() - t0,
        f0_method=f0_method,
        hop_s=hop_s,
        warnings=warnings,
        extra=dict(extra or {}),
        achieved_f0=achieved.f0,
    )


def _similarity(x16: np.ndarray, emb: np.ndarray, *, device: str, name: str, warnings: list[str]) -> float:
    """Cosine similarity of 16 kHz audio to ``emb``; NaN (with a warning) when it holds no voice."""
    try:
        return cosine_similarity(embedding_16k(x16, device=device), emb)
    except AudioError as exc:
        if exc.code != "no_voiced_audio":
            raise
        warnings.append(f"{name}: {exc.message}")
        return math.nan
