"""``/health``, ``/health/live``, ``/health/ready`` and ``/metrics``.

``/health`` and ``/health/ready`` answer from a document at most ``Settings.health_cache_s`` old
(``ServiceState.health``, a :class:`~autovoice.service.observability.Cached`): probes and dashboards
poll them often, and a database round trip per call was the most expensive part of the route under
load. One request at a time refreshes it, in the thread pool.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from autovoice import __version__
from autovoice.models.cache import CACHE
from autovoice.service.errors import error_body
from autovoice.service.schemas import ErrorResponse, HealthResponse, LiveResponse, QueueInfo
from autovoice.service.state import ServiceState, State, authenticate

router = APIRouter(tags=["health"])


def _health(state: ServiceState) -> HealthResponse:
    db_ok = state.db.ping()
    counts = state.jobs.count_by_status() if db_ok else {}
    return HealthResponse(
        status="ok" if db_ok else "degraded",
        version=__version__,
        device=state.device,
        models=CACHE.loaded(),
        queue=QueueInfo(
            mode="celery" if state.queue.mode == "celery" else "local",
            depth=counts.get("queued", 0),
            running=counts.get("running", 0),
        ),
        database=db_ok,
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
    responses={503: {"model": ErrorResponse, "description": "Not ready (database unreachable)."}},
)
async def ready(state: State) -> HealthResponse | JSONResponse:
    """Ready to take requests (readiness probe): the database answers."""
    doc = await state.health.get(lambda: _health(state))
    if not doc.database:
        return JSONResponse(
            error_body("not_ready", "The database does not answer.", {"database": False}), status_code=503
        )
    return doc


@router.get(
    "/metrics",
    response_class=Response,
    dependencies=[Depends(authenticate)],
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format."}},
)
def metrics(state: State) -> Response:
    """Prometheus metrics of this process (text exposition format)."""
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
