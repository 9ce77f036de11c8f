"""Distributed mode against the real Redis and PostgreSQL on loopback: CeleryQueue, a real worker
process, Redis pub/sub progress over WebSocket, and redelivery of a job whose worker was killed."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from autovoice.config import Settings
from tests.service.conftest import events_until_end, running_app, submit, wait_for
from tests.support import PG, postgres_and_redis, reachable, spawn, stop, wait_until

REDIS = "redis://127.0.0.1:6379/13"  # a database of its own; flushed by these tests
WORKER = "from autovoice.cli.serve import worker; worker(concurrency=1, name='test@%h')"


pytestmark = pytest.mark.skipif(not postgres_and_redis(), reason="needs PostgreSQL and Redis on 127.0.0.1")


@contextmanager
def _distributed(
    configure: Callable[..., Settings],
    settings: Settings,
    tmp_path: Path,
    *,
    worker: str = WORKER,
    extra: dict[str, str] | None = None,
) -> Iterator[dict[str, Any]]:
    """A fresh PostgreSQL schema and Redis database, the settings pointing at them, and a worker
    running ``worker`` (Python code)."""
    import psycopg
    import redis

    schema = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    redis.Redis.from_url(REDIS).flushdb()
    env = {
        "AUTOVOICE_DATABASE_URL": f"{PG}?options=-csearch_path%3D{schema}",
        "AUTOVOICE_BROKER_URL": REDIS,
        "AUTOVOICE_DATA_DIR": str(settings.data_dir),
        "AUTOVOICE_DEVICE": "cpu",
        "AUTOVOICE_LOG_LEVEL": "INFO",
        "AUTOVOICE_RATE_LIMIT": "",  # these tests poll; limits have their own tests
        **(extra or {}),
    }
    configure(**{k.removeprefix("AUTOVOICE_").lower(): v for k, v in env.items()})
    log = tmp_path / "worker.log"
    proc = spawn(worker, env=env, log=log)
    try:
        wait_until(lambda: "ready" in log.read_text(errors="replace"), timeout=60, what="worker", log=log)
        yield {"worker": proc, "log": log, "env": env}
    finally:
        stop(proc)
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        redis.Redis.from_url(REDIS).flushdb()


@pytest.fixture
def distributed(
    configure: Callable[..., Settings], settings: Settings, tmp_path: Path
) -> Iterator[dict[str, Any]]:
    """A fresh PostgreSQL schema and Redis database, the settings pointing at them, and a worker."""
    with _distributed(configure, settings, tmp_path) as setup:
        yield setup


@pytest.mark.timeout(180)
def test_celery_flow(
    distributed: dict[str, Any], profile_id: str, short_clip: Path, settings: Settings
) -> None:
    with running_app() as client:
        assert client.get("/health").json()["queue"]["mode"] == "celery"
        job = submit(client, short_clip, profile_id)
        events = events_until_end(client, job["id"])
        assert events[-1]["type"] == "completed", (events, distributed["log"].read_text()[-3000:])
        assert any(e["type"] == "progress" and e["status"] == "running" for e in events)
        doc = client.get(f"/api/v1/conversions/{job['id']}").json()
        assert doc["attempts"] == 1
        assert doc["metrics"]["rtf"] > 0
        audio = client.get(doc["result"]["mix"])
        assert audio.status_code == 200
        assert audio.headers["content-type"] == "audio/wav"
        assert client.delete(f"/api/v1/conversions/{job['id']}").status_code == 204
        assert not (settings.data_dir / "jobs" / job["id"]).exists()

        # Cancel in distributed mode: the worker sees the flag at its next progress step.
        second = submit(client, short_clip, profile_id)
        wait_for(client, second["id"], until=lambda j: j["status"] == "running", timeout=60)
        client.delete(f"/api/v1/conversions/{second['id']}")
        final = wait_for(client, second["id"], until=lambda j: j["status"] in ("cancelled", "completed"))
        assert final["status"] == "cancelled"


@pytest.mark.timeout(240)
def test_killed_worker_job_is_redelivered(
    distributed: dict[str, Any], profile_id: str, long_clip: Path
) -> None:
    with running_app() as client:
        job = submit(client, long_clip, profile_id)
        running = wait_for(
            client,
            job["id"],
            until=lambda j: j["status"] == "running" and j["stage"] not in ("starting", "separate"),
            timeout=90,
        )
        from autovoice.config import get_settings
        from autovoice.storage import Database, JobRow

        db = Database(get_settings())
        with db.session() as s:
            row = s.get(JobRow, job["id"])
            assert row is not None
            assert row.worker
            pid = int(row.worker.rsplit(":", 1)[1])
        db.dispose()
        assert pid != distributed["worker"].pid  # the pool child that runs the job
        os.kill(pid, signal.SIGKILL)

        done = wait_for(
            client, job["id"], until=lambda j: j["status"] in ("completed", "failed"), timeout=150
        )
        assert done["status"] == "completed", (done, distributed["log"].read_text()[-3000:])
        assert done["attempts"] == 2
        assert running["attempts"] == 1
        assert client.get(done["result"]["mix"]).status_code == 200
    # The worker's log (stderr; stdout has Celery's start banner) stays JSON lines, the pool's "exited
    # with 'signal 9 (SIGKILL)'" line included.
    import json

    lines = distributed["log"].read_text(errors="replace").splitlines()
    docs = [json.loads(line) for line in lines if line.startswith("{")]
    assert any("exited with" in d["message"] and "signal 9" in d["message"] for d in docs), lines[-20:]
    assert not [line for line in lines if "exited with" in line and not line.startswith("{")]


#: A worker whose pool process dies as it takes a job, before run_job marks it running (a real exit, at
#: the point where the probe's kills landed).
DYING_WORKER = (
    "import os; from celery.signals import task_prerun; "
    "task_prerun.connect(lambda **_: os._exit(3), weak=False); " + WORKER
)


@pytest.mark.timeout(240)
def test_a_job_whose_worker_dies_at_start_fails_with_worker_lost(
    configure: Callable[..., Settings], settings: Settings, tmp_path: Path, profile_id: str, short_clip: Path
) -> None:
    """Celery's reject_on_worker_lost puts the message back each time; the worker's main process counts
    each delivery in the row, fails the job with worker_lost past AUTOVOICE_JOB_MAX_DELIVERIES (3 here)
    and drops its message, so nothing loops on."""
    import json
    import time

    import redis

    limits = {"AUTOVOICE_JOB_MAX_ATTEMPTS": "1", "AUTOVOICE_JOB_MAX_DELIVERIES": "3"}
    with (
        _distributed(configure, settings, tmp_path, worker=DYING_WORKER, extra=limits) as setup,
        running_app() as client,
    ):
        job = submit(client, short_clip, profile_id)
        done = wait_for(
            client, job["id"], until=lambda j: j["status"] in ("completed", "failed"), timeout=180
        )
        log = setup["log"]
        assert done["status"] == "failed", (done, log.read_text()[-3000:])
        assert done["error"]["code"] == "worker_lost"
        assert (done["deliveries"], done["attempts"], done["started_at"]) == (3, 0, None)
        metrics = client.get("/metrics").text
        assert 'autovoice_jobs_failed{code="worker_lost"} 1.0' in metrics
        assert "autovoice_job_deliveries_max 0.0" in metrics  # nothing unfinished any more

        # The message is dropped: neither in the queue nor held unacknowledged, and not delivered again.
        broker = redis.Redis.from_url(REDIS)
        wait_until(
            lambda: broker.llen("autovoice") == 0 and broker.hlen("unacked") == 0,
            timeout=60,
            what="the message to be dropped",
            log=log,
        )

        def received() -> int:
            return log.read_text(errors="replace").count("received")

        seen = received()
        time.sleep(5)
        assert received() == seen == 4  # three deliveries died; the fourth was refused
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        assert any("worker_lost" in line["message"] for line in lines)


@pytest.mark.timeout(180)
def test_a_worker_killed_whole_leaves_no_temporary_folder_behind(
    configure: Callable[..., Settings], settings: Settings, tmp_path: Path
) -> None:
    """billiard keeps a pymp-* folder in the worker's temporary folder; a worker killed with kill -9
    cannot remove it. It lives in the worker's own folder, which the next worker to start removes."""
    import glob

    temp = tmp_path / "tmp"
    temp.mkdir()
    root = temp / f"autovoice-{os.getuid()}"
    with _distributed(configure, settings, tmp_path, extra={"TMPDIR": str(temp)}) as setup:
        first = setup["worker"]
        wait_until(lambda: bool(glob.glob(f"{root}/{first.pid}/pymp-*")), timeout=30, what="pymp folder")
        assert not glob.glob(f"{temp}/pymp-*")  # none in the system temp itself
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        assert (root / str(first.pid)).is_dir()
        log = tmp_path / "second.log"
        second = spawn(WORKER, env=setup["env"], log=log)
        try:
            wait_until(lambda: "ready" in log.read_text(errors="replace"), timeout=60, what="worker", log=log)
            assert not (root / str(first.pid)).exists()
            assert (root / str(second.pid)).is_dir()
        finally:
            stop(second)


RABBIT = "amqp://guest:guest@127.0.0.1:5672//"


def _purge_rabbit() -> None:
    from kombu.connection import Connection

    with Connection(RABBIT) as conn:
        channel = conn.channel()
        channel.queue_declare(queue="autovoice", durable=True, auto_delete=False)
        channel.queue_purge("autovoice")


@pytest.mark.slow
@pytest.mark.skipif(not reachable(5672), reason="needs RabbitMQ on 127.0.0.1:5672")
@pytest.mark.timeout(300)
def test_rabbitmq_redelivers_a_killed_workers_job(
    configure: Callable[..., Settings], settings: Settings, profile_id: str, long_clip: Path, tmp_path: Path
) -> None:
    """RabbitMQ as the broker, a worker killed whole (worker and child): the broker hands the unacked
    message to the other worker as soon as the dead one's connection drops, and the job is taken over
    at once. The reaper is kept out of it (stale after an hour), so this is the broker's path alone."""
    import time

    import psutil
    import psycopg
    import redis

    from autovoice.config import get_settings
    from autovoice.jobs import JobStore
    from autovoice.storage import BlobStore, Database, JobRow

    schema = f"t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    _purge_rabbit()
    env = {
        "AUTOVOICE_DATABASE_URL": f"{PG}?options=-csearch_path%3D{schema}",
        "AUTOVOICE_BROKER_URL": RABBIT,
        "AUTOVOICE_REDIS_URL": REDIS,
        "AUTOVOICE_DATA_DIR": str(settings.data_dir),
        "AUTOVOICE_DEVICE": "cpu",
        "AUTOVOICE_RATE_LIMIT": "",
        "AUTOVOICE_JOB_STALE_AFTER_S": "3600",
    }
    configure(**{k.removeprefix("AUTOVOICE_").lower(): v for k, v in env.items()})
    logs = [tmp_path / "rabbit-a.log", tmp_path / "rabbit-b.log"]
    workers = [
        spawn(
            f"from autovoice.cli.serve import worker; worker(concurrency=1, name='{n}@%h')",
            env=env,
            log=log,
        )
        for n, log in zip(("rabbit-a", "rabbit-b"), logs, strict=True)
    ]
    try:
        for log in logs:

            def ready(log: Path = log) -> bool:
                return "ready" in log.read_text(errors="replace")

            wait_until(ready, timeout=90, what="worker", log=log)
        with running_app() as client:
            job = submit(client, long_clip, profile_id)
            wait_for(
                client,
                job["id"],
                until=lambda j: j["status"] == "running" and j["stage"] not in ("starting", "separate"),
                timeout=120,
            )
            db = Database(get_settings())
            with db.session() as s:
                row = s.get(JobRow, job["id"])
                assert row is not None
                assert row.worker
                child = int(row.worker.rsplit(":", 1)[1])
            owner = next(w for w in workers if child in {p.pid for p in psutil.Process(w.pid).children()})
            killed_at = time.monotonic()
            os.killpg(owner.pid, signal.SIGKILL)
            done = wait_for(
                client, job["id"], until=lambda j: j["status"] in ("completed", "failed"), timeout=200
            )
            took = time.monotonic() - killed_at
            print(f"\nRabbitMQ, worker killed whole: job completed {took:.1f} s after the kill")
            assert done["status"] == "completed", (done, [p.read_text()[-2000:] for p in logs])
            assert done["attempts"] == 2
            assert JobStore(db, BlobStore(get_settings())).get(job["id"])["requeued"] == "worker_lost"
            db.dispose()
            assert took < 120  # no reaper (an hour away), no visibility timeout: the broker's redelivery
    finally:
        for w in workers:
            stop(w)
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        redis.Redis.from_url(REDIS).flushdb()
        _purge_rabbit()
