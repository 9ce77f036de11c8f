"""The monitoring in deploy/ against the real thing: promtool checks and unit-tests the alert rules, and a
real Prometheus (Debian's ``prometheus`` package) scrapes a running AutoVoice under traffic (health,
listings, errors, two conversions, TTS); then every Grafana panel query is run against Prometheus's HTTP
API and must return data (at least one series with a finite value), and every rule must evaluate cleanly.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import free_port, http_ok, spawn, stop, wait_until

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "deploy" / "prometheus"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana").glob("*.json"))
SCRAPE_S = 1
#: Grafana's interval variables, as a dashboard over the last hour would resolve them (a window that
#: holds the whole test, however slow the machine).
GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "15s", "$__range": "1h"}
#: Panels whose metric only exists where torch sees a GPU (none on the CI machine).
NEEDS_GPU = ("autovoice_gpu_memory_bytes", "autovoice_gpu_utilization")

needs_prometheus = pytest.mark.skipif(
    not (shutil.which("promtool") and shutil.which("prometheus")),
    reason="needs Debian's prometheus package (promtool, prometheus); .ci/run installs it",
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=60, check=False)


@needs_prometheus
def test_alert_rules_pass_promtool() -> None:
    check = promtool("check", "rules", str(PROM_DIR / "alerts.yml"))
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS" in check.stdout
    unit = promtool("test", "rules", str(PROM_DIR / "alerts.test.yml"))
    assert unit.returncode == 0, unit.stdout + unit.stderr
    config = promtool("check", "config", "--syntax-only", str(PROM_DIR / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr


def test_every_alert_has_a_runbook_section() -> None:
    import re

    import yaml

    doc = yaml.safe_load((PROM_DIR / "alerts.yml").read_text())
    alerts = [r for g in doc["groups"] for r in g["rules"] if "alert" in r]
    assert len(alerts) >= 11
    headings = re.findall(r"^### (\S+)$", (ROOT / "docs" / "operations.md").read_text(), re.M)
    for rule in alerts:
        assert rule["alert"] in headings, rule["alert"]
        assert rule["annotations"]["runbook"] == f"docs/operations.md#{rule['alert'].lower()}"
        assert rule["labels"]["severity"] in ("warning", "critical")


def test_dashboards_are_well_formed() -> None:
    assert {p.stem for p in DASHBOARDS} >= {
        "autovoice-service",
        "autovoice-tts",
        "autovoice-conversion",
        "autovoice-workers",
    }
    for path in DASHBOARDS:
        doc = json.loads(path.read_text())
        assert doc["uid"] == path.stem
        ids = [p["id"] for p in doc["panels"]]
        assert len(ids) == len(set(ids)), path
        for panel in doc["panels"]:
            assert panel["targets"], (path.name, panel["title"])
            assert panel["datasource"]["uid"] == "${datasource}"


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, PromQL with Grafana's variables resolved) for every panel target."""
    out = []
    for path in DASHBOARDS:
        doc = json.loads(path.read_text())
        for panel in doc["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                for var, value in GRAFANA_VARS.items():
                    expr = expr.replace(var, value)
                out.append((path.stem, panel["title"], expr))
    return out


# -- a live stack ----------------------------------------------------------------------------------
def _prometheus_config(path: Path, scrape: dict[str, list[str]]) -> None:
    jobs = "".join(
        f"  - job_name: {job}\n    static_configs:\n      - targets: {json.dumps(targets)}\n"
        for job, targets in scrape.items()
    )
    path.write_text(
        f"global:\n  scrape_interval: {SCRAPE_S}s\n  evaluation_interval: {SCRAPE_S}s\n"
        f"rule_files:\n  - {PROM_DIR / 'alerts.yml'}\nscrape_configs:\n{jobs}"
    )


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Any]:
    """Start Prometheus with ``start(scrape={job: [targets]})``; returns its base URL."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(scrape: dict[str, list[str]]) -> str:
        config, port = tmp_path / "prometheus.yml", free_port()
        _prometheus_config(config, scrape)
        log = (tmp_path / "prometheus.log").open("ab")
        args = [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]
        procs.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        base = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: http_ok(f"{base}/-/ready"), timeout=30, what="prometheus", log=tmp_path / "prometheus.log"
        )
        return base

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def query(base: str, expr: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=10)
    doc = r.json()
    assert doc["status"] == "success", (expr, doc)
    result: list[dict[str, Any]] = doc["data"]["result"]
    return result


def finite_values(result: list[dict[str, Any]]) -> list[float]:
    values = [float(s["value"][1]) for s in result]
    return [v for v in values if math.isfinite(v)]


def drive_traffic(base: str, done: threading.Event, errors: list[str]) -> None:
    """Light requests, client errors and TTS in a loop until ``done`` is set."""
    with httpx.Client(base_url=base, timeout=30) as c:
        while not done.is_set():
            try:
                for path in (
                    "/health",
                    "/health/live",
                    "/health/ready",
                    "/api/v1/profiles",
                    "/api/v1/voices",
                ):
                    c.get(path).raise_for_status()
                assert c.get("/api/v1/conversions/job_doesnotexist").status_code == 404
                assert c.post("/api/v1/tts", json={"text": ""}).status_code == 422
                r = c.post("/api/v1/tts", json={"text": "Hello, world!"})
                assert r.status_code == 200, r.text[:300]
            except Exception as exc:  # reported by the test, not swallowed
                errors.append(repr(exc))
                return
            done.wait(0.5)  # light: the conversions share the machine


def convert(base: str, clip: Path, profile_id: str) -> dict[str, Any]:
    with clip.open("rb") as fh:
        r = httpx.post(
            f"{base}/api/v1/conversions",
            data={"profile_id": profile_id, "preset": "fast", "separation": "none"},
            files={"file": (clip.name, fh, "audio/wav")},
            timeout=30,
        )
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        job: dict[str, Any] = httpx.get(f"{base}/api/v1/conversions/{job_id}", timeout=10).json()
        if job["status"] in ("completed", "failed", "cancelled"):
            assert job["status"] == "completed", job
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish")


WORKER = "from autovoice.cli.serve import worker; worker(concurrency=1, name='metrics@%h')"


@needs_prometheus
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_every_dashboard_query_returns_data(
    distributed: dict[str, str], profile_id: str, short_clip: Path, prometheus: Any, tmp_path: Path
) -> None:
    """Distributed mode (the fullest picture): an API server and a worker with its metrics port."""
    port, worker_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    log, worker_log = tmp_path / "server.log", tmp_path / "worker.log"
    env = {**distributed, "AUTOVOICE_LOG_FORMAT": "json"}
    worker = spawn(WORKER, env={**env, "AUTOVOICE_WORKER_METRICS_PORT": str(worker_port)}, log=worker_log)
    server = spawn(f"from autovoice.service import serve; serve('127.0.0.1', {port})", env=env, log=log)
    try:
        wait_until(lambda: http_ok(f"{base}/health/live"), timeout=60, what="server start", log=log)
        wait_until(
            lambda: http_ok(f"http://127.0.0.1:{worker_port}/metrics"),
            timeout=60,
            what="worker",
            log=worker_log,
        )
        prom = prometheus(
            {"autovoice": [f"127.0.0.1:{port}"], "autovoice-worker": [f"127.0.0.1:{worker_port}"]}
        )
        wait_until(lambda: len(query(prom, "up == 1")) == 2, timeout=20, what="first scrapes", log=log)
        # Traffic for a few scrapes; two conversions one after the other, so job counters and
        # histograms exist before they grow (rate() needs two samples of a series).
        started = time.monotonic()
        errors: list[str] = []
        done = threading.Event()
        traffic = threading.Thread(target=drive_traffic, args=(base, done, errors), daemon=True)
        traffic.start()
        convert(base, short_clip, profile_id)
        time.sleep(2 * SCRAPE_S + 0.5)
        convert(base, short_clip, profile_id)
        time.sleep(2 * SCRAPE_S + 0.5)
        done.set()
        traffic.join(timeout=60)
        assert not traffic.is_alive()
        assert not errors, errors
        time.sleep(2 * SCRAPE_S + 0.5)
        print(f"traffic and conversions: {time.monotonic() - started:.1f} s")

        report, empty = [], []
        for dashboard, title, expr in panel_queries():
            result = query(prom, expr)
            values = finite_values(result)
            report.append(f"{dashboard:22} {title[:34]:34} {len(result):3} series  {values[:1]}")
            if not values and not any(metric in expr for metric in NEEDS_GPU):
                empty.append((dashboard, title, expr))
        (tmp_path / "dashboard-queries.txt").write_text("\n".join(report) + "\n")
        print("\n".join(report))
        assert not empty, "panels without data:\n" + "\n".join(map(str, empty))

        # The scrape-time gauges say what the machine says.
        assert finite_values(query(prom, "max(autovoice_queue_oldest_job_age_seconds)")) == [0.0]  # all done
        # Nothing runs any more: no heartbeat to age, no job without progress (issue 19).
        assert finite_values(query(prom, "max(autovoice_job_heartbeat_age_seconds)")) == [0.0]
        assert finite_values(query(prom, "max(autovoice_job_running_without_progress_seconds)")) == [0.0]
        size = finite_values(query(prom, 'autovoice_data_dir_size_bytes{job="autovoice"}'))
        assert size == [float(shutil.disk_usage(distributed["AUTOVOICE_DATA_DIR"]).total)]

        rules = httpx.get(f"{prom}/api/v1/rules", timeout=10).json()["data"]["groups"]
        bad = [(r["name"], r.get("lastError")) for g in rules for r in g["rules"] if r["health"] != "ok"]
        assert not bad, bad
        firing = query(prom, 'ALERTS{alertstate="firing"}')
        assert firing == [], firing  # a healthy stack under light load raises nothing
    finally:
        stop(server)
        stop(worker)
