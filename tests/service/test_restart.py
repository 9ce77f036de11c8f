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


@pytest.mark.timeout(180)
def test_a_restart_sweeps_what_a_crash_left(settings: Settings, profile_id: str, tmp_path: Path) -> None:
    """A server killed while it received an upload leaves the upload's file in a job folder that no row
    owns (the row is written after the upload), and a worker killed while it wrote an output leaves a
    ``.part`` beside the finished outputs; the next start removes both, and nothing a job owns."""
    import socket

    from autovoice.jobs import JobStore, new_job_id
    from autovoice.storage import BlobStore, Database

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    env = {"AUTOVOICE_DATA_DIR": str(settings.data_dir), "AUTOVOICE_DEVICE": "cpu"}
    jobs = settings.data_dir / "jobs"
    server = spawn(SERVE.format(port=port), env=env, log=log)
    upload: socket.socket | None = None
    try:
        wait_until(lambda: http_ok(f"{base}/health/live"), timeout=60, what="server start", log=log)
        # A finished job whose folder holds a partial output next to its results.
        db = Database(settings)
        db.migrate()
        done = new_job_id()
        JobStore(db, BlobStore(settings)).create(done, kind="conversion", params={"profile_id": profile_id})
        JobStore(db, BlobStore(settings)).fail(done, {"code": "cancelled", "message": "x", "details": {}})
        db.dispose()
        (jobs / done).mkdir(parents=True)
        (jobs / done / "mix.wav").write_bytes(b"RIFF" + b"\0" * 100)
        (jobs / done / ".mix.wav.part").write_bytes(b"\0" * 6_800)
        upload = socket.create_connection(("127.0.0.1", port))
        head = (
            b"POST /api/v1/conversions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=XX\r\nContent-Length: 10000000\r\n\r\n"
            b'--XX\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF'
        )
        upload.sendall(head + bytes(200_000))
        wait_until(lambda: any(jobs.glob("job_*/file-0.wav")), timeout=30, what="the upload's file", log=log)
        cut = next(jobs.glob("job_*/file-0.wav")).parent
        stop(server, signal.SIGKILL)  # mid-upload: no row, no clean-up
    finally:
        if upload is not None:
            upload.close()
        stop(server)
    assert cut.is_dir()
    assert (jobs / done / ".mix.wav.part").exists()

    server = spawn(SERVE.format(port=port), env=env, log=log)
    try:
        wait_until(lambda: http_ok(f"{base}/health/live"), timeout=60, what="server restart", log=log)
        assert not cut.exists()
        assert not (jobs / done / ".mix.wav.part").exists()
        assert (jobs / done / "mix.wav").exists()  # the job's own files stay
        assert httpx.get(f"{base}/api/v1/conversions/{done}", timeout=5).status_code == 200
    finally:
        stop(server)
