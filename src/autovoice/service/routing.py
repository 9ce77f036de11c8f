"""What answers a request that no route took: a 405 for an API path, else the web page (or a 404).

The web page is a static mount at ``/``, after the API routes. Without this, a method an API path does not
support (``OPTIONS /api/v1/profiles``, ``PUT /health``) fell through to the static files, which answered
``405`` with ``Allow: GET, HEAD`` whatever the path really supports. :class:`Fallback` first asks the API
routes which methods match the path and answers ``405 method_not_allowed`` with exactly those in
``Allow``; only paths no API route knows reach the page.
"""

from __future__ import annotations

from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.routing import Match, Mount, Router
from starlette.types import ASGIApp, Receive, Scope, Send

#: Methods probed when a path matched a route but not its method, in the order ``Allow`` lists them.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
API_PREFIX = "/api/"


def allowed_methods(router: Router, scope: Scope) -> list[str]:
    """The methods that some non-mount route of ``router`` serves at ``scope``'s path (may be empty)."""
    routes = [r for r in router.routes if not isinstance(r, Mount)]
    probe = {**scope, "type": "http"}
    # One pass first: most requests that get here are the page's files, which no route knows at all.
    if all(route.matches(probe)[0] == Match.NONE for route in routes):
        return []
    return [
        method
        for method in METHODS
        if any(route.matches({**probe, "method": method})[0] == Match.FULL for route in routes)
    ]


def web_page_dir() -> Path | None:
    """The folder of the static web page, or None in a build without it."""
    try:
        from autovoice.web import static_dir
    except ImportError:
        return None
    folder = static_dir()
    return folder if (folder / "index.html").is_file() else None


class Fallback:
    """The ASGI app mounted at ``/``, reached only when no route matched both the path and the method.

    Parameters
    ----------
    router
        The app's router, asked which methods an API path supports.
    page
        The static web page (``StaticFiles``), or None: unknown paths then get the JSON 404.
    """

    def __init__(self, router: Router, page: ASGIApp | None) -> None:
        self.router = router
        self.page = page

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # no WebSocket route matched: refuse the handshake
            await send({"type": "websocket.close", "code": 1008, "reason": "no such endpoint"})
            return
        allowed = allowed_methods(self.router, scope)
        method = scope["method"]
        if allowed and method not in allowed:
            raise HTTPException(
                405,
                f"Method {method} is not allowed on {scope['path']}; use {', '.join(allowed)}.",
                headers={"Allow": ", ".join(allowed)},
            )
        if self.page is None or scope["path"].startswith(API_PREFIX):
            raise HTTPException(404)  # an unknown API path is not a missing page file
        await self.page(scope, receive, send)
