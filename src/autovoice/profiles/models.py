"""Trained models of a voice profile: RVC / Applio ``.pth`` (+ ``.index``) and so-vits-svc ``G_*.pth``
(+ ``config.json``, optional cluster model).

A profile is a voice: its recordings measure it (range, embedding) and a trained model renders it.
Importing a model is two steps, so that nothing is stored unless the whole model checks out:

1. :func:`stage_model` copies the files into a hidden staging folder under the profiles folder (same
   file system), hashing them on the way and refusing files over the size limit, then inspects the
   *copies* with :func:`autovoice.engines.checkpoints.inspect_model` (``torch.load(weights_only=True)``
   and an allow-list; shapes checked against the config). Any refusal removes the staging folder.
2. :meth:`autovoice.profiles.ProfileStore.add_model` (or ``save(..., models=...)``) renames the staged
   folder into ``profiles/<profile id>/models/<model id>/`` and then rewrites ``profile.json``
   atomically; a model folder that ``profile.json`` does not list is ignored.

The model's metadata lives in ``profile.json`` (and so in the service's profile index row, whose
summary JSON carries it): there is no separate table.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from autovoice.config import Settings, get_settings
from autovoice.engines.checkpoints import ModelFiles, TrainedModelInfo, find_profile_model
from autovoice.errors import (
    AutoVoiceError,
    NotFoundError,
    ParameterError,
    PayloadTooLargeError,
)

if TYPE_CHECKING:
    from autovoice.profiles.profile import VoiceProfile

#: Model kinds, which are also the names of the engines that render them.
MODEL_KINDS: tuple[str, ...] = ("rvc", "sovits")
#: The files of a model, by role, and the name each gets in the model's folder (the cluster model
#: keeps its suffix: so-vits-svc writes ``.pt`` k-means models and ``.pkl`` feature indexes).
FILE_ROLES: tuple[str, ...] = ("model", "index", "config", "cluster")
_STORED_NAMES = {"model": "model.pth", "index": "model.index", "config": "config.json", "cluster": "cluster"}
MODELS_DIR = "models"


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
    def kind(self) -> str:
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


def _sha256_copy(src: Path, dst: Path, *, limit: int, original: str) -> tuple[str, int]:
    """Copy ``src`` to ``dst`` while hashing it; ``file_too_large`` past ``limit`` bytes."""
    from autovoice.models.weights import sha256_file

    try:
        digest = sha256_file(src, copy_to=dst, max_bytes=limit, what=original)
    except PayloadTooLargeError as exc:
        raise PayloadTooLargeError(
            exc.code, exc.message.rstrip(".") + " (AUTOVOICE_MAX_FILE_BYTES).", exc.details
        ) from None
    return digest, dst.stat().st_size


def _display(name: str) -> str:
    return "".join(c for c in os.path.basename(name) if c.isprintable())[:120]


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


def stage_model(
    model: str | os.PathLike[str],
    *,
    index: str | os.PathLike[str] | None = None,
    config: str | os.PathLike[str] | None = None,
    cluster: str | os.PathLike[str] | None = None,
    filenames: Mapping[str, str] | None = None,
    settings: Settings | None = None,
) -> StagedModel:
    """Copy a trained model's files into a staging folder and check them; nothing is stored yet.

    Parameters
    ----------
    model
        The checkpoint: an RVC / Applio ``.pth`` or a so-vits-svc ``G_*.pth``.
    index, config, cluster
        Optional companions: RVC's FAISS ``.index``, so-vits-svc's ``config.json`` (required for it),
        a so-vits-svc cluster / feature-retrieval model.
    filenames
        The names the user knows the files by, per role (uploads arrive under server-chosen names).
    settings
        Where the profiles live (the staging folder is on the same file system) and the size limit
        (``max_file_bytes`` per file).

    Raises
    ------
    NotFoundError
        ``file_not_found``.
    PayloadTooLargeError
        ``file_too_large``.
    AutoVoiceError
        What :func:`~autovoice.engines.checkpoints.inspect_model` raises: ``untrusted_checkpoint``,
        ``invalid_checkpoint``, ``model_config_mismatch``, ``model_config_required``, ...
    """
    from autovoice.engines.checkpoints import inspect_model

    settings = settings or get_settings()
    given = {"model": model, "index": index, "config": config, "cluster": cluster}
    sources = {role: Path(p) for role, p in given.items() if p is not None}
    names = {role: _display((filenames or {}).get(role) or src.name) for role, src in sources.items()}
    for role, src in sources.items():
        if not src.is_file():
            raise NotFoundError(
                "file_not_found", f"No such file: '{names[role]}' (the model's {role}).", {"role": role}
            )
    root = settings.profiles_dir
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f".stage-{uuid.uuid4().hex}"
    folder.mkdir()
    try:
        files: dict[str, StoredFile] = {}
        for role, src in sources.items():
            suffix = Path(names[role]).suffix.lower()
            keep = role == "cluster" and re.fullmatch(r"\.[a-z0-9]{1,8}", suffix)
            stored = _STORED_NAMES[role] + (suffix if keep else "")
            digest, size = _sha256_copy(
                src, folder / stored, limit=settings.max_file_bytes, original=names[role]
            )
            files[role] = StoredFile(stored, names[role], digest, size)
        try:
            info = inspect_model(
                folder / files["model"].name,
                index=folder / files["index"].name if "index" in files else None,
                config=folder / files["config"].name if "config" in files else None,
                cluster=folder / files["cluster"].name if "cluster" in files else None,
            )
        except AutoVoiceError as exc:
            raise _in_user_terms(exc, folder, files) from None
        trained = TrainedModel(
            id=f"mdl_{uuid.uuid4().hex[:12]}",
            name=Path(names["model"]).stem[:64] or "model",
            info=info,
            stored=files,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            folder=folder,
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return StagedModel(folder, trained)


def _in_user_terms(exc: AutoVoiceError, folder: Path, files: Mapping[str, StoredFile]) -> AutoVoiceError:
    """The same error, naming the user's files instead of the staged copies (no server paths)."""

    def fix(text: str) -> str:
        for f in files.values():
            text = text.replace(str(folder / f.name), f.original).replace(f.name, f.original)
        return text.replace(str(folder), "")

    details = {k: fix(v) if isinstance(v, str) else v for k, v in exc.details.items()}
    return type(exc)(exc.code, fix(exc.message), details)


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


def model_only_profile(name: str) -> VoiceProfile:
    """A new profile (not yet stored) with no recordings, for a trained model to render: no embedding,
    no vocal range, no quality report. Auto key and the quality report's speaker similarity need
    recordings; a manual pitch works."""
    from autovoice.profiles.build import validate_profile_name
    from autovoice.profiles.profile import VoiceProfile

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
