"""The reaper: re-queues ``running`` jobs whose worker stopped writing its heartbeat.

Every process that runs jobs writes ``heartbeat_at`` of its running job every ``job_heartbeat_s``
(:class:`autovoice.jobs.task.Heartbeat`). A worker killed whole (``kill -9`` of the worker and its pool
child, a lost machine, the OOM killer taking both) stops beating; the Redis broker would deliver its
message again only after its visibility timeout (1.25 x ``job_time_limit_s`` + 60 s). Each API server
process runs one :class:`Reaper` thread that, every ``job_heartbeat_s``, moves such jobs (heartbeat older
than ``job_stale_after_s``) back to ``queued`` with ``requeued = "worker_lost"`` and sends their ids to
the queue again; :func:`autovoice.jobs.task.run_job` then counts the new attempt.

Once every :data:`DEBRIS_SWEEP_S` it also removes crash debris from the job folders
(:meth:`~autovoice.jobs.store.JobStore.sweep_debris`): folders no row owns and ``.part`` files untouched
for :data:`DEBRIS_AGE_S` (servers sharing the data dir may be writing younger ones).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from autovoice.config import Settings
from autovoice.jobs.liveness import effective_stale_after_s
from autovoice.jobs.store import JobStore
from autovoice.storage.tables import utcnow

log = logging.getLogger(__name__)
#: How long crash debris (a job folder no row owns, a ``.part`` file) must be untouched to be swept while
#: servers run: an upload or an output being written changes far more often.
DEBRIS_AGE_S = 3600.0
#: How often the reaper sweeps it.
DEBRIS_SWEEP_S = 3600.0


class Reaper:
    """A daemon thread that calls :meth:`sweep` every ``job_heartbeat_s`` until :meth:`stop`.

    Parameters
    ----------
    store
        The job rows.
    submit
        Sends a job id to the queue (:meth:`autovoice.jobs.queue.JobQueue.submit`).
    settings
        ``job_heartbeat_s`` and ``job_stale_after_s``.
    on_requeue
        Told the reason of each job re-queued (``autovoice_jobs_requeued_total``).
    """

    def __init__(
        self,
        store: JobStore,
        submit: Callable[[str], None],
        settings: Settings,
        *,
        on_requeue: Callable[[str], None] | None = None,
    ) -> None:
        self.store = store
        self.submit = submit
        self.on_requeue = on_requeue
        self.interval_s = settings.job_heartbeat_s
        self.stale_after_s = effective_stale_after_s(settings)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="autovoice-reaper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        swept_at = time.monotonic()
        while not self._stop.wait(self.interval_s):
            try:
                self.sweep()
            except Exception as exc:  # the database is away: the next sweep tries again
                log.warning("reaper: sweep failed: %s", exc)
            if time.monotonic() - swept_at >= DEBRIS_SWEEP_S:
                swept_at = time.monotonic()
                try:
                    self.store.sweep_debris(older_than_s=DEBRIS_AGE_S)
                except Exception as exc:  # the database or the data dir is away: next time
                    log.warning("reaper: debris sweep failed: %s", exc)

    def sweep(self) -> list[str]:
        """Re-queue the jobs that lost their worker now; returns their ids."""
        moved = self.store.requeue_lost(self.stale_after_s)
        sent = []
        for job_id in moved:
            try:
                self.submit(job_id)
            except Exception as exc:  # the broker is away: back to `running`, the next sweep retries
                log.warning("reaper: job %s could not be re-queued: %s", job_id, exc)
                self.store.unqueue(job_id, heartbeat_at=utcnow() - timedelta(seconds=self.stale_after_s + 1))
                continue
            log.warning(
                "job %s lost its worker (no heartbeat for %.0f s); re-queued", job_id, self.stale_after_s
            )
            sent.append(job_id)
            if self.on_requeue is not None:
                self.on_requeue("worker_lost")
        return sent
