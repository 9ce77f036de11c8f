"""Trained models of a voice profile: RVC / Applio ``.pth`` (+ ``.index``) and so-vits-svc ``G_*.pth``
(+ ``config.json``, optional cluster model), and what a conversion needs from them.

A profile is a voice: its recordings measure it (range, embedding) and a trained model renders it.
Importing a model is two steps, so that nothing is stored unless the whole model checks out:

1. :func:`autovoice.pipeline.enroll.stage_model` copies the files into a hidden staging folder under the
   profiles folder (same file system), hashing them on the way and refusing files over the size limit,
   then inspects the *copies* with :func:`autovoice.engines.checkpoints.inspect_model`
   (``torch.load(weights_only=True)`` and an allow-list; shapes checked against the config). Any refusal
   removes the staging folder. The result is a :class:`StagedModel`.
2. :meth:`autovoice.profiles.ProfileStore.add_model` (or ``save(..., models=...)``) renames the staged
   folder into ``profiles/<profile id>/models/<model id>/`` and then rewrites ``profile.json``
   atomically; a model folder that ``profile.json`` does not list is ignored.

The model's metadata (:class:`~autovoice.profiles.profile.TrainedModel`) lives in ``profile.json`` (and so
in the service's profile index row, whose summary JSON carries it): there is no separate table.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from autovoice.config import Settings
from autovoice.errors import ParameterError
from autovoice.profiles.profile import TrainedModel, TrainedModelInfo, VoiceProfile, find_profile_model

#: Model kinds, which are also the names of the engines that render them.
MODEL_KINDS: tuple[str, ...] = ("rvc", "sovits")
#: The files of a model, by role, and the name each gets in the model's folder (the cluster model
#: keeps its suffix: so-vits-svc writes ``.pt`` k-means models and ``.pkl`` feature indexes).
FILE_ROLES: tuple[str, ...] = ("model", "index", "config", "cluster")
STORED_NAMES = {"model": "model.pth", "index": "model.index", "config": "config.json", "cluster": "cluster"}
#: The folder of a profile that holds its models, one folder per model id.
MODELS_DIR = "models"


@dataclass
class StagedModel:
    """A model whose files are copied and checked, waiting in a hidden folder to be stored.

    Use it as a context manager: the staging folder is removed on exit unless the store took it.
    """

    folder: Path
    model: TrainedModel

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> StagedModel:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.discard()  # a no-op once the store has moved the folder


def check_conversion(
    profile: VoiceProfile,
    *,
    engine: str,
    auto_key: bool,
    engine_options: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
) -> None:
    """What a conversion with ``engine`` needs from ``profile``, checked before any slow work
    (``engine_options["model_id"]`` picks one of several models).

    Raises
    ------
    ParameterError
        ``auto_key_needs_recordings`` (a model-only profile has no measured range),
        ``profile_needs_recordings`` (an engine other than rvc/sovits builds the voice from the
        recordings), ``model_not_found`` / ``model_kind_mismatch`` (no such trained model).
    ModelUnavailableError
        ``model_unavailable`` when the content encoder the model needs is not installed.
    """
    if auto_key and profile.vocal_range is None:
        raise ParameterError(
            "auto_key_needs_recordings",
            f"Profile '{profile.name}' holds a trained model but no recordings, so it has no measured "
            "vocal range for auto key. Add recordings of the voice to the profile, or give a manual "
            "pitch_shift instead.",
            {"profile": profile.name},
        )
    if engine in MODEL_KINDS:
        model_id = (engine_options or {}).get("model_id")
        model = find_profile_model(profile, None if model_id is None else str(model_id), engine)  # type: ignore[arg-type]
        check_content_encoder(model.info, settings=settings)
    elif profile.embedding is None:
        kinds = sorted({m.kind for m in profile.models})
        raise ParameterError(
            "profile_needs_recordings",
            f"The {engine} engine builds the voice from the profile's recordings, and profile "
            f"'{profile.name}' has none"
            + (f"; use the engine of its trained model ({', '.join(kinds)})." if kinds else "."),
            {"profile": profile.name, "engine": engine, "field": "engine"},
        )


def default_engine(profile: VoiceProfile) -> str | None:
    """The engine a conversion uses when none is chosen: the kind of the profile's first trained
    model, or ``None`` (the global default) when it has none."""
    return profile.models[0].kind if profile.models else None


def content_encoder_present(info: TrainedModelInfo, *, settings: Settings | None = None) -> bool:
    """Whether the content encoder ``info`` needs (``hubert_base`` or ``contentvec``: the same weights, so
    either name serves) is installed: the user's copy (``autovoice models add``) or the weights registry's
    file. Nothing is downloaded."""
    from autovoice.models.hubert import encoder_present

    return encoder_present(info.embedder, settings=settings)


def check_content_encoder(info: TrainedModelInfo, *, settings: Settings | None = None) -> None:
    """``model_unavailable`` (saying how to add it) when the model's content encoder is missing."""
    from autovoice.models.local import not_installed

    if not content_encoder_present(info, settings=settings):
        raise not_installed(info.embedder, needed_by=f"This {info.kind} model")
