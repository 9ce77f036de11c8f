"""What a trained model is and where its files are: the value types the engines, profiles and service share.

:class:`TrainedModelInfo` is what inspecting a model's files finds (:func:`autovoice.engines.checkpoints.
inspect_model`) and what a profile stores with the model; :class:`ModelFiles` are the files themselves;
:class:`ProfileModel` is what the engines need from a model stored with a profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from autovoice.errors import ParameterError

ModelKind = Literal["rvc", "sovits"]
#: Content encoders (speech -> content features) a model can need, by registry name. They are one
#: embedder under two names (see :data:`autovoice.models.hubert.ENCODER_NAMES`).
Embedder = Literal["hubert_base", "contentvec"]


@dataclass(frozen=True)
class TrainedModelInfo:
    """What a trained model is, read from its files (:func:`inspect_model`); stored with the profile.

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


class ProfileModel(Protocol):
    """What the engines need from a model stored with a profile (``profile.models`` items)."""

    @property
    def id(self) -> str: ...

    @property
    def info(self) -> TrainedModelInfo: ...

    @property
    def files(self) -> ModelFiles: ...


def mismatch(
    what: str, expected: object, got: object, details: dict[str, Any] | None = None
) -> ParameterError:
    """``model_config_mismatch``: ``what`` is ``got`` where the model's other files say ``expected``."""
    return ParameterError(
        "model_config_mismatch",
        f"The model's files do not belong together: {what} is {got}, expected {expected}.",
        {"what": what, "expected": str(expected), "got": str(got), **(details or {})},
    )
