"""A read deadline for every request body: an upload or a JSON document that stalls or trickles gets 408
``upload_timeout`` instead of holding its connection.

:class:`BodyDeadline` (ASGI middleware) wraps the request's ``receive``: while the body is still
arriving, each chunk must come within :data:`BODY_IDLE_TIMEOUT_S`, and after :data:`BODY_GRACE_S` the
body must have come at :data:`BODY_MIN_BYTES_PER_S` on average. A request with no body, and everything
after the body's last chunk (a streamed response waiting for the client to go away), is left alone.

The timeout is raised from ``receive`` as :class:`~autovoice.service.errors.CarriedError`, an
``HTTPException``: FastAPI passes a middleware's ``HTTPException`` on as it is while it reads a declared
body (any other error there becomes its own 400), so the client gets the 408 error document whether the
body was JSON or a multipart upload (:mod:`autovoice.service.uploads` reads the same ``receive``).
"""

from __future__ import annotations

import time

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from autovoice.errors import AutoVoiceError
from autovoice.service.errors import CarriedError

#: No byte of the body for this long: 408.
BODY_IDLE_TIMEOUT_S = 30.0
#: After this long, the body must have come at :data:`BODY_MIN_BYTES_PER_S` on average.
BODY_GRACE_S = 30.0
BODY_MIN_BYTES_PER_S = 8 * 1024


class UploadTimeoutError(AutoVoiceError):
    """The client stopped sending its request body, or sent it too slowly (``upload_timeout``, 408)."""

    http_status = 408


def _timed_out(message: str, details: dict[str, float | int]) -> CarriedError:
    return CarriedError(UploadTimeoutError("upload_timeout", message, details))


class BodyDeadline:
    """ASGI middleware: a read deadline for the body of every HTTP request (see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, received, done = time.monotonic(), 0, False

        async def timed_receive() -> Message:
            nonlocal received, done
            if done:  # the body is in: what follows is the wait for a disconnect
                return await receive()
            idle = BODY_IDLE_TIMEOUT_S
            try:
                with anyio.fail_after(idle):
                    message = await receive()
            except TimeoutError:
                raise _timed_out(
                    f"The request body stalled: no data for {idle:.0f} s.",
                    {"received_bytes": received, "idle_timeout_s": idle},
                ) from None
            if message["type"] != "http.request":
                done = True
                return message
            received += len(message.get("body", b""))
            if not message.get("more_body", False):
                done = True
                return message
            elapsed = time.monotonic() - started
            if elapsed > BODY_GRACE_S and received < BODY_MIN_BYTES_PER_S * elapsed:
                raise _timed_out(
                    f"The request body is too slow: {received / elapsed / 1024:.1f} KiB/s on average, "
                    f"below {BODY_MIN_BYTES_PER_S / 1024:.0f} KiB/s.",
                    {"received_bytes": received, "min_bytes_per_s": BODY_MIN_BYTES_PER_S},
                )
            return message

        await self.app(scope, timed_receive, send)
