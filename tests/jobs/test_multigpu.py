"""One worker per GPU (docs/operations.md): two CPU workers pinned to device indices 0 and 1 with
CUDA_VISIBLE_DEVICES, as ``autovoice-worker@0`` / ``@1`` do, share the queue; each job is run by a process
of one of them, and each worker reports its own pin (its metrics endpoint, its job processes)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deploy.conftest import configure, distributed
from tests.service.conftest import running_app, submit, wait_for
from tests.support import free_port, http_ok, spawn, stop, wait_until

__all__ = ["configure", "distributed"]

WORKER = "from autovoice.cli.serve import worker; worker(concurrency=1, name='autovoice-gpu{gpu}@%h')"


def pinned_to(pid: int) -> str | None:
    """CUDA_VISIBLE_DEVICES of a running process, from the kernel (what CUDA itself would read)."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    for entry in environ:
        if entry.startswith(b"CUDA_VISIBLE_DEVICES="):
            return entry.split(b"=", 1)[1].decode()
    return None


def job_workers(job_ids: list[str]) -> list[str]:
    """The ``worker`` (host:pid of the process that ran it) of each job row."""
    from autovoice.config import get_settings
    from autovoice.storage import Database, JobRow

    db = Database(get_settings())
    try:
        with db.session() as s:
            rows = [s.get(JobRow, job_id) for job_id in job_ids]
            return [row.worker for row in rows if row is not None and row.worker]
    finally:
        db.dispose()


def metric(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        m = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
            out.append((labels, float(m.group(2))))
    return out


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_two_pinned_workers_each_run_jobs_on_their_own_device(
    distributed: dict[str, str], profile_id: str, short_clip: Path, tmp_path: Path
) -> None:
    workers: dict[str, Any] = {}
    ports = {"0": free_port(), "1": free_port()}
    try:
        for gpu, port in ports.items():
            env = {**distributed, "CUDA_VISIBLE_DEVICES": gpu, "AUTOVOICE_WORKER_METRICS_PORT": str(port)}
            workers[gpu] = spawn(WORKER.format(gpu=gpu), env=env, log=tmp_path / f"worker{gpu}.log")
        for gpu, port in ports.items():
            wait_until(
                lambda port=port: http_ok(f"http://127.0.0.1:{port}/metrics"),
                timeout=90,
                what=f"worker {gpu}",
                log=tmp_path / f"worker{gpu}.log",
            )
        with running_app() as client:
            jobs = [submit(client, short_clip, profile_id) for _ in range(2)]
            done = [
                wait_for(
                    client, j["id"], until=lambda j: j["status"] not in ("queued", "running"), timeout=150
                )
                for j in jobs
            ]
        assert [j["status"] for j in done] == ["completed", "completed"], done
        # The process that ran each job (host:pid in the job row) is pinned to one device or the other.
        ran_by = job_workers([j["id"] for j in done])
        pins = sorted(pinned_to(int(w.rsplit(":", 1)[1])) or "" for w in ran_by)
        assert pins == ["0", "1"], (pins, ran_by)  # one job on each worker
        assert all(j["device"] == "cpu" for j in done)  # no GPU here: the CPU, recorded per job
        # Each worker's own endpoint counts only its own job.
        for gpu, port in ports.items():
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            finished = metric(text, "autovoice_jobs_finished_total")
            assert sum(v for labels, v in finished if labels.get("status") == "completed") == 1, (
                gpu,
                finished,
            )
            info = metric(text, "autovoice_worker_info")
            if info:  # the worker says which device it is pinned to
                assert info[0][0].get("cuda_visible_devices") == gpu, info
    finally:
        for proc in workers.values():
            stop(proc)
