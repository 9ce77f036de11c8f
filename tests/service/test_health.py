"""``/health`` and ``/health/ready`` answer from a short-lived cache: no database round trip per call."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

from autovoice.config import Settings
from tests.service.conftest import running_app
from tests.support import wait_until


@contextmanager
def _statements(client: TestClient) -> Iterator[list[str]]:
    """SQL statements the app's database engine runs while the block runs."""
    seen: list[str] = []
    engine = client.app.state.service.db.engine  # type: ignore[attr-defined]

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_health_is_cached(configure: Callable[..., Settings]) -> None:
    configure(health_cache_s="0.5")
    with running_app() as client:
        client.get("/health")  # fills the cache
        with _statements(client) as seen:
            docs = [client.get(path).json() for path in ("/health", "/health/ready") * 20]
        assert seen == []  # 40 probes, no query
        assert all(d["status"] == "ok" and d["database"] is True for d in docs)

        # The cached document is at most health_cache_s old: a new job shows up after that.
        client.app.state.service.jobs.create("job_0123456789abcdef", kind="conversion", params={})  # type: ignore[attr-defined]
        created = time.monotonic()
        with _statements(client) as seen:
            wait_until(
                lambda: client.get("/health").json()["queue"]["depth"] == 1,
                timeout=10,
                what="the cached health document to be refreshed",
            )
        assert seen  # refreshed from the database
        assert time.monotonic() - created < 0.5 + 2.0  # the cache's 0.5 s, and room for a slow machine


def test_health_cache_off(configure: Callable[..., Settings]) -> None:
    configure(health_cache_s="0")
    with running_app() as client:
        with _statements(client) as seen:
            for _ in range(3):
                assert client.get("/health").json()["database"] is True
        assert len(seen) >= 3  # every call asks the database


def test_health_live_touches_nothing(settings: Settings) -> None:
    with running_app() as client, _statements(client) as seen:
        assert client.get("/health/live").json() == {"status": "ok"}
    assert seen == []
