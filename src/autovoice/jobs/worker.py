"""``autovoice worker``: a Celery worker process that runs conversion jobs (distributed mode)."""

from __future__ import annotations

import logging
import socket

from autovoice.config import Settings, get_settings
from autovoice.errors import ParameterError

log = logging.getLogger(__name__)


def run_worker(
    settings: Settings | None = None,
    *,
    concurrency: int = 1,
    loglevel: str = "INFO",
    name: str | None = None,
) -> None:
    """Run a Celery worker until it is stopped (blocks).

    One worker per GPU is the intended layout (pin it with ``CUDA_VISIBLE_DEVICES``); ``concurrency``
    child processes each keep their models loaded between jobs. Jobs are acknowledged only after they
    finish, so a worker killed mid-job has its job redelivered.
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
    app = make_celery(s)
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
