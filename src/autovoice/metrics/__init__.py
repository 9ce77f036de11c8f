"""Quality metrics: pitch accuracy, speaker similarity, DNSMOS, real-time factor and the report.

Independent of any engine's internals: every metric looks only at audio, F0 contours and embeddings.
Report levels (:data:`ReportLevel`): ``full``, ``fast`` (bounded work on excerpts) and ``off``; warnings
are ``{"code", "message"}`` documents (:data:`WARNING_CODES`). See docs/metrics.md.
Models (resemblyzer, DNSMOS, FCPE) load on first use and stay in :data:`autovoice.models.CACHE`.
"""

from autovoice.metrics.checks import (
    FULL_MIX_MAX_BAK,
    QUALITY_DROP_MAX,
    QUALITY_MIN_OVRL,
    WARNING_CODES,
    ReportWarning,
    looks_like_full_mix,
)
from autovoice.metrics.dnsmos import DNSMOS_MIN_SECONDS, DNSMOS_SR, Dnsmos, dnsmos, load_dnsmos
from autovoice.metrics.excerpts import EXCERPT_SECONDS, FAST_EXCERPTS, select_excerpts
from autovoice.metrics.pitch import PitchAccuracy, json_safe, pitch_accuracy
from autovoice.metrics.report import (
    FAST_SIMILARITY_SECONDS,
    REPORT_FORMAT_VERSION,
    REPORT_LEVELS,
    Coverage,
    QualityReport,
    ReportLevel,
    input_warnings,
    quality_report,
    rtf,
)
from autovoice.metrics.similarity import (
    EMBEDDING_DIM,
    EMBEDDING_SR,
    cosine_similarity,
    speaker_embedding,
    speaker_similarity,
)

__all__ = [
    "DNSMOS_MIN_SECONDS",
    "DNSMOS_SR",
    "EMBEDDING_DIM",
    "EMBEDDING_SR",
    "EXCERPT_SECONDS",
    "FAST_EXCERPTS",
    "FAST_SIMILARITY_SECONDS",
    "FULL_MIX_MAX_BAK",
    "QUALITY_DROP_MAX",
    "QUALITY_MIN_OVRL",
    "REPORT_FORMAT_VERSION",
    "REPORT_LEVELS",
    "WARNING_CODES",
    "Coverage",
    "Dnsmos",
    "PitchAccuracy",
    "QualityReport",
    "ReportLevel",
    "ReportWarning",
    "cosine_similarity",
    "dnsmos",
    "input_warnings",
    "json_safe",
    "load_dnsmos",
    "looks_like_full_mix",
    "pitch_accuracy",
    "quality_report",
    "rtf",
    "select_excerpts",
    "speaker_embedding",
    "speaker_similarity",
]
