"""WS /api/v1/conversions/{id}/events never sends a progress lower than one it already sent."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from autovoice.jobs import event_for
from autovoice.service.routes.conversions import _follow


def _snap(progress: float, stage: str, status: str = "running") -> dict[str, Any]:
    return {
        "id": "job_0123456789abcdef",
        "kind": "conversion",
        "status": status,
        "progress": progress,
        "stage": stage,
        "params": {"profile_id": "prof_abc", "preset": "fast"},
        "created_at": datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
        "updated_at": datetime(2026, 12, 7, 9, 1, tzinfo=UTC),
        "started_at": None,
        "finished_at": None,
        "result": None,
        "metrics": None,
        "error": {"code": "audio_silent", "message": "x", "details": {}} if status == "failed" else None,
        "attempts": 1,
        "device": "cpu",
        "cancel_requested": False,
    }


class _Socket:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.closed = False

    async def send_json(self, data: dict[str, Any]) -> None:
        self.sent.append(data)

    async def close(self) -> None:
        self.closed = True


class _Subscription:
    """Events as a bus delivers them: some were published before the first read of the row."""

    def __init__(self, events: list[dict[str, Any] | None]) -> None:
        self.events = list(events)

    async def get(self, timeout: float) -> dict[str, Any] | None:
        return self.events.pop(0) if self.events else None


class _Jobs:
    def __init__(self, snapshots: list[dict[str, Any]]) -> None:
        self.snapshots = snapshots

    def get(self, job_id: str) -> dict[str, Any]:
        return self.snapshots.pop(0) if len(self.snapshots) > 1 else self.snapshots[0]


class _State:
    def __init__(self, jobs: _Jobs) -> None:
        self.jobs = jobs


def test_events_older_than_the_first_read_are_skipped() -> None:
    # Subscribed, then the row is read at 35 %: the queue still holds the events of 0 % published
    # in between (the page's bar went 0, 35, 0, 35...).
    first = _snap(0.35, "pitch")
    queued = [event_for(_snap(0.0, "starting")), event_for(_snap(0.0, "separate"))]
    later = [event_for(_snap(0.5, "convert")), None, event_for(_snap(0.45, "convert"))]
    final = _snap(0.5, "failed", status="failed")
    ws = _Socket()
    sub = _Subscription([*queued, *later, {"type": "failed"}])
    jobs = _Jobs([_snap(0.3, "convert"), final])  # a stale read on the poll, then the end
    asyncio.run(_follow(ws, _State(jobs), sub, first))  # type: ignore[arg-type]
    progress = [m["progress"] for m in ws.sent]
    assert progress == sorted(progress), progress
    assert progress[0] == 0.35
    assert 0.5 in progress
    assert ws.sent[-1]["type"] == "failed"
    assert ws.closed
