"""Procedures of docs/operations.md run as written: API key rotation with the `autovoice apikey` CLI
against a running server, and draining a worker (SIGTERM: its running job finishes, nothing is
redelivered, the worker exits)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from autovoice.config import Settings
from tests.service.conftest import running_app, submit, wait_for
from tests.support import free_port, http_ok, spawn, stop, wait_until

AUTOVOICE = str(Path(sys.executable).parent / "autovoice")


def cli(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [AUTOVOICE, *args, "--json"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


@pytest.fixture
def keyed_server(settings: Settings, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = tmp_path / "server.log"
    env = {
        "AUTOVOICE_DATA_DIR": str(settings.data_dir),
        "AUTOVOICE_DEVICE": "cpu",
        "AUTOVOICE_REQUIRE_API_KEY": "true",
        "AUTOVOICE_RATE_LIMIT": "",
    }
    proc = spawn(f"from autovoice.service import serve; serve('127.0.0.1', {port})", env=env, log=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(f"{base}/health/live"), timeout=60, what="server start", log=log)
        yield base
    finally:
        stop(proc)


@pytest.mark.timeout(120)
def test_key_rotation_without_downtime(keyed_server: str) -> None:
    def status(key: str) -> int:
        return httpx.get(
            f"{keyed_server}/api/v1/profiles", headers={"X-API-Key": key}, timeout=10
        ).status_code

    old = cli("apikey", "create", "studio-2025")
    assert status(old["key"]) == 200
    # 1. a new key next to the old one; 2. clients move to it; 3. the old one is revoked.
    new = cli("apikey", "create", "studio-2026", "--note", "rotated")
    assert status(new["key"]) == 200
    assert status(old["key"]) == 200  # both work during the switch
    listed = {k["id"]: k for k in cli("apikey", "list")["keys"]}
    assert listed[old["id"]]["last_used_at"]  # shows which keys are still in use
    assert cli("apikey", "revoke", old["id"])["revoked"] is True
    assert status(old["key"]) == 401  # at once, no restart
    assert status(new["key"]) == 200
    assert [k["id"] for k in cli("apikey", "list")["keys"]] == [new["id"]]


# -- draining a worker (distributed mode) ---------------------------------------------------------
WORKER = "from autovoice.cli.serve import worker; worker(concurrency=1, name='drain@%h')"


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_draining_a_worker_finishes_its_job(
    distributed: dict[str, str], profile_id: str, long_clip: Path, tmp_path: Path
) -> None:
    log = tmp_path / "worker.log"
    worker = spawn(WORKER, env=distributed, log=log)
    try:
        wait_until(lambda: "ready" in log.read_text(errors="replace"), timeout=60, what="worker", log=log)
        with running_app() as client:
            job = submit(client, long_clip, profile_id)
            wait_for(client, job["id"], until=lambda j: j["status"] == "running", timeout=90)
            worker.send_signal(signal.SIGTERM)  # what `systemctl stop autovoice-worker@N` sends
            done = wait_for(client, job["id"], until=lambda j: j["status"] not in ("queued", "running"))
            assert done["status"] == "completed", (done, log.read_text(errors="replace")[-2000:])
            assert done["attempts"] == 1  # finished by the draining worker, not redelivered
            assert worker.wait(timeout=60) == 0  # then it exits by itself
            assert "warm shutdown" in log.read_text(errors="replace").lower()
    finally:
        stop(worker)


# -- a worker killed (docs/operations.md, "A worker killed") ---------------------------------------
def _job_process(job_id: str) -> int:
    """The pid of the pool child that runs the job (the row's ``worker`` is ``host:pid``)."""
    from autovoice.config import get_settings
    from autovoice.storage import Database, JobRow

    db = Database(get_settings())
    try:
        with db.session() as s:
            row = s.get(JobRow, job_id)
            assert row is not None
            assert row.worker
            return int(row.worker.rsplit(":", 1)[1])
    finally:
        db.dispose()


def _requeued(job_id: str) -> str | None:
    from autovoice.config import get_settings
    from autovoice.jobs import JobStore
    from autovoice.storage import BlobStore, Database

    s = get_settings()
    db = Database(s)
    try:
        reason: str | None = JobStore(db, BlobStore(s)).get(job_id)["requeued"]
        return reason
    finally:
        db.dispose()


def _metric(body: str, name: str) -> float:
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


@pytest.mark.slow
@pytest.mark.timeout(420)
@pytest.mark.parametrize("what", ["child", "whole"])
def test_a_killed_worker_has_its_job_rerun(
    what: str, distributed: dict[str, str], profile_id: str, long_clip: Path, tmp_path: Path
) -> None:
    """Both kills of the runbook, Redis broker, default heartbeat settings (10 s beats, stale after 60 s):
    `kill -9 <child pid>` (the pool child running the job) and `kill -9 -- -<worker pid>` (the worker
    and its child: its process group, as `systemctl kill -s KILL` or a lost machine). The job runs again
    and completes on a live worker, with ``attempts`` 2 and ``requeued: worker_lost``."""
    import os
    import time

    import psutil

    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    workers = [
        spawn(
            f"from autovoice.cli.serve import worker; worker(concurrency=1, name='{n}@%h')",
            env=distributed,
            log=log,
        )
        for n, log in zip(("kill-a", "kill-b"), logs, strict=True)
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
            child = _job_process(job["id"])
            owner = next(w for w in workers if child in {p.pid for p in psutil.Process(w.pid).children()})
            other = next(w for w in workers if w is not owner)
            killed_at = time.monotonic()
            if what == "child":
                os.kill(child, signal.SIGKILL)
            else:
                os.killpg(owner.pid, signal.SIGKILL)  # spawn() gives each worker its own process group
                owner.wait(timeout=30)
                # Until the reaper acts, the gauge shows the silence (the AutoVoiceJobHeartbeatLost alert).
                wait_until(
                    lambda: _metric(client.get("/metrics").text, "autovoice_job_heartbeat_age_seconds") > 20,
                    timeout=60,
                    what="heartbeat age above 20 s",
                )
            done = wait_for(
                client, job["id"], until=lambda j: j["status"] in ("completed", "failed"), timeout=300
            )
            took = time.monotonic() - killed_at
            print(f"\n{what} killed: job completed {took:.1f} s after the kill")
            assert done["status"] == "completed", (done, [p.read_text()[-2000:] for p in logs])
            assert done["attempts"] == 2
            assert _requeued(job["id"]) == "worker_lost"
            assert took < 240  # issue 19: re-run and finished within 4 minutes
            rerun_by = _job_process(job["id"])
            if what == "whole":
                assert rerun_by in {p.pid for p in psutil.Process(other.pid).children()}
            assert client.get(done["result"]["mix"]).status_code == 200
    finally:
        for w in workers:
            stop(w)
