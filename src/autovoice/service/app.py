"""The FastAPI application: :func:`create_app` builds it, :func:`serve` runs it with uvicorn.

Start-up (the lifespan) opens the database and applies migrations, re-indexes the profiles, starts the
job queue (an embedded :class:`~autovoice.jobs.LocalQueue` re-queues jobs a crash left unfinished) and
connects the event bus; shutdown stops them in reverse. CPU work never runs on the event loop nor in
its thread pool: conversions run in the queue's worker processes (embedded) or Celery workers, profile
builds in the server's own small :class:`~autovoice.jobs.pool.WorkerPool`.

``/docs`` and ``/redoc`` use local copies of Swagger UI and ReDoc (:mod:`autovoice.service.docs`). What no
route takes goes to :class:`~autovoice.service.routing.Fallback`: a 405 with the right ``Allow`` header on
an API path, else the static web page.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from autovoice import __version__
from autovoice.config import Settings, get_settings

log = logging.getLogger("autovoice.service")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def _build_state(settings: Settings, host: str | None, metrics: Any) -> Any:
    from autovoice.jobs import JobContext, JobStore, LocalBus, RedisBus, make_queue, redis_url
    from autovoice.jobs.pool import WorkerPool
    from autovoice.models.devices import resolve_device
    from autovoice.service.auth import ApiKeyAuth, api_key_required
    from autovoice.service.observability import Cached
    from autovoice.service.ratelimit import RateLimits
    from autovoice.service.state import ServiceState
    from autovoice.storage import BlobStore, Database, ProfileIndex
    from autovoice.storage.space import require_writable

    require_writable(settings.data_dir)  # a clear storage_read_only / storage_full, not SQLite's trace
    db = Database(settings)
    db.migrate()
    blobs = BlobStore(settings)
    blobs.clean_scratch()
    profiles = ProfileIndex(db, settings)
    profiles.reconcile()
    distributed = bool(settings.broker_url)
    url = redis_url(settings)
    bus: Any = RedisBus(url) if distributed and url else LocalBus()
    ctx = JobContext(settings=settings, db=db, bus=bus, observer=metrics)
    queue = make_queue(ctx)
    limits = RateLimits(
        settings.rate_limit,
        settings.job_rate_limit,
        address=settings.address_rate_limit,
        storage_uri=url if url else "memory://",
    )
    return ServiceState(
        settings=settings,
        db=db,
        blobs=blobs,
        profiles=profiles,
        jobs=JobStore(db, blobs),
        bus=bus,
        ctx=ctx,
        queue=queue,
        auth=ApiKeyAuth(db, required=api_key_required(settings, host)),
        limits=limits,
        metrics=metrics,
        device=resolve_device(settings.device),
        workers=WorkerPool(settings, workers=settings.profile_build_workers, name="builds"),
        health=Cached(settings.health_cache_s),
    )


def create_app(
    settings: Settings | None = None,
    *,
    host: str | None = None,
    on_ready: Callable[[Any], None] | None = None,
    multiprocess_metrics: bool = False,
) -> FastAPI:
    """Build the AutoVoice API.

    Parameters
    ----------
    settings
        Defaults to :func:`autovoice.config.get_settings`.
    host
        The address the server binds (decides whether API keys are required); default loopback.
    on_ready
        Called with the :class:`~autovoice.service.state.ServiceState` once start-up has finished.
    multiprocess_metrics
        ``/metrics`` adds up the counters of every server process (``server_workers`` > 1).
    """
    from fastapi.middleware.cors import CORSMiddleware
    from starlette.concurrency import run_in_threadpool

    from autovoice.service.auth import api_key_required
    from autovoice.service.bodies import BodyDeadline
    from autovoice.service.docs import install_docs
    from autovoice.service.errors import install_error_handlers
    from autovoice.service.observability import Metrics, RequestMiddleware
    from autovoice.service.openapi import install_openapi
    from autovoice.service.routes import conversions, engines, health, profiles, tts

    s = settings or get_settings()
    holder: dict[str, Any] = {}

    def job_counts() -> dict[str, int]:
        state = holder.get("state")
        return state.jobs.count_by_status() if state is not None else {}

    def queue_age() -> float:
        state = holder.get("state")
        return state.jobs.oldest_queued_age_s() if state is not None else 0.0

    metrics = Metrics(job_counts, multiprocess=multiprocess_metrics, queue_age=queue_age)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await run_in_threadpool(_build_state, s, host, metrics)
        holder["state"] = app.state.service = state
        await run_in_threadpool(state.queue.start)
        log.info(
            "AutoVoice %s ready: %s queue, database %s, device %s, API keys %s",
            __version__,
            state.queue.mode,
            state.db.engine.url.render_as_string(hide_password=True),
            state.device,
            "required" if state.auth.required else "optional",
        )
        if on_ready is not None:
            on_ready(state)
        try:
            yield
        finally:
            await run_in_threadpool(state.queue.shutdown)
            await run_in_threadpool(state.workers.shutdown)
            state.bus.close()
            state.db.dispose()
            holder.pop("state", None)

    app = FastAPI(
        title="AutoVoice",
        version=__version__,
        description="Voice profiles, singing voice conversion and speech. Errors are "
        '`{"error": {"code", "message", "details"}}`.',
        lifespan=lifespan,
        docs_url=None,  # install_docs serves local assets instead of a CDN's
        redoc_url=None,
    )
    install_error_handlers(app)
    install_docs(app)
    install_openapi(app, keys_required=api_key_required(s, host))
    origins = list(s.cors_origins)
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "X-Request-ID"],
            expose_headers=["Retry-After", "X-Request-ID", "Location"],
        )
    app.add_middleware(BodyDeadline)  # inside the request middleware: its 408 is logged and counted
    app.add_middleware(RequestMiddleware, metrics=metrics)
    for module in (health, profiles, conversions, engines, tts):
        app.include_router(module.router)
    from autovoice.service.routes import live

    app.include_router(live.router)
    _mount_web(app)
    return app


def _mount_web(app: FastAPI) -> None:
    """Mount the fallback at ``/`` (after the API routes, which keep priority): the web page, with a 405
    and the path's real ``Allow`` methods for an API path asked with a method it does not serve."""
    from fastapi.staticfiles import StaticFiles

    from autovoice.service.routing import Fallback, web_page_dir

    folder = web_page_dir()
    page = StaticFiles(directory=folder, html=True) if folder is not None else None
    app.mount("/", Fallback(app.router, page), name="web")


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    settings: Settings | None = None,
    banner: bool = True,
    workers: int | None = None,
) -> None:
    """Run the API with uvicorn until interrupted (blocks).

    ``workers`` (default ``Settings.server_workers``) server processes share the port; more than one
    needs distributed mode (jobs on Celery workers, state in PostgreSQL and Redis), and each process
    then reads its settings from the environment.

    Logs go to stderr (readable on a terminal, else JSON lines; ``log_format`` decides) at the settings'
    ``log_level``, or at the more verbose level the CLI's ``-v`` already set up. Once start-up is done,
    the banner (:func:`autovoice.service.banner.startup_banner`) goes to stdout unless ``banner`` is False.
    """
    import uvicorn

    from autovoice.service.banner import startup_banner
    from autovoice.service.logs import configure_server_logging, route_native_stderr

    s = settings or get_settings()
    n = s.server_workers if workers is None else workers
    if n > 1 and not s.broker_url:
        from autovoice.errors import ParameterError

        raise ParameterError(
            "server_workers_need_broker",
            f"server_workers={n} needs distributed mode: set AUTOVOICE_BROKER_URL and "
            "AUTOVOICE_DATABASE_URL. In embedded mode jobs run inside the one server process.",
            {"server_workers": n},
        )
    from autovoice.storage.space import require_writable

    # Before uvicorn: a read-only or full data dir is one line from the CLI (exit 1), not a start-up trace.
    require_writable(s.data_dir)
    configure_server_logging(s)
    route_native_stderr()  # libmpg123, the resource tracker, children: JSON records, not raw lines
    if n > 1:
        _serve_processes(s, host, port, n, banner=banner)
        return
    from autovoice.models.devices import one_compute_thread

    one_compute_thread()  # light routes and live blocks only: builds and conversions run in workers

    def show_banner(state: Any) -> None:
        text = startup_banner(s, host, port, device=state.device, api_keys_required=state.auth.required)
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    from autovoice.service.server import CONFIG_ATTRIBUTE, protocol_class

    app = create_app(s, host=host, on_ready=show_banner if banner else None)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        proxy_headers=False,
        ws="websockets-sansio",
        http=protocol_class(),  # closes connections whose headers do not arrive in header_timeout_s
    )
    setattr(config, CONFIG_ATTRIBUTE, s.header_timeout_s)
    uvicorn.Server(config).run()


def worker_app() -> FastAPI:
    """The app of one of several server processes (uvicorn's factory when ``server_workers`` > 1)."""
    from autovoice.models.devices import one_compute_thread
    from autovoice.service.logs import configure_server_logging, route_native_stderr

    s = get_settings()
    configure_server_logging(s)
    route_native_stderr()
    one_compute_thread()
    return create_app(s, multiprocess_metrics=True)


def _serve_processes(s: Settings, host: str, port: int, workers: int, *, banner: bool) -> None:
    """``workers`` uvicorn processes on one port; /metrics adds up all of them (prometheus_client's
    multiprocess mode, in a temporary folder)."""
    import os
    import shutil
    import tempfile

    import uvicorn

    from autovoice.models.devices import resolve_device
    from autovoice.service.auth import api_key_required
    from autovoice.service.banner import startup_banner
    from autovoice.service.server import protocol_class

    required = api_key_required(s, host)
    folder = tempfile.mkdtemp(prefix="autovoice-metrics-")
    # The processes read their settings afresh: hand them what this one decided (written, not read,
    # here; prometheus_client reads its folder from this variable when it is imported).
    os.environ["AUTOVOICE_REQUIRE_API_KEY"] = "true" if required else "false"
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    if banner:
        text = startup_banner(s, host, port, device=resolve_device(s.device), api_keys_required=required)
        sys.stdout.write(f"{text}\n{workers} server processes.\n")
        sys.stdout.flush()
    try:
        uvicorn.run(
            "autovoice.service.app:worker_app",
            factory=True,
            workers=workers,
            host=host,
            port=port,
            log_config=None,
            proxy_headers=False,
            ws="websockets-sansio",
            http=protocol_class(),  # each process reads header_timeout_s from its settings
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
