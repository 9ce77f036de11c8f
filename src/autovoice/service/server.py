"""Uvicorn's HTTP protocol with a header timeout: a connection whose request line and headers do not
arrive within ``Settings.header_timeout_s`` is closed by the server itself.

Uvicorn has no such timeout: a client that opens connections and never finishes their headers (a
"slowloris") keeps each one, and its file descriptor, for ever; a few hundred took ``/health`` down
under ``ulimit -n 256``. The clock starts when a connection opens and again after each response (for
the next request on a kept-alive connection); bytes trickling in do not reset it, only complete headers
stop it. Request bodies have their own limits (:mod:`autovoice.service.uploads`), and a connection
upgraded to a WebSocket is no longer this protocol's.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("autovoice.service")
#: Where :func:`protocol_class`'s protocols read the timeout (set on uvicorn's ``Config``); without it
#: (uvicorn's worker processes build their own config), the settings' ``header_timeout_s``.
CONFIG_ATTRIBUTE = "autovoice_header_timeout_s"


def _timeout_s(protocol: Any) -> float:
    value = getattr(protocol.config, CONFIG_ATTRIBUTE, None)
    if value is None:
        from autovoice.config import get_settings

        value = get_settings().header_timeout_s
    return float(value)


def _arm(protocol: Any) -> None:
    """(Re)start the clock for the next request's headers; the request under way, if any, is noted so
    that a new one (pipelined, or not yet arrived) is what stops the clock."""
    _disarm(protocol)
    protocol.autovoice_armed_cycle = protocol.cycle
    timeout = _timeout_s(protocol)
    protocol.autovoice_header_timer = protocol.loop.call_later(timeout, _expire, protocol, timeout)


def _disarm(protocol: Any) -> None:
    timer = getattr(protocol, "autovoice_header_timer", None)
    if timer is not None:
        timer.cancel()
        protocol.autovoice_header_timer = None


def _expire(protocol: Any, timeout: float) -> None:
    protocol.autovoice_header_timer = None
    transport: asyncio.Transport | None = protocol.transport
    if transport is None or transport.is_closing():
        return
    owner: Any = transport.get_protocol()
    if owner is not protocol:
        return  # upgraded to a WebSocket
    if protocol.cycle is not protocol.autovoice_armed_cycle:
        return  # the headers arrived: a request is under way
    log.debug("closing a connection from %s: no complete request headers in %.1f s", protocol.client, timeout)
    transport.close()


class HeaderTimeout:
    """The header clock, mixed in before one of uvicorn's HTTP protocols: armed when a connection opens and
    after each response, disarmed when the connection goes."""

    autovoice_header_timer: asyncio.TimerHandle | None = None
    autovoice_armed_cycle: Any = None

    # The protocol these methods extend comes after this class in the subclass's bases.
    def connection_made(self, transport: Any) -> None:
        cast(Any, super()).connection_made(transport)
        _arm(self)

    def on_response_complete(self) -> None:
        _arm(self)  # before a pipelined request starts in the call below
        cast(Any, super()).on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        _disarm(self)
        cast(Any, super()).connection_lost(exc)


class H11HeaderTimeout(HeaderTimeout, H11Protocol):
    """Uvicorn's h11 protocol with the header timeout."""


_FASTEST: type[asyncio.Protocol] = H11HeaderTimeout
try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is optional; h11 then
    pass
else:

    class HttpToolsHeaderTimeout(HeaderTimeout, HttpToolsProtocol):
        """Uvicorn's httptools protocol with the header timeout."""

    _FASTEST = HttpToolsHeaderTimeout


def protocol_class() -> type[asyncio.Protocol]:
    """The HTTP protocol ``autovoice serve`` runs: uvicorn's httptools one when installed (what its
    ``auto`` picks), else h11; either with the header timeout."""
    return _FASTEST
