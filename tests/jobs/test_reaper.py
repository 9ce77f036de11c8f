"""Jobs that cannot get stuck: the heartbeat of a running job, the reaper that re-queues a job whose
worker stopped beating (``requeued = "worker_lost"``, one more attempt), duplicate deliveries left to
the live worker, a superseded run that stops, and the gauges of running jobs."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from autovoice.config import Settings
from autovoice.errors import AutoVoiceError
from autovoice.jobs import JobContext, JobStore, LocalBus, LocalQueue, new_job_id, run_job
from autovoice.jobs.liveness import worker_alive
from autovoice.jobs.reaper import Reaper
from autovoice.storage import BlobStore, Database, JobRow
from autovoice.storage.tables import utcnow
from tests.support import queued_conversion, wait_until

HERE = socket.gethostname()


@pytest.fixture
def ctx(settings: Settings) -> Any:
    fast = settings.model_copy(update={"job_heartbeat_s": 0.1, "job_stale_after_s": 1.0})
    db = Database(fast)
    db.migrate()
    yield JobContext(settings=fast, db=db, bus=LocalBus())
    db.dispose()


def _set(ctx: JobContext, job_id: str, **values: Any) -> None:
    with ctx.db.session() as s:
        row = s.get(JobRow, job_id)
        assert row is not None
        for key, value in values.items():
            setattr(row, key, value)


def _row(ctx: JobContext, job_id: str) -> JobRow:
    with ctx.db.session() as s:
        row = s.get(JobRow, job_id)
        assert row is not None
        s.expunge(row)
        return row


def _lost(ctx: JobContext, job_id: str, *, worker: str = "gone-host:4242", age_s: float = 120.0) -> None:
    """The row as a worker killed whole leaves it: running, one attempt, a heartbeat ``age_s`` old."""
    old = utcnow() - timedelta(seconds=age_s)
    _set(ctx, job_id, status="running", stage="convert", attempts=1, worker=worker, heartbeat_at=old)


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_worker_alive_needs_a_fresh_heartbeat_and_here_a_running_process() -> None:
    import psutil

    fresh, stale = utcnow() - timedelta(seconds=5), utcnow() - timedelta(seconds=300)
    assert worker_alive(f"{HERE}:{os.getpid()}", fresh, 60)
    assert not worker_alive(f"{HERE}:{os.getpid()}", stale, 60)  # alive but silent: frozen, taken over
    assert not worker_alive(f"{HERE}:{_dead_pid()}", fresh, 60)  # a killed pool child here: at once
    assert worker_alive("elsewhere:1", fresh, 60)
    assert not worker_alive("elsewhere:1", stale, 60)
    assert not worker_alive("elsewhere:1", None, 60)
    assert not worker_alive(None, fresh, 60)
    # A killed child whose parent died too, not yet reaped (no init reaps it in some containers).
    zombie = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 10
        while psutil.Process(zombie.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not worker_alive(f"{HERE}:{zombie.pid}", fresh, 60)
    finally:
        zombie.wait()


def test_heartbeat_is_written_while_a_job_runs_without_progress(
    ctx: JobContext, short_clip: Path, profile_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import autovoice.pipeline

    job_id = queued_conversion(ctx, short_clip, profile_id)
    seen: dict[str, Any] = {}

    def silent(*args: Any, progress: Any, **kwargs: Any) -> Any:
        first = _row(ctx, job_id)
        time.sleep(1.0)  # a long stage that reports nothing
        last = _row(ctx, job_id)
        seen.update(first=first, last=last)
        raise AutoVoiceError("audio_silent", "stop here")

    monkeypatch.setattr(autovoice.pipeline, "convert_file", silent)
    assert run_job(job_id, ctx) == "failed"
    first, last = seen["first"], seen["last"]
    assert first.heartbeat_at is not None
    assert last.heartbeat_at is not None
    assert (last.heartbeat_at - first.heartbeat_at).total_seconds() >= 0.5  # beats every 0.1 s
    assert last.updated_at == first.updated_at  # no progress: what the no-progress gauge measures
    assert last.worker == ctx.worker
    beat = _row(ctx, job_id).heartbeat_at
    time.sleep(0.4)
    assert _row(ctx, job_id).heartbeat_at == beat  # the heartbeat ends with the job


def test_reaper_requeues_a_job_whose_worker_stopped_beating(
    ctx: JobContext, short_clip: Path, profile_id: str
) -> None:
    store = JobStore(ctx.db, ctx.blobs)
    lost = queued_conversion(ctx, short_clip, profile_id)
    alive = queued_conversion(ctx, short_clip, profile_id)
    _lost(ctx, lost)
    _lost(ctx, alive, worker="busy-host:7", age_s=0.0)
    sent: list[str] = []
    reasons: list[str] = []
    reaper = Reaper(store, sent.append, ctx.settings, on_requeue=reasons.append)
    assert reaper.stale_after_s == 1.0
    assert reaper.sweep() == [lost]
    assert sent == [lost]
    assert reasons == ["worker_lost"]
    row = _row(ctx, lost)
    assert (row.status, row.stage, row.requeued, row.attempts) == ("queued", "requeued", "worker_lost", 1)
    assert _row(ctx, alive).status == "running"  # its worker beats: left alone
    assert reaper.sweep() == []  # moved once
    # Another worker takes it: a second attempt that finishes, the reason kept on the row.
    assert run_job(lost, ctx) == "completed"
    done = store.get(lost)
    assert (done["status"], done["attempts"], done["requeued"]) == ("completed", 2, "worker_lost")


def test_a_job_the_broker_cannot_take_stays_for_the_next_sweep(
    ctx: JobContext, short_clip: Path, profile_id: str
) -> None:
    store = JobStore(ctx.db, ctx.blobs)
    job_id = queued_conversion(ctx, short_clip, profile_id)
    _lost(ctx, job_id)

    def down(_: str) -> None:
        raise ConnectionError("broker down")

    assert Reaper(store, down, ctx.settings).sweep() == []
    assert _row(ctx, job_id).status == "running"
    sent: list[str] = []
    assert Reaper(store, sent.append, ctx.settings).sweep() == [job_id]


def test_stale_after_is_at_least_three_heartbeats(settings: Settings) -> None:
    s = settings.model_copy(update={"job_heartbeat_s": 30.0, "job_stale_after_s": 10.0})
    assert Reaper(JobStore(Database(s), BlobStore(s)), print, s).stale_after_s == 90.0


def test_duplicate_delivery_is_left_to_the_live_worker(
    ctx: JobContext, short_clip: Path, profile_id: str
) -> None:
    job_id = queued_conversion(ctx, short_clip, profile_id)
    _lost(ctx, job_id, worker=f"{HERE}:{os.getpid()}", age_s=0.0)
    other = JobContext(settings=ctx.settings, db=ctx.db, bus=LocalBus(), worker=f"{HERE}:1")
    assert run_job(job_id, other) == "skipped"  # the row's worker (this process) is alive
    _lost(ctx, job_id, worker="far-host:9", age_s=0.0)
    assert run_job(job_id, other) == "skipped"  # it beats elsewhere
    assert _row(ctx, job_id).attempts == 1


def test_redelivery_after_a_killed_child_takes_over_at_once(
    ctx: JobContext, short_clip: Path, profile_id: str
) -> None:
    from autovoice.service.observability import Metrics

    metrics = Metrics(None)  # a worker's: it counts the takeover
    worker = JobContext(settings=ctx.settings, db=ctx.db, bus=LocalBus(), observer=metrics)
    job_id = queued_conversion(ctx, short_clip, profile_id)
    _lost(ctx, job_id, worker=f"{HERE}:{_dead_pid()}", age_s=0.0)  # beat just now, but dead
    assert run_job(job_id, worker) == "completed"
    row = _row(ctx, job_id)
    assert (row.attempts, row.requeued, row.worker) == (2, "worker_lost", worker.worker)
    assert 'autovoice_jobs_requeued_total{reason="worker_lost"} 1.0' in metrics.render().decode()


def test_a_superseded_run_stops_and_leaves_the_row(
    ctx: JobContext, short_clip: Path, profile_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import autovoice.pipeline

    job_id = queued_conversion(ctx, short_clip, profile_id)
    started = threading.Event()

    def slow(*args: Any, progress: Any, **kwargs: Any) -> Any:
        started.set()
        for _ in range(400):
            progress(0.5, "convert")
            time.sleep(0.05)
        raise AssertionError("never superseded")

    monkeypatch.setattr(autovoice.pipeline, "convert_file", slow)
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(run_job(job_id, ctx)))
    thread.start()
    assert started.wait(30)
    # What the reaper does when this process stops beating (e.g. frozen): the job goes back to queued.
    _set(ctx, job_id, status="queued", stage="requeued", requeued="worker_lost")
    thread.join(30)
    assert result == ["superseded"]
    row = _row(ctx, job_id)
    assert (row.status, row.stage, row.requeued) == ("queued", "requeued", "worker_lost")


def test_local_queue_reaps_and_reruns_a_lost_job(ctx: JobContext, short_clip: Path, profile_id: str) -> None:
    from autovoice.service.observability import Metrics

    metrics = Metrics(lambda: {})
    ctx.observer = metrics
    restarted = queued_conversion(ctx, short_clip, profile_id)
    _lost(ctx, restarted, age_s=0.0)  # running when the server died: re-queued at start
    queue = LocalQueue(ctx, workers=1)
    queue.start()
    try:
        assert _row(ctx, restarted).requeued == "restart"
        lost = queued_conversion(ctx, short_clip, profile_id)
        _lost(ctx, lost)  # another process's job that stopped beating while this one runs
        deadline = time.monotonic() + 120
        while _row(ctx, lost).status != "completed":
            assert time.monotonic() < deadline, _row(ctx, lost).status
            time.sleep(0.2)
        row = _row(ctx, lost)
        assert (row.attempts, row.requeued) == (2, "worker_lost")
        assert 'autovoice_jobs_requeued_total{reason="worker_lost"} 1.0' in metrics.render().decode()
        while _row(ctx, restarted).status != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        queue.shutdown()


def test_running_job_gauges(settings: Settings) -> None:
    from autovoice.service.observability import Metrics

    s = settings.model_copy(update={"job_heartbeat_s": 0.1, "job_stale_after_s": 3600.0})
    db = Database(s)
    db.migrate()
    metrics = Metrics(lambda: {})
    ctx = JobContext(settings=s, db=db, bus=LocalBus(), observer=metrics)
    queue = LocalQueue(ctx, workers=1)
    body = metrics.render().decode()
    assert "autovoice_job_heartbeat_age_seconds" not in body  # nothing watched before the queue starts
    queue.start()
    try:
        assert re.search(
            r"^autovoice_job_running_without_progress_seconds 0\.0$", metrics.render().decode(), re.M
        )
        job_id = new_job_id()
        JobStore(db, BlobStore(s)).create(job_id, kind="conversion", params={})
        now = utcnow()
        with db.session() as sess:
            row = sess.get(JobRow, job_id)
            assert row is not None
            row.status, row.worker = "running", "far-host:1"
            row.heartbeat_at, row.updated_at = now - timedelta(seconds=100), now - timedelta(seconds=200)
        body = metrics.render().decode()
        beat = float(re.findall(r"^autovoice_job_heartbeat_age_seconds (\S+)$", body, re.M)[0])
        still = float(re.findall(r"^autovoice_job_running_without_progress_seconds (\S+)$", body, re.M)[0])
        assert 100 <= beat < 130
        assert 200 <= still < 230
    finally:
        queue.shutdown()
        db.dispose()
    worker = Metrics(None)  # a worker's metrics leave the database gauges to the server
    worker.watch_running(lambda: {"heartbeat_s": 1.0, "progress_s": 1.0})
    assert "autovoice_job_heartbeat_age_seconds" not in worker.render().decode()


def test_the_reaper_sweeps_crash_debris_while_servers_run(
    ctx: JobContext, short_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between starts, the reaper's hourly sweep removes what a crash left once it is an hour old (here
    both shortened): a job folder no row owns; a queued job's folder stays."""
    import autovoice.jobs.reaper as reaper_module

    monkeypatch.setattr(reaper_module, "DEBRIS_SWEEP_S", 0.0)
    monkeypatch.setattr(reaper_module, "DEBRIS_AGE_S", 0.0)
    s = ctx.settings.model_copy(update={"job_heartbeat_s": 0.1})
    store = JobStore(ctx.db, BlobStore(s))
    kept = queued_conversion(ctx, short_clip, "prof_000000000000")
    orphan = BlobStore(s).job_dir(new_job_id())
    orphan.mkdir(parents=True)
    (orphan / "file-0.wav").write_bytes(b"RIFF")
    reaper = Reaper(store, lambda _: None, s)
    reaper.start()
    try:
        wait_until(lambda: not orphan.exists(), timeout=10, what="the orphan folder swept")
    finally:
        reaper.stop()
    assert (BlobStore(s).job_dir(kept) / "input.wav").exists()
