"""The OpenAPI document's security, as the server applies it.

The key-checking dependencies (:func:`~autovoice.service.state.guard`,
:func:`~autovoice.service.state.authenticate`) declare the ``bearerAuth`` and ``apiKeyHeader`` security
schemes, so FastAPI lists them and puts a ``security`` requirement on every operation that checks a key.
:func:`install_openapi` completes that: each such operation documents its 401 answer, and where keys are
optional (a loopback server by default) the requirement gains the empty alternative ``{}``, since a
request without a key is valid there.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

_UNAUTHORIZED = {
    "description": "No API key where one is required (`api_key_required`), or an unknown, revoked or "
    "conflicting one (`invalid_api_key`, `conflicting_api_keys`).",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
}


def install_openapi(app: FastAPI, *, keys_required: bool) -> None:
    """Make ``app.openapi()`` document API keys (``keys_required``: whether a request must send one)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            openapi_version=app.openapi_version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                security = operation.get("security")
                if not isinstance(security, list) or not security:
                    continue
                if not keys_required and {} not in security:
                    security.append({})
                operation.setdefault("responses", {}).setdefault("401", _UNAUTHORIZED)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
