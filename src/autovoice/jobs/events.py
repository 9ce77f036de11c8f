"""Job events over pub/sub: in-process (embedded mode) or Redis (distributed mode).

Workers :meth:`~EventBus.publish` a JSON-able dict per progress step from any thread or process (the
embedded server's worker processes through a :class:`ChannelBus`); the WebSocket route
:meth:`~EventBus.subscribe` s to one job. Events are a fast path only: the job row is the
truth, and subscribers re-read it when no event arrives for a while, so a lost message costs latency,
never correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

log = logging.getLogger(__name__)
CHANNEL_PREFIX = "autovoice:job:"


class Subscription(Protocol):
    async def get(self, timeout: float) -> dict[str, Any] | None:
        """The next event, or ``None`` after ``timeout`` seconds without one."""
        ...


class EventBus(Protocol):
    def publish(self, job_id: str, event: dict[str, Any]) -> None:
        """Send ``event`` to the job's subscribers; never raises (events are best effort)."""
        ...

    def subscribe(self, job_id: str) -> contextlib.AbstractAsyncContextManager[Subscription]:
        """Receive the job's events from now on, for the life of the context."""
        ...

    def close(self) -> None: ...


class _QueueSubscription:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)

    async def get(self, timeout: float) -> dict[str, Any] | None:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None


def _put(sub: _QueueSubscription, event: dict[str, Any]) -> None:
    with contextlib.suppress(asyncio.QueueFull):  # a stalled client drops events, then re-reads the row
        sub.queue.put_nowait(event)


class LocalBus:
    """Pub/sub inside one process: worker threads publish, the event loop's subscribers receive."""

    def __init__(self) -> None:
        self._subs: dict[str, set[tuple[asyncio.AbstractEventLoop, _QueueSubscription]]] = {}
        self._lock = threading.Lock()

    def publish(self, job_id: str, event: dict[str, Any]) -> None:
        with self._lock:
            targets = list(self._subs.get(job_id, ()))
        for loop, sub in targets:
            with contextlib.suppress(RuntimeError):  # loop closed: the subscriber is gone
                loop.call_soon_threadsafe(_put, sub, dict(event))

    @asynccontextmanager
    async def subscribe(self, job_id: str) -> AsyncIterator[Subscription]:
        sub = _QueueSubscription()
        entry = (asyncio.get_running_loop(), sub)
        with self._lock:
            self._subs.setdefault(job_id, set()).add(entry)
        try:
            yield sub
        finally:
            with self._lock:
                subs = self._subs.get(job_id)
                if subs is not None:
                    subs.discard(entry)
                    if not subs:
                        del self._subs[job_id]

    def close(self) -> None:
        with self._lock:
            self._subs.clear()


class RedisBus:
    """Pub/sub through Redis channels ``autovoice:job:<id>``, shared by the server and the workers.

    Parameters
    ----------
    url
        ``redis://host:port/db``.
    """

    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        self._client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)

    def publish(self, job_id: str, event: dict[str, Any]) -> None:
        try:
            self._client.publish(CHANNEL_PREFIX + job_id, json.dumps(event))
        except Exception as exc:  # redis raises several types; an event is best effort
            log.warning("could not publish an event of job %s: %s", job_id, exc)

    @asynccontextmanager
    async def subscribe(self, job_id: str) -> AsyncIterator[Subscription]:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(self.url)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        sub = _QueueSubscription()
        await pubsub.subscribe(CHANNEL_PREFIX + job_id)

        async def pump() -> None:
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    with contextlib.suppress(ValueError):
                        _put(sub, json.loads(message["data"]))

        task = asyncio.create_task(pump())
        try:
            yield sub
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            with contextlib.suppress(Exception):
                await pubsub.aclose()
                await client.aclose()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.close()


class ChannelBus:
    """The event bus of a worker process (:mod:`autovoice.jobs.pool`): events go into a
    :mod:`multiprocessing` queue that the server's pump thread hands to its :class:`LocalBus`.

    Parameters
    ----------
    channel
        The queue shared with the server (``multiprocessing.Queue``).
    """

    def __init__(self, channel: Any) -> None:
        self.channel = channel

    def publish(self, job_id: str, event: dict[str, Any]) -> None:
        try:
            self.channel.put(("event", job_id, dict(event)))
        except Exception as exc:  # the server is going away: an event is best effort
            log.warning("could not send an event of job %s to the server: %s", job_id, exc)

    def subscribe(self, job_id: str) -> contextlib.AbstractAsyncContextManager[Subscription]:
        raise NotImplementedError("a worker process publishes events; the server subscribes")

    def close(self) -> None:
        return None
