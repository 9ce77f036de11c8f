"""run_job: idempotence, cancel, attempt limits, failures recorded, CUDA OOM fallback; the local bus.

A local queue's shutdown putting its running job back in the queue: tests/jobs/test_pool.py.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from autovoice.config import Settings
from autovoice.jobs import JobContext, LocalBus, run_job
from autovoice.storage import BlobStore, Database, JobRow
from tests.support import queued_conversion


@pytest.fixture
def ctx(settings: Settings) -> Any:
    db = Database(settings)
    db.migrate()
    context = JobContext(settings=settings, db=db, bus=LocalBus())
    yield context
    db.dispose()


def _row(ctx: JobContext, job_id: str) -> JobRow:
    with ctx.db.session() as s:
        row = s.get(JobRow, job_id)
        assert row is not None
        return row


def test_run_twice_is_safe(ctx: JobContext, short_clip: Path, profile_id: str) -> None:
    job_id = queued_conversion(ctx, short_clip, profile_id)
    assert run_job(job_id, ctx) == "completed"
    row = _row(ctx, job_id)
    mix = BlobStore(ctx.settings).job_dir(job_id) / "mix.wav"
    stamp = mix.stat().st_mtime_ns
    assert row.result == {"mix": "mix.wav", "vocals": "mix.vocals.wav", "report": "report.json"}
    assert row.metrics is not None
    assert row.metrics["rtf"] > 0
    assert row.attempts == 1
    # A redelivered message finds the job completed and leaves everything as it is.
    assert run_job(job_id, ctx) == "skipped"
    assert _row(ctx, job_id).attempts == 1
    assert mix.stat().st_mtime_ns == stamp
    assert run_job("job_ffffffffffffffff", ctx) == "skipped"  # deleted meanwhile


def test_cancel_requested_before_start(ctx: JobContext, short_clip: Path, profile_id: str) -> None:
    job_id = queued_conversion(ctx, short_clip, profile_id)
    with ctx.db.session() as s:
        row = s.get(JobRow, job_id)
        assert row is not None
        row.cancel_requested, row.status = True, "running"  # e.g. its worker died after the request
    assert run_job(job_id, ctx) == "cancelled"
    assert _row(ctx, job_id).error == {
        "code": "cancelled",
        "message": "The job was cancelled.",
        "details": {},
    }


def test_attempts_are_bounded(ctx: JobContext, short_clip: Path, profile_id: str) -> None:
    job_id = queued_conversion(ctx, short_clip, profile_id)
    with ctx.db.session() as s:
        row = s.get(JobRow, job_id)
        assert row is not None
        row.attempts, row.status = 3, "running"  # killed its worker three times
    assert run_job(job_id, ctx) == "failed"
    error = _row(ctx, job_id).error
    assert error is not None
    assert error["code"] == "job_attempts_exhausted"


def test_caller_errors_are_recorded(ctx: JobContext, short_clip: Path, profile_id: str) -> None:
    missing_profile = queued_conversion(ctx, short_clip, "prof_000000000000")
    assert run_job(missing_profile, ctx) == "failed"
    assert (_row(ctx, missing_profile).error or {})["code"] == "profile_not_found"
    corrupt = queued_conversion(ctx, short_clip, profile_id)
    (BlobStore(ctx.settings).job_dir(corrupt) / "input.wav").write_bytes(b"RIFF" + b"\0" * 100)
    assert run_job(corrupt, ctx) == "failed"
    assert (_row(ctx, corrupt).error or {})["code"] in ("unsupported_format", "audio_empty")


def test_unexpected_errors_hide_the_trace(
    ctx: JobContext, short_clip: Path, profile_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import autovoice.pipeline

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("secret internal detail")

    monkeypatch.setattr(autovoice.pipeline, "convert_file", boom)
    job_id = queued_conversion(ctx, short_clip, profile_id)
    assert run_job(job_id, ctx) == "failed"
    error = _row(ctx, job_id).error or {}
    assert error["code"] == "internal_error"
    assert "secret" not in error["message"]


def test_cuda_oom_retries_on_cpu(
    ctx: JobContext, short_clip: Path, profile_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    import autovoice.models.devices
    import autovoice.pipeline

    real = autovoice.pipeline.convert_file
    devices: list[str] = []

    def convert(*args: Any, device: str, **kwargs: Any) -> Any:
        devices.append(device)
        if device != "cpu":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(*args, device=device, **kwargs)

    monkeypatch.setattr(autovoice.models.devices, "resolve_device", lambda spec="auto": "cuda:0")
    monkeypatch.setattr(autovoice.pipeline, "convert_file", convert)
    job_id = queued_conversion(ctx, short_clip, profile_id)
    assert run_job(job_id, ctx) == "completed"
    row = _row(ctx, job_id)
    assert devices == ["cuda:0", "cpu"]
    assert row.device == "cpu"
    assert row.metrics is not None
    assert row.metrics["device_fallback"] == {"from": "cuda:0", "to": "cpu", "reason": "cuda_oom"}


def test_local_bus_delivers_across_threads() -> None:
    bus = LocalBus()

    async def main() -> list[Any]:
        async with bus.subscribe("job_0123456789abcdef") as sub:
            threading.Thread(
                target=lambda: [bus.publish("job_0123456789abcdef", {"n": i}) for i in range(3)]
            ).start()
            return [await sub.get(5) for _ in range(3)] + [await sub.get(0.05)]

    assert asyncio.run(main()) == [{"n": 0}, {"n": 1}, {"n": 2}, None]
    bus.publish("job_nobody", {"n": 1})  # no subscriber: nothing happens
