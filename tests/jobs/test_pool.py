"""Worker processes of the embedded server: jobs run apart from the server, typed errors come back typed,
progress and metrics reach the server, and a killed worker takes no job (nor the queue) with it."""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autovoice.config import Settings
from autovoice.errors import AutoVoiceError, ParameterError, UnsupportedFormatError
from autovoice.jobs import JobContext, LocalBus, LocalQueue
from autovoice.jobs.pool import WorkerCrashedError, WorkerPool, worker_pid
from autovoice.storage import Database, JobRow
from tests.support import queued_conversion, wait_until


@pytest.fixture
def ctx(settings: Settings) -> Iterator[JobContext]:
    from autovoice.service.observability import Metrics

    db = Database(settings)
    db.migrate()
    context = JobContext(settings=settings, db=db, bus=LocalBus(), observer=Metrics(lambda: {}))
    yield context
    db.dispose()


@pytest.fixture
def pool(settings: Settings) -> Iterator[WorkerPool]:
    workers = WorkerPool(settings, workers=1, name="test")
    yield workers
    workers.shutdown()


def _row(ctx: JobContext, job_id: str) -> JobRow:
    with ctx.db.session() as s:
        row = s.get(JobRow, job_id)
        assert row is not None
        return row


def _pid(worker: str | None) -> int:
    assert worker is not None
    host, _, pid = worker.rpartition(":")
    assert host == socket.gethostname()
    return int(pid)


def test_calls_run_in_one_long_lived_child(pool: WorkerPool, settings: Settings) -> None:
    import psutil

    first = pool.submit(worker_pid).result(timeout=60)
    assert first != os.getpid()
    # At a lower priority than the server (worker_nice): requests get the CPU first.
    assert psutil.Process(first).nice() == min(os.nice(0) + settings.worker_nice, 19)
    assert pool.submit(worker_pid).result(timeout=60) == first  # the same process: its models stay loaded
    assert pool.processes() == [first]


def test_a_childs_typed_error_comes_back_typed(pool: WorkerPool, tmp_path: Path) -> None:
    from autovoice.audio import probe
    from autovoice.profiles import validate_profile_name

    not_audio = tmp_path / "notes.wav"
    not_audio.write_bytes(b"these are not samples" * 100)
    cases: list[tuple[Callable[[Any], Any], Any, type[AutoVoiceError], str]] = [
        (validate_profile_name, "!bad name", ParameterError, "invalid_profile_name"),
        (probe, not_audio, UnsupportedFormatError, "unsupported_format"),
    ]
    for fn, arg, cls, code in cases:
        with pytest.raises(AutoVoiceError) as raised:
            pool.submit(fn, arg).result(timeout=60)
        with pytest.raises(AutoVoiceError) as here:
            fn(arg)
        # Raised in the child, raised again here: the same class, code, message and details.
        assert type(raised.value) is cls
        assert raised.value.code == code
        assert raised.value.to_dict() == here.value.to_dict()
    assert pool.submit(worker_pid).result(timeout=60) != os.getpid()  # the pool still works


def test_an_error_that_does_not_pickle_still_comes_back(pool: WorkerPool) -> None:
    # AutoVoiceError itself does not survive pickle.loads (its constructor needs code and message):
    # the pool carries it in another form. A plain exception that pickles is passed as is.
    with pytest.raises(TypeError):
        pickle.loads(pickle.dumps(ParameterError("invalid_parameter", "x", {"a": 1})))
    with pytest.raises(ValueError, match="could not convert"):
        pool.submit(float, "not a number").result(timeout=60)


def test_a_killed_child_fails_its_call_and_the_pool_recovers(pool: WorkerPool) -> None:
    pid = pool.submit(worker_pid).result(timeout=60)
    sleeping = pool.submit(time.sleep, 60)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(WorkerCrashedError) as raised:
        sleeping.result(timeout=60)
    assert raised.value.code == "worker_crashed"
    assert raised.value.http_status == 500
    fresh = pool.submit(worker_pid).result(timeout=60)  # a new process takes the next call
    assert fresh not in (pid, os.getpid())


@pytest.mark.timeout(300)
def test_a_job_runs_in_a_worker_process_with_progress_and_metrics(
    ctx: JobContext, short_clip: Path, profile_id: str
) -> None:
    job_id = queued_conversion(ctx, short_clip, profile_id)
    queue = LocalQueue(ctx, workers=1)

    async def follow() -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        async with ctx.bus.subscribe(job_id) as sub:
            queue.submit(job_id)
            while not events or events[-1]["type"] == "progress":
                event = await sub.get(240)
                assert event is not None, events
                events.append(event)
        return events

    queue.start()
    try:
        events = asyncio.run(follow())
    finally:
        queue.shutdown()
    row = _row(ctx, job_id)
    assert row.status == "completed", row.error
    assert _pid(row.worker) != os.getpid()  # the worker process's pid, not the server's
    # Progress events travel from the worker process to the server's bus, in order, never backwards.
    progress = [e["progress"] for e in events]
    assert events[-1]["type"] == "completed"
    assert len(progress) >= 3
    assert progress == sorted(progress)
    assert {e["stage"] for e in events} - {"starting", "completed"}  # the pipeline's own stages too
    # The job's metrics, recorded in the worker process, are counted by the server's observer.
    body = ctx.observer.render().decode()  # type: ignore[union-attr]
    assert 'autovoice_jobs_finished_total{kind="conversion",status="completed"} 1.0' in body


def _running(ctx: JobContext, job_id: str) -> bool:
    row = _row(ctx, job_id)
    return row.status == "running" and row.stage not in ("starting", "queued") and row.progress > 0


@pytest.mark.timeout(300)
def test_a_job_whose_worker_is_killed_runs_again_in_a_new_one(
    ctx: JobContext, long_clip: Path, profile_id: str
) -> None:
    job_id = queued_conversion(ctx, long_clip, profile_id)
    queue = LocalQueue(ctx, workers=1)
    queue.start()
    try:
        queue.submit(job_id)
        wait_until(lambda: _running(ctx, job_id), timeout=120, what="job running")
        first = _pid(_row(ctx, job_id).worker)
        reached = _row(ctx, job_id).progress
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: _row(ctx, job_id).status == "completed", timeout=240, what="job completed")
    finally:
        queue.shutdown()
    row = _row(ctx, job_id)
    assert (row.attempts, row.requeued) == (2, "worker_lost")
    assert _pid(row.worker) not in (first, os.getpid())
    assert row.progress == 1.0 >= reached
    body = ctx.observer.render().decode()  # type: ignore[union-attr]
    assert 'autovoice_jobs_requeued_total{reason="worker_lost"} 1.0' in body


@pytest.mark.timeout(300)
def test_a_job_that_kills_its_last_allowed_worker_fails_with_a_code(
    settings: Settings, long_clip: Path, profile_id: str
) -> None:
    s = settings.model_copy(update={"job_max_attempts": 1})
    db = Database(s)
    db.migrate()
    ctx = JobContext(settings=s, db=db, bus=LocalBus())
    job_id = queued_conversion(ctx, long_clip, profile_id)
    queue = LocalQueue(ctx, workers=1)
    queue.start()
    try:
        queue.submit(job_id)
        wait_until(lambda: _running(ctx, job_id), timeout=120, what="job running")
        os.kill(_pid(_row(ctx, job_id).worker), signal.SIGKILL)
        wait_until(lambda: _row(ctx, job_id).status == "failed", timeout=120, what="job failed")
        row = _row(ctx, job_id)
        assert row.error is not None
        assert row.error["code"] == "job_attempts_exhausted"
        # The queue still takes work: the next job completes in the new worker process.
        other = queued_conversion(ctx, long_clip, profile_id)
        queue.submit(other)
        wait_until(lambda: _row(ctx, other).status == "completed", timeout=240, what="next job completed")
    finally:
        queue.shutdown()
        db.dispose()


@pytest.mark.timeout(300)
def test_shutdown_puts_a_running_job_back_in_the_queue(
    ctx: JobContext, long_clip: Path, profile_id: str
) -> None:
    job_id = queued_conversion(ctx, long_clip, profile_id)
    queue = LocalQueue(ctx, workers=1)
    queue.start()
    queue.submit(job_id)
    try:
        wait_until(lambda: _running(ctx, job_id), timeout=120, what="job running")
        pid = _pid(_row(ctx, job_id).worker)
    finally:
        queue.shutdown()  # the worker stops at its next progress step
    row = _row(ctx, job_id)
    assert (row.status, row.stage, row.attempts, row.requeued) == ("queued", "interrupted", 0, "shutdown")
    wait_until(lambda: not _alive(pid), timeout=30, what="worker process exited")


def _alive(pid: int) -> bool:
    import psutil

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def test_silence_is_refused_in_the_worker_with_its_code(pool: WorkerPool, tmp_path: Path) -> None:
    # The profile build's own validation (decoding the samples) runs in the worker process.
    import soundfile as sf

    from autovoice.pipeline.enroll import build_profile

    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16_000 * 4, np.float32), 16_000)
    with pytest.raises(AutoVoiceError) as raised:
        pool.submit(build_profile, [silent], name="quiet").result(timeout=120)
    assert raised.value.code == "audio_silent"


def test_a_workers_log_lines_reach_the_server_with_their_job_id(
    ctx: JobContext, short_clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="autovoice")
    job_id = queued_conversion(ctx, short_clip, "prof_000000000bad")  # fails fast: no such profile
    queue = LocalQueue(ctx, workers=1)
    queue.start()
    try:
        queue.submit(job_id)
        wait_until(lambda: _row(ctx, job_id).status == "failed", timeout=120, what="job failed")
        row = _row(ctx, job_id)
        assert row.error is not None
        assert row.error["code"] == "profile_not_found"
        wait_until(
            lambda: any(getattr(r, "job_id", None) == job_id for r in caplog.records),
            timeout=10,
            what="the worker's log line",
        )
    finally:
        queue.shutdown()
    line = next(r for r in caplog.records if getattr(r, "job_id", None) == job_id)
    assert line.process == _pid(row.worker) != os.getpid()  # written in the worker, handled here
    assert job_id in line.getMessage()
