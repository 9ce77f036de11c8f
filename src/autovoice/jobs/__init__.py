"""Jobs: rows in the database, run by a queue (:class:`LocalQueue` threads or :class:`CeleryQueue`).

The one task body is :func:`run_job` (``job_id`` in, row updated); progress travels through the row and an
:class:`EventBus` (in-process or Redis) to WebSocket clients.
"""

from autovoice.jobs.celery_app import redis_url
from autovoice.jobs.events import EventBus, LocalBus, RedisBus
from autovoice.jobs.queue import CeleryQueue, JobQueue, LocalQueue, QueueUnavailableError, make_queue
from autovoice.jobs.store import JobStore, job_snapshot, new_job_id
from autovoice.jobs.task import JobContext, JobInterrupted, JobObserver, event_for, run_job

__all__ = [
    "CeleryQueue",
    "EventBus",
    "JobContext",
    "JobInterrupted",
    "JobObserver",
    "JobQueue",
    "JobStore",
    "LocalBus",
    "LocalQueue",
    "QueueUnavailableError",
    "RedisBus",
    "event_for",
    "job_snapshot",
    "make_queue",
    "new_job_id",
    "redis_url",
    "run_job",
]
