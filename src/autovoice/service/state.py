"""What a running app holds (built at start-up, closed at shutdown) and the request dependencies."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request, Response, Security
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from autovoice.config import Settings
from autovoice.jobs import EventBus, JobContext, JobStore
from autovoice.jobs.pool import WorkerPool
from autovoice.jobs.queue import CeleryQueue, LocalQueue
from autovoice.service.auth import ApiKeyAuth, token_from_headers
from autovoice.service.observability import Cached, Metrics
from autovoice.service.ratelimit import RateLimits
from autovoice.service.schemas import HealthResponse
from autovoice.storage import BlobStore, Database, ProfileIndex


@dataclass
class ServiceState:
    settings: Settings
    db: Database
    blobs: BlobStore
    profiles: ProfileIndex
    jobs: JobStore
    bus: EventBus
    ctx: JobContext
    queue: LocalQueue | CeleryQueue
    auth: ApiKeyAuth
    limits: RateLimits
    metrics: Metrics
    device: str
    #: Worker processes for the server's own CPU work (profile builds, model checks).
    workers: WorkerPool
    #: The ``/health`` document, at most ``Settings.health_cache_s`` old.
    health: Cached[HealthResponse] = field(default_factory=lambda: Cached(1.0))
    #: What the last health check found wrong with the data dir (None: nothing).
    storage_problem: str | None = None


def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


#: A route parameter receiving the app's :class:`ServiceState`.
State = Annotated[ServiceState, Depends(get_state)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def client_identity(request: Request, key_id: str | None) -> str:
    if key_id is not None:
        return f"key:{key_id}"
    return f"ip:{client_address(request)}"


# How a key is sent, as OpenAPI security schemes (auto_error off: the check below decides, with our own
# error document). Declaring them here makes every route that depends on a check document them.
_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    description="`Authorization: Bearer <key>`; create a key with `autovoice apikey create NAME`.",
)
_API_KEY = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="apiKeyHeader",
    description="The same key as `X-API-Key` (one or the other; two different keys are refused).",
)
#: The security schemes a key-checking dependency declares (documentation only; the check reads headers).
BearerScheme = Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)]
ApiKeyScheme = Annotated[str | None, Security(_API_KEY)]


def authenticate(request: Request, _bearer: BearerScheme = None, _key: ApiKeyScheme = None) -> str | None:
    """Dependency: check the API key (required or optional); the key id or None."""
    state = get_state(request)
    key_id = state.auth.authenticate(token_from_headers(request.headers))
    request.state.key_id = key_id
    return key_id


def guard(request: Request, _bearer: BearerScheme = None, _key: ApiKeyScheme = None) -> str:
    """Dependency of every API route: API key, then the general rate limit. Returns the identity.

    Once per request: on an :class:`AdmittedRoute` it has run before the body was read."""
    done: str | None = getattr(request.state, "identity", None)
    if done is not None:
        return done
    state = get_state(request)
    try:
        key_id = state.auth.authenticate(token_from_headers(request.headers))
    except Exception:
        # Count failed attempts against the address, so keys cannot be guessed at full speed.
        state.limits.check(client_identity(request, None), address=client_address(request))
        raise
    identity = client_identity(request, key_id)
    state.limits.check(identity, address=client_address(request))
    request.state.identity = identity
    return identity


def job_limit(request: Request) -> None:
    """Dependency of job-creating routes (after :func:`guard`): the stricter job-submission limit.
    Once per request, like :func:`guard`."""
    if getattr(request.state, "job_counted", False):
        return
    state = get_state(request)
    identity = getattr(request.state, "identity", None) or client_identity(request, None)
    state.limits.check(identity, job=True)
    request.state.job_counted = True


#: The admission dependencies, in the order they run.
_ADMISSION: tuple[Callable[[Request], Any], ...] = (guard, job_limit)


class AdmittedRoute(APIRoute):
    """An API route whose key and rate limits (:func:`guard`, :func:`job_limit`, where it depends on them)
    are checked before its body is read.

    FastAPI reads a declared body (a JSON model) before it solves the route's dependencies, so a client
    over its limit would still have its body read, slowly if it likes, before its 429. The checks run
    first here; the dependencies then find them done (they stay declared, for the OpenAPI document).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        wanted = {d.dependency for d in self.dependencies}
        checks = [check for check in _ADMISSION if check in wanted]
        if not checks:
            return handler

        async def admitted(request: Request) -> Response:
            for check in checks:
                await run_in_threadpool(check, request)
            return await handler(request)

        return admitted
