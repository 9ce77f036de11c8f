"""Worker metrics: each ``autovoice worker`` job process serves Prometheus metrics on its own port
(``AUTOVOICE_WORKER_METRICS_PORT`` + its index), so job durations in distributed mode can be scraped.

Runs a real worker against the local Redis and PostgreSQL (skipped when they are absent), converts a
clip through the API and scrapes the worker."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from autovoice.config import Settings
from tests.service.conftest import running_app, submit, wait_for
from tests.support import PG, free_port, postgres_and_redis, reachable, spawn, stop, wait_until

REDIS = "redis://127.0.0.1:6379/11"  # a database of its own; flushed by these tests
WORKER = "from autovoice.cli.serve import worker; worker(concurrency=2, name='metrics@%h')"


def _scrape(port: int) -> dict[str, float]:
    """``{'name{label="v",...}': value}`` of every sample the endpoint serves."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_metrics_server_unit() -> None:
    """The endpoint serves the registry; a port already taken is logged, not fatal."""
    from autovoice.service.observability import Metrics, start_metrics_server

    metrics = Metrics(None)
    port = free_port()
    server = start_metrics_server(metrics, host="127.0.0.1", port=port)
    assert server is not None
    try:
        metrics.job_finished(kind="conversion", preset="fast", status="completed", seconds=3.0, rtf=0.2)
        samples = _scrape(port)
        assert samples['autovoice_job_duration_seconds_count{kind="conversion",preset="fast"}'] == 1
        assert samples['autovoice_jobs_finished_total{kind="conversion",status="completed"}'] == 1
        assert not any(k.startswith("autovoice_queue_depth") for k in samples)  # the server's job
        assert start_metrics_server(Metrics(None), host="127.0.0.1", port=port) is None
    finally:
        server.shutdown()


@pytest.fixture
def worker_with_metrics(
    configure: Callable[..., Settings], settings: Settings, tmp_path: Path
) -> Iterator[dict[str, Any]]:
    import psycopg
    import redis

    if not postgres_and_redis():
        pytest.skip("needs PostgreSQL and Redis on 127.0.0.1")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    redis.Redis.from_url(REDIS).flushdb()
    port = free_port()
    while reachable(port + 1):  # the second process takes the next port
        port = free_port()
    env = {
        "AUTOVOICE_DATABASE_URL": f"{PG}?options=-csearch_path%3D{schema}",
        "AUTOVOICE_BROKER_URL": REDIS,
        "AUTOVOICE_DATA_DIR": str(settings.data_dir),
        "AUTOVOICE_DEVICE": "cpu",
        "AUTOVOICE_LOG_LEVEL": "INFO",
        "AUTOVOICE_RATE_LIMIT": "",
        "AUTOVOICE_WORKER_METRICS_PORT": str(port),
    }
    configure(**{k.removeprefix("AUTOVOICE_").lower(): v for k, v in env.items()})
    log = tmp_path / "worker.log"
    worker = spawn(WORKER, env=env, log=log)
    try:
        wait_until(lambda: "ready" in log.read_text(errors="replace"), timeout=60, what="worker", log=log)
        wait_until(lambda: _answers(port) and _answers(port + 1), timeout=30, what="metrics ports", log=log)
        yield {"port": port, "log": log}
    finally:
        stop(worker)
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        redis.Redis.from_url(REDIS).flushdb()


@pytest.mark.timeout(180)
def test_worker_job_metrics_scraped(
    worker_with_metrics: dict[str, Any], profile_id: str, short_clip: Path
) -> None:
    port = worker_with_metrics["port"]
    key = 'autovoice_job_duration_seconds_count{kind="conversion",preset="fast"}'
    before = [_scrape(p) for p in (port, port + 1)]
    assert all(key not in s for s in before)  # nothing observed yet
    assert all(s["process_resident_memory_bytes{}"] > 0 for s in before)
    with running_app() as client:
        job = submit(client, short_clip, profile_id)
        done = wait_for(
            client, job["id"], until=lambda j: j["status"] in ("completed", "failed"), timeout=120
        )
        assert done["status"] == "completed", worker_with_metrics["log"].read_text()[-3000:]
    after = [_scrape(p) for p in (port, port + 1)]
    # Exactly one of the two job processes ran it, and says so.
    assert sorted(s.get(key, 0) for s in after) == [0, 1]
    ran = next(s for s in after if s.get(key) == 1)
    seconds = ran['autovoice_job_duration_seconds_sum{kind="conversion",preset="fast"}']
    assert 0 < seconds < 120
    assert ran['autovoice_jobs_finished_total{kind="conversion",status="completed"}'] == 1
    assert ran['autovoice_job_rtf_count{kind="conversion",preset="fast"}'] == 1
    assert any(k.startswith("autovoice_model_load_seconds") for k in ran)  # models loaded in that process
