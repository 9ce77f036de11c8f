"""Job rows: create, read, cancel, delete, count. The row is the truth about a job."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select, update

from autovoice.config import Settings
from autovoice.errors import NotFoundError
from autovoice.jobs.liveness import worker_alive
from autovoice.storage import FINAL_STATUSES, BlobStore, Database, JobRow, check_id
from autovoice.storage.blobs import Swept
from autovoice.storage.tables import utcnow

log = logging.getLogger(__name__)

#: The error of a job failed because its worker kept dying before it could start it.
WORKER_LOST = "worker_lost"
#: The error codes always reported by ``autovoice_jobs_failed`` (0 when none): the ones alerts watch.
WATCHED_CODES = (WORKER_LOST, "job_attempts_exhausted")
#: What :meth:`JobStore.deliver` decided.
Verdict = Literal["send", "skip", "failed"]


def max_deliveries(settings: Settings) -> int:
    """``job_max_deliveries``, but never under ``job_max_attempts + 1``: a job whose worker dies while
    running it is failed by its attempts (``job_attempts_exhausted``) before its deliveries run out."""
    return max(settings.job_max_deliveries, settings.job_max_attempts + 1)


def new_job_id() -> str:
    return f"job_{uuid.uuid4().hex[:16]}"


def job_snapshot(row: JobRow) -> dict[str, Any]:
    """A detached, JSON-able copy of a row (what routes and events work with)."""
    return {
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "progress": round(float(row.progress), 4),
        "stage": row.stage,
        "params": dict(row.params or {}),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "result": dict(row.result) if row.result else None,
        "metrics": dict(row.metrics) if row.metrics else None,
        "error": dict(row.error) if row.error else None,
        "attempts": row.attempts,
        "deliveries": row.deliveries,
        "device": row.device,
        "cancel_requested": row.cancel_requested,
        "requeued": row.requeued,
        "heartbeat_at": row.heartbeat_at,
    }


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class JobStore:
    """Operations on job rows (and their blobs, on delete)."""

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self.db = db
        self.blobs = blobs

    def create(self, job_id: str, *, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        """Insert a ``queued`` job and commit (enqueue only after this returns)."""
        with self.db.session() as s:
            row = JobRow(
                id=job_id,
                kind=kind,
                params=params,
                status="queued",
                progress=0.0,
                stage="queued",
                attempts=0,
                deliveries=0,
                cancel_requested=False,
            )
            s.add(row)
            s.flush()
            return job_snapshot(row)

    def get(self, job_id: str) -> dict[str, Any]:
        """The job's snapshot; ``job_not_found`` when there is none."""
        with self.db.session() as s:
            row = s.get(JobRow, self._checked(job_id))
            if row is None:
                raise self._not_found(job_id)
            return job_snapshot(row)

    def cancel_or_delete(self, job_id: str) -> dict[str, Any] | None:
        """Cancel a queued or running job (returns its snapshot), or delete a finished one (returns None).

        A queued job is cancelled at once; a running one gets ``cancel_requested`` and stops at its next
        progress step. A finished job's row and blobs are deleted.
        """
        with self.db.session() as s:
            row = s.get(JobRow, self._checked(job_id), with_for_update=True)
            if row is None:
                raise self._not_found(job_id)
            if row.status in FINAL_STATUSES:
                s.delete(row)
                snapshot = None
            else:
                row.cancel_requested = True
                if row.status == "queued":
                    row.status, row.stage, row.finished_at = "cancelled", "cancelled", utcnow()
                    row.error = {"code": "cancelled", "message": "The job was cancelled.", "details": {}}
                row.updated_at = utcnow()
                snapshot = job_snapshot(row)
        if snapshot is None:
            self.blobs.delete_job(job_id)
        return snapshot

    def count_by_status(self) -> dict[str, int]:
        with self.db.session() as s:
            rows = s.execute(select(JobRow.status, func.count()).group_by(JobRow.status)).all()
            return {str(status): int(n) for status, n in rows}

    def oldest_queued_age_s(self) -> float:
        """Seconds since the oldest ``queued`` job was created; 0 when none waits."""
        from datetime import UTC, datetime

        with self.db.session() as s:
            oldest = s.scalar(select(func.min(JobRow.created_at)).where(JobRow.status == "queued"))
        if oldest is None:
            return 0.0
        if oldest.tzinfo is None:  # stored without a zone: always UTC
            oldest = oldest.replace(tzinfo=UTC)
        return max(0.0, (datetime.now(UTC) - oldest).total_seconds())

    def queued_count(self) -> int:
        with self.db.session() as s:
            return int(s.scalar(select(func.count()).where(JobRow.status == "queued")) or 0)

    def unfinished_ids(self) -> list[str]:
        """Ids of jobs ``queued`` or ``running``, oldest first (to re-queue after a restart)."""
        with self.db.session() as s:
            return list(
                s.scalars(
                    select(JobRow.id)
                    .where(JobRow.status.in_(("queued", "running")))
                    .order_by(JobRow.created_at, JobRow.id)
                ).all()
            )

    def mark_interrupted(self, job_ids: list[str], *, reason: str = "restart") -> None:
        """Put ``running`` rows back to ``queued`` (their process died or is shutting down)."""
        with self.db.session() as s:
            for row in s.scalars(select(JobRow).where(JobRow.id.in_(job_ids))).all():
                if row.status == "running":
                    row.status, row.stage, row.updated_at = "queued", "requeued", utcnow()
                    row.requeued, row.heartbeat_at = reason, None

    def deliver(self, job_id: str, *, limit: int, stale_after_s: float) -> Verdict:
        """Count one delivery of job ``job_id`` to a worker process, before the worker gets it.

        ``send`` (counted: hand it over), ``skip`` (gone or finished: nothing to run), or ``failed``: this
        delivery would be past ``limit`` and no live worker runs the job, so it was failed here with
        ``worker_lost`` (and not counted).

        One transaction with the row locked, so concurrent deliveries (a broker's redelivery, the
        reaper's re-send, another server) each count once.
        """
        with self.db.session() as s:
            row = s.get(JobRow, job_id, with_for_update=True)
            if row is None or row.status in FINAL_STATUSES:
                return "skip"
            row.deliveries = int(row.deliveries or 0) + 1
            if row.deliveries <= limit:
                return "send"
            if row.status == "running" and worker_alive(row.worker, row.heartbeat_at, stale_after_s):
                return "send"  # a duplicate of a delivery that runs elsewhere: that run finishes it
            now = utcnow()
            row.status, row.stage, row.finished_at, row.updated_at = "failed", "failed", now, now
            row.heartbeat_at = None
            row.error = {
                "code": WORKER_LOST,
                "message": f"The job was handed to a worker process {row.deliveries - 1} times and the "
                "worker died each time before finishing it (most often before it could start: the worker "
                "cannot start, or is killed, e.g. by the OOM killer). The worker's log says why.",
                "details": {"deliveries": row.deliveries - 1, "attempts": int(row.attempts or 0)},
            }
            row.deliveries -= 1  # this one was not made
            return "failed"

    def undeliver(self, job_id: str) -> None:
        """Take back a delivery that never reached a worker (its hand-off was cancelled)."""
        with self.db.session() as s:
            s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == "queued", JobRow.deliveries > 0)
                .values(deliveries=JobRow.deliveries - 1)
                .execution_options(synchronize_session=False)
            )

    def most_deliveries(self) -> int:
        """The most deliveries of one ``queued`` or ``running`` job (0 when none): a job its workers keep
        dying on climbs towards ``job_max_deliveries``."""
        with self.db.session() as s:
            most = s.scalar(
                select(func.max(JobRow.deliveries)).where(JobRow.status.in_(("queued", "running")))
            )
        return int(most or 0)

    def failed_by_code(self) -> dict[str, int]:
        """Failed jobs still stored, by their error's code (those of :data:`WATCHED_CODES` always)."""
        code = JobRow.error["code"].as_string()
        with self.db.session() as s:
            rows = s.execute(select(code, func.count()).where(JobRow.status == "failed").group_by(code)).all()
        counts = dict.fromkeys(WATCHED_CODES, 0)
        for name, n in rows:
            counts[str(name or "unknown")] = int(n)
        return counts

    def sweep_debris(self, *, older_than_s: float) -> Swept:
        """Remove crash debris from the job folders (:meth:`~autovoice.storage.BlobStore.sweep`): folders
        no row owns, ``.part`` files; each untouched for ``older_than_s`` seconds."""
        swept = self.blobs.sweep(self._existing, older_than_s=older_than_s)
        if swept.folders or swept.parts:
            log.info(
                "removed crash debris from the job folders: %d without a job, %d partial files",
                swept.folders,
                swept.parts,
            )
        return swept

    def _existing(self, job_ids: Collection[str]) -> set[str]:
        """Those of ``job_ids`` that have a row."""
        ids, found = list(job_ids), set[str]()
        with self.db.session() as s:
            for start in range(0, len(ids), 500):
                batch = ids[start : start + 500]
                found.update(s.scalars(select(JobRow.id).where(JobRow.id.in_(batch))).all())
        return found

    def requeue_lost(self, stale_after_s: float) -> list[str]:
        """Put back to ``queued`` (``requeued = "worker_lost"``) every ``running`` job whose heartbeat is
        older than ``stale_after_s``; returns the ids this call moved, for the caller to enqueue.

        Each row moves with a conditional ``UPDATE`` (still running, still stale), so of several reapers
        (server processes) exactly one re-queues a given job.
        """
        cutoff = utcnow() - timedelta(seconds=stale_after_s)
        # A row written before heartbeats existed has none: its last update stands in for it.
        beat = func.coalesce(JobRow.heartbeat_at, JobRow.updated_at)
        stale = (JobRow.status == "running", beat < cutoff)
        moved: list[str] = []
        with self.db.session() as s:
            candidates = list(s.scalars(select(JobRow.id).where(*stale)).all())
        for job_id in candidates:
            with self.db.session() as s:
                done = s.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id, *stale)
                    .values(
                        status="queued",
                        stage="requeued",
                        requeued="worker_lost",
                        heartbeat_at=None,
                        updated_at=utcnow(),
                    )
                    .execution_options(synchronize_session=False)
                )
                if getattr(done, "rowcount", 0) == 1:
                    moved.append(job_id)
        return moved

    def unqueue(self, job_id: str, *, heartbeat_at: datetime) -> None:
        """Undo :meth:`requeue_lost` for a job the queue could not take: ``running`` again with its old
        (stale) heartbeat, so the next sweep tries again."""
        with self.db.session() as s:
            s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == "queued", JobRow.stage == "requeued")
                .values(status="running", heartbeat_at=heartbeat_at)
                .execution_options(synchronize_session=False)
            )

    def running_ages(self) -> dict[str, float]:
        """Of the ``running`` jobs: the oldest heartbeat's age (``heartbeat_s``) and the longest time
        without progress (``progress_s``, since the row was last updated), in seconds; 0 when none runs."""
        with self.db.session() as s:
            beat, progressed = s.execute(
                select(
                    func.min(func.coalesce(JobRow.heartbeat_at, JobRow.updated_at)),
                    func.min(JobRow.updated_at),
                ).where(JobRow.status == "running")
            ).one()
        now = datetime.now(UTC)

        def age(value: datetime | str | None) -> float:
            if value is None:
                return 0.0
            if isinstance(value, str):  # SQLite's min() of a timestamp column is its text
                value = datetime.fromisoformat(value)
            return max(0.0, (now - _aware(value)).total_seconds())

        return {"heartbeat_s": age(beat), "progress_s": age(progressed)}

    def fail(self, job_id: str, error: dict[str, Any]) -> None:
        """Mark a job failed before it ran (e.g. the queue could not take it)."""
        with self.db.session() as s:
            row = s.get(JobRow, job_id)
            if row is not None and row.status not in FINAL_STATUSES:
                row.status, row.stage, row.error = "failed", "failed", error
                row.finished_at = row.updated_at = utcnow()

    @staticmethod
    def _checked(job_id: str) -> str:
        try:
            return check_id(job_id)
        except Exception:
            raise JobStore._not_found(job_id) from None

    @staticmethod
    def _not_found(job_id: str) -> NotFoundError:
        return NotFoundError(
            "job_not_found", f"No conversion job with id '{job_id[:80]}'.", {"job_id": job_id[:80]}
        )
