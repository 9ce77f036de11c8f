"""Embedded mode survives a crash: a server killed mid-job re-queues the job when it starts again."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from autovoice.config import Settings
from tests.support import free_port, http_ok, spawn, stop, wait_until

SERVE = "from autovoice.service import serve; serve('127.0.0.1', {port})"


@pytest.mark.timeout(240)
def test_killed_server_requeues_interrupted_job(
    settings: Settings, profile_id: str, long_clip: Path, tmp_path: Path
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    env = {"AUTOVOICE_DATA_DIR": str(settings.data_dir), "AUTOVOICE_DEVICE": "cpu"}
    server = spawn(SERVE.format(port=port), env=env, log=log)
    try:
        wait_until(lambda: http_ok(f"{base}/health/live"), timeout=60, what="server start", log=log)
        with long_clip.open("rb") as fh:
            r = httpx.post(
                f"{base}/api/v1/conversions",
                data={"profile_id": profile_id, "preset": "fast", "separation": "none"},
                files={"file": (long_clip.name, fh, "audio/wav")},
                timeout=30,
            )
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]

        def running() -> bool:
            job = httpx.get(f"{base}/api/v1/conversions/{job_id}", timeout=5).json()
            return bool(job["status"] == "running" and job["stage"] not in ("starting", "separate"))

        wait_until(running, timeout=60, what="job running", log=log)
        stop(server, signal.SIGKILL)  # a crash: no shutdown hook runs
    finally:
        stop(server)

    server = spawn(SERVE.format(port=port), env=env, log=log)
    try:
        wait_until(lambda: http_ok(f"{base}/health/live"), timeout=60, what="server restart", log=log)

        def finished() -> bool:
            job = httpx.get(f"{base}/api/v1/conversions/{job_id}", timeout=5).json()
            return bool(job["status"] in ("completed", "failed"))

        wait_until(finished, timeout=120, what="re-queued job to finish", log=log)
        job = httpx.get(f"{base}/api/v1/conversions/{job_id}", timeout=5).json()
        assert job["status"] == "completed", job
        assert job["attempts"] == 2  # the interrupted run counted, the second one finished
        assert job["requeued"] == "restart"  # why it ran again, in the API
        audio = httpx.get(f"{base}{job['result']['mix']}", timeout=10)
        assert audio.status_code == 200
        assert len(audio.content) > 100_000
    finally:
        stop(server)
