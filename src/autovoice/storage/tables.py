"""SQLAlchemy 2 models: the profile index, jobs and API keys.

A profile's data stays in :class:`autovoice.profiles.ProfileStore` on disk; its row only indexes it (name,
revision, summary) so that listing is one query. A job is a row; its inputs and outputs are blobs under
``<data_dir>/jobs/<id>/`` (see :mod:`autovoice.storage.blobs`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, DateTime, Dialect, Float, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

#: Job states. ``completed``, ``failed`` and ``cancelled`` are final.
JOB_STATUSES = ("queued", "running", "completed", "failed", "cancelled")
FINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


def utcnow() -> datetime:
    """Timezone-aware now (UTC); the single clock of every row."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp that always comes back timezone-aware, in UTC.

    PostgreSQL keeps the zone (``timestamptz``); SQLite stores the text without it and hands back a naive
    value, which an API would print without an offset (not an OpenAPI ``date-time``). Every row's clock is
    UTC (:func:`utcnow`), so a naive value read back is UTC; a value written is converted to UTC first.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base; the Alembic migrations mirror these tables."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, datetime: UtcDateTime()}


class ProfileRow(Base):
    """Index entry of one stored voice profile."""

    __tablename__ = "profiles"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)


class JobRow(Base):
    """One unit of background work (today: a song conversion)."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_status_heartbeat", "status", "heartbeat_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    stage: Mapped[str] = mapped_column(String(64), default="queued")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    #: Output paths relative to the job's blob folder, by name: mix, vocals, accompaniment, report.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    device: Mapped[str | None] = mapped_column(String(32), default=None)
    worker: Mapped[str | None] = mapped_column(String(128), default=None)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Written every ``job_heartbeat_s`` by the process running the job; a ``running`` row whose
    #: heartbeat is older than ``job_stale_after_s`` lost its worker and is re-queued (see
    #: :mod:`autovoice.jobs.reaper`).
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)
    #: Why the job was last put back in the queue: ``worker_lost`` (its worker stopped beating or its
    #: process died), ``restart`` (the embedded server it ran in restarted) or ``shutdown`` (its
    #: process was stopping); None when it never was.
    requeued: Mapped[str | None] = mapped_column(String(32), default=None)
    #: How many times the job was handed to a worker process to run: each send of the embedded server to
    #: its worker pool, each message a Celery worker took from the broker. ``attempts`` counts starts;
    #: a worker that dies before it starts the job adds a delivery and no attempt, so this is what bounds
    #: such a job (``job_max_deliveries``, then ``worker_lost``). A hand-off undone cleanly (a shutdown)
    #: is taken back.
    deliveries: Mapped[int] = mapped_column(Integer, default=0)


class ApiKeyRow(Base):
    """An API key. Only the SHA-256 of the secret token is stored; ``prefix`` helps people tell keys apart."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    prefix: Mapped[str] = mapped_column(String(16))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    note: Mapped[str] = mapped_column(Text, default="")
