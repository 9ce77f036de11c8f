"""On-disk profile store: ``<data_dir>/profiles/<id>/{profile.json,features.npz}``, written atomically."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from autovoice.analysis.vocal_range import VocalRange
from autovoice.config import Settings, get_settings
from autovoice.errors import ConflictError, NotFoundError
from autovoice.profiles.profile import FORMAT_VERSION, SampleQuality, VoiceProfile

PROFILE_JSON = "profile.json"
FEATURES_NPZ = "features.npz"


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
    def save(self, profile: VoiceProfile, *, replace: bool = False) -> VoiceProfile:
        """Store ``profile``. If its name is taken, raise ``profile_exists`` unless ``replace``, in
        which case the old profile's id is kept and ``revision`` is incremented."""
        old = self._find(profile.name)
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
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            arrays = {"embedding": profile.embedding, **{f"f:{k}": v for k, v in profile.features.items()}}
            np.savez(tmp / FEATURES_NPZ, **arrays)  # type: ignore[arg-type]
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
        return profile

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
            embedding = npz["embedding"].astype(np.float32)
            features = {k[2:]: npz[k] for k in npz.files if k.startswith("f:")}
        return VoiceProfile(
            id=meta["id"],
            name=meta["name"],
            created_at=meta["created_at"],
            revision=int(meta["revision"]),
            embedding=embedding,
            vocal_range=VocalRange.from_dict(meta["vocal_range"]),
            quality=SampleQuality.from_dict(meta["quality"]),
            sample_names=list(meta["samples"]),
            features=features,
            format_version=version,
        )


def _to_json(profile: VoiceProfile) -> dict[str, Any]:
    doc = profile.summary()
    # Full precision for the range; the summary rounds for display.
    doc["vocal_range"] = {k: v for k, v in vars(profile.vocal_range).items()}
    return doc
