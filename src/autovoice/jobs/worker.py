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


def _route_logging_through_ours(**_: Any) -> None:
    # billiard (Celery's pool) logs on its own "multiprocessing" logger, which does not propagate; left
    # alone, Celery gives it a plain-text handler, so "Process 'ForkPoolWorker-1' pid:.. exited with
    # 'signal 9 (SIGKILL)'" (the worker-lost line) broke the JSON log. Through the root logger it is one
    # JSON line like every other.
    from billiard.util import get_logger

    pool_log = get_logger()
    pool_log.handlers.clear()
    pool_log.propagate = True


def keep_our_logging() -> None:
    """Make Celery leave logging as :func:`autovoice.service.logs.configure_logging` set it, in the worker
    and its pool processes: a receiver of ``setup_logging`` stops Celery from adding handlers of its own,
    and the pool's logger goes through the root logger's (JSON or text) handler."""
    from celery.signals import setup_logging

    setup_logging.connect(_route_logging_through_ours, weak=False, dispatch_uid="autovoice-logging")


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
    from autovoice.storage.space import require_writable

    require_writable(s.data_dir)  # a read-only or full shared data dir: one clear error, not a job's
    from autovoice.jobs.tempdirs import sweep_tempdirs, use_private_tempdir

    # billiard keeps a pymp-* folder that a worker killed whole leaves behind: in a folder of this
    # process's own, swept by the next worker (or embedded server) that starts on this host.
    sweep_tempdirs()
    use_private_tempdir()
    Database(s).migrate()  # before forking, so children find the schema in place
    keep_our_logging()
    app = make_celery(s, observer=observer, worker=True)
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
