"""Quality metrics: pitch accuracy, speaker similarity, DNSMOS, real-time factor and the report.

Independent of any engine's internals: every metric looks only at audio, F0 contours and embeddings.
Models (resemblyzer, DNSMOS, FCPE) load on first use and stay in :data:`autovoice.models.CACHE`.
"""

from autovoice.metrics.dnsmos import DNSMOS_MIN_SECONDS, DNSMOS_SR, Dnsmos, dnsmos, load_dnsmos
from autovoice.metrics.pitch import PitchAccuracy, json_safe, pitch_accuracy
from autovoice.metrics.report import REPORT_FORMAT_VERSION, QualityReport, quality_report, rtf
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
    "REPORT_FORMAT_VERSION",
    "Dnsmos",
    "PitchAccuracy",
    "QualityReport",
    "cosine_similarity",
    "dnsmos",
    "json_safe",
    "load_dnsmos",
    "pitch_accuracy",
    "quality_report",
    "rtf",
    "speaker_embedding",
    "speaker_similarity",
]
