"""Several server processes on one port (``server_workers`` > 1), distributed mode only: requests are
spread over them, rate-limit counters are shared through Redis, and ``/metrics`` adds up every process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from autovoice.config import Settings
from autovoice.errors import ParameterError
from tests.support import PG, free_port, http_ok, postgres_and_redis, spawn, stop, wait_until

REDIS = "redis://127.0.0.1:6379/10"  # a database of its own; flushed by these tests


def test_embedded_mode_refuses_several_processes(settings: Settings) -> None:
    from autovoice.service.app import serve

    with pytest.raises(ParameterError) as err:
        serve(settings=settings, workers=2, banner=False)
    assert err.value.code == "server_workers_need_broker"


@pytest.fixture
def two_processes(settings: Settings, tmp_path: Path) -> Iterator[dict[str, Any]]:
    import psutil
    import psycopg
    import redis

    if not postgres_and_redis():
        pytest.skip("needs PostgreSQL and Redis on 127.0.0.1")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    redis.Redis.from_url(REDIS).flushdb()
    port = free_port()
    env = {
        "AUTOVOICE_DATABASE_URL": f"{PG}?options=-csearch_path%3D{schema}",
        "AUTOVOICE_BROKER_URL": REDIS,
        "AUTOVOICE_DATA_DIR": str(settings.data_dir),
        "AUTOVOICE_DEVICE": "cpu",
        "AUTOVOICE_RATE_LIMIT": "30/minute",
        "AUTOVOICE_SERVER_WORKERS": "2",
    }
    log = tmp_path / "server.log"
    server = spawn(f"from autovoice.service import serve; serve('127.0.0.1', {port})", env=env, log=log)
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/health/live"), timeout=90, what="start", log=log)
        children = psutil.Process(server.pid).children(recursive=True)
        yield {"base": f"http://127.0.0.1:{port}", "children": children, "log": log}
    finally:
        stop(server)
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        redis.Redis.from_url(REDIS).flushdb()


@pytest.mark.timeout(180)
def test_two_server_processes_share_limits_and_metrics(two_processes: dict[str, Any]) -> None:
    base = two_processes["base"]
    cmdlines = [" ".join(p.cmdline()) for p in two_processes["children"]]
    servers = [c for c in cmdlines if "spawn_main" in c and "resource_tracker" not in c]
    assert len(servers) == 2, (cmdlines, two_processes["log"].read_text()[-2000:])
    codes = []
    for _ in range(40):  # new connections, so the kernel spreads them over both processes
        with httpx.Client(base_url=base) as client:
            codes.append(client.get("/api/v1/profiles").status_code)
    # One budget for the client, whichever process answered (counters in Redis).
    assert sorted(codes) == [200] * 30 + [429] * 10
    text = httpx.get(f"{base}/metrics", timeout=10).text
    seen = {
        s.labels["status"]: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "autovoice_http_requests_total" and s.labels.get("route") == "/api/v1/profiles"
    }
    assert seen == {"200": 30.0, "429": 10.0}  # every process's requests, added up
    assert "autovoice_queue_depth 0.0" in text
    assert httpx.get(f"{base}/health", timeout=10).json()["queue"]["mode"] == "celery"
