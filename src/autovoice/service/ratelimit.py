"""Rate limits per API key (or client address) with the ``limits`` library.

In-memory counters in embedded mode; Redis counters when a Redis URL is configured, so every server
process behind a load balancer shares them. Exceeding a limit is a 429 ``rate_limited`` with
``Retry-After`` (seconds).
"""

from __future__ import annotations

import logging
import math
import time

from autovoice.errors import ParameterError
from autovoice.service.errors import RateLimitedError

log = logging.getLogger(__name__)


class RateLimits:
    """A general limit for every API request and a stricter one for job-creating requests.

    Parameters
    ----------
    default, jobs
        ``limits`` strings such as ``"100/minute"`` or ``"10/minute;100/hour"``; empty disables.
    storage_uri
        ``memory://`` or ``redis://host:port/db``.
    """

    def __init__(self, default: str, jobs: str, *, storage_uri: str = "memory://") -> None:
        from limits import parse_many
        from limits.storage import storage_from_string
        from limits.strategies import MovingWindowRateLimiter

        try:
            self.default = parse_many(default) if default.strip() else []
            self.jobs = parse_many(jobs) if jobs.strip() else []
        except ValueError as exc:
            raise ParameterError(
                "invalid_rate_limit",
                f"Cannot parse rate limit '{default}' / '{jobs}': use e.g. '100/minute'.",
                {"default": default, "jobs": jobs},
            ) from exc
        self.storage_uri = storage_uri
        options: dict[str, str | float | bool] = {}
        if storage_uri.startswith("redis"):
            options["key_prefix"] = "autovoice-limits"
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri, **options))

    def check(self, identity: str, *, job: bool = False) -> None:
        """Count one request for ``identity`` against the general limit (or, with ``job``, the job
        limit); raise ``rate_limited`` when over it."""
        items = [("job", i) for i in self.jobs] if job else [("all", i) for i in self.default]
        for scope, item in items:
            try:
                allowed = self._limiter.hit(item, scope, identity)
                stats = None if allowed else self._limiter.get_window_stats(item, scope, identity)
            except Exception as exc:  # counters unreachable (Redis down): fail open, loudly
                log.warning("rate limit storage %s failed: %s; request allowed", self.storage_uri, exc)
                return
            if stats is not None:
                retry = max(1, math.ceil(stats.reset_time - time.time()))
                raise RateLimitedError(
                    "rate_limited",
                    f"Too many requests: the limit is {item} "
                    f"({'job submissions' if scope == 'job' else 'requests'}). Retry in {retry} s.",
                    {"limit": str(item), "retry_after_s": retry},
                )
