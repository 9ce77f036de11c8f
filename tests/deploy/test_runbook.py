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
from tests.service.conftest import free_port, http_ok, running_app, spawn, stop, submit, wait_for, wait_until

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
