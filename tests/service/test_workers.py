"""The embedded server's CPU work runs in worker processes: the event loop keeps answering during a
profile build, a build's typed error keeps its HTTP status and code, and a killed worker process leaves
the server serving and its job re-run."""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest
from fastapi.testclient import TestClient

from autovoice.config import Settings
from tests.service.conftest import running_app, submit, wait_for
from tests.support import free_port, http_ok, spawn, speaker_files, stop, wait_until

SERVE = "from autovoice.service import serve; serve('127.0.0.1', {port})"


@pytest.mark.timeout(300)
def test_health_answers_while_a_profile_builds(settings: Settings, speech_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    env = {"AUTOVOICE_DATA_DIR": str(settings.data_dir), "AUTOVOICE_DEVICE": "cpu"}
    server = spawn(SERVE.format(port=port), env=env, log=log)
    try:
        wait_until(lambda: http_ok(f"{base}/health"), timeout=60, what="server start", log=log)
        samples = speaker_files("367")[:10]
        result: dict[str, Any] = {}

        def build() -> None:
            with ExitStack() as files:
                parts = [
                    ("files", (p.name, files.enter_context(p.open("rb")), "audio/flac")) for p in samples
                ]
                r = httpx.post(f"{base}/api/v1/profiles", data={"name": "busy"}, files=parts, timeout=240)
            result["status"], result["body"] = r.status_code, r.text

        builder = threading.Thread(target=build)
        latencies: list[float] = []
        serving = psutil.Process(server.pid)
        server_cpu = _cpu(serving)
        with httpx.Client(base_url=base, timeout=30) as probe:
            builder.start()
            while builder.is_alive():
                started = time.perf_counter()
                assert probe.get("/health").status_code == 200
                latencies.append(time.perf_counter() - started)
                time.sleep(0.05)
        builder.join()
        server_cpu = _cpu(serving) - server_cpu
        workers_cpu = sum(_cpu(child) for child in serving.children(recursive=True))
    finally:
        stop(server)
    assert result["status"] == 201, result["body"]
    # The analysis's CPU time was spent by a worker process, not by the server's.
    assert workers_cpu > 2.0
    assert server_cpu < 0.25 * workers_cpu, (server_cpu, workers_cpu)
    assert len(latencies) >= 20, latencies  # the build lasted long enough to be measured
    # The build's analysis runs in a worker process: the server's event loop is never held for long.
    # (The benchmark measures the 150 ms goal; this bound only has to hold on a busy 2-core machine.)
    assert max(latencies) < 1.0, sorted(latencies)[-5:]


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def test_a_build_error_in_the_worker_keeps_its_status_and_code(settings: Settings, tmp_path: Path) -> None:
    import soundfile as sf

    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16_000 * 4, np.float32), 16_000)
    with running_app() as client, silent.open("rb") as fh:
        r = client.post(
            "/api/v1/profiles", data={"name": "quiet"}, files=[("files", ("quiet.wav", fh, "audio/wav"))]
        )
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "audio_silent"
        assert client.get("/api/v1/profiles").json()["profiles"] == []


def _worker_pid(client: TestClient, job_id: str) -> int:
    from autovoice.storage import JobRow

    state = client.app.state.service  # type: ignore[attr-defined]
    with state.db.session() as s:
        row = s.get(JobRow, job_id)
        assert row is not None
        assert row.worker is not None
        return int(row.worker.rpartition(":")[2])


@pytest.mark.timeout(300)
def test_a_killed_worker_process_leaves_the_server_serving(
    settings: Settings, profile_id: str, long_clip: Path
) -> None:
    with running_app() as client:
        job = submit(client, long_clip, profile_id)
        wait_for(client, job["id"], until=lambda j: j["status"] == "running" and j["progress"] > 0)
        pid = _worker_pid(client, job["id"])
        assert pid != os.getpid()
        os.kill(pid, signal.SIGKILL)
        assert client.get("/health").status_code == 200
        done = wait_for(
            client, job["id"], until=lambda j: j["status"] in ("completed", "failed"), timeout=240
        )
        assert done["status"] == "completed", done
        assert (done["attempts"], done["requeued"]) == (2, "worker_lost")
        assert _worker_pid(client, job["id"]) not in (pid, os.getpid())
        metrics = client.get("/metrics").text
        assert 'autovoice_jobs_requeued_total{reason="worker_lost"} 1.0' in metrics
