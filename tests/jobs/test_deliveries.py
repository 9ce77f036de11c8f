"""Deliveries: every hand-off of a job to a worker process is counted in its row, so a job whose worker
dies before it starts it (``attempts`` never moves) is sent a bounded number of times, then fails with
``worker_lost``; the counts reach the metrics. Celery's side: tests/service/test_celery.py."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from autovoice.config import Settings
from autovoice.jobs import JobContext, JobStore, LocalBus, LocalQueue
from autovoice.jobs.store import max_deliveries
from autovoice.service.observability import Metrics
from autovoice.storage import BlobStore, Database, JobRow
from autovoice.storage.tables import utcnow
from tests.support import queued_conversion, wait_until


@pytest.fixture
def limited(settings: Settings) -> Iterator[JobContext]:
    """A job context whose jobs may start once and be delivered three times."""
    s = settings.model_copy(update={"job_max_attempts": 1, "job_max_deliveries": 3})
    db = Database(s)
    db.migrate()
    yield JobContext(settings=s, db=db, bus=LocalBus(), observer=Metrics(lambda: {}))
    db.dispose()


def _row(ctx: JobContext, job_id: str) -> JobRow:
    with ctx.db.session() as s:
        row = s.get(JobRow, job_id)
        assert row is not None
        return row


def _metrics(ctx: JobContext) -> str:
    return str(ctx.observer.render().decode())  # type: ignore[union-attr]


def _store(ctx: JobContext) -> JobStore:
    return JobStore(ctx.db, BlobStore(ctx.settings))


def test_the_limit_is_never_under_the_attempts(settings: Settings) -> None:
    assert max_deliveries(settings) == 10  # the default
    # A job whose worker dies mid-run is failed by its attempts (job_attempts_exhausted) first.
    assert max_deliveries(settings.model_copy(update={"job_max_attempts": 12})) == 13
    assert max_deliveries(settings.model_copy(update={"job_max_deliveries": 1})) == 4


def test_deliveries_are_counted_then_refused_with_worker_lost(limited: JobContext, short_clip: Path) -> None:
    store = _store(limited)
    job_id = queued_conversion(limited, short_clip, "prof_000000000000")
    assert [store.deliver(job_id, limit=3, stale_after_s=60) for _ in range(3)] == ["send"] * 3
    assert store.most_deliveries() == 3
    # The fourth would be past the limit: the job fails instead of reaching a worker.
    assert store.deliver(job_id, limit=3, stale_after_s=60) == "failed"
    job = store.get(job_id)
    assert (job["status"], job["deliveries"], job["attempts"]) == ("failed", 3, 0)
    assert job["error"]["code"] == "worker_lost"
    assert job["error"]["details"] == {"deliveries": 3, "attempts": 0}
    assert str(limited.settings.data_dir) not in job["error"]["message"]
    assert store.deliver(job_id, limit=3, stale_after_s=60) == "skip"  # finished: nothing to run
    assert store.get(job_id)["deliveries"] == 3
    assert store.most_deliveries() == 0
    assert store.failed_by_code() == {"worker_lost": 1, "job_attempts_exhausted": 0}
    assert store.deliver("job_ffffffffffffffff", limit=3, stale_after_s=60) == "skip"  # deleted


def test_a_duplicate_of_a_job_running_in_a_live_worker_is_not_failed(
    limited: JobContext, short_clip: Path
) -> None:
    store = _store(limited)
    job_id = queued_conversion(limited, short_clip, "prof_000000000000")
    with limited.db.session() as s:
        row = s.get(JobRow, job_id)
        assert row is not None
        row.status, row.deliveries, row.attempts = "running", 3, 1
        row.worker, row.heartbeat_at = f"{socket.gethostname()}:{os.getpid()}", utcnow()
    assert store.deliver(job_id, limit=3, stale_after_s=60) == "send"  # run_job leaves it to that worker
    assert store.get(job_id)["status"] == "running"
    with limited.db.session() as s:  # the same job with its worker gone: the limit holds
        row = s.get(JobRow, job_id)
        assert row is not None
        row.worker = f"{socket.gethostname()}:{_dead_pid()}"
    assert store.deliver(job_id, limit=3, stale_after_s=60) == "failed"


def test_a_cancelled_hand_off_is_taken_back(limited: JobContext, short_clip: Path) -> None:
    store = _store(limited)
    job_id = queued_conversion(limited, short_clip, "prof_000000000000")
    store.deliver(job_id, limit=3, stale_after_s=60)
    store.undeliver(job_id)
    store.undeliver(job_id)  # never below 0
    assert store.get(job_id)["deliveries"] == 0


def test_the_metrics_report_deliveries_and_failures_by_code(limited: JobContext, short_clip: Path) -> None:
    store = _store(limited)
    metrics = Metrics(lambda: {})
    metrics.watch_deliveries(store.most_deliveries, store.failed_by_code)
    job_id = queued_conversion(limited, short_clip, "prof_000000000000")
    body = metrics.render().decode()
    assert "autovoice_job_deliveries_max 0.0" in body
    assert 'autovoice_jobs_failed{code="worker_lost"} 0.0' in body
    store.deliver(job_id, limit=3, stale_after_s=60)
    store.deliver(job_id, limit=3, stale_after_s=60)
    assert "autovoice_job_deliveries_max 2.0" in metrics.render().decode()  # moves with each re-send
    store.fail(job_id, {"code": "storage_full", "message": "x", "details": {}})
    body = metrics.render().decode()
    assert "autovoice_job_deliveries_max 0.0" in body
    assert 'autovoice_jobs_failed{code="storage_full"} 1.0' in body
    # A worker's metrics leave the database's figures to the server.
    worker = Metrics(None)
    worker.watch_deliveries(store.most_deliveries, store.failed_by_code)
    assert "autovoice_job_deliveries_max" not in worker.render().decode()


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def workers_die_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Worker processes spawned from now on die as they start, before taking any work: a
    ``sitecustomize`` on their ``PYTHONPATH`` exits at interpreter start-up (this process is not
    affected: it started long ago)."""
    folder = tmp_path / "dying"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text("import os\nos._exit(3)\n")
    monkeypatch.setenv("PYTHONPATH", str(folder))
    return folder


@pytest.mark.timeout(300)
def test_a_job_whose_worker_dies_at_start_fails_with_worker_lost(
    limited: JobContext,
    short_clip: Path,
    profile_id: str,
    workers_die_at_start: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id = queued_conversion(limited, short_clip, profile_id)
    queue = LocalQueue(limited, workers=1)
    queue.start()
    try:
        queue.submit(job_id)
        wait_until(lambda: _row(limited, job_id).status == "failed", timeout=120, what="job failed")
        row = _row(limited, job_id)
        assert row.error is not None
        assert row.error["code"] == "worker_lost", row.error
        # Sent three times (job_max_deliveries), started never: attempts did not move.
        assert (row.deliveries, row.attempts, row.started_at) == (3, 0, None)
        assert 'autovoice_jobs_failed{code="worker_lost"} 1.0' in _metrics(limited)
        # Counted by the queue once the row says failed (the test may read the row in between).
        failed = 'autovoice_jobs_finished_total{kind="conversion",status="failed"} 1.0'
        wait_until(lambda: failed in _metrics(limited), timeout=10, what="the failed job counted")
        assert queue.processes() == []  # nothing is started again for it
        # Workers that can start again run the next job: the queue was not stuck on the dead one.
        monkeypatch.delenv("PYTHONPATH")
        other = queued_conversion(limited, short_clip, profile_id)
        queue.submit(other)
        wait_until(lambda: _row(limited, other).status == "completed", timeout=240, what="next job")
        assert (_row(limited, other).deliveries, _row(limited, other).attempts) == (1, 1)
    finally:
        queue.shutdown()


@pytest.mark.timeout(400)
def test_a_job_waiting_behind_one_whose_worker_dies_is_not_charged(
    limited: JobContext, long_clip: Path, short_clip: Path, profile_id: str
) -> None:
    """Only the job a dying worker had is sent again: the one waiting behind it reaches a worker once
    (the race that an earlier count per dead pool lost)."""
    first = queued_conversion(limited, long_clip, profile_id)
    behind = queued_conversion(limited, short_clip, profile_id)
    queue = LocalQueue(limited, workers=1)
    queue.start()
    try:
        queue.submit(first)
        queue.submit(behind)

        def running() -> bool:
            row = _row(limited, first)
            return row.status == "running" and row.stage not in ("starting", "queued") and row.progress > 0

        wait_until(running, timeout=120, what="first job running")
        assert _row(limited, behind).deliveries == 0  # waiting in the queue, not in the pool
        worker = _row(limited, first).worker
        assert worker is not None
        os.kill(int(worker.rpartition(":")[2]), signal.SIGKILL)
        wait_until(lambda: _row(limited, behind).status == "completed", timeout=240, what="job behind")
    finally:
        queue.shutdown()
    row = _row(limited, first)
    assert row.error is not None
    assert (row.status, row.error["code"], row.attempts, row.deliveries) == (
        "failed",
        "job_attempts_exhausted",
        2,
        2,
    )
    assert (_row(limited, behind).deliveries, _row(limited, behind).attempts) == (1, 1)
