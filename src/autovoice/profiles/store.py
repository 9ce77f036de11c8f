"""On-disk profile store: ``<data_dir>/profiles/<id>/{profile.json,features.npz}``, written atomically."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from autovoice.analysis.vocal_range import VocalRange
from autovoice.config import Settings, get_settings
from autovoice.errors import ConflictError, NotFoundError
from autovoice.metrics.identity import IdentityBand
from autovoice.profiles.profile import FORMAT_VERSION, SampleQuality, TrainedModel, VoiceProfile
from autovoice.profiles.trained import MODELS_DIR, StagedModel

PROFILE_JSON = "profile.json"
FEATURES_NPZ = "features.npz"
_LOCK_FILE = ".lock"
_THREAD_LOCK = threading.Lock()


class ProfileStore:
    """Profiles under ``settings.profiles_dir``, addressed by id or by unique name.

    Writes go to a hidden temporary directory that is renamed into place, so a crash never leaves a
    half-written profile; readers skip hidden directories.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.root = (settings or get_settings()).profiles_dir

    # -- reading ---------------------------------------------------------------------------------
    def list(self) -> list[VoiceProfile]:
        """All profiles, oldest first."""
        if not self.root.is_dir():
            return []
        profiles = [
            self._read(d) for d in sorted(self.root.iterdir()) if not d.name.startswith(".") and d.is_dir()
        ]
        return sorted(profiles, key=lambda p: p.created_at)

    def get(self, ref: str) -> VoiceProfile:
        """The profile whose id or name is ``ref``; raises ``profile_not_found``."""
        path = self._find(ref)
        if path is None:
            names = [p.name for p in self.list()]
            raise NotFoundError(
                "profile_not_found",
                f"No voice profile '{ref}'. "
                + (
                    f"Known profiles: {', '.join(names)}."
                    if names
                    else "Create one with `autovoice profile create NAME SAMPLE...`."
                ),
                {"profile": ref},
            )
        return self._read(path)

    def exists(self, ref: str) -> bool:
        return self._find(ref) is not None

    def path_of(self, ref: str) -> Path:
        """The directory holding profile ``ref`` (its blobs live there)."""
        path = self._find(ref)
        if path is None:
            raise NotFoundError("profile_not_found", f"No voice profile '{ref}'.", {"profile": ref})
        return path

    # -- writing ---------------------------------------------------------------------------------
    def save(
        self, profile: VoiceProfile, *, replace: bool = False, models: Sequence[StagedModel] = ()
    ) -> VoiceProfile:
        """Store ``profile``. If its name is taken, raise ``profile_exists`` unless ``replace``, in
        which case the old profile's id is kept and ``revision`` is incremented; the old profile's
        trained models stay with it. ``models`` (staged by :func:`~autovoice.pipeline.enroll.stage_model`)
        are stored with the profile, in the same atomic step."""
        old = self._find(profile.name)
        carried: list[TrainedModel] = []
        if old is not None and old.name != profile.id:
            if not replace:
                raise ConflictError(
                    "profile_exists",
                    f"A profile named '{profile.name}' already exists. Delete it first or replace it.",
                    {"profile": profile.name},
                )
            previous = self._read(old)
            profile.id = previous.id
            profile.revision = previous.revision + 1
            carried = [m for m in previous.models if m.id not in {p.id for p in profile.models}]
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            arrays = {f"f:{k}": v for k, v in profile.features.items()}
            if profile.embedding is not None:
                arrays["embedding"] = profile.embedding
            np.savez(tmp / FEATURES_NPZ, **arrays)  # type: ignore[arg-type]
            kept = [*carried, *profile.models]
            if kept or models:
                (tmp / MODELS_DIR).mkdir()
            for m in kept:  # hard links: the old profile keeps its files until the swap
                if m.folder is not None and m.folder.is_dir():
                    shutil.copytree(m.folder, tmp / MODELS_DIR / m.id, copy_function=_link_or_copy)
            for staged in models:
                os.replace(staged.folder, tmp / MODELS_DIR / staged.model.id)
            profile.models = [*kept, *(s.model for s in models)]
            (tmp / PROFILE_JSON).write_text(json.dumps(_to_json(profile), indent=2))
            final = self.root / profile.id
            if final.exists():
                trash = self.root / f".old-{uuid.uuid4().hex}"
                os.replace(final, trash)
                os.replace(tmp, final)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        profile.models = [_at(m, self.root / profile.id) for m in profile.models]
        return profile

    def add_model(self, ref: str, staged: StagedModel) -> TrainedModel:
        """Store a staged model with profile ``ref``; returns it as stored.

        The model's folder is renamed into place first, then ``profile.json`` is rewritten atomically
        (a folder it does not list is ignored, and removed here if the rewrite fails).

        Raises
        ------
        NotFoundError
            ``profile_not_found``.
        ConflictError
            ``model_exists`` when the profile already holds a checkpoint with the same sha256.
        """
        path = self.path_of(ref)
        with _locked(path):
            profile = self._read(path)
            digest = staged.model.stored["model"].sha256
            for m in profile.models:
                if m.stored["model"].sha256 == digest:
                    raise ConflictError(
                        "model_exists",
                        f"Profile '{profile.name}' already holds this checkpoint as model {m.id} "
                        f"('{m.name}').",
                        {"model_id": m.id, "sha256": digest},
                    )
            final = path / MODELS_DIR / staged.model.id
            final.parent.mkdir(exist_ok=True)
            os.replace(staged.folder, final)
            model = _at(staged.model, path)
            try:
                profile.models.append(model)
                self._write_meta(path, profile)
            except BaseException:
                shutil.rmtree(final, ignore_errors=True)
                raise
        return model

    def remove_model(self, ref: str, model_id: str) -> TrainedModel:
        """Remove model ``model_id`` (and its files) from profile ``ref``; returns what was removed.

        Raises ``profile_not_found`` or ``model_not_found``.
        """
        path = self.path_of(ref)
        with _locked(path):
            profile = self._read(path)
            found = [m for m in profile.models if m.id == model_id]
            if not found:
                raise NotFoundError(
                    "model_not_found",
                    f"Profile '{profile.name}' has no model '{model_id[:40]}'. Its models: "
                    + (", ".join(m.id for m in profile.models) or "none")
                    + ".",
                    {"model_id": model_id[:40], "profile": profile.name},
                )
            profile.models = [m for m in profile.models if m.id != model_id]
            self._write_meta(path, profile)
            folder = path / MODELS_DIR / model_id
            if folder.is_dir():
                trash = self.root / f".del-{uuid.uuid4().hex}"
                os.replace(folder, trash)
                shutil.rmtree(trash, ignore_errors=True)
        return found[0]

    def _write_meta(self, path: Path, profile: VoiceProfile) -> None:
        """Rewrite ``profile.json`` atomically (temporary file, then rename)."""
        profile.format_version = FORMAT_VERSION
        tmp = path / f".{PROFILE_JSON}.{uuid.uuid4().hex}.part"
        try:
            tmp.write_text(json.dumps(_to_json(profile), indent=2))
            os.replace(tmp, path / PROFILE_JSON)
        finally:
            tmp.unlink(missing_ok=True)

    def delete(self, ref: str) -> VoiceProfile:
        """Delete profile ``ref`` and all its files; returns what was deleted."""
        path = self.path_of(ref)
        profile = self._read(path)
        trash = self.root / f".del-{uuid.uuid4().hex}"
        os.replace(path, trash)
        shutil.rmtree(trash, ignore_errors=True)
        return profile

    # -- internals -------------------------------------------------------------------------------
    def _find(self, ref: str) -> Path | None:
        if not self.root.is_dir():
            return None
        direct = self.root / ref
        if ref.startswith("prof_") and (direct / PROFILE_JSON).is_file():
            return direct
        for d in self.root.iterdir():
            meta = d / PROFILE_JSON
            if d.name.startswith(".") or not meta.is_file():
                continue
            if json.loads(meta.read_text()).get("name") == ref:
                return d
        return None

    def _read(self, path: Path) -> VoiceProfile:
        meta = json.loads((path / PROFILE_JSON).read_text())
        version = int(meta.get("format_version", 0))
        if version > FORMAT_VERSION:
            raise ConflictError(
                "profile_format_unsupported",
                f"Profile {path.name} has format version {version}; this AutoVoice reads up to "
                f"{FORMAT_VERSION}. Upgrade AutoVoice.",
                {"format_version": version},
            )
        with np.load(path / FEATURES_NPZ) as npz:
            embedding = npz["embedding"].astype(np.float32) if "embedding" in npz.files else None
            features = {k[2:]: npz[k] for k in npz.files if k.startswith("f:")}
        return VoiceProfile(
            id=meta["id"],
            name=meta["name"],
            created_at=meta["created_at"],
            revision=int(meta["revision"]),
            embedding=embedding,
            vocal_range=VocalRange.from_dict(meta["vocal_range"]) if meta.get("vocal_range") else None,
            quality=SampleQuality.from_dict(meta["quality"]) if meta.get("quality") else None,
            sample_names=list(meta["samples"]),
            identity_band=(
                IdentityBand.from_dict(meta["identity_band"]) if meta.get("identity_band") else None
            ),
            features=features,
            format_version=version,
            models=[
                TrainedModel.from_dict(m, folder=path / MODELS_DIR / str(m["id"]))
                for m in meta.get("models", [])
            ],
        )


def _link_or_copy(src: str, dst: str) -> None:
    """A hard link (instant, no extra space), or a copy where the file system has none."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _at(model: TrainedModel, profile_dir: Path) -> TrainedModel:
    """``model`` with its folder inside ``profile_dir``."""
    from dataclasses import replace

    return replace(model, folder=profile_dir / MODELS_DIR / model.id)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of one profile's ``profile.json`` (threads and processes)."""
    with _THREAD_LOCK, (path / _LOCK_FILE).open("a") as f:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: the thread lock alone
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _to_json(profile: VoiceProfile) -> dict[str, Any]:
    doc = profile.summary()
    # Full precision for the range; the summary rounds for display.
    if profile.vocal_range is not None:
        doc["vocal_range"] = {k: v for k, v in vars(profile.vocal_range).items()}
    return doc
