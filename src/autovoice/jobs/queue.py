"""Job queues: :class:`LocalQueue` (threads in the server) and :class:`CeleryQueue` (Redis + workers).

Both run the same :func:`autovoice.jobs.task.run_job`; a queue only moves job *ids*. Enqueue after the
row is committed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from autovoice.config import Settings
from autovoice.errors import AutoVoiceError
from autovoice.jobs.celery_app import TASK_NAME, make_celery
from autovoice.jobs.reaper import Reaper
from autovoice.jobs.store import JobStore
from autovoice.jobs.task import JobContext, run_job

log = logging.getLogger(__name__)


class QueueUnavailableError(AutoVoiceError):
    """The job queue (broker) cannot take work right now."""

    http_status = 503
    caller_error = False


def _reaper(ctx: JobContext, store: JobStore, submit: Callable[[str], None]) -> Reaper:
    on_requeue = getattr(ctx.observer, "job_requeued", None)
    return Reaper(store, submit, ctx.settings, on_requeue=on_requeue if callable(on_requeue) else None)


def _watch(ctx: JobContext, store: JobStore) -> None:
    """Let the process's observer (Prometheus metrics) read the running jobs' heartbeat and progress
    ages at scrape time (``autovoice_job_heartbeat_age_seconds``, ``..._without_progress_seconds``)."""
    watch = getattr(ctx.observer, "watch_running", None)
    if callable(watch):
        watch(store.running_ages)


class JobQueue(Protocol):
    """Where job ids go to be run."""

    #: ``local`` or ``celery``.
    mode: str

    def start(self) -> None:
        """Begin taking work (a local queue re-queues jobs interrupted by a crash here)."""
        ...

    def submit(self, job_id: str) -> None:
        """Schedule the (committed) job; raises ``queue_unavailable`` when that is impossible."""
        ...

    def shutdown(self) -> None:
        """Stop taking work; running local jobs go back to ``queued`` for the next start."""
        ...


class LocalQueue:
    """A bounded thread pool inside the server process.

    Parameters
    ----------
    ctx
        The process's job context (database, event bus, settings).
    workers
        Jobs run at the same time (``Settings.job_workers``).
    """

    mode = "local"

    def __init__(self, ctx: JobContext, *, workers: int = 1) -> None:
        self.ctx = ctx
        self.workers = max(int(workers), 1)
        self._pool: ThreadPoolExecutor | None = None
        self._futures: set[Future[str]] = set()
        self._lock = threading.Lock()
        self._reaper: Reaper | None = None

    def start(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="autovoice-job")
        store = JobStore(self.ctx.db, self.ctx.blobs)
        pending = store.unfinished_ids()
        if pending:
            # Nothing else runs jobs in embedded mode: whatever is `running` now was cut off by a crash.
            store.mark_interrupted(pending, reason="restart")
            log.info("re-queueing %d job(s) left unfinished by the last run", len(pending))
        for job_id in pending:
            self.submit(job_id)
        # A job thread that stopped beating (its heartbeat could not be written for job_stale_after_s)
        # goes back to the pool; its old run stops at its next progress step (JobSuperseded).
        self._reaper = _reaper(self.ctx, store, self.submit)
        self._reaper.start()
        _watch(self.ctx, store)

    def submit(self, job_id: str) -> None:
        if self._pool is None:
            raise QueueUnavailableError("queue_unavailable", "The job queue is not running.")
        future = self._pool.submit(self._run, job_id)
        with self._lock:
            self._futures.add(future)
        future.add_done_callback(self._done)

    def _run(self, job_id: str) -> str:
        try:
            return run_job(job_id, self.ctx)
        except Exception:
            log.exception("job %s could not be run", job_id)
            raise

    def _done(self, future: Future[str]) -> None:
        with self._lock:
            self._futures.discard(future)

    def running(self) -> int:
        with self._lock:
            return len(self._futures)

    def shutdown(self) -> None:
        self.ctx.stopping.set()
        if self._reaper is not None:
            self._reaper.stop()
            self._reaper = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class CeleryQueue:
    """Send job ids to Celery workers over the broker (``Settings.broker_url``).

    With ``ctx`` (the server's), :meth:`start` also runs the :class:`~autovoice.jobs.reaper.Reaper`
    that re-queues the jobs of workers that stopped beating.
    """

    mode = "celery"

    def __init__(self, settings: Settings, ctx: JobContext | None = None) -> None:
        self.app = make_celery(settings)
        self.ctx = ctx
        self._reaper: Reaper | None = None

    def start(self) -> None:
        if self.ctx is None:
            return
        store = JobStore(self.ctx.db, self.ctx.blobs)
        self._reaper = _reaper(self.ctx, store, self.submit)
        self._reaper.start()
        _watch(self.ctx, store)

    def submit(self, job_id: str) -> None:
        try:
            self.app.send_task(TASK_NAME, args=[job_id])
        except Exception as exc:  # kombu raises many types for "broker unreachable"
            raise QueueUnavailableError(
                "queue_unavailable",
                "The job queue (broker) is unreachable; the job was not started. Try again shortly.",
                {"reason": type(exc).__name__},
            ) from exc

    def shutdown(self) -> None:
        if self._reaper is not None:
            self._reaper.stop()
            self._reaper = None


def make_queue(ctx: JobContext) -> LocalQueue | CeleryQueue:
    """``CeleryQueue`` when ``broker_url`` is set, else a ``LocalQueue`` of ``job_workers`` threads."""
    if ctx.settings.broker_url:
        return CeleryQueue(ctx.settings, ctx)
    return LocalQueue(ctx, workers=ctx.settings.job_workers)
