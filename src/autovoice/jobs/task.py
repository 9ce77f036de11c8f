"""The one task body, :func:`run_job`, shared by :class:`LocalQueue`'s worker processes and Celery workers.

It takes a job id, re-reads the row and can run any number of times safely: a finished or cancelled job
is skipped, outputs go to deterministic paths in the job's folder (each written atomically), and the row
is marked ``completed`` only after every output is in place.
"""

from __future__ import annotations

import contextvars
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from autovoice.config import Settings
from autovoice.errors import AutoVoiceError, CancelledError
from autovoice.jobs.events import EventBus
from autovoice.jobs.liveness import effective_stale_after_s, worker_alive
from autovoice.storage import FINAL_STATUSES, BlobStore, Database, JobRow, ProfileIndex, blobs
from autovoice.storage.space import storage_error
from autovoice.storage.tables import utcnow

log = logging.getLogger(__name__)
#: The job being run in this thread or task, for log records (see :mod:`autovoice.service.logs`).
current_job_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("job_id", default=None)
#: How often a running job writes its progress to the row (and checks for a cancel request), seconds.
PROGRESS_WRITE_INTERVAL_S = 0.25


class JobInterrupted(Exception):  # noqa: N818 - not an error: the process is stopping
    """The process is shutting down: the job goes back to ``queued`` for the next start."""


class JobSuperseded(Exception):  # noqa: N818 - not an error: another process owns the job now
    """The job was re-queued (its heartbeat went stale) and taken by another run: this one stops."""


class Heartbeat:
    """A daemon thread that writes ``heartbeat_at`` of the job this process runs, every ``interval_s``.

    It stops with the job (or dies with the process: that silence is what the reaper looks for).
    """

    def __init__(self, job_id: str, ctx: JobContext) -> None:
        self.job_id, self.ctx = job_id, ctx
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        from sqlalchemy import update

        while not self._stop.wait(self.ctx.settings.job_heartbeat_s):
            try:
                with self.ctx.db.session() as s:
                    s.execute(
                        update(JobRow)
                        .where(
                            JobRow.id == self.job_id,
                            JobRow.status == "running",
                            JobRow.worker == self.ctx.worker,
                        )
                        .values(heartbeat_at=utcnow())
                        .execution_options(synchronize_session=False)
                    )
            except Exception as exc:  # the database is away: the next beat tries again
                log.warning("job %s: heartbeat not written: %s", self.job_id, exc)


class StopFlag(Protocol):
    """Set when the process running jobs is stopping: a :class:`threading.Event`, or a
    :mod:`multiprocessing` event shared by the server and its worker processes."""

    def is_set(self) -> bool: ...

    def set(self) -> None: ...


class JobObserver(Protocol):
    """Receives finished jobs (Prometheus metrics in the service and the worker)."""

    def job_finished(
        self, *, kind: str, preset: str, status: str, seconds: float, rtf: float | None
    ) -> None: ...


@dataclass
class JobContext:
    """What :func:`run_job` needs, built once per process (server or worker)."""

    settings: Settings
    db: Database
    bus: EventBus
    observer: JobObserver | None = None
    worker: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    #: Set when the process is stopping; running jobs go back to the queue at their next progress step.
    stopping: StopFlag = field(default_factory=threading.Event)

    @property
    def blobs(self) -> BlobStore:
        return BlobStore(self.settings)


def event_for(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The WebSocket event describing a job's current state (``progress``, ``completed`` or ``failed``)."""
    status = snapshot["status"]
    kind = {"completed": "completed", "failed": "failed", "cancelled": "failed"}.get(status, "progress")
    event: dict[str, Any] = {
        "type": kind,
        "job_id": snapshot["id"],
        "status": status,
        "progress": snapshot["progress"],
        "stage": snapshot["stage"],
    }
    if kind == "completed":
        event["result"] = snapshot.get("result")
    if kind == "failed":
        event["error"] = snapshot.get("error") or {
            "code": "cancelled",
            "message": "Cancelled.",
            "details": {},
        }
    return event


def _publish(ctx: JobContext, row: JobRow) -> None:
    from autovoice.jobs.store import job_snapshot

    snap = job_snapshot(row)
    ctx.bus.publish(row.id, event_for(snap))


def run_job(job_id: str, ctx: JobContext) -> str:
    """Run job ``job_id`` to its end and return its final status (or ``"skipped"``).

    Raises only for infrastructure failures (database unreachable), which the queue may retry; every
    failure of the work itself is recorded on the row as ``failed`` with an error document.
    """
    token = current_job_id.set(job_id)
    try:
        return _run(job_id, ctx)
    finally:
        current_job_id.reset(token)


def _run(job_id: str, ctx: JobContext) -> str:
    max_attempts = ctx.settings.job_max_attempts
    with ctx.db.session() as s:
        row = s.get(JobRow, job_id, with_for_update=True)
        if row is None:
            log.warning("job %s has no row (deleted?); nothing to do", job_id)
            return "skipped"
        if row.status in FINAL_STATUSES:
            log.info("job %s is already %s; skipping", job_id, row.status)
            return "skipped"
        now = utcnow()
        if row.cancel_requested:
            row.status, row.stage, row.finished_at, row.updated_at = "cancelled", "cancelled", now, now
            row.error = {"code": "cancelled", "message": "The job was cancelled.", "details": {}}
            _publish(ctx, row)
            return "cancelled"
        if row.status == "running":
            stale_after = effective_stale_after_s(ctx.settings)
            if row.worker != ctx.worker and worker_alive(row.worker, row.heartbeat_at, stale_after):
                # A second delivery of a job that runs elsewhere (Redis's visibility timeout, or the
                # reaper's re-queue racing a broker's redelivery): leave it to the live worker.
                log.info("job %s is running on %s; this delivery is a duplicate", job_id, row.worker)
                return "skipped"
            log.warning("job %s was left running by %s (gone); taking it over", job_id, row.worker)
            row.requeued = "worker_lost"
            requeued = getattr(ctx.observer, "job_requeued", None)
            if callable(requeued):
                requeued("worker_lost")
        row.attempts += 1
        if row.attempts > max_attempts:
            row.status, row.stage, row.finished_at, row.updated_at = "failed", "failed", now, now
            row.error = {
                "code": "job_attempts_exhausted",
                "message": f"The job was started {max_attempts} times without finishing (its worker died "
                "each time). Try a shorter input or another preset.",
                "details": {"attempts": max_attempts},
            }
            _publish(ctx, row)
            return "failed"
        # Progress only moves forward, even when an attempt starts over after a crash or a requeue:
        # the row keeps what the job had reached (see _progress_writer).
        row.status, row.stage = "running", "starting"
        row.started_at = row.started_at or now
        row.updated_at, row.worker, row.error, row.heartbeat_at = now, ctx.worker, None, now
        kind, params = row.kind, dict(row.params)
        _publish(ctx, row)

    with Heartbeat(job_id, ctx):
        return _work(job_id, kind, params, ctx)


def _work(job_id: str, kind: str, params: dict[str, Any], ctx: JobContext) -> str:
    started = time.perf_counter()
    status, rtf = "failed", None
    try:
        if kind != "conversion":
            raise AutoVoiceError("invalid_job", f"Unknown job kind '{kind}'.", {"kind": kind})
        metrics, result = _convert(job_id, params, ctx)
        rtf = metrics.get("rtf")
        status = "completed"
        _finish(ctx, job_id, status="completed", result=result, metrics=metrics)
    except JobSuperseded:
        log.warning("job %s was re-queued while this process ran it (heartbeat stale); stopping", job_id)
        return "superseded"
    except JobInterrupted:
        with ctx.db.session() as s:
            row = s.get(JobRow, job_id)
            if row is not None and row.status == "running" and row.worker == ctx.worker:
                row.status, row.stage, row.updated_at = "queued", "interrupted", utcnow()
                row.requeued, row.heartbeat_at = "shutdown", None
                row.attempts = max(row.attempts - 1, 0)  # not the job's fault
                row.deliveries = max(row.deliveries - 1, 0)
        log.info("job %s interrupted by shutdown; it will run again on the next start", job_id)
        return "queued"
    except CancelledError as exc:
        status = "cancelled"
        _finish(ctx, job_id, status="cancelled", error=exc.to_dict())
    except AutoVoiceError as exc:
        log.info("job %s failed: %s", job_id, exc)
        _finish(ctx, job_id, status="failed", error=exc.to_dict())
    except Exception as exc:
        # A full or read-only data dir is named as such (507 storage_full / storage_read_only in the
        # job's error, with the cause), not as our bug: libsndfile reports ENOSPC as "System error".
        storage = None
        if type(exc).__name__ != "SoftTimeLimitExceeded":
            storage = storage_error(
                exc,
                data_dir=ctx.settings.data_dir,
                min_free_bytes=ctx.settings.min_free_bytes,
                doing="writing the job's files",
            )
        if type(exc).__name__ == "SoftTimeLimitExceeded":
            limit = ctx.settings.job_time_limit_s
            error = {
                "code": "job_time_limit",
                "message": f"The job ran past its time limit of {limit:.0f} s (AUTOVOICE_JOB_TIME_LIMIT_S).",
                "details": {"limit_s": limit},
            }
        elif storage is not None:
            log.error("job %s failed: %s", job_id, storage)
            error = storage.to_dict()
        else:
            log.exception("job %s failed on our side", job_id)
            error = {
                "code": "internal_error",
                "message": f"The job failed on the server ({type(exc).__name__}). The server log has the "
                "details; please report it.",
                "details": {},
            }
        _finish(ctx, job_id, status="failed", error=error)
    if ctx.observer is not None:
        ctx.observer.job_finished(
            kind=kind,
            preset=str(params.get("preset", "")),
            status=status,
            seconds=time.perf_counter() - started,
            rtf=rtf,
        )
    return status


def _finish(
    ctx: JobContext,
    job_id: str,
    *,
    status: str,
    result: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> None:
    with ctx.db.session() as s:
        row = s.get(JobRow, job_id, with_for_update=True)
        if row is None:  # deleted meanwhile
            return
        if row.worker != ctx.worker:  # re-queued meanwhile: the run that has it now finishes it
            log.warning("job %s now belongs to %s; this run's %s is dropped", job_id, row.worker, status)
            return
        now = utcnow()
        row.status, row.stage, row.finished_at, row.updated_at = status, status, now, now
        if status == "completed":
            row.progress = 1.0
        row.result, row.metrics, row.error = result, metrics, error
        _publish(ctx, row)


def _progress_writer(job_id: str, ctx: JobContext) -> Callable[[float, str], None]:
    """``progress(fraction, stage)`` that updates the row, publishes an event and honours cancel."""
    last: dict[str, Any] = {"t": 0.0, "stage": None}

    def progress(fraction: float, stage: str) -> None:
        if ctx.stopping.is_set():
            raise JobInterrupted(job_id)
        now = time.monotonic()
        if stage == last["stage"] and now - last["t"] < PROGRESS_WRITE_INTERVAL_S and fraction < 1.0:
            return
        last["t"], last["stage"] = now, stage
        with ctx.db.session() as s:
            row = s.get(JobRow, job_id)
            if row is None or row.cancel_requested:
                raise CancelledError("cancelled", "The job was cancelled.", {"stage": stage})
            if row.status != "running" or row.worker != ctx.worker:
                raise JobSuperseded(job_id)
            # 1.0 only once the outputs are in place; never below what the row already says (a stage
            # that starts its own count, a retry on the CPU or a second attempt start again from 0).
            reached = min(max(float(fraction), 0.0), 0.99)
            row.progress = max(float(row.progress or 0.0), reached)
            row.stage, row.updated_at = stage, utcnow()
            _publish(ctx, row)

    return progress


def _convert(job_id: str, params: dict[str, Any], ctx: JobContext) -> tuple[dict[str, Any], dict[str, Any]]:
    from autovoice.models.devices import is_cuda_oom, resolve_device
    from autovoice.pipeline import ConversionOptions, convert_file

    folder = ctx.blobs.job_dir(job_id)
    options = ConversionOptions.parse(
        {k: v for k, v in params.items() if k in ConversionOptions.model_fields}
    )
    profile = ProfileIndex(ctx.db, ctx.settings).load(str(params["profile_id"]))
    progress = _progress_writer(job_id, ctx)
    device = resolve_device(ctx.settings.device)
    accompaniment = folder / params["accompaniment"] if params.get("accompaniment") else None
    fallback: dict[str, Any] | None = None

    def attempt(on: str) -> Any:
        with ctx.db.session() as s:
            row = s.get(JobRow, job_id)
            if row is not None:
                row.device = on
        return convert_file(
            folder / str(params["input"]),
            profile=profile,
            output=folder / blobs.MIX,
            report_path=folder / blobs.REPORT,
            accompaniment_path=accompaniment,
            options=options,
            stems_dir=folder,
            device=on,
            settings=ctx.settings,
            progress=progress,
        )

    try:
        result = attempt(device)
    except Exception as exc:
        if device == "cpu" or not is_cuda_oom(exc):
            raise
        log.warning("job %s ran out of GPU memory on %s; retrying on the CPU", job_id, device)
        _free_cuda()
        fallback = {"from": device, "to": "cpu", "reason": "cuda_oom"}
        result = attempt("cpu")
    doc = result.to_dict()
    for path_key in ("output", "report"):
        doc.pop(path_key, None)
    doc["device"] = "cpu" if fallback else device
    if fallback:
        doc["device_fallback"] = fallback
    outputs = {"mix": blobs.MIX, "vocals": blobs.VOCALS, "report": blobs.REPORT}
    if (folder / blobs.ACCOMPANIMENT).is_file() and result.accompaniment is not None:
        outputs["accompaniment"] = blobs.ACCOMPANIMENT
    missing = [name for name, rel in outputs.items() if not Path(folder / rel).is_file()]
    if missing:
        raise RuntimeError(f"conversion outputs missing: {missing}")
    return doc, outputs


def _free_cuda() -> None:
    try:
        import torch

        torch.cuda.empty_cache()
    except Exception:  # nosec B110 # best effort: freeing the CUDA cache must never fail a job
        pass
