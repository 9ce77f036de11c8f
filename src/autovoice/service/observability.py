"""Prometheus metrics, request ids and one log line per request.

Each app owns a :class:`Metrics` with its own registry (no process-global metric objects), exposed at
``/metrics``. Job counts by state and the queue depth are read from the database at scrape time, so they
are right in distributed mode too; job durations and RTF are observed by the process that ran the job.
Log set-up (text or JSON lines) is in :mod:`autovoice.service.logs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autovoice.service.logs import configure_logging, current_request_id

if TYPE_CHECKING:
    from autovoice.config import Settings

__all__ = [
    "Cached",
    "Metrics",
    "RequestMiddleware",
    "configure_logging",
    "current_request_id",
    "start_metrics_server",
    "worker_metrics",
]
T = TypeVar("T")

log = logging.getLogger("autovoice.service")
#: The ``X-Request-ID`` a client or proxy may choose (else the server makes one): hex digits and dashes,
#: up to 64 (nginx's ``$request_id``, UUIDs), or up to 32 letters, digits, ``.``, ``:`` and ``-``
#: (``req-42``). Whatever else it sends (an API key, pasted into the wrong header, is 46 characters with an
#: underscore) never reaches the log or the response.
SAFE_REQUEST_ID = re.compile(r"[0-9a-fA-F-]{8,64}|[A-Za-z0-9][A-Za-z0-9.:-]{0,31}")
_RTF_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
_DURATION_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600)


class _StateCollector(Collector):
    """Gauges computed when scraped: jobs by state and queue depth (with ``job_counts``: the server's,
    not a worker's), models, memory, GPU."""

    def __init__(
        self, job_counts: Callable[[], dict[str, int]] | None, queue_age: Callable[[], float] | None = None
    ) -> None:
        self.job_counts = job_counts
        self.queue_age = queue_age
        #: Set by the job queue at start (:meth:`Metrics.watch_running`): ages of the running jobs.
        self.running_ages: Callable[[], dict[str, float]] | None = None
        #: Set by the job queue at start (:meth:`Metrics.watch_deliveries`).
        self.most_deliveries: Callable[[], int] | None = None
        self.failed_by_code: Callable[[], dict[str, int]] | None = None

    def collect(self) -> Iterator[Metric]:
        from autovoice.models.cache import CACHE
        from autovoice.storage import JOB_STATUSES

        if self.job_counts is not None:
            try:
                counts = self.job_counts()
            except Exception as exc:  # the database is down: report what we can
                log.warning("metrics: cannot count jobs: %s", exc)
                counts = {}
            jobs = GaugeMetricFamily("autovoice_jobs", "Jobs by state.", labels=["state"])
            for state in JOB_STATUSES:
                jobs.add_metric([state], counts.get(state, 0))
            yield jobs
            yield GaugeMetricFamily(
                "autovoice_queue_depth", "Jobs waiting to start.", value=counts.get("queued", 0)
            )
        if self.queue_age is not None:
            try:
                age = self.queue_age()
            except Exception as exc:  # the database is down: the jobs gauges say so already
                log.warning("metrics: cannot read the queue's age: %s", exc)
            else:
                yield GaugeMetricFamily(
                    "autovoice_queue_oldest_job_age_seconds",
                    "Age of the oldest queued job (0: none).",
                    value=age,
                )
        if self.running_ages is not None:
            try:
                ages = self.running_ages()
            except Exception as exc:  # the database is down: the jobs gauges say so already
                log.warning("metrics: cannot read the running jobs' ages: %s", exc)
            else:
                yield GaugeMetricFamily(
                    "autovoice_job_heartbeat_age_seconds",
                    "Age of the oldest heartbeat of a running job (0: none runs); past "
                    "AUTOVOICE_JOB_STALE_AFTER_S the job is re-queued.",
                    value=ages["heartbeat_s"],
                )
                yield GaugeMetricFamily(
                    "autovoice_job_running_without_progress_seconds",
                    "Longest time a running job has gone without progress (0: none runs).",
                    value=ages["progress_s"],
                )
        yield from self._delivery_metrics()
        yield from _disk_metrics()
        load = GaugeMetricFamily(
            "autovoice_model_load_seconds", "Time to load each model in this process.", labels=["model"]
        )
        for name, seconds in dict(CACHE.load_seconds).items():
            load.add_metric([name], seconds)
        yield load
        try:
            import psutil

            mem = psutil.Process().memory_info()
            proc = GaugeMetricFamily(
                "autovoice_process_memory_bytes", "Memory of this process.", labels=["kind"]
            )
            proc.add_metric(["rss"], mem.rss)
            proc.add_metric(["vms"], mem.vms)
            yield proc
        except Exception:  # nosec B110 # psutil unavailable on an exotic platform: no memory gauge
            pass
        yield from _gpu_metrics()

    def _delivery_metrics(self) -> Iterator[Metric]:
        if self.most_deliveries is not None:
            try:
                most = self.most_deliveries()
            except Exception as exc:  # the database is down: the jobs gauges say so already
                log.warning("metrics: cannot read the jobs' deliveries: %s", exc)
            else:
                yield GaugeMetricFamily(
                    "autovoice_job_deliveries_max",
                    "Most times one unfinished job has been handed to a worker process (its worker died "
                    "before finishing it each time but the last); past AUTOVOICE_JOB_MAX_DELIVERIES the "
                    "job fails with worker_lost.",
                    value=most,
                )
        if self.failed_by_code is not None:
            try:
                codes = self.failed_by_code()
            except Exception as exc:  # the database is down: the jobs gauges say so already
                log.warning("metrics: cannot count the failed jobs: %s", exc)
            else:
                failed = GaugeMetricFamily(
                    "autovoice_jobs_failed",
                    "Failed jobs still stored, by error code (worker_lost: its worker died at every "
                    "delivery; job_attempts_exhausted: at every start).",
                    labels=["code"],
                )
                for code, n in sorted(codes.items()):
                    failed.add_metric([code], n)
                yield failed


def _disk_metrics() -> Iterator[Metric]:
    """Free and total bytes of the filesystem that holds the data dir (uploads, outputs, profiles)."""
    import shutil

    from autovoice.config import get_settings

    try:
        usage = shutil.disk_usage(get_settings().data_dir)
    except OSError as exc:
        log.warning("metrics: cannot read the data dir's disk usage: %s", exc)
        return
    yield GaugeMetricFamily(
        "autovoice_data_dir_free_bytes", "Free bytes on the data dir's filesystem.", value=usage.free
    )
    yield GaugeMetricFamily(
        "autovoice_data_dir_size_bytes", "Size of the data dir's filesystem.", value=usage.total
    )


def _gpu_metrics() -> Iterator[Metric]:
    torch = sys.modules.get("torch")  # never import torch just to be scraped
    if torch is None:
        return
    try:
        if not torch.cuda.is_available():
            return
        used = GaugeMetricFamily("autovoice_gpu_memory_bytes", "GPU memory by torch.", labels=["gpu", "kind"])
        util = GaugeMetricFamily("autovoice_gpu_utilization", "GPU utilisation 0..1.", labels=["gpu"])
        for i in range(torch.cuda.device_count()):
            used.add_metric([str(i), "allocated"], torch.cuda.memory_allocated(i))
            used.add_metric([str(i), "reserved"], torch.cuda.memory_reserved(i))
            free, total = torch.cuda.mem_get_info(i)
            used.add_metric([str(i), "total"], total)
            used.add_metric([str(i), "used"], total - free)
            with contextlib.suppress(Exception):  # utilisation needs pynvml
                util.add_metric([str(i)], torch.cuda.utilization(i) / 100.0)
        yield used
        yield util
    except Exception as exc:
        log.debug("metrics: GPU query failed: %s", exc)


class Metrics:
    """The service's Prometheus metrics; also a :class:`autovoice.jobs.JobObserver`.

    ``job_counts`` (the server's) feeds ``autovoice_jobs`` and ``autovoice_queue_depth``; a worker passes
    None, since those come from the database and the server already reports them.
    """

    def __init__(
        self,
        job_counts: Callable[[], dict[str, int]] | None,
        *,
        multiprocess: bool = False,
        queue_age: Callable[[], float] | None = None,
    ) -> None:
        from prometheus_client import GCCollector, PlatformCollector, ProcessCollector

        self.multiprocess = multiprocess
        self.registry = CollectorRegistry()
        if not multiprocess:  # per-process collectors; in multiprocess mode each would be one process's
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        self.requests = Counter(
            "autovoice_http_requests",
            "HTTP requests by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "autovoice_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.jobs_finished = Counter(
            "autovoice_jobs_finished",
            "Jobs finished by this process.",
            ["kind", "status"],
            registry=self.registry,
        )
        self.job_duration = Histogram(
            "autovoice_job_duration_seconds",
            "Wall time of finished jobs by kind and preset.",
            ["kind", "preset"],
            buckets=_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.rtf = Histogram(
            "autovoice_job_rtf",
            "Real-time factor of completed conversions (processing s / audio s).",
            ["kind", "preset"],
            buckets=_RTF_BUCKETS,
            registry=self.registry,
        )
        self.jobs_requeued = Counter(
            "autovoice_jobs_requeued",
            "Jobs put back in the queue by this process, by reason (worker_lost: the reaper here, or a "
            "redelivery taken over by a worker).",
            ["reason"],
            registry=self.registry,
        )
        self._state = _StateCollector(job_counts, queue_age)
        self.registry.register(self._state)

    def watch_running(self, ages: Callable[[], dict[str, float]]) -> None:
        """Report ``ages()`` (``heartbeat_s``, ``progress_s`` of the running jobs) at every scrape; called
        by the job queue when it starts (see :meth:`autovoice.jobs.JobStore.running_ages`)."""
        if self._state.job_counts is not None:  # the server's metrics; a worker's leave it to the server
            self._state.running_ages = ages

    def watch_deliveries(self, most: Callable[[], int], failed: Callable[[], dict[str, int]]) -> None:
        """Report ``most()`` (the most deliveries of an unfinished job) and ``failed()`` (failed jobs by
        error code) at every scrape; called by the job queue when it starts (see
        :meth:`autovoice.jobs.JobStore.most_deliveries`, :meth:`~autovoice.jobs.JobStore.failed_by_code`)."""
        if self._state.job_counts is not None:  # the server's metrics; a worker's leave it to the server
            self._state.most_deliveries = most
            self._state.failed_by_code = failed

    def job_requeued(self, reason: str) -> None:
        self.jobs_requeued.labels(reason).inc()

    def job_finished(self, *, kind: str, preset: str, status: str, seconds: float, rtf: float | None) -> None:
        self.jobs_finished.labels(kind, status).inc()
        if status == "completed":
            self.job_duration.labels(kind, preset).observe(seconds)
            if rtf is not None:
                self.rtf.labels(kind, preset).observe(float(rtf))

    def render(self) -> bytes:
        if self.multiprocess:
            # Counters and histograms of every server process (PROMETHEUS_MULTIPROC_DIR), plus the gauges
            # computed now (jobs, queue depth from the database; models, memory of this process).
            from prometheus_client.multiprocess import MultiProcessCollector

            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            registry.register(self._state)
            return generate_latest(registry)
        return generate_latest(self.registry)


class Cached(Generic[T]):
    """A value recomputed when older than ``ttl_s`` seconds (``/health``'s document).

    Concurrent callers of a stale value wait for one refresh, run in the thread pool, instead of each
    recomputing it. ``ttl_s`` 0 recomputes on every call.
    """

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = max(float(ttl_s), 0.0)
        self._value: T | None = None
        self._at = -math.inf
        self._lock: asyncio.Lock | None = None

    def _fresh(self) -> T | None:
        return self._value if time.monotonic() - self._at < self.ttl_s else None

    async def get(self, compute: Callable[[], T]) -> T:
        value = self._fresh()
        if value is not None:
            return value
        if self._lock is None:
            self._lock = asyncio.Lock()  # made on the event loop that uses it
        async with self._lock:
            value = self._fresh()
            if value is None:
                value = await run_in_threadpool(compute)
                self._value, self._at = value, time.monotonic()
            return value


def start_metrics_server(metrics: Metrics, *, host: str, port: int) -> Any:
    """Serve ``metrics`` at ``http://host:port/metrics`` from a daemon thread (a worker's job process).

    Returns the server (``.shutdown()`` stops it), or None when the port cannot be bound: that is
    logged as an error and the process goes on without an endpoint.
    """
    from prometheus_client import start_http_server

    try:
        server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        log.error(
            "worker metrics: cannot listen on %s:%d (%s); this process serves no metrics", host, port, exc
        )
        return None
    log.info("worker metrics on http://%s:%d/metrics", host, port)
    return server


def worker_metrics(settings: Settings) -> tuple[Metrics | None, Callable[[int], None] | None]:
    """What ``autovoice worker`` needs for ``Settings.worker_metrics_port``: the job observer, and the
    hook each job process calls with its index to serve it on ``worker_metrics_port + index``
    (``(None, None)`` when the port is unset)."""
    if settings.worker_metrics_port is None:
        return None, None
    metrics = Metrics(None)
    base, host = settings.worker_metrics_port, settings.worker_metrics_host

    def serve(index: int) -> None:
        start_metrics_server(metrics, host=host, port=base + index)

    return metrics, serve


class RequestMiddleware:
    """Pure ASGI middleware: request id (``X-Request-ID``), timing, metrics and one log line per request.

    It is also where an unexpected exception ends: logged once with its trace and answered with the 500
    ``internal_error`` document (:func:`autovoice.service.errors.internal_error_response`), never passed
    on to the server (which would log the same trace a second time). A WebSocket is logged with the
    status of its handshake: 101 once accepted, 403 when closed before that (auth, limits), or the
    status of the HTTP response sent instead.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        from autovoice.service.errors import internal_error_response

        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if SAFE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex[:16]
        scope["request_id"] = request_id
        token = current_request_id.set(request_id)
        websocket = scope["type"] == "websocket"
        # None until a response starts. An HTTP request that ends without one failed (500); a WebSocket
        # whose client left before its handshake was answered is logged as "closed", with no status.
        status: dict[str, int | None] = {"code": None, "close": None}
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                status["code"] = message["status"]
                headers = list(message.get("headers") or [])
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            elif kind == "websocket.accept":
                status["code"] = 101
            elif kind == "websocket.close":
                status["close"] = int(message.get("code", 1000))
                if status["code"] is None:
                    status["code"] = 403  # refused before the handshake: the server answers 403
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method", "WS"), scope.get("path", "?"))
            if not websocket and status["code"] is None:
                await internal_error_response(request_id)(scope, receive, send_wrapper)
            elif websocket and status["close"] is None:
                # Close it as failed (1011 once accepted; refused, 403, before that).
                with contextlib.suppress(Exception):
                    await send_wrapper({"type": "websocket.close", "code": 1011})
                if status["code"] == 101:
                    status["code"] = 500
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "WS")
            code = status["code"]
            if not websocket:
                code = code if code is not None else 500
                self.metrics.requests.labels(method, template, str(code)).inc()
                self.metrics.latency.labels(method, template).observe(elapsed)
            extra: dict[str, Any] = {
                "route": template,
                "status": code,
                "duration_ms": round(elapsed * 1000, 2),
            }
            if websocket:
                extra["close_code"] = status["close"]
            log.info(
                "%s %s -> %s in %.1f ms",
                method,
                template,
                code if code is not None else "closed",
                elapsed * 1000,
                extra=extra,
            )
            current_request_id.reset(token)
