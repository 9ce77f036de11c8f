"""``/health``, ``/health/live``, ``/health/ready`` and ``/metrics``.

``/health`` and ``/health/ready`` answer from a document at most ``Settings.health_cache_s`` old
(``ServiceState.health``, a :class:`~autovoice.service.observability.Cached`): probes and dashboards
poll them often, and a database round trip per call was the most expensive part of the route under
load. One request at a time refreshes it, in the thread pool.
"""

from __future__ import annotations

from pathlib import PurePath

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from autovoice import __version__
from autovoice.models.cache import CACHE
from autovoice.service.errors import error_body
from autovoice.service.schemas import ErrorResponse, HealthResponse, LiveResponse, QueueInfo, error_responses
from autovoice.service.state import ServiceState, State, authenticate
from autovoice.storage.space import check_storage

router = APIRouter(tags=["health"])


def public_model_name(entry: str) -> str:
    """``name@device`` with any file path in the name cut to the file's name: a model loaded from a path
    (``piper:/.../en_US-joe-medium.onnx@cpu``) must not show the server's install paths to anyone who can
    reach ``/health`` (no key needed)."""
    name, at, device = entry.rpartition("@")
    if not at:
        name = entry
    kind, colon, rest = name.partition(":")
    if not colon:
        kind, rest = "", name
    if "/" in rest or "\\" in rest:
        rest = PurePath(rest.replace("\\", "/")).name
    name = f"{kind}:{rest}" if colon else rest
    return f"{name}@{device}" if at else name


def _health(state: ServiceState) -> HealthResponse:
    db_ok = state.db.ping()
    counts = state.jobs.count_by_status() if db_ok else {}
    storage = check_storage(state.settings.data_dir, min_free_bytes=state.settings.min_free_bytes)
    state.storage_problem = storage.problem
    return HealthResponse(
        status="ok" if db_ok and storage.ok else "degraded",
        version=__version__,
        device=state.device,
        models=[public_model_name(m) for m in CACHE.loaded()],
        queue=QueueInfo(
            mode="celery" if state.queue.mode == "celery" else "local",
            depth=counts.get("queued", 0),
            running=counts.get("running", 0),
        ),
        database=db_ok,
        storage=storage.ok,
    )


@router.get("/health", response_model=HealthResponse)
async def health(state: State) -> HealthResponse:
    """Status, version, device, loaded models and queue depth (at most `AUTOVOICE_HEALTH_CACHE_S` old)."""
    return await state.health.get(lambda: _health(state))


@router.get("/health/live", response_model=LiveResponse)
async def live() -> LiveResponse:
    """The process answers (liveness probe); touches nothing else."""
    return LiveResponse(status="ok")


@router.get(
    "/health/ready",
    response_model=HealthResponse,
    responses={
        503: {
            "model": ErrorResponse,
            "description": "Not ready: the database does not answer, or the data dir is full or not "
            "writable.",
        }
    },
)
async def ready(state: State) -> HealthResponse | JSONResponse:
    """Ready to take requests (readiness probe): the database answers and the data dir takes a write
    with at least `AUTOVOICE_MIN_FREE_BYTES` free."""
    doc = await state.health.get(lambda: _health(state))
    if not doc.database or not doc.storage:
        problems = [] if doc.database else ["The database does not answer."]
        if not doc.storage:
            problems.append(state.storage_problem or "The data dir is full or not writable.")
        return JSONResponse(
            error_body("not_ready", " ".join(problems), {"database": doc.database, "storage": doc.storage}),
            status_code=503,
        )
    return doc


@router.get(
    "/metrics",
    response_class=Response,
    dependencies=[Depends(authenticate)],
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format."},
        **error_responses(401),
    },
)
def metrics(state: State) -> Response:
    """Prometheus metrics of this process (text exposition format)."""
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
