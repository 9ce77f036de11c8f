"""The voice profile: what AutoVoice knows about one voice. Data, not a live model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from autovoice.analysis.vocal_range import VocalRange

if TYPE_CHECKING:
    from autovoice.profiles.models import TrainedModel

#: Version of the on-disk layout (``profile.json`` + ``features.npz``). Bump on incompatible change.
#: 2: trained models (``models`` in ``profile.json``, files under ``models/<id>/``); a profile made from a
#: model alone has no embedding, range or quality (``null``). Version 1 profiles still load.
FORMAT_VERSION = 2


@dataclass(frozen=True)
class SampleQuality:
    """Quality of the enrollment audio, per profile (all samples together).

    ``snr_db`` is an estimate: the level of voiced frames against the quietest 10 % of frames.
    """

    duration_s: float
    voiced_s: float
    snr_db: float
    clipped_fraction: float
    silence_ratio: float
    n_samples: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "duration_s": round(self.duration_s, 2),
            "voiced_s": round(self.voiced_s, 2),
            "snr_db": round(self.snr_db, 1),
            "clipped_fraction": round(self.clipped_fraction, 6),
            "silence_ratio": round(self.silence_ratio, 3),
            "n_samples": self.n_samples,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SampleQuality:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


@dataclass
class VoiceProfile:
    """A voice profile.

    Attributes
    ----------
    id
        Stable identifier (``prof_`` + 12 hex digits).
    name
        Unique human name, used by the CLI (``autovoice convert --profile NAME``).
    revision
        1 on creation; +1 each time the profile is rebuilt from new samples under the same name.
    embedding
        ``(256,)`` float32 L2-normalised speaker embedding (resemblyzer GE2E); ``None`` for a profile
        made from a trained model alone (no recordings).
    vocal_range
        Range measured on the enrollment audio (``None`` without recordings).
    quality
        Sample-quality report (``None`` without recordings).
    features
        Engine statistics, keyed ``"<engine>.<name>"`` (see :mod:`autovoice.profiles.features`); arrays
        stored in ``features.npz``.
    models
        Trained models (RVC, so-vits-svc) that render this voice; see :mod:`autovoice.profiles.models`.
    """

    id: str
    name: str
    created_at: str
    revision: int
    embedding: np.ndarray | None
    vocal_range: VocalRange | None
    quality: SampleQuality | None
    sample_names: list[str]
    features: dict[str, np.ndarray] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    models: list[TrainedModel] = field(default_factory=list)

    @property
    def has_recordings(self) -> bool:
        """Whether the profile was built from recordings (else it holds trained models only)."""
        return self.embedding is not None

    def summary(self) -> dict[str, Any]:
        """The JSON document shown by ``autovoice profile show`` and the API (no large arrays)."""
        return {
            "id": self.id,
            "name": self.name,
            "revision": self.revision,
            "created_at": self.created_at,
            "format_version": self.format_version,
            "vocal_range": self.vocal_range.to_dict() if self.vocal_range is not None else None,
            "quality": self.quality.to_dict() if self.quality is not None else None,
            "samples": list(self.sample_names),
            "embedding_dim": int(self.embedding.shape[0]) if self.embedding is not None else 0,
            "engines": sorted({k.split(".", 1)[0] for k in self.features} | {m.kind for m in self.models}),
            "models": [m.to_dict() for m in self.models],
        }
