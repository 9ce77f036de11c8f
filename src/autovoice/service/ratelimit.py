"""Rate limits per API key (or client address), and per address over all its keys, with ``limits``.

Every API request counts against its client's budget: the API key's when it sends one, else its
address's (``Settings.rate_limit``). With ``Settings.address_rate_limit`` set, it also counts against
its address's budget over all keys, so one machine cannot take more by using many keys. Budgets are
separate: a client that runs out of its own does not slow or refuse anyone else. Requests that start
work also count against ``Settings.job_rate_limit``.

In-memory counters in embedded mode; Redis counters when a Redis URL is configured, so every server
process (and every server behind a load balancer) shares them. Exceeding a limit is a 429
``rate_limited`` with ``Retry-After`` (seconds).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from autovoice.errors import ParameterError
from autovoice.service.errors import RateLimitedError

log = logging.getLogger(__name__)
_WHAT = {"all": "requests", "job": "job submissions", "addr": "requests from this address"}


def _parse(value: str, field: str) -> list[Any]:
    from limits import parse_many

    if not value.strip():
        return []
    try:
        items = parse_many(value)
    except ValueError:
        items = []
    if not items or any(i.amount < 1 for i in items):
        raise ParameterError(
            "invalid_rate_limit",
            f"Cannot parse the rate limit '{value}' ({field}): use e.g. '100/minute' or "
            "'10/minute;100/hour', or '' for none.",
            {"field": field, "value": value},
        )
    return items


class RateLimits:
    """A limit for every API request, a stricter one for job-creating requests, and one per address.

    Parameters
    ----------
    default, jobs, address
        ``limits`` strings such as ``"100/minute"`` or ``"10/minute;100/hour"``; empty disables.
        ``default`` and ``jobs`` apply per client (API key, or address without one); ``address`` per
        client address over all its keys.
    storage_uri
        ``memory://`` or ``redis://host:port/db``.
    """

    def __init__(self, default: str, jobs: str, *, address: str = "", storage_uri: str = "memory://") -> None:
        from limits.storage import storage_from_string
        from limits.strategies import MovingWindowRateLimiter

        self.default = _parse(default, "rate_limit")
        self.jobs = _parse(jobs, "job_rate_limit")
        self.address = _parse(address, "address_rate_limit")
        self.storage_uri = storage_uri
        options: dict[str, str | float | bool] = {}
        if storage_uri.startswith("redis"):
            options["key_prefix"] = "autovoice-limits"
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri, **options))

    def check(self, identity: str, *, job: bool = False, address: str | None = None) -> None:
        """Count one request for ``identity`` (``key:<id>`` or ``ip:<address>``) against the general
        limit, or with ``job`` the job limit; with ``address``, also against that address's limit.
        Raise ``rate_limited`` at the first limit that is exceeded (a refused request is not counted
        further)."""
        items = (
            [("job", identity, i) for i in self.jobs] if job else [("all", identity, i) for i in self.default]
        )
        if address is not None and not job:
            items += [("addr", f"ip:{address}", i) for i in self.address]
        for scope, who, item in items:
            try:
                allowed = self._limiter.hit(item, scope, who)
                stats = None if allowed else self._limiter.get_window_stats(item, scope, who)
            except Exception as exc:  # counters unreachable (Redis down): fail open, loudly
                log.warning("rate limit storage %s failed: %s; request allowed", self.storage_uri, exc)
                return
            if stats is not None:
                retry = max(1, math.ceil(stats.reset_time - time.time()))
                raise RateLimitedError(
                    "rate_limited",
                    f"Too many requests: the limit is {item} ({_WHAT[scope]}). Retry in {retry} s.",
                    {
                        "limit": str(item),
                        "scope": {"all": "key" if who.startswith("key:") else "client", "job": "job"}.get(
                            scope, "address"
                        ),
                        "retry_after_s": retry,
                    },
                )
