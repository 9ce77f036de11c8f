"""``run_worker`` refuses to start without a broker or with a bad concurrency (before touching anything)."""

from __future__ import annotations

from pathlib import Path

import pytest

from autovoice.config import Settings
from autovoice.errors import ParameterError
from autovoice.jobs.worker import child_index, run_worker


def test_worker_needs_a_broker(tmp_path: Path) -> None:
    with pytest.raises(ParameterError) as err:
        run_worker(Settings(broker_url=None, data_dir=tmp_path))
    assert err.value.code == "broker_not_configured"
    assert "AUTOVOICE_BROKER_URL" in err.value.message


def test_worker_concurrency_checked(tmp_path: Path) -> None:
    with pytest.raises(ParameterError) as err:
        run_worker(Settings(broker_url="redis://127.0.0.1:1/0", data_dir=tmp_path), concurrency=0)
    assert err.value.code == "invalid_parameter"


def test_child_index_outside_a_pool() -> None:
    assert child_index() == 0  # the main process of a worker (or anything else) is index 0


def test_pool_lines_are_json_like_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The worker-lost line (billiard's own logger) is one JSON line in the worker's JSON log, not
    plain text from a handler Celery adds."""
    import io
    import json
    import logging

    from billiard.util import error

    from autovoice.jobs.celery_app import make_celery
    from autovoice.jobs.worker import keep_our_logging
    from autovoice.service.logs import configure_logging

    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("INFO", json=True, stream=stream)
    try:
        keep_our_logging()
        app = make_celery(Settings(broker_url="memory://", data_dir=tmp_path))
        app.log.setup_logging_subsystem(loglevel="INFO")  # what a starting worker (and child) does
        error("Process %r pid:%r exited with %r", "ForkPoolWorker-1", 4242, "signal 9 (SIGKILL)")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    docs = [json.loads(line) for line in stream.getvalue().splitlines()]
    lost = [d for d in docs if "exited with" in d["message"]]
    assert len(lost) == 1, docs
    assert lost[0]["level"] == "ERROR"
    assert "ForkPoolWorker-1" in lost[0]["message"]
    assert "exited with" not in capsys.readouterr().err  # no plain-text copy


def test_worker_refuses_a_read_only_data_dir(tmp_path: Path) -> None:
    from autovoice.errors import StorageError
    from tests.storage.mounts import remount_read_only, tmpfs

    with tmpfs(tmp_path / "ro", size_kib=1024) as mnt:
        remount_read_only(mnt)
        settings = Settings(broker_url="redis://127.0.0.1:1/0", data_dir=mnt)
        with pytest.raises(StorageError) as err:
            run_worker(settings)
    assert err.value.code == "storage_read_only"
    assert "Read-only file system" in err.value.message
