"""A job's progress never goes backwards: on the row, in its events, across stages and attempts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from autovoice.config import Settings
from autovoice.errors import AudioError
from autovoice.jobs import JobContext, LocalBus, run_job
from autovoice.storage import Database, JobRow
from tests.support import queued_conversion


class RecordingBus(LocalBus):
    """The in-process bus, keeping every event it publishes."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def publish(self, job_id: str, event: dict[str, Any]) -> None:
        self.events.append(dict(event))
        super().publish(job_id, event)


@pytest.fixture
def ctx(settings: Settings) -> Any:
    db = Database(settings)
    db.migrate()
    context = JobContext(settings=settings, db=db, bus=RecordingBus())
    yield context
    db.dispose()


def _progress(ctx: JobContext, job_id: str) -> float:
    with ctx.db.session() as s:
        row = s.get(JobRow, job_id)
        assert row is not None
        return float(row.progress)


def test_progress_is_monotonic_across_stages_and_attempts(
    ctx: JobContext, short_clip: Path, profile_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stages that count 0..1 each (separation, then the engine; a CPU retry starts again) and a second
    attempt after a requeue: the row and the events only ever move forward."""
    import autovoice.pipeline

    bus = ctx.bus
    assert isinstance(bus, RecordingBus)
    attempt = {"n": 0}

    def convert(*args: Any, progress: Any, **kwargs: Any) -> Any:
        attempt["n"] += 1
        if attempt["n"] == 1:
            for i, fraction in enumerate((0.0, 0.35, 0.0, 0.6)):
                progress(fraction, f"stage{i}")
            ctx.stopping.set()  # the server stops: the job goes back to the queue
            progress(0.61, "stage4")
        for i, fraction in enumerate((0.0, 0.1, 0.7, 0.2, 0.8)):
            progress(fraction, f"retry{i}")
        raise AudioError("audio_silent", "The audio is silent.")

    monkeypatch.setattr(autovoice.pipeline, "convert_file", convert)
    job_id = queued_conversion(ctx, short_clip, profile_id)
    assert run_job(job_id, ctx) == "queued"
    assert _progress(ctx, job_id) == pytest.approx(0.6)
    ctx.stopping.clear()
    assert run_job(job_id, ctx) == "failed"
    assert _progress(ctx, job_id) == pytest.approx(0.8)
    seen = [e["progress"] for e in bus.events if e["job_id"] == job_id]
    assert seen == sorted(seen), seen
    assert seen[-1] == pytest.approx(0.8)
    # Every stage name still arrives (with the progress reached so far).
    stages = [e["stage"] for e in bus.events]
    assert {"stage2", "retry0", "retry3"} <= set(stages)
