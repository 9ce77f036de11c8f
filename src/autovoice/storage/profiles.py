"""The profile index: rows that mirror :class:`autovoice.profiles.ProfileStore` for fast listing.

The store on disk is the source of truth (the CLI writes there directly); :meth:`ProfileIndex.reconcile`
brings the rows in step with it, and is run when the service starts.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from autovoice.config import Settings
from autovoice.errors import NotFoundError
from autovoice.profiles import ProfileStore, VoiceProfile
from autovoice.storage.db import Database
from autovoice.storage.tables import ProfileRow

if TYPE_CHECKING:
    from autovoice.profiles.trained import StagedModel

log = logging.getLogger(__name__)
_PROFILE_ID_RE = re.compile(r"^prof_[A-Za-z0-9]{1,64}$")


def _created(profile: VoiceProfile) -> datetime:
    return datetime.fromisoformat(profile.created_at)


class ProfileIndex:
    """Profiles as the service sees them: data in the store, one row per profile in the database."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.store = ProfileStore(settings)

    def _upsert(self, profile: VoiceProfile) -> dict[str, Any]:
        summary = profile.summary()
        with self.db.session() as s:
            # A name can move to a new id (profile deleted and rebuilt by the CLI): free it first.
            s.execute(delete(ProfileRow).where(ProfileRow.name == profile.name, ProfileRow.id != profile.id))
            row = s.get(ProfileRow, profile.id)
            if row is None:
                s.add(
                    ProfileRow(
                        id=profile.id,
                        name=profile.name,
                        revision=profile.revision,
                        created_at=_created(profile),
                        summary=summary,
                    )
                )
            else:
                row.name, row.revision, row.summary = profile.name, profile.revision, summary
        return summary

    def save(self, profile: VoiceProfile, *, models: Sequence[StagedModel] = ()) -> dict[str, Any]:
        """Store a new profile (``profile_exists`` when the name is taken), with any staged trained
        models, and index it."""
        self.store.save(profile, models=models)
        return self._upsert(profile)

    def add_model(self, profile_id: str, staged: StagedModel) -> dict[str, Any]:
        """Store a staged trained model with profile ``profile_id``; returns the model's JSON."""
        self._from_store(profile_id)  # profile_not_found for anything but a stored profile's id
        model = self.store.add_model(profile_id, staged)
        self._upsert(self.store.get(profile_id))
        return model.to_dict()

    def remove_model(self, profile_id: str, model_id: str) -> dict[str, Any]:
        """Remove a trained model (and its files) from profile ``profile_id``; returns its JSON."""
        self._from_store(profile_id)
        model = self.store.remove_model(profile_id, model_id)
        self._upsert(self.store.get(profile_id))
        return model.to_dict()

    def models(self, profile_id: str) -> list[dict[str, Any]]:
        """The trained models of profile ``profile_id``, read from the store (the CLI may have added
        some since the row was written; the row is brought up to date)."""
        return list(self._upsert(self._from_store(profile_id)).get("models", []))

    def name_taken(self, name: str) -> bool:
        with self.db.session() as s:
            if s.scalar(select(ProfileRow.id).where(ProfileRow.name == name)) is not None:
                return True
        return self.store.exists(name)

    def list(self) -> list[dict[str, Any]]:
        """Summaries of all profiles, oldest first."""
        with self.db.session() as s:
            rows = s.scalars(select(ProfileRow).order_by(ProfileRow.created_at, ProfileRow.id)).all()
            return [dict(r.summary) for r in rows]

    def summary(self, profile_id: str) -> dict[str, Any]:
        """One profile's summary; ``profile_not_found`` when neither the index nor the store has it."""
        if not _PROFILE_ID_RE.match(profile_id):
            raise self._not_found(profile_id)
        with self.db.session() as s:
            row = s.get(ProfileRow, profile_id)
            if row is not None:
                return dict(row.summary)
        return self._upsert(self._from_store(profile_id))

    def load(self, profile_id: str) -> VoiceProfile:
        """The full profile (arrays included) from the store."""
        return self._from_store(profile_id)

    def delete(self, profile_id: str) -> dict[str, Any]:
        """Delete the profile's data and its row; returns the deleted summary."""
        if not _PROFILE_ID_RE.match(profile_id):
            raise self._not_found(profile_id)
        with self.db.session() as s:
            row = s.get(ProfileRow, profile_id)
            found = row is not None
            if row is not None:
                s.delete(row)
        if self.store.exists(profile_id):
            return self.store.delete(profile_id).summary()
        if not found:
            raise self._not_found(profile_id)
        return {"id": profile_id}

    def reconcile(self) -> None:
        """Index every profile in the store and drop rows whose data is gone."""
        profiles = {p.id: p for p in self.store.list()}
        with self.db.session() as s:
            for row in s.scalars(select(ProfileRow)).all():
                if row.id not in profiles:
                    s.delete(row)
        for p in profiles.values():
            self._upsert(p)
        log.debug("profile index holds %d profiles", len(profiles))

    def _from_store(self, profile_id: str) -> VoiceProfile:
        # Only ids reach the store from the API: a name lookup would let `profile_id=<name>` through.
        if not _PROFILE_ID_RE.match(profile_id) or not self.store.exists(profile_id):
            raise self._not_found(profile_id)
        return self.store.get(profile_id)

    @staticmethod
    def _not_found(profile_id: str) -> NotFoundError:
        return NotFoundError(
            "profile_not_found",
            f"No voice profile with id '{profile_id[:80]}'. List them with GET /api/v1/profiles.",
            {"profile_id": profile_id[:80]},
        )
