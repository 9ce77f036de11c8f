"""Whether the process running a job is still there: its heartbeat's age, and on this host its pid.

Used by :func:`autovoice.jobs.task.run_job` (a duplicate delivery of a job that runs elsewhere is left to
it), the queues (a job whose worker died is re-sent) and :class:`autovoice.jobs.store.JobStore`.
"""

from __future__ import annotations

import socket
from datetime import UTC, datetime

from autovoice.config import Settings
from autovoice.storage.tables import utcnow


def worker_alive(worker: str | None, heartbeat_at: datetime | None, stale_after_s: float) -> bool:
    """Whether the process named ``worker`` (``host:pid``) may still be running its job.

    Its heartbeat must be younger than ``stale_after_s``; on this host the process must also still run
    (a killed pool child is seen dead at once, even while it is an unreaped zombie).
    """
    if not worker or heartbeat_at is None:
        return False
    if heartbeat_at.tzinfo is None:
        heartbeat_at = heartbeat_at.replace(tzinfo=UTC)
    if (utcnow() - heartbeat_at).total_seconds() >= stale_after_s:
        return False
    host, _, pid = worker.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        return _process_running(int(pid))
    return True


def _process_running(pid: int) -> bool:
    import psutil

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # someone else's process: it exists
        return True


def effective_stale_after_s(settings: Settings) -> float:
    """``job_stale_after_s``, but never under three heartbeats (one late beat is not a lost worker)."""
    return max(settings.job_stale_after_s, 3 * settings.job_heartbeat_s)
