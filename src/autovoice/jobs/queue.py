"""Job queues: :class:`LocalQueue` (the server's worker processes) and :class:`CeleryQueue` (broker, workers).

Both run the same :func:`autovoice.jobs.task.run_job`; a queue only moves job *ids*. Enqueue after the
row is committed.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Protocol

from autovoice.config import Settings
from autovoice.errors import AutoVoiceError
from autovoice.jobs.celery_app import TASK_NAME, make_celery
from autovoice.jobs.liveness import effective_stale_after_s, worker_alive
from autovoice.jobs.pool import WorkerCrashedError, WorkerPool, run_job_here
from autovoice.jobs.reaper import DEBRIS_AGE_S, Reaper
from autovoice.jobs.store import WORKER_LOST, JobStore, max_deliveries
from autovoice.jobs.task import JobContext, event_for
from autovoice.storage.tables import utcnow

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
    ages at scrape time (``autovoice_job_heartbeat_age_seconds``, ``..._without_progress_seconds``), the
    most deliveries of a job (``autovoice_job_deliveries_max``) and the failed jobs by error code
    (``autovoice_jobs_failed``)."""
    watch = getattr(ctx.observer, "watch_running", None)
    if callable(watch):
        watch(store.running_ages)
    deliveries = getattr(ctx.observer, "watch_deliveries", None)
    if callable(deliveries):
        deliveries(store.most_deliveries, store.failed_by_code)


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
    """A bounded pool of worker processes run by the server (:class:`~autovoice.jobs.pool.WorkerPool`).

    Jobs run in long-lived ``spawn``ed processes, so the server's event loop never waits on a
    conversion's CPU work (nor on the GIL it would hold in a thread), and each process keeps its models
    loaded between jobs. Progress reaches the server's event bus, metrics and logs through the pool.

    Jobs wait in the queue's own backlog and are handed to the pool one per free worker, each hand-off
    counted in the job's row (``deliveries``, :meth:`~autovoice.jobs.store.JobStore.deliver`): so a
    worker's death concerns only the jobs it had, never the ones waiting behind them.

    A worker process that dies mid-job (``kill -9``, the OOM killer) takes no job with it: its job goes
    back to ``queued`` (``requeued = "worker_lost"``) and runs again in a new process, its ``attempts``
    one higher, up to ``job_max_attempts`` (then ``job_attempts_exhausted``). A worker that dies before
    it starts its job (at start-up, or killed as it appears) counts no attempt: the job is sent again
    until its deliveries pass ``job_max_deliveries``, then fails with ``worker_lost``.

    Parameters
    ----------
    ctx
        The server's job context (database, event bus, observer, settings).
    workers
        Jobs run at the same time, one per process (``Settings.job_workers``).
    """

    mode = "local"

    def __init__(self, ctx: JobContext, *, workers: int = 1) -> None:
        self.ctx = ctx
        self.workers = max(int(workers), 1)
        self._pool: WorkerPool | None = None
        self._futures: set[Future[str]] = set()
        self._backlog: deque[str] = deque()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._closing = False
        self._dispatcher: threading.Thread | None = None
        self._reaper: Reaper | None = None

    def start(self) -> None:
        self._pool = WorkerPool(
            self.ctx.settings, workers=self.workers, name="jobs", bus=self.ctx.bus, observer=self.ctx.observer
        )
        self._closing = False
        self._dispatcher = threading.Thread(
            target=self._dispatch, name="autovoice-jobs-dispatch", daemon=True
        )
        self._dispatcher.start()
        store = JobStore(self.ctx.db, self.ctx.blobs)
        # Before any job runs again, and before requests: in embedded mode no other process writes the
        # job folders, so whatever a crash left (an upload without its row, a partial output) goes now.
        store.sweep_debris(older_than_s=0)
        pending = store.unfinished_ids()
        if pending:
            # Nothing else runs jobs in embedded mode: whatever is `running` now was cut off by a crash.
            store.mark_interrupted(pending, reason="restart")
            log.info("re-queueing %d job(s) left unfinished by the last run", len(pending))
        for job_id in pending:
            self.submit(job_id)
        # A job whose process stopped beating (its heartbeat could not be written for job_stale_after_s)
        # goes back to the pool; its old run stops at its next progress step (JobSuperseded).
        self._reaper = _reaper(self.ctx, store, self.submit)
        self._reaper.start()
        _watch(self.ctx, store)

    def submit(self, job_id: str) -> None:
        self._enqueue(job_id, first=False)

    def _enqueue(self, job_id: str, *, first: bool) -> None:
        if self._pool is None:
            raise QueueUnavailableError("queue_unavailable", "The job queue is not running.")
        with self._changed:
            if job_id not in self._backlog:
                if first:
                    self._backlog.appendleft(job_id)
                else:
                    self._backlog.append(job_id)
            self._changed.notify_all()

    def _dispatch(self) -> None:
        """The dispatcher thread: hands the backlog's jobs to the pool, one per free worker."""
        while True:
            with self._changed:
                while not self._closing and (not self._backlog or len(self._futures) >= self.workers):
                    self._changed.wait()
                if self._closing:
                    return
                job_id = self._backlog.popleft()
            try:
                self._send(job_id)
            except Exception as exc:  # one job's trouble must not stop the queue
                log.error("job %s could not be sent to a worker: %s", job_id, exc, exc_info=exc)

    def _send(self, job_id: str) -> None:
        settings = self.ctx.settings
        store = JobStore(self.ctx.db, self.ctx.blobs)
        try:
            verdict = store.deliver(
                job_id, limit=max_deliveries(settings), stale_after_s=effective_stale_after_s(settings)
            )
        except Exception as exc:  # the database is away: run_job will say so (and be retried)
            log.warning("job %s: its delivery could not be counted (%s); sending it anyway", job_id, exc)
            verdict = "send"
        if verdict == "failed":
            _report_undeliverable(self.ctx, store, job_id)
            return
        pool = self._pool
        if verdict == "skip" or pool is None:
            return
        future = pool.submit(run_job_here, job_id)
        with self._changed:
            self._futures.add(future)
        future.add_done_callback(lambda f: self._done(job_id, f))

    def _done(self, job_id: str, future: Future[str]) -> None:
        with self._changed:
            self._futures.discard(future)
            self._changed.notify_all()
        if future.cancelled():  # never reached a worker (the pool is shutting down): not a delivery
            try:
                JobStore(self.ctx.db, self.ctx.blobs).undeliver(job_id)
            except Exception as undo:
                log.warning("job %s: a cancelled delivery could not be taken back: %s", job_id, undo)
            return
        exc = future.exception()
        if isinstance(exc, WorkerCrashedError):
            if self._pool is not None and not self.ctx.stopping.is_set():
                # Not in this callback: it runs in the dead executor's thread.
                threading.Thread(target=self._recover, args=(job_id,), daemon=True).start()
        elif exc is not None:
            log.error("job %s could not be run: %s", job_id, exc, exc_info=exc)

    def _recover(self, job_id: str) -> None:
        """The process running (or about to run) ``job_id`` died: a job it had started goes back to
        ``queued`` (:func:`~autovoice.jobs.task.run_job` counts the next attempt); a queued one is sent
        again first (its next delivery is counted, and bounded); one still running in a surviving worker
        of the broken pool is left to it."""
        try:
            if _requeue_orphaned(self.ctx, job_id):
                log.warning("job %s lost its worker process; re-queued", job_id)
                on_requeue = getattr(self.ctx.observer, "job_requeued", None)
                if callable(on_requeue):
                    on_requeue("worker_lost")
            status = JobStore(self.ctx.db, self.ctx.blobs).get(job_id)["status"]
            if status == "queued":
                self._enqueue(job_id, first=True)
            elif status == "running":
                log.info("job %s still runs in a worker of the broken pool; left to it", job_id)
        except Exception as exc:  # the database or the queue is away: the reaper retries later
            log.warning("job %s could not be re-queued after its worker died: %s", job_id, exc)

    def running(self) -> int:
        with self._lock:
            return len(self._futures)

    def processes(self) -> list[int]:
        """The pids of the worker processes now running (started on demand)."""
        return self._pool.processes() if self._pool is not None else []

    def shutdown(self) -> None:
        self.ctx.stopping.set()
        if self._reaper is not None:
            self._reaper.stop()
            self._reaper = None
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        if self._dispatcher is not None:
            self._dispatcher.join(timeout=30)
            self._dispatcher = None
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


def _report_undeliverable(ctx: JobContext, store: JobStore, job_id: str) -> None:
    """A job just failed with ``worker_lost`` at its hand-off: say so (log, event, metric)."""
    snapshot = store.get(job_id)
    error = snapshot.get("error") or {}
    log.error("job %s failed: %s", job_id, error.get("message", WORKER_LOST))
    ctx.bus.publish(job_id, event_for(snapshot))
    if ctx.observer is not None:
        ctx.observer.job_finished(
            kind=str(snapshot["kind"]),
            preset=str(snapshot["params"].get("preset", "")),
            status="failed",
            seconds=0.0,
            rtf=None,
        )


def _requeue_orphaned(ctx: JobContext, job_id: str) -> bool:
    """Put job ``job_id`` back to ``queued`` (``requeued = "worker_lost"``) if it is ``running`` in a
    process of this host that is gone; True when this call moved it."""
    from sqlalchemy import update

    from autovoice.storage import JobRow

    with ctx.db.session() as s:
        row = s.get(JobRow, job_id)
        if row is None or row.status != "running":
            return False
        worker = row.worker
    if worker_alive(worker, utcnow(), float("inf")):
        return False
    with ctx.db.session() as s:
        done = s.execute(
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.status == "running", JobRow.worker == worker)
            .values(
                status="queued",
                stage="requeued",
                requeued="worker_lost",
                heartbeat_at=None,
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        return getattr(done, "rowcount", 0) == 1


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
        # Other servers and the workers share the data dir: only what has been untouched for long.
        store.sweep_debris(older_than_s=DEBRIS_AGE_S)
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
    """``CeleryQueue`` when ``broker_url`` is set, else a ``LocalQueue`` of ``job_workers`` processes."""
    if ctx.settings.broker_url:
        return CeleryQueue(ctx.settings, ctx)
    return LocalQueue(ctx, workers=ctx.settings.job_workers)
