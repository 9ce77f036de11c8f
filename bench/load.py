"""Load test of the AutoVoice API with Locust, in embedded and distributed mode.

Starts everything itself on loopback, with a temporary data dir:

- **embedded**: ``autovoice serve`` (SQLite, jobs in the server process);
- **distributed**: ``autovoice serve`` with ``AUTOVOICE_BROKER_URL`` (Redis database 12, flushed) and
  ``AUTOVOICE_DATABASE_URL`` (a fresh schema in the local PostgreSQL, dropped at the end), plus two
  ``autovoice worker`` processes (one job each).

Requests carry a real API key (``autovoice apikey create``; keys are required) whose limits allow the
load. Each mode then runs Locust headless (``bench/locustfile.py``) at 1, 10, 50 and 100 users for a
fixed time per step: the mixed scenario (browsing users + one converting client + one profile-building
client) and one run per route (``/health``, profile list, job status, TTS "Hello, world!"). A last
run, on a server with the default limits (100/minute, 10/minute for work), shows that rate limits hold:
one key sending as fast as it can gets 429 with ``Retry-After`` and no 5xx, while a second key at
1 request/s is never refused.

The load generator shares the machine's cores with the server. Writes ``bench/results/load.json``,
``load.md`` and ``load.png`` (latency percentiles and throughput against users); ``--tag before``
writes ``load.before.*`` instead. Run the timed runs under the bench lock::

    flock -x /work/notes/bench.flock .venv/bin/python bench/load.py [--modes embedded,distributed]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, RESULTS, write_results

BIN = Path(sys.executable).parent
LOCUSTFILE = REPO / "bench" / "locustfile.py"
DEMO = REPO / "assets" / "demo"
CLIP = DEMO / "367-130732-0001.flac"
SAMPLES = (DEMO / "367-130732-0002.flac", DEMO / "367-130732-0003.flac")
PG = "postgresql://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/12"
USERS = (1, 10, 50, 100)
ROUTES = {  # scenario -> the Locust request name it measures
    "health": "GET /health",
    "profiles": "GET /api/v1/profiles",
    "job": "GET /api/v1/conversions/{id}",
    "tts": "POST /api/v1/tts",
}
#: The load key's limits: far above what the runs send, so the limiter is exercised but never refuses.
LOAD_LIMIT = "1000000/minute"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A child process in its own session, logging to a file; stopped with its children."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            args, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _wait(check: Any, *, timeout: float, what: str, procs: list[Proc]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        dead = [p for p in procs if not p.alive()]
        if dead or time.monotonic() > deadline:
            tail = dead[0].log.read_text(errors="replace")[-3000:] if dead else ""
            raise RuntimeError(f"{what}: {'a process died' if dead else 'timed out'}\n{tail}")
        time.sleep(0.2)


@contextmanager
def stack(mode: str, work: Path, *, limits: dict[str, str], server_workers: int) -> Iterator[dict[str, Any]]:
    """The server (and, distributed, Redis/PostgreSQL set-up and two workers); yields base URL and key."""
    data = work / f"data-{mode}-{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "AUTOVOICE_DATA_DIR": str(data),
        "AUTOVOICE_DEVICE": "cpu",
        "AUTOVOICE_REQUIRE_API_KEY": "true",
        "AUTOVOICE_LOG_LEVEL": "WARNING",
        "AUTOVOICE_LOG_FORMAT": "text",
        **{f"AUTOVOICE_{k.upper()}": v for k, v in limits.items()},
    }
    schema = None
    if mode == "distributed":
        import psycopg
        import redis

        schema = f"load_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        redis.Redis.from_url(REDIS).flushdb()
        env["AUTOVOICE_DATABASE_URL"] = f"{PG}?options=-csearch_path%3D{schema}"
        env["AUTOVOICE_BROKER_URL"] = REDIS
        if server_workers > 1:
            env["AUTOVOICE_SERVER_WORKERS"] = str(server_workers)
    procs: list[Proc] = []
    try:
        created = subprocess.run(
            [str(BIN / "autovoice"), "apikey", "create", "load", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        key = json.loads(created.stdout)
        other = json.loads(
            subprocess.run(
                [str(BIN / "autovoice"), "apikey", "create", "bystander", "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        if mode == "distributed":
            for i in (1, 2):
                procs.append(
                    Proc(
                        [str(BIN / "autovoice"), "worker", "-c", "1", "-n", f"load{i}@%h"],
                        {**env, "AUTOVOICE_LOG_LEVEL": "INFO"},
                        work / f"worker{i}.log",
                    )
                )
            for p in procs:
                _wait(
                    lambda p=p: "ready" in p.log.read_text(errors="replace"),
                    timeout=120,
                    what="worker",
                    procs=procs,
                )
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        server = Proc(
            [str(BIN / "autovoice"), "serve", "--port", str(port)], env, work / f"server-{mode}.log"
        )
        procs.append(server)

        def up() -> bool:
            try:
                return httpx.get(f"{base}/health/live", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        _wait(up, timeout=120, what="server", procs=procs)
        yield {"base": base, "key": key["key"], "key_id": key["id"], "other": other["key"], "log": server.log}
    finally:
        for p in reversed(procs):
            p.stop()
        if schema is not None:
            import psycopg
            import redis

            with psycopg.connect(PG, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            redis.Redis.from_url(REDIS).flushdb()


def fixtures(base: str, key: str) -> dict[str, Any]:
    """A profile built from two real recordings and one completed conversion (timed)."""
    h = {"Authorization": f"Bearer {key}"}
    t0 = time.perf_counter()
    files = [("files", (p.name, p.read_bytes(), "audio/flac")) for p in SAMPLES]
    r = httpx.post(
        f"{base}/api/v1/profiles", data={"name": "Load Voice"}, files=files, headers=h, timeout=300
    )
    r.raise_for_status()
    profile = r.json()["id"]
    built = time.perf_counter() - t0
    t0 = time.perf_counter()
    data = {"profile_id": profile, "preset": "fast", "separation": "none"}
    r = httpx.post(
        f"{base}/api/v1/conversions",
        data=data,
        files={"file": (CLIP.name, CLIP.read_bytes(), "audio/flac")},
        headers=h,
        timeout=120,
    )
    r.raise_for_status()
    job = r.json()["id"]
    while (doc := httpx.get(f"{base}/api/v1/conversions/{job}", headers=h, timeout=30).json())["status"] in (
        "queued",
        "running",
    ):
        if time.perf_counter() - t0 > 300:
            raise RuntimeError(f"job {job} did not finish")
        time.sleep(0.3)
    if doc["status"] != "completed":
        raise RuntimeError(f"set-up conversion ended {doc['status']}: {doc.get('error')}")
    return {
        "profile": profile,
        "job": job,
        "profile_build_s": round(built, 2),
        "first_conversion_s": round(time.perf_counter() - t0, 2),
    }


def drain(base: str, key: str, timeout: float = 90.0) -> None:
    """Wait until no job is queued or running (jobs left by a mixed run), so steps do not overlap."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        q = httpx.get(f"{base}/health", timeout=30).json()["queue"]
        if q["depth"] == 0 and q["running"] == 0:
            return
        time.sleep(0.5)


def locust(
    base: str,
    *,
    scenario: str,
    users: int,
    seconds: float,
    classes: list[str],
    env: dict[str, str],
    work: Path,
) -> dict[str, Any]:
    """One headless Locust run; per-request-name statistics and status codes."""
    prefix = work / f"{scenario}-{users}-{uuid.uuid4().hex[:4]}"
    codes_file = prefix.with_suffix(".codes.json")
    total = users + (2 if scenario == "mixed" else 0) + (1 if scenario == "limits" else 0)
    args = [
        str(BIN / "locust"),
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        base,
        "-u",
        str(total),
        "-r",
        str(max(total, 1)),
        "-t",
        f"{seconds:g}s",
        "--stop-timeout",
        "5",
        "--csv",
        str(prefix),
        "--only-summary",
        "--exit-code-on-error",
        "0",
        "-L",
        "WARNING",
        *classes,
    ]
    run_env = {
        **os.environ,
        **env,
        "AUTOVOICE_LOAD_SCENARIO": scenario,
        "AUTOVOICE_LOAD_CODES": str(codes_file),
    }
    done = subprocess.run(
        args, env=run_env, capture_output=True, text=True, timeout=seconds + 120, check=False
    )
    stats_file = Path(f"{prefix}_stats.csv")
    if not stats_file.exists():
        raise RuntimeError(f"locust wrote no statistics:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    codes = json.loads(codes_file.read_text()) if codes_file.exists() else {}
    routes = {}
    with stats_file.open() as fh:
        for row in csv.DictReader(fh):
            name = row["Name"] if row["Name"] != "Aggregated" else "all"
            n = int(row["Request Count"])
            routes[name] = {
                "requests": n,
                "failures": int(row["Failure Count"]),
                "rps": round(float(row["Requests/s"]), 1),
                "p50_ms": _num(row["50%"]),
                "p95_ms": _num(row["95%"]),
                "p99_ms": _num(row["99%"]),
                "mean_ms": round(float(row["Average Response Time"]), 1) if n else None,
                "max_ms": _num(row["Max Response Time"]),
                "codes": codes.get(row["Name"], {}),
            }
    return {"scenario": scenario, "users": users, "seconds": seconds, "routes": routes}


def _num(value: str) -> float | None:
    try:
        return round(float(value), 1)
    except ValueError:
        return None


def fivexx(run: dict[str, Any]) -> int:
    return sum(
        n
        for r in run["routes"].values()
        for code, n in r["codes"].items()
        if code.isdigit() and int(code) >= 500
    )


def run_mode(mode: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    limits = {"rate_limit": LOAD_LIMIT, "job_rate_limit": LOAD_LIMIT}
    out: dict[str, Any] = {"mode": mode, "runs": []}
    with stack(mode, work, limits=limits, server_workers=args.server_workers) as s:
        fx = fixtures(s["base"], s["key"])
        out["fixtures"] = fx
        env = {
            "AUTOVOICE_LOAD_KEY": s["key"],
            "AUTOVOICE_LOAD_PROFILE": fx["profile"],
            "AUTOVOICE_LOAD_JOB": fx["job"],
        }
        for users in args.users:
            print(f"[{mode}] mixed, {users} users", flush=True)
            run = locust(
                s["base"],
                scenario="mixed",
                users=users,
                seconds=args.mixed_seconds,
                classes=["Browser", "Converter", "ProfileMaker"],
                env=env,
                work=work,
            )
            out["runs"].append(run)
            drain(s["base"], s["key"])
        for scenario in args.routes:
            for users in args.users:
                print(f"[{mode}] {scenario}, {users} users", flush=True)
                run = locust(
                    s["base"],
                    scenario=scenario,
                    users=users,
                    seconds=args.route_seconds,
                    classes=["RouteUser"],
                    env=env,
                    work=work,
                )
                out["runs"].append(run)
        out["server_log_errors"] = [
            line
            for line in s["log"].read_text(errors="replace").splitlines()
            if "ERROR" in line or "Traceback" in line
        ][:20]
    return out


def run_limits(work: Path, seconds: float) -> dict[str, Any]:
    """Default limits: key A as fast as 10 users can, key B at 1 request/s, both on the profile list."""
    limits = {"rate_limit": "100/minute", "job_rate_limit": "10/minute"}
    with stack("embedded", work, limits=limits, server_workers=1) as s:
        env = {"AUTOVOICE_LOAD_KEY": s["key"], "AUTOVOICE_LOAD_KEY2": s["other"]}
        run = locust(
            s["base"],
            scenario="limits",
            users=10,
            seconds=seconds,
            classes=["RouteUser", "Bystander"],
            env=env,
            work=work,
        )
    return run


# -- report ---------------------------------------------------------------------------------------
def _fmt(v: Any) -> str:
    return "–" if v is None else f"{v:g}"


def table(doc: dict[str, Any]) -> str:
    lines = []
    for mode in doc["modes"]:
        lines += [
            f"### {mode['mode']}",
            "",
            f"Set-up: profile from 26 s of speech built in {mode['fixtures']['profile_build_s']} s; first "
            f"conversion (4.4 s clip, `fast`) done in {mode['fixtures']['first_conversion_s']} s.",
            "",
            "| scenario | users | route | requests | req/s | p50 ms | p95 ms | p99 ms | errors | 5xx |",
            "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for run in mode["runs"]:
            for name, r in run["routes"].items():
                if run["scenario"] != "mixed" and name == "all":
                    continue
                five = sum(n for c, n in r["codes"].items() if c.isdigit() and int(c) >= 500)
                lines.append(
                    f"| {run['scenario']} | {run['users']} | {name} | {r['requests']} | {_fmt(r['rps'])} | "
                    f"{_fmt(r['p50_ms'])} | {_fmt(r['p95_ms'])} | {_fmt(r['p99_ms'])} | {r['failures']} | {five} |"
                )
        lines.append("")
    if doc.get("limits"):
        lim = doc["limits"]
        lines += [
            "### Rate limits hold (default limits: 100/minute per key)",
            "",
            "| client | requests (in the step) | refused without a valid Retry-After, or 5xx | status codes "
            "(every response, to the last user's stop) |",
            "| --- | ---: | ---: | --- |",
        ]
        for name, r in lim["routes"].items():
            if name != "all":
                lines.append(f"| {name} | {r['requests']} | {r['failures']} | {json.dumps(r['codes'])} |")
        lines.append("")
    return "\n".join(lines)


def _route_stats(doc: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, Any]]:
    """(mode, scenario, users) -> the statistics of the route that scenario measures."""
    out = {}
    for mode in doc["modes"]:
        for run in mode["runs"]:
            name = ROUTES.get(run["scenario"])
            if name and name in run["routes"]:
                out[(mode["mode"], run["scenario"], run["users"])] = run["routes"][name]
    return out


def targets(doc: dict[str, Any], before: dict[str, Any] | None) -> str:
    """The issue's targets checked on this run, and the per-route figures before the fixes beside them."""
    now, old = _route_stats(doc), _route_stats(before) if before else {}
    lines = [
        "### Targets (per-route runs)",
        "",
        "| mode | route | users | target | p95 ms before → after | req/s before → after | errors after | met |",
        "| --- | --- | ---: | --- | --- | --- | ---: | --- |",
    ]
    checks = [(s, 50, "p95 <= 50 ms") for s in ("health", "profiles", "job")]
    checks += [(s, 100, "no errors") for s in ("health", "profiles", "job")]
    checks += [("tts", 10, "p95 < 500 ms")]
    for mode in [m["mode"] for m in doc["modes"]]:
        for scenario, users, target in checks:
            r = now.get((mode, scenario, users))
            if r is None:
                continue
            b = old.get((mode, scenario, users), {})
            p95 = r["p95_ms"] if r["p95_ms"] is not None else float("inf")
            met = {"p95 <= 50 ms": p95 <= 50, "no errors": r["failures"] == 0, "p95 < 500 ms": p95 < 500}[
                target
            ]
            lines.append(
                f"| {mode} | {ROUTES[scenario]} | {users} | {target} | {_fmt(b.get('p95_ms'))} → "
                f"{_fmt(r['p95_ms'])} | {_fmt(b.get('rps'))} → {_fmt(r['rps'])} | {r['failures']} | "
                f"{'yes' if met else '**no**'} |"
            )
    lines += ["", ""]
    return "\n".join(lines)


def plot(doc: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = doc["modes"]
    fig, axes = plt.subplots(2, len(modes), figsize=(6.5 * len(modes), 8), squeeze=False)
    for col, mode in enumerate(modes):
        ax_lat, ax_rps = axes[0][col], axes[1][col]
        series: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for run in mode["runs"]:
            for name, r in run["routes"].items():
                if run["scenario"] == "mixed" and name == "all":
                    series.setdefault("mixed: all", []).append((run["users"], r))
                elif run["scenario"] != "mixed" and name == ROUTES.get(run["scenario"]):
                    series.setdefault(name, []).append((run["users"], r))
        for label, points in series.items():
            xs = [u for u, _ in points]
            (line,) = ax_lat.plot(
                xs, [r["p95_ms"] or float("nan") for _, r in points], marker="o", label=f"{label} p95"
            )
            ax_lat.plot(xs, [r["p50_ms"] or float("nan") for _, r in points], ls=":", color=line.get_color())
            ax_lat.plot(xs, [r["p99_ms"] or float("nan") for _, r in points], ls="--", color=line.get_color())
            ax_rps.plot(xs, [r["rps"] for _, r in points], marker="o", label=label)
        ax_lat.set(
            xscale="log", yscale="log", xlabel="users", ylabel="latency ms (p50 dotted, p95, p99 dashed)"
        )
        ax_lat.set_title(f"{mode['mode']}: latency")
        ax_lat.legend(fontsize=7)
        ax_rps.set(xscale="log", xlabel="users", ylabel="requests/s")
        ax_rps.set_title(f"{mode['mode']}: throughput")
        ax_rps.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modes", default="embedded,distributed")
    ap.add_argument("--users", default=",".join(map(str, USERS)))
    ap.add_argument("--routes", default=",".join(ROUTES))
    ap.add_argument("--mixed-seconds", type=float, default=20.0)
    ap.add_argument("--route-seconds", type=float, default=8.0)
    ap.add_argument("--limits-seconds", type=float, default=15.0)
    ap.add_argument("--server-workers", type=int, default=2, help="uvicorn processes in distributed mode")
    ap.add_argument("--tag", default="", help="write load.<tag>.* instead of load.*")
    ap.add_argument("--render", action="store_true", help="only rewrite load.md/png from load.json")
    args = ap.parse_args()
    name = f"load.{args.tag}" if args.tag else "load"
    if args.render:
        doc = json.loads((RESULTS / f"{name}.json").read_text())
        report(doc, name)
        return
    args.users = [int(u) for u in args.users.split(",") if u]
    args.routes = [r for r in args.routes.split(",") if r]
    started = time.monotonic()
    doc: dict[str, Any] = {
        "users": args.users,
        "think_time_s": {"mixed browsers": [1.0, 3.0], "light routes": [0.1, 0.3], "tts": [0.5, 1.5]},
        "mixed_seconds": args.mixed_seconds,
        "route_seconds": args.route_seconds,
        "modes": [],
    }
    with tempfile.TemporaryDirectory(prefix="autovoice-load-") as tmp:
        work = Path(tmp)
        for mode in [m for m in args.modes.split(",") if m]:
            doc["modes"].append(run_mode(mode, args, work))
        if args.limits_seconds > 0:
            print("[limits]", flush=True)
            doc["limits"] = run_limits(work, args.limits_seconds)
    doc["total_s"] = round(time.monotonic() - started, 1)
    doc["fivexx"] = sum(fivexx(r) for m in doc["modes"] for r in m["runs"]) + (
        fivexx(doc["limits"]) if doc.get("limits") else 0
    )
    doc["args"] = {"server_workers": args.server_workers}
    report(doc, name)


def report(doc: dict[str, Any], name: str) -> None:
    """Write ``<name>.json``, ``.md`` (with the targets, against ``load.before.json`` when there is
    one) and ``.png``."""
    before_file = RESULTS / "load.before.json"
    before = json.loads(before_file.read_text()) if before_file.exists() and name != "load.before" else None
    workers = doc.get("args", {}).get("server_workers", "?")
    head = (
        f"Locust {_locust_version()} headless on the same machine as the server. Users wait between "
        "requests: mixed browsers 1-3 s, per-route light runs 0.1-0.3 s, TTS 0.5-1.5 s; mixed adds one "
        f"converting and one profile-building client. {doc['mixed_seconds']:g} s per mixed step, "
        f"{doc['route_seconds']:g} s per route step; distributed: {workers} server process(es), "
        f"2 workers. Total {doc['total_s']} s; 5xx responses: {doc['fivexx']}.\n\n![load]({name}.png)\n\n"
    )
    plot(doc, RESULTS / f"{name}.png")
    write_results(name, doc, head + targets(doc, before) + table(doc))


def _locust_version() -> str:
    out = subprocess.run([str(BIN / "locust"), "--version"], capture_output=True, text=True, check=False)
    words = out.stdout.split()
    return words[1] if len(words) > 1 else "?"


if __name__ == "__main__":
    main()
