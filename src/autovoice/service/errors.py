"""HTTP error mapping: every error becomes ``{"error": {"code", "message", "details"}}``.

:class:`autovoice.errors.AutoVoiceError` subclasses carry their status (``http_status``); FastAPI's
validation errors become 422 ``invalid_parameter``; anything unexpected becomes a 500 ``internal_error``
with no stack trace (the trace goes to the server log with the request id).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from autovoice.errors import AutoVoiceError

log = logging.getLogger("autovoice.service")


class AuthError(AutoVoiceError):
    """A missing, unknown or revoked API key (``api_key_required``, ``invalid_api_key``)."""

    http_status = 401


class RateLimitedError(AutoVoiceError):
    """Too many requests for this key or address (``rate_limited``); see ``Retry-After``."""

    http_status = 429


class CarriedError(StarletteHTTPException):
    """An :class:`AutoVoiceError` raised where only an ``HTTPException`` passes unchanged (a request
    body's ``receive``, while FastAPI reads the body): answered as the error it carries."""

    def __init__(self, error: AutoVoiceError) -> None:
        super().__init__(status_code=error.http_status, detail=error.message)
        self.error = error


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _server_roots() -> list[tuple[str, str]]:
    """(server folder, the name a client sees instead), longest first: the model cache, the data dir,
    the installation, the temporary folder and the home folder, as given and resolved."""
    import sys
    import tempfile
    from pathlib import Path

    from autovoice.config import get_settings

    settings = get_settings()
    named = [
        (settings.model_cache_dir, "<model cache>"),
        (settings.data_dir, "<data dir>"),
        (Path(sys.prefix), "<installation>"),
        (Path(sys.base_prefix), "<installation>"),
        (Path(tempfile.gettempdir()), "<temp dir>"),
        (Path.home(), "~"),
    ]
    roots: dict[str, str] = {}
    for folder, name in named:
        for form in {str(folder), str(folder.resolve())}:
            if len(form) > 1:
                roots.setdefault(form.rstrip("/"), name)
    return sorted(roots.items(), key=lambda item: -len(item[0]))


def _redact(value: Any, roots: list[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        for root, name in roots:
            value = re.sub(re.escape(root) + r"(?=[/\s'\"),.;:]|$)", name, value)
        return value
    if isinstance(value, dict):
        return {k: _redact(v, roots) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v, roots) for v in value]
    return value


def public_error(doc: dict[str, Any]) -> dict[str, Any]:
    """An error document (``code``, ``message``, ``details``) as a client may see it: server paths never
    reach clients. ``details.path`` (where library errors name a local file) is dropped, and the server's
    folders in the message and the other details become names (``<model cache>/htdemucs/...``): a job's
    stored error came from a worker that wrote them for its operator."""
    roots = _server_roots()
    details = {k: v for k, v in dict(doc.get("details") or {}).items() if k != "path"}
    return {
        **doc,
        "message": _redact(str(doc.get("message", "")), roots),
        "details": _redact(details, roots),
    }


def error_response(exc: AutoVoiceError, headers: dict[str, str] | None = None) -> JSONResponse:
    status = exc.http_status if 400 <= exc.http_status < 600 else 500
    return JSONResponse({"error": public_error(exc.to_dict())}, status_code=status, headers=headers)


def internal_error_response(request_id: str) -> JSONResponse:
    """The 500 ``internal_error`` answer to an unexpected exception: no trace, the request id to quote."""
    return JSONResponse(
        error_body(
            "internal_error",
            "The server failed to handle the request. The server log has the details "
            f"(request id {request_id}).",
        ),
        status_code=500,
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "api_key_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "file_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def _clean_validation_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        out.append(
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
        )
    return out


def validation_message(errors: Any) -> str:
    """One sentence for FastAPI's validation errors, naming the first failing field.

    A body that is not JSON at all names the position where parsing stopped (pydantic reports it as the
    field's "location"), rather than reading as if a field called ``8`` were wrong.
    """
    first = next(iter(errors), None)
    if first is None:
        return "Invalid request."
    loc = [p for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    if first.get("type") == "json_invalid":
        reason = str((first.get("ctx") or {}).get("error", "")).strip() or str(first.get("msg", ""))
        at = f" at character {loc[0]}" if loc and isinstance(loc[0], int) else ""
        return f"The request body is not valid JSON{at}: {reason}. Send a JSON object."
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") or "request"
    return f"Invalid {where}: {first.get('msg', 'invalid value')}."


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error response the same shape."""

    async def on_autovoice_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AutoVoiceError)
        if exc.http_status >= 500 and not exc.caller_error:
            log.error("request failed: %s", exc)
        headers = None
        if isinstance(exc, RateLimitedError):
            headers = {"Retry-After": str(exc.details.get("retry_after_s", 1))}
        elif isinstance(exc, AuthError):
            headers = {"WWW-Authenticate": "Bearer"}
        return error_response(exc, headers)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = _clean_validation_errors(exc.errors())
        return JSONResponse(
            error_body("invalid_parameter", validation_message(exc.errors()), {"errors": errors}),
            status_code=422,
        )

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if isinstance(exc, CarriedError):
            return await on_autovoice_error(request, exc.error)
        code = _HTTP_CODES.get(exc.status_code, "http_error" if exc.status_code < 500 else "internal_error")
        message = str(exc.detail) if exc.status_code < 500 else "Internal server error."
        if exc.status_code == 404 and message == "Not Found":
            message = f"No such endpoint: {request.method} {request.url.path}. See /docs."
        return JSONResponse(
            error_body(code, message), status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Only what fails outside the request middleware gets here (which answers everything inside it
        # itself: logged once, never handed on to the server).
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        return internal_error_response(str(request.scope.get("request_id", "?")))

    async def on_os_error(request: Request, exc: Exception) -> JSONResponse:
        # A full or read-only data dir (an upload, a profile being stored): 507 with the cause, not a 500.
        from autovoice.storage.space import storage_error

        assert isinstance(exc, OSError)
        state = getattr(request.app.state, "service", None)
        data_dir = state.settings.data_dir if state is not None else None
        found = storage_error(exc, data_dir=data_dir, doing=f"handling {request.method} {request.url.path}")
        if found is None:
            log.exception("unhandled error in %s %s", request.method, request.url.path)
            return internal_error_response(str(request.scope.get("request_id", "?")))
        log.error("request failed: %s", found)
        return error_response(found)

    app.add_exception_handler(AutoVoiceError, on_autovoice_error)
    app.add_exception_handler(OSError, on_os_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
