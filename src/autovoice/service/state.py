"""What a running app holds (built at start-up, closed at shutdown) and the request dependencies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

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
    """Dependency of every API route: API key, then the general rate limit. Returns the identity."""
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
    """Dependency of job-creating routes (after :func:`guard`): the stricter job-submission limit."""
    state = get_state(request)
    identity = getattr(request.state, "identity", None) or client_identity(request, None)
    state.limits.check(identity, job=True)
