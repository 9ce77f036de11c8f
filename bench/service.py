"""Service benchmark: HTTP latency under load, submit-to-first-progress time, job throughput.

Runs the real server (``autovoice.service.serve`` under uvicorn) as a subprocess on 127.0.0.1 with a
temporary data dir, then drives it from this process with ``httpx`` async clients (the load tool: a
well-kept HTTP client with asyncio; wrk/locust are not needed, so the bench runs wherever the project
installs). Every loop is bounded in time and count; only loopback is contacted.

Measured
- requests/s and p50/p95/p99 latency of ``GET /health`` and ``GET /api/v1/profiles`` at 10 and 50
  concurrent clients, ``--seconds`` each (rate limits off for the run; the client shares the 2 cores);
- time from ``POST /api/v1/conversions`` to the first ``running`` progress event on the WebSocket;
- job throughput of the embedded queue with 1 and 2 workers on the ~25 s song excerpt
  (``assets/demo/lets_go_fishin_excerpt.ogg``, ``separation=none``, preset ``fast``).

Writes ``bench/results/service.json`` and ``service.md``. Usage::

    .venv/bin/python bench/service.py [--seconds 10] [--jobs 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, write_results

SONG = REPO / "assets" / "demo" / "lets_go_fishin_excerpt.ogg"
SAMPLES = sorted((REPO / "assets" / "demo").glob("367-*.flac"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``autovoice.service.serve`` in a subprocess with its own data dir and settings."""

    def __init__(self, data_dir: Path, *, workers: int, log: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "AUTOVOICE_DATA_DIR": str(data_dir),
            "AUTOVOICE_DEVICE": os.environ.get("AUTOVOICE_DEVICE", "cpu"),
            "AUTOVOICE_RATE_LIMIT": "",
            "AUTOVOICE_JOB_RATE_LIMIT": "",
            "AUTOVOICE_JOB_WORKERS": str(workers),
            "AUTOVOICE_LOG_LEVEL": "WARNING",
        }
        code = f"from autovoice.service import serve; serve('127.0.0.1', {self.port})"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{self.base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"server did not start; see {log}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def _load(base: str, path: str, *, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` concurrent loops, each sending requests back to back for ``seconds``."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        for _ in range(min(clients, 20)):  # warm the connections and the route
            await client.get(path)
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                try:
                    r = await client.get(path)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                errors += 0 if ok else 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    ms = [v * 1000 for v in latencies]
    return {
        "path": path,
        "clients": clients,
        "seconds": round(elapsed, 2),
        "requests": len(latencies),
        "errors": errors,
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(_pct(ms, 50), 2),
        "p95_ms": round(_pct(ms, 95), 2),
        "p99_ms": round(_pct(ms, 99), 2),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else None,
    }


def _create_profile(base: str) -> tuple[str, float]:
    t0 = time.perf_counter()
    files = [("files", (p.name, p.read_bytes(), "audio/flac")) for p in SAMPLES]
    r = httpx.post(f"{base}/api/v1/profiles", data={"name": "Bench Voice"}, files=files, timeout=300)
    r.raise_for_status()
    return str(r.json()["id"]), time.perf_counter() - t0


def _submit(base: str, profile_id: str, preset: str) -> str:
    r = httpx.post(
        f"{base}/api/v1/conversions",
        data={"profile_id": profile_id, "preset": preset, "separation": "none"},
        files={"file": (SONG.name, SONG.read_bytes(), "audio/ogg")},
        timeout=60,
    )
    r.raise_for_status()
    return str(r.json()["id"])


async def _first_progress(base: str, profile_id: str, preset: str) -> dict[str, Any]:
    """Submit one job; seconds until the WebSocket shows it running, and until it completes."""
    import websockets

    t0 = time.perf_counter()
    job_id = await asyncio.to_thread(_submit, base, profile_id, preset)
    submitted = time.perf_counter() - t0
    first = None
    ws_url = base.replace("http://", "ws://") + f"/api/v1/conversions/{job_id}/events"
    async with websockets.connect(ws_url, open_timeout=10) as ws:
        async with asyncio.timeout(600):
            async for raw in ws:
                event = json.loads(raw)
                if first is None and event.get("status") == "running":
                    first = time.perf_counter() - t0
                if event["type"] in ("completed", "failed"):
                    break
    done = time.perf_counter() - t0
    return {
        "submit_response_s": round(submitted, 3),
        "first_progress_s": round(first, 3) if first is not None else None,
        "completed_s": round(done, 2),
        "status": event.get("status"),
    }


def _wait_all(base: str, job_ids: list[str], timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    pending = set(job_ids)
    docs: dict[str, dict[str, Any]] = {}
    while pending and time.monotonic() < deadline:
        for job_id in list(pending):
            doc = httpx.get(f"{base}/api/v1/conversions/{job_id}", timeout=10).json()
            if doc["status"] in ("completed", "failed", "cancelled"):
                docs[job_id] = doc
                pending.discard(job_id)
        time.sleep(0.25)
    if pending:
        raise RuntimeError(f"{len(pending)} job(s) did not finish in {timeout} s")
    return [docs[j] for j in job_ids]


def _throughput(workers: int, *, jobs: int, preset: str, root: Path) -> dict[str, Any]:
    data = root / f"throughput-{workers}"
    server = Server(data, workers=workers, log=root / f"server-{workers}.log")
    try:
        profile_id, _ = _create_profile(server.base)
        warm = asyncio.run(_first_progress(server.base, profile_id, preset))  # loads the models
        t0 = time.perf_counter()
        ids = [_submit(server.base, profile_id, preset) for _ in range(jobs)]
        docs = _wait_all(server.base, ids, timeout=1800)
        wall = time.perf_counter() - t0
    finally:
        server.stop()
    statuses = [d["status"] for d in docs]
    audio = sum(d["metrics"]["audio_seconds"] for d in docs if d["metrics"])
    return {
        "workers": workers,
        "jobs": jobs,
        "preset": preset,
        "statuses": statuses,
        "wall_s": round(wall, 2),
        "jobs_per_min": round(60 * jobs / wall, 2),
        "audio_s_per_wall_s": round(audio / wall, 3),
        "mean_job_rtf": round(statistics.fmean(d["metrics"]["rtf"] for d in docs if d["metrics"]), 3),
        "warmup_job_s": warm["completed_s"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="Duration of each load run.")
    ap.add_argument("--jobs", type=int, default=4, help="Jobs per throughput run.")
    ap.add_argument("--preset", default="fast", choices=["fast", "balanced", "quality"])
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="autovoice-bench-") as tmp:
        root = Path(tmp)
        server = Server(root / "load", workers=1, log=root / "server-load.log")
        try:
            profile_id, profile_s = _create_profile(server.base)
            load = [
                asyncio.run(_load(server.base, path, clients=clients, seconds=args.seconds))
                for path in ("/health", "/api/v1/profiles")
                for clients in (10, 50)
            ]
            cold = asyncio.run(_first_progress(server.base, profile_id, args.preset))
            warm = asyncio.run(_first_progress(server.base, profile_id, args.preset))
        finally:
            server.stop()
        throughput = [_throughput(w, jobs=args.jobs, preset=args.preset, root=root) for w in (1, 2)]

    doc = {
        "tool": f"httpx {httpx.__version__} AsyncClient (asyncio), same machine as the server",
        "song": SONG.name,
        "profile_create_s": round(profile_s, 2),
        "load": load,
        "first_progress": {"cold": cold, "warm": warm},
        "throughput": throughput,
    }
    rows = [
        "| endpoint | clients | req/s | p50 ms | p95 ms | p99 ms | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in load:
        rows.append(
            f"| `GET {r['path']}` | {r['clients']} | {r['rps']} | {r['p50_ms']} | {r['p95_ms']} | "
            f"{r['p99_ms']} | {r['errors']} |"
        )
    rows += [
        "",
        "| submit to first `running` event | cold (models loading) | warm |",
        "| --- | ---: | ---: |",
        f"| seconds | {cold['first_progress_s']} | {warm['first_progress_s']} |",
        "",
        f"| embedded workers | jobs ({args.preset}, 25 s song, no separation) | wall s | jobs/min | "
        "audio s per wall s | mean job RTF |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for t in throughput:
        rows.append(
            f"| {t['workers']} | {t['jobs']} | {t['wall_s']} | {t['jobs_per_min']} | "
            f"{t['audio_s_per_wall_s']} | {t['mean_job_rtf']} |"
        )
    write_results("service", doc, "\n".join(rows))


if __name__ == "__main__":
    main()
