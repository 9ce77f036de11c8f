"""``autovoice worker``: a Celery worker process that runs conversion jobs (distributed mode)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

from autovoice.config import Settings, get_settings
from autovoice.errors import ParameterError
from autovoice.jobs.task import JobObserver

log = logging.getLogger(__name__)


def child_index() -> int:
    """The index (0 .. concurrency-1) of this Celery pool process; a replacement takes its place's."""
    from billiard.process import current_process

    return int(getattr(current_process(), "index", 0) or 0)


def run_worker(
    settings: Settings | None = None,
    *,
    concurrency: int = 1,
    loglevel: str = "INFO",
    name: str | None = None,
    observer: JobObserver | None = None,
    on_child_start: Callable[[int], None] | None = None,
) -> None:
    """Run a Celery worker until it is stopped (blocks).

    One worker per GPU is the intended layout (pin it with ``CUDA_VISIBLE_DEVICES``); ``concurrency``
    child processes each keep their models loaded between jobs. Jobs are acknowledged only after they
    finish, so a worker killed mid-job has its job redelivered.

    Parameters
    ----------
    observer
        Told about every finished job, in the child process that ran it (Prometheus metrics).
    on_child_start
        Called in each child process once it has started, with its index (0 .. ``concurrency`` - 1):
        e.g. to serve that process's metrics on a port of its own.
    """
    from autovoice.jobs.celery_app import QUEUE_NAME, make_celery

    s = settings or get_settings()
    if not s.broker_url:
        raise ParameterError(
            "broker_not_configured",
            "A worker needs a broker: set AUTOVOICE_BROKER_URL (e.g. redis://127.0.0.1:6379/0), and "
            "AUTOVOICE_DATABASE_URL to the server's database.",
        )
    if concurrency < 1:
        raise ParameterError("invalid_parameter", f"concurrency must be >= 1, got {concurrency}.")
    from autovoice.storage import Database

    Database(s).migrate()  # before forking, so children find the schema in place
    app = make_celery(s, observer=observer)
    if on_child_start is not None:
        from celery.signals import worker_process_init

        def _child_started(**_: Any) -> None:
            on_child_start(child_index())

        worker_process_init.connect(_child_started, weak=False)
    app.worker_main(
        [
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            f"--queues={QUEUE_NAME}",
            f"--loglevel={loglevel}",
            f"--hostname={name or 'autovoice@' + socket.gethostname()}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )
