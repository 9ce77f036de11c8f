"""The voice profile: what AutoVoice knows about one voice. Data, not a live model.

Also the value types of the trained models a profile holds (the engines, the store and the service share
them): :class:`TrainedModelInfo` is what inspecting a model's files finds
(:func:`autovoice.engines.checkpoints.inspect_model`), :class:`ModelFiles` are the files themselves,
:class:`TrainedModel` is a model stored with a profile.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from autovoice.analysis.vocal_range import VocalRange
from autovoice.errors import ParameterError
from autovoice.metrics.identity import IdentityBand

ModelKind = Literal["rvc", "sovits"]
#: Content encoders (speech -> content features) a model can need, by registry name. They are one
#: embedder under two names (see :data:`autovoice.models.hubert.ENCODER_NAMES`).
Embedder = Literal["hubert_base", "contentvec"]


@dataclass(frozen=True)
class TrainedModelInfo:
    """What a trained model is, read from its files (:func:`~autovoice.engines.checkpoints.inspect_model`);
    stored with the profile.

    Attributes
    ----------
    kind
        ``"rvc"`` (RVC and Applio) or ``"sovits"`` (so-vits-svc 4.x); names the engine that runs it.
    variant
        ``"rvc-v1"``, ``"rvc-v2"``, ``"applio-v1"``, ``"applio-v2"``, ``"sovits-4.0"`` or ``"sovits-4.1"``.
    version
        The tool's own version tag: ``"v1"``/``"v2"`` (RVC), ``"4.0"``/``"4.1"`` (so-vits-svc).
    sample_rate
        Output sample rate in Hz.
    f0
        True when the model takes a pitch curve (every so-vits model; RVC models trained "with F0").
    speakers
        Number of speaker slots in the model (RVC: ``emb_g`` rows; so-vits: ``n_speakers``).
    speaker_names
        so-vits-svc's ``spk`` names in id order; empty for RVC.
    embedder
        Registry name of the content encoder the model was trained on (``"hubert_base"``,
        ``"contentvec"``).
    embedder_layer
        Transformer layer whose output is used (9 or 12).
    final_proj
        True when the layer's output goes through the encoder's final projection (768 -> 256).
    content_dim
        Width of the content features the synthesizer takes (256 or 768).
    hop_length
        Output samples per content frame.
    vocoder
        ``"nsf-hifigan"`` (the one decoder both tools' default models use).
    index_dim, index_size
        Dimension and number of vectors of the RVC retrieval index (``.index``), when one is given.
    cluster
        ``"kmeans"`` (so-vits ``kmeans_*.pt``) or ``"index"`` (so-vits feature index); ``None`` if none.
    info
        The tool's free-text note (RVC's ``"info"``, e.g. ``"300epoch"``), at most 200 characters.
    """

    kind: ModelKind
    variant: str
    version: str
    sample_rate: int
    f0: bool
    speakers: int
    embedder: Embedder
    embedder_layer: int
    final_proj: bool
    content_dim: int
    hop_length: int
    vocoder: str = "nsf-hifigan"
    speaker_names: tuple[str, ...] = ()
    index_dim: int | None = None
    index_size: int | None = None
    cluster: str | None = None
    info: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``from_dict`` reads it back)."""
        d = asdict(self)
        d["speaker_names"] = list(self.speaker_names)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainedModelInfo:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        known["speaker_names"] = tuple(known.get("speaker_names", ()))
        known["extra"] = dict(known.get("extra", {}))
        return cls(**known)


@dataclass(frozen=True)
class ModelFiles:
    """The files of one trained model: the weights and the optional companions."""

    pth: Path
    index: Path | None = None
    config: Path | None = None
    cluster: Path | None = None


@dataclass(frozen=True)
class StoredFile:
    """One file of a stored model: its name in the model's folder, what it was called, its digest."""

    name: str
    original: str
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "original": self.original, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StoredFile:
        return cls(str(d["name"]), str(d.get("original", d["name"])), str(d["sha256"]), int(d["size"]))


@dataclass(frozen=True)
class TrainedModel:
    """A trained voice model stored with a profile (what the engines read: ``id``, ``info``, ``files``).

    Attributes
    ----------
    id
        ``mdl_`` + 12 hex digits.
    name
        Display name: the checkpoint's file name without its suffix (``G_2000``, ``alice_e300``).
    info
        What inspecting the checkpoint found: kind, variant, sample rate, F0, speakers, content
        encoder, content and index dimensions, ...
    stored
        Stored files by role: ``model`` (always), ``index``, ``config``, ``cluster``.
    folder
        Absolute folder of the files; set when read from the store (never shown to API clients).
    """

    id: str
    name: str
    info: TrainedModelInfo
    stored: dict[str, StoredFile]
    created_at: str
    folder: Path | None = field(default=None, compare=False)

    @property
    def kind(self) -> ModelKind:
        """``rvc`` or ``sovits``: also the name of the engine that renders the model."""
        return self.info.kind

    @property
    def files(self) -> ModelFiles:
        """Absolute paths of the stored files."""
        base = self.folder or Path()

        def at(role: str) -> Path | None:
            f = self.stored.get(role)
            return None if f is None else base / f.name

        return ModelFiles(
            pth=base / self.stored["model"].name,
            index=at("index"),
            config=at("config"),
            cluster=at("cluster"),
        )

    @property
    def size_bytes(self) -> int:
        return sum(f.size for f in self.stored.values())

    def to_dict(self) -> dict[str, Any]:
        """The stored and public JSON form (no server paths)."""
        i = self.info
        return {
            "id": self.id,
            "name": self.name,
            "kind": i.kind,
            "variant": i.variant,
            "sample_rate": i.sample_rate,
            "f0": i.f0,
            "speakers": i.speakers,
            "embedder": i.embedder,
            "content_dim": i.content_dim,
            "index_dim": i.index_dim,
            "sha256": self.stored["model"].sha256,
            "size_bytes": self.size_bytes,
            "created_at": self.created_at,
            "files": {role: f.to_dict() for role, f in self.stored.items()},
            "info": i.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, folder: Path | None = None) -> TrainedModel:
        return cls(
            id=str(d["id"]),
            name=str(d["name"]),
            info=TrainedModelInfo.from_dict(d["info"]),
            stored={role: StoredFile.from_dict(f) for role, f in dict(d["files"]).items()},
            created_at=str(d["created_at"]),
            folder=folder,
        )


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,63}$")


def validate_profile_name(name: str) -> str:
    """Return the stripped name, or raise ``invalid_profile_name``."""
    stripped = name.strip()
    if not _NAME_RE.match(stripped):
        raise ParameterError(
            "invalid_profile_name",
            f"'{name}' is not a valid profile name: use 1-64 letters, digits, spaces, '_', '-' or '.', "
            "starting with a letter or digit.",
            {"name": name},
        )
    return stripped


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
        Trained models (RVC, so-vits-svc) that render this voice; see :class:`TrainedModel`.
    identity_band
        How similar the voice is to itself from clip to clip
        (:class:`~autovoice.metrics.identity.IdentityBand`): what a conversion's similarity is judged
        against. ``None`` without recordings, for under 18 s of them, or for a profile built before bands
        existed.
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
    identity_band: IdentityBand | None = None

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
            "identity_band": self.identity_band.to_dict() if self.identity_band is not None else None,
            "engines": sorted({k.split(".", 1)[0] for k in self.features} | {m.kind for m in self.models}),
            "models": [m.to_dict() for m in self.models],
        }


def model_only_profile(name: str) -> VoiceProfile:
    """A new profile (not yet stored) with no recordings, for a trained model to render: no embedding,
    no vocal range, no quality report. Auto key and the quality report's speaker similarity need
    recordings; a manual pitch works."""
    return VoiceProfile(
        id=f"prof_{uuid.uuid4().hex[:12]}",
        name=validate_profile_name(name),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        revision=1,
        embedding=None,
        vocal_range=None,
        quality=None,
        sample_names=[],
    )


def find_profile_model(profile: VoiceProfile, model_id: str | None, kind: ModelKind) -> TrainedModel:
    """The profile's trained model ``model_id`` (or its first model of ``kind`` when ``None``).

    Raises
    ------
    ParameterError
        ``model_not_found`` when the profile has no such model (the message lists what it has),
        ``model_kind_mismatch`` when ``model_id`` is a model of another kind.
    """
    for m in profile.models:
        if (model_id is None and m.info.kind == kind) or m.id == model_id:
            if m.info.kind != kind:
                raise ParameterError(
                    "model_kind_mismatch",
                    f"Model '{model_id}' is a {m.info.kind} model; the {kind} engine cannot run it.",
                    {"model_id": model_id, "kind": m.info.kind},
                )
            return m
    have = [f"{m.id} ({m.info.kind})" for m in profile.models]
    raise ParameterError(
        "model_not_found",
        f"Profile '{profile.name}' has no {kind} model"
        + (f" '{model_id}'" if model_id else "")
        + (f"; it has: {', '.join(have)}." if have else "; add one with `autovoice profile add-model`."),
        {"profile": profile.name, "model_id": model_id, "models": have},
    )
