"""The Celery application of distributed mode: one task, :data:`TASK_NAME`, that runs ``run_job(id)``.

Messages carry the job id only. Late acknowledgement plus ``reject_on_worker_lost`` means a job whose
worker process dies is redelivered; :func:`autovoice.jobs.task.run_job` makes the second run safe.
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
from autovoice.jobs.task import JobContext, JobObserver, run_job

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


def make_celery(settings: Settings | None = None, *, observer: JobObserver | None = None) -> Any:
    """A Celery app configured from ``settings`` with the ``run_job`` task registered."""
    from celery import Celery
    from redis.exceptions import ConnectionError as RedisConnectionError
    from sqlalchemy.exc import OperationalError

    s = settings or get_settings()
    app = Celery("autovoice")
    app.conf.update(celery_config(s))
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
    )
    def run_job_task(self: Any, job_id: str) -> str:
        return run_job(job_id, context())

    return app
