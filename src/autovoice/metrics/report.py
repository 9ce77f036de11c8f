"""The quality report of one conversion: pitch accuracy, speaker similarity, DNSMOS and speed.

:func:`quality_report` measures a converted vocal against what was asked of it, using only the audio, the
intended F0 contour and the profile's embedding; it knows nothing of the engine that produced it.

Levels (:data:`ReportLevel`):

``full``
    Every measure on all of the audio: one F0 re-track of the whole converted vocal, speaker embeddings
    of all of the source and the converted vocal, DNSMOS windows hopped across both. Its cost grows with
    the song's length (78 s for a 133 s song vocal on 2 CPU cores, against 2.9 s for ``fast``).
``fast``
    Bounded work whatever the length: up to :data:`~autovoice.metrics.excerpts.FAST_EXCERPTS` excerpts of
    9.01 s, chosen where the vocal is most voiced and loudest; DNSMOS once per excerpt, the F0 re-track
    and pitch accuracy on their frames, the speaker embeddings on up to :data:`FAST_SIMILARITY_SECONDS`
    of their voiced audio. :attr:`QualityReport.coverage` says how much audio each measure used.
``off``
    No report: the caller does not call :func:`quality_report`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

import numpy as np

from autovoice.analysis import F0_METHODS, F0Method, F0Track, estimate_f0
from autovoice.analysis.f0 import FRAME_HOP_S
from autovoice.audio import to_mono
from autovoice.errors import AudioError, ParameterError, unknown_choice
from autovoice.metrics.checks import ReportWarning, full_mix_warning, quality_warnings, report_warning
from autovoice.metrics.dnsmos import DNSMOS_SR, Dnsmos, check_hop, dnsmos_16k, dnsmos_windows
from autovoice.metrics.excerpts import select_excerpts
from autovoice.metrics.identity import IdentityBand, identity_verdict
from autovoice.metrics.pitch import (
    LENGTH_SLACK_FRAMES,
    LENGTH_TOLERANCE,
    PitchAccuracy,
    json_safe,
    pitch_accuracy,
)
from autovoice.metrics.similarity import EMBEDDING_DIM, cosine_similarity, to_16k, voiced_embedding_16k
from autovoice.progress import ProgressCallback, no_progress, sub_progress

#: How much of a conversion the quality report measures: ``full``, ``fast`` or ``off`` (no report).
ReportLevel = Literal["full", "fast", "off"]
#: The names of :data:`ReportLevel`, in order.
REPORT_LEVELS: tuple[str, ...] = get_args(ReportLevel)
#: The levels :func:`quality_report` computes (``off`` means not calling it).
MEASURED_LEVELS: tuple[str, ...] = ("full", "fast")
#: Most voiced audio the ``fast`` level embeds for each speaker similarity, seconds.
FAST_SIMILARITY_SECONDS = 20.0
#: Version of the :meth:`QualityReport.to_dict` document; bump it when a key changes meaning or goes away.
#: 2: ``warnings`` are ``{"code", "message"}`` documents; ``level``, ``coverage``, ``source_dnsmos`` and
#: ``timings`` added. 3: ``identity`` added (the verdict against the profile's identity band).
REPORT_FORMAT_VERSION = 3


@dataclass(frozen=True)
class Coverage:
    """How much audio each measure of a report used, seconds (NaN: not measured).

    Attributes
    ----------
    pitch_seconds
        Converted audio whose F0 was re-tracked and compared with the plan.
    similarity_seconds, similarity_source_seconds
        Voiced audio (after cutting silences) embedded for the converted vocal and for the source.
    dnsmos_seconds
        Converted audio inside the scored DNSMOS windows (the source is scored on the same windows).
    excerpts
        ``fast``: the ``(start_s, end_s)`` excerpts measured; ``full``: one excerpt, the whole vocal.
    """

    pitch_seconds: float = math.nan
    similarity_seconds: float = math.nan
    similarity_source_seconds: float = math.nan
    dnsmos_seconds: float = math.nan
    excerpts: tuple[tuple[float, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; seconds rounded to 1 ms, NaN becomes ``None``."""
        doc = {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}
        doc["excerpts"] = [[round(a, 3), round(b, 3)] for a, b in self.excerpts]
        return json_safe(doc)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class QualityReport:
    """Measured quality of one conversion. Serialise with :meth:`to_dict`.

    Attributes
    ----------
    pitch
        Intended F0 (the pitch plan) vs the F0 re-tracked on the converted vocal (on the measured frames).
    similarity_to_target
        Cosine similarity (0..1 in practice) of the converted vocal's speaker embedding to the profile's.
    similarity_source_to_target
        The same for the unconverted source: the floor a conversion must beat.
    similarity_gain
        ``similarity_to_target - similarity_source_to_target``; > 0 means the voice moved toward the target.
    identity
        Where :attr:`similarity_to_target` falls against the profile's identity band: ``{"judge", "band",
        "similarity", "verdict"}`` (see :func:`~autovoice.metrics.identity.identity_verdict`).
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
        ``{"code", "message"}`` documents (codes in :data:`~autovoice.metrics.checks.WARNING_CODES`):
        measures that could not be taken (their values are NaN / ``null``) and a converted vocal that
        sounds degraded (``quality_degraded``).
    extra
        Free-form JSON-serialisable data added by the caller (engine name, preset, ...).
    level
        ``"full"`` or ``"fast"`` (see :data:`ReportLevel`).
    source_dnsmos
        DNSMOS scores of the source vocal on the same windows as :attr:`dnsmos`.
    coverage
        How much audio each measure used (:class:`Coverage`).
    timings
        Seconds spent on each measure: ``pitch``, ``similarity``, ``dnsmos``.
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
    hop_s: float = FRAME_HOP_S
    warnings: list[ReportWarning] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    level: str = "full"
    source_dnsmos: Dnsmos = field(default_factory=Dnsmos.unmeasured)
    coverage: Coverage = field(default_factory=Coverage)
    timings: dict[str, float] = field(default_factory=dict)
    identity: dict[str, Any] = field(default_factory=lambda: identity_verdict(math.nan, None))
    format_version: int = REPORT_FORMAT_VERSION
    #: The F0 re-tracked on the converted vocal, Hz per ``hop_s`` frame on the intended grid: 0 = unvoiced,
    #: NaN = not measured (outside the ``fast`` excerpts). Serialised only by ``to_dict(contours=True)``.
    achieved_f0: np.ndarray | None = field(default=None, repr=False, compare=False)
    #: The intended F0 on the same grid (the plan, regridded to ``hop_s``); as :attr:`achieved_f0`.
    intended_f0: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self, *, contours: bool = False) -> dict[str, Any]:
        """A JSON-ready dict with stable keys (NaN becomes ``None``).

        Keys: ``format_version``, ``level``, ``pitch`` (see :meth:`PitchAccuracy.to_dict`),
        ``similarity_to_target``, ``similarity_source_to_target``, ``similarity_gain``, ``identity``,
        ``dnsmos`` and ``source_dnsmos`` (see :meth:`Dnsmos.to_dict`), ``coverage`` (see
        :meth:`Coverage.to_dict`),
        ``input_seconds``, ``output_seconds``, ``processing_seconds``, ``rtf``, ``metrics_seconds``,
        ``timings``, ``f0_method``, ``hop_s``, ``warnings``, ``extra``.

        Parameters
        ----------
        contours
            Also add ``f0``: ``{"hop_s", "intended", "achieved"}``, per-frame Hz (0 = unvoiced, ``null`` =
            not measured). Off by default: on a song they are tens of kilobytes.
        """
        doc: dict[str, Any] = {
            "format_version": self.format_version,
            "level": self.level,
            "pitch": self.pitch.to_dict(),
            "similarity_to_target": self.similarity_to_target,
            "similarity_source_to_target": self.similarity_source_to_target,
            "similarity_gain": self.similarity_gain,
            "identity": self.identity,
            "dnsmos": self.dnsmos.to_dict(),
            "source_dnsmos": self.source_dnsmos.to_dict(),
            "coverage": self.coverage.to_dict(),
            "input_seconds": self.input_seconds,
            "output_seconds": self.output_seconds,
            "processing_seconds": self.processing_seconds,
            "rtf": self.rtf,
            "metrics_seconds": self.metrics_seconds,
            "timings": dict(self.timings),
            "f0_method": self.f0_method,
            "hop_s": self.hop_s,
            "warnings": [dict(w) for w in self.warnings],
            "extra": self.extra,
        }
        if contours:

            def hz(f0: np.ndarray | None) -> list[float | None] | None:
                return None if f0 is None else [round(float(v), 1) for v in f0]

            doc["f0"] = {
                "hop_s": self.hop_s,
                "intended": hz(self.intended_f0),
                "achieved": hz(self.achieved_f0),
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
    level: ReportLevel = "fast",
    device: str = "cpu",
    f0_method: F0Method = "fcpe",
    hop_s: float = FRAME_HOP_S,
    dnsmos_hop_s: float = 1.0,
    extra: dict[str, Any] | None = None,
    identity_band: IdentityBand | None = None,
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
    level
        ``"fast"`` (default: bounded work on excerpts) or ``"full"`` (all of the audio); see the module
        docstring. ``"off"`` means not calling this function.
    device
        Torch device for F0 tracking and the speaker encoder (DNSMOS always runs on CPU).
    f0_method
        F0 tracker used to re-track the converted vocal (the conversion's); use the one that made
        ``intended_f0``. One of :data:`autovoice.analysis.F0_METHODS`.
    hop_s
        Frame period of ``intended_f0`` and of the re-tracked F0, seconds.
    dnsmos_hop_s
        ``full`` only: hop between DNSMOS windows, seconds (see :func:`dnsmos`); DNSMOS costs about one
        model run per hop, for each of the source and the converted vocal.
    extra
        JSON-serialisable data copied into :attr:`QualityReport.extra`.
    identity_band
        The profile's identity band, which the converted vocal's similarity is judged against
        (:attr:`QualityReport.identity`); ``None`` gives the verdict ``unmeasured``.
    progress
        ``progress(fraction, stage)`` callback; DNSMOS, the longest step on long audio, reports per window.

    Returns
    -------
    QualityReport
        A metric that cannot be measured on this audio (a converted vocal under 2 s for DNSMOS, audio in
        which the speaker encoder finds no voice) is NaN and explained in ``warnings``; the rest is still
        measured. ``quality_degraded`` is added when the converted vocal's DNSMOS is far below the source's.

    Raises
    ------
    ParameterError
        ``invalid_metrics_level`` for ``level="off"`` or an unknown level; ``invalid_f0_method``;
        ``invalid_parameter`` for a bad ``sr``, ``processing_seconds``, ``dnsmos_hop_s``, embedding shape,
        or F0 contours that are not on one grid.
    AudioError
        Empty or non-finite audio.
    """
    t_start = time.perf_counter()
    if level not in MEASURED_LEVELS:
        raise unknown_choice("invalid_metrics_level", "metrics level", level, MEASURED_LEVELS)
    F0_METHODS.get(f0_method)  # invalid_f0_method, listing the valid names, before any work
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
    if isinstance(intended_f0, F0Track):
        intended = (
            intended_f0.f0
            if math.isclose(intended_f0.hop_s, hop_s)
            else intended_f0.resampled(round(len(intended_f0.f0) * intended_f0.hop_s / hop_s))
        )
    else:
        intended = np.asarray(intended_f0)
    intended = np.asarray(intended, dtype=np.float32)
    _check_grid(intended, n_frames=math.ceil(output_seconds / hop_s - 1e-9))
    out_mono = to_mono(np.asarray(converted, dtype=np.float32))
    warnings: list[ReportWarning] = []
    timings: dict[str, float] = {}

    if level == "full":
        excerpts = [(0.0, output_seconds)]
    else:
        excerpts = select_excerpts(src16, sr=DNSMOS_SR, voiced=intended > 0, hop_s=hop_s)

    progress(0.0, "pitch accuracy")
    t0 = time.perf_counter()
    if level == "full":
        achieved = estimate_f0(out_mono, sr=sr, method=f0_method, hop_s=hop_s, device=device).f0
        pitch = pitch_accuracy(intended, achieved)
        pitch_seconds = output_seconds
    else:
        achieved, frames = _track_excerpts(
            out_mono,
            sr=sr,
            excerpts=excerpts,
            n_frames=len(intended),
            method=f0_method,
            hop_s=hop_s,
            device=device,
        )
        pitch = pitch_accuracy(intended[frames], np.nan_to_num(achieved[frames], nan=0.0))
        pitch_seconds = float(len(frames) * hop_s)
    if pitch.voiced_frames_compared == 0:
        warnings.append(
            report_warning(
                "pitch_unmeasured",
                "No measured frame is voiced in both the pitch plan and the converted vocal, so pitch "
                "accuracy could not be measured.",
            )
        )
    timings["pitch"] = time.perf_counter() - t0

    progress(0.3, "speaker similarity")
    t0 = time.perf_counter()
    cap = None if level == "full" else FAST_SIMILARITY_SECONDS
    src_part, out_part = (src16, out16) if level == "full" else (_cut(src16, excerpts), _cut(out16, excerpts))
    sim_source, sim_source_s = _similarity(src_part, emb, device, cap, "source", warnings)
    sim_target, sim_target_s = _similarity(out_part, emb, device, cap, "converted vocal", warnings)
    timings["similarity"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    dnsmos_progress = sub_progress(progress, 0.4, 1.0)
    try:
        if level == "full":
            quality = dnsmos_16k(out16, hop_s=dnsmos_hop_s, progress=sub_progress(dnsmos_progress, 0.0, 0.5))
            src_quality = dnsmos_16k(
                src16, hop_s=dnsmos_hop_s, progress=sub_progress(dnsmos_progress, 0.5, 1.0)
            )
            dnsmos_seconds = output_seconds
        else:
            starts = [a for a, _ in excerpts]
            quality = dnsmos_windows(out16, starts_s=starts, progress=sub_progress(dnsmos_progress, 0.0, 0.5))
            src_quality = dnsmos_windows(
                src16, starts_s=starts, progress=sub_progress(dnsmos_progress, 0.5, 1.0)
            )
            dnsmos_seconds = float(sum(min(b, output_seconds) - a for a, b in excerpts))
    except AudioError as exc:
        if exc.code != "audio_too_short":
            raise
        quality = src_quality = Dnsmos.unmeasured()
        dnsmos_seconds = 0.0
        warnings.append(report_warning("dnsmos_unmeasured", f"DNSMOS was not measured: {exc.message}"))
    warnings.extend(quality_warnings(src_quality, quality))
    timings["dnsmos"] = time.perf_counter() - t0

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
        metrics_seconds=time.perf_counter() - t_start,
        f0_method=f0_method,
        hop_s=hop_s,
        warnings=warnings,
        extra=dict(extra or {}),
        level=level,
        source_dnsmos=src_quality,
        coverage=Coverage(
            pitch_seconds=pitch_seconds,
            similarity_seconds=sim_target_s,
            similarity_source_seconds=sim_source_s,
            dnsmos_seconds=dnsmos_seconds,
            excerpts=tuple(excerpts),
        ),
        timings=timings,
        identity=identity_verdict(sim_target, identity_band),
        achieved_f0=achieved,
        intended_f0=intended,
    )


def input_warnings(report: QualityReport, *, separated: bool) -> list[ReportWarning]:
    """Warnings about the conversion's input, for the pipeline to add to a conversion's warnings.

    ``input_not_vocal`` when the input was taken as a vocal (``separated=False``: no separation and no
    accompaniment) but its DNSMOS says it sounds like a full mix (see
    :func:`~autovoice.metrics.checks.looks_like_full_mix`). Nothing for a separated vocal.
    """
    return [] if separated else full_mix_warning(report.source_dnsmos)


def _track_excerpts(
    y: np.ndarray,
    *,
    sr: int,
    excerpts: list[tuple[float, float]],
    n_frames: int,
    method: F0Method,
    hop_s: float,
    device: str,
) -> tuple[np.ndarray, np.ndarray]:
    """F0 of ``y`` re-tracked on each excerpt, placed on the ``n_frames`` grid (NaN elsewhere).

    Returns the contour and the indices of the frames measured (inside both the grid and ``y``).
    """
    achieved = np.full(n_frames, np.nan, dtype=np.float32)
    measured: list[np.ndarray] = []
    for start_s, end_s in excerpts:
        first = round(start_s / hop_s)
        a = round(first * hop_s * sr)
        b = min(len(y), round(end_s * sr))
        if b - a < round(hop_s * sr) or first >= n_frames:
            continue
        f0 = estimate_f0(y[a:b], sr=sr, method=method, hop_s=hop_s, device=device).f0
        last = min(n_frames, first + len(f0))
        achieved[first:last] = f0[: last - first]
        measured.append(np.arange(first, last))
    frames = np.concatenate(measured) if measured else np.zeros(0, dtype=int)
    return achieved, frames


def _check_grid(intended: np.ndarray, *, n_frames: int) -> None:
    """Refuse an intended contour that is not on the converted vocal's ``hop_s`` grid (as pitch_accuracy)."""
    if intended.ndim != 1 or intended.size == 0:
        raise ParameterError(
            "invalid_parameter",
            f"intended_f0 must be a non-empty 1-D array of F0 values in Hz, got shape {intended.shape}.",
            {"shape": list(intended.shape)},
        )
    n_long = max(len(intended), n_frames)
    if abs(len(intended) - n_frames) > max(LENGTH_SLACK_FRAMES, LENGTH_TOLERANCE * n_long):
        raise ParameterError(
            "invalid_parameter",
            f"intended_f0 has {len(intended)} frames but the converted vocal spans {n_frames} frames of "
            "hop_s; pass the pitch plan on the hop_s grid of the source.",
            {"intended_frames": len(intended), "expected_frames": n_frames},
        )


def _cut(x16: np.ndarray, excerpts: list[tuple[float, float]]) -> np.ndarray:
    """The excerpts of 16 kHz audio, concatenated."""
    parts = [x16[round(a * DNSMOS_SR) : round(b * DNSMOS_SR)] for a, b in excerpts]
    return np.concatenate(parts) if parts else x16[:0]


def _similarity(
    x16: np.ndarray, emb: np.ndarray, device: str, cap: float | None, what: str, warnings: list[ReportWarning]
) -> tuple[float, float]:
    """Cosine similarity to ``emb`` and the voiced seconds used; NaN and a warning when there is no voice."""
    try:
        embedding, seconds = voiced_embedding_16k(x16, device=device, max_seconds=cap)
    except AudioError as exc:
        if exc.code not in ("no_voiced_audio", "audio_empty"):
            raise
        warnings.append(
            report_warning(
                "similarity_unmeasured",
                f"Speaker similarity of the {what} was not measured: no speech or singing was found in the "
                "measured audio.",
            )
        )
        return math.nan, 0.0
    return cosine_similarity(embedding, emb), seconds
