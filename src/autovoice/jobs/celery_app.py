"""The Celery application of distributed mode: one task, :data:`TASK_NAME`, that runs ``run_job(id)``.

Messages carry the job id only. Late acknowledgement plus ``reject_on_worker_lost`` means a job whose
worker process dies is redelivered; :func:`autovoice.jobs.task.run_job` makes the second run safe. The
worker's main process counts each delivery in the job's row (:class:`Deliveries`): a job whose pool
process dies before it starts it (so that ``attempts`` never moves) is failed with ``worker_lost`` once
its deliveries run out, and its message is then dropped instead of going back to the queue.
Each worker process builds its :class:`JobContext` (database, Redis pub/sub) on its first task and keeps
it, so loaded models stay in memory between jobs.

Imports flow one way: :mod:`autovoice.jobs.queue` imports this module (:data:`TASK_NAME`,
:func:`make_celery`), never the reverse; :func:`redis_url` lives here for the same reason. Celery itself
is imported only inside :func:`make_celery`, so importing this module is cheap.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from autovoice.config import Settings, get_settings
from autovoice.errors import NotFoundError
from autovoice.jobs.liveness import effective_stale_after_s
from autovoice.jobs.store import JobStore, max_deliveries
from autovoice.jobs.task import JobContext, JobObserver, run_job
from autovoice.storage import FINAL_STATUSES

log = logging.getLogger(__name__)
TASK_NAME = "autovoice.run_job"
QUEUE_NAME = "autovoice"


def redis_url(settings: Settings) -> str | None:
    """Redis for pub/sub and rate limits: ``redis_url``, else a ``redis://`` broker URL, else None."""
    if settings.redis_url:
        return settings.redis_url
    broker = settings.broker_url
    if broker and broker.startswith(("redis://", "rediss://")):
        return broker
    return None


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings derived from AutoVoice's."""
    limit = settings.job_time_limit_s
    return {
        "broker_url": settings.broker_url,
        "broker_connection_retry_on_startup": True,
        # Redis re-delivers an unacknowledged message after this; it must exceed any job's run time,
        # or a slow job would be started twice.
        "broker_transport_options": {"visibility_timeout": int(limit * 1.25) + 60},
        "task_default_queue": QUEUE_NAME,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "result_backend": None,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": limit,
        "task_soft_time_limit": limit * 0.95,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "enable_utc": True,
    }


class Deliveries:
    """The job rows as a Celery worker's main process sees them: it counts each message it takes in the
    job's ``deliveries`` (:meth:`~autovoice.jobs.store.JobStore.deliver`) and says whether the message of
    a job whose pool process died may go back to the queue.

    The main process forks pool processes after using the database, so it opens a connection per use
    (``Database(pooled=False)``). A database that is away counts nothing and requeues as before: the job
    itself needs the database to run.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store: JobStore | None = None
        self._lock = threading.Lock()

    def _jobs(self) -> JobStore:
        from autovoice.storage import BlobStore, Database

        with self._lock:
            if self._store is None:
                self._store = JobStore(Database(self.settings, pooled=False), BlobStore(self.settings))
            return self._store

    def received(self, job_id: str) -> None:
        """Count the delivery of ``job_id`` this worker just took; past the limit the job fails here."""
        try:
            verdict = self._jobs().deliver(
                job_id,
                limit=max_deliveries(self.settings),
                stale_after_s=effective_stale_after_s(self.settings),
            )
        except Exception as exc:
            log.warning("job %s: its delivery could not be counted: %s", job_id, exc)
            return
        if verdict == "failed":
            log.error(
                "job %s failed: its worker process died each time before finishing it (worker_lost)", job_id
            )

    def may_requeue(self, job_id: str) -> bool:
        """Whether the message of ``job_id``, whose pool process died, goes back to the queue: not once
        the job is finished (failed by its deliveries, cancelled, completed) or deleted."""
        try:
            status = self._jobs().get(job_id)["status"]
        except NotFoundError:
            return False
        except Exception as exc:  # the database is away: keep the message, as Celery would
            log.warning("job %s: its state could not be read (%s); its message goes back", job_id, exc)
            return True
        return status not in FINAL_STATUSES


def _job_id(request: Any) -> str | None:
    args = getattr(request, "args", None) or ()
    return str(args[0]) if args and isinstance(args[0], str) else None


def make_celery(
    settings: Settings | None = None, *, observer: JobObserver | None = None, worker: bool = False
) -> Any:
    """A Celery app configured from ``settings`` with the ``run_job`` task registered.

    ``worker``: this is ``autovoice worker``'s main process, which counts every delivery of a job
    (:class:`Deliveries`).
    """
    from celery import Celery
    from celery.signals import task_received
    from celery.worker.request import Request
    from redis.exceptions import ConnectionError as RedisConnectionError
    from sqlalchemy.exc import OperationalError

    s = settings or get_settings()
    app = Celery("autovoice")
    app.conf.update(celery_config(s))
    deliveries = Deliveries(s) if worker else None

    class JobRequest(Request):  # type: ignore[misc]  # celery is untyped
        """A task message in the worker's main process: one whose pool process died goes back to the
        queue (``reject_on_worker_lost``) only while its job can still run."""

        def reject(self, requeue: bool = False) -> None:
            job_id = _job_id(self)
            if requeue and deliveries is not None and job_id and not deliveries.may_requeue(job_id):
                log.warning("job %s is finished; the message of its lost worker is dropped", job_id)
                self.acknowledge()
                return
            super().reject(requeue=requeue)

    if deliveries is not None:

        def _received(sender: Any = None, request: Any = None, **_: Any) -> None:
            job_id = _job_id(request)
            if getattr(request, "name", None) == TASK_NAME and job_id:
                deliveries.received(job_id)

        task_received.connect(_received, weak=False, dispatch_uid="autovoice-deliveries")
    state: dict[str, JobContext] = {}
    lock = threading.Lock()

    def context() -> JobContext:
        # Built lazily in the worker *child* process (after fork), then kept for every later job.
        with lock:
            if "ctx" not in state:
                from autovoice.jobs.events import LocalBus, RedisBus
                from autovoice.storage import Database

                db = Database(s)
                db.migrate()
                url = redis_url(s)
                bus = RedisBus(url) if url else LocalBus()
                state["ctx"] = JobContext(settings=s, db=db, bus=bus, observer=observer)
            return state["ctx"]

    @app.task(  # type: ignore[untyped-decorator]
        name=TASK_NAME,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        autoretry_for=(OperationalError, RedisConnectionError),
        retry_backoff=2,
        retry_backoff_max=60,
        retry_jitter=True,
        max_retries=5,
        Request=JobRequest,
    )
    def run_job_task(self: Any, job_id: str) -> str:
        return run_job(job_id, context())

    return app
