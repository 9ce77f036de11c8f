"""Issue 19's smaller defects, each pinned: the OpenAPI security, key checks, messages and logs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import WebSocket
from fastapi.routing import APIRoute, APIWebSocketRoute
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from autovoice.config import Settings
from autovoice.service.auth import create_api_key
from autovoice.service.routes.health import public_model_name
from autovoice.storage import Database
from tests.service.conftest import running_app

_OPEN = {"/health", "/health/live", "/health/ready", "/openapi.json", "/docs", "/redoc"}


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, ops in schema["paths"].items() for method, op in ops.items()]


@pytest.mark.parametrize("required", [False, True])
def test_openapi_documents_keys_and_401(configure: Callable[..., Settings], required: bool) -> None:
    configure(require_api_key=str(required).lower())
    with running_app() as client:
        schema = client.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKeyHeader"] == {**schemes["apiKeyHeader"], "type": "apiKey", "in": "header"}
    assert schemes["apiKeyHeader"]["name"] == "X-API-Key"
    checked = 0
    for path, method, op in _operations(schema):
        if path in _OPEN:
            assert "security" not in op, (method, path)
            continue
        checked += 1
        expected: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKeyHeader": []}]
        if not required:
            expected.append({})
        assert op.get("security") == expected, (method, path)
        assert "401" in op["responses"], (method, path)
    assert checked >= 15
    metrics = schema["paths"]["/metrics"]["get"]
    assert "401" in metrics["responses"]
    assert metrics["security"]


def test_metrics_answers_the_documented_401(configure: Callable[..., Settings]) -> None:
    configure(require_api_key="true")
    with running_app() as client:
        r = client.get("/metrics")
        documented = client.get("/openapi.json").json()["paths"]["/metrics"]["get"]["responses"]
    assert r.status_code == 401
    assert str(r.status_code) in documented
    assert r.json()["error"]["code"] == "api_key_required"


def test_both_key_headers_are_checked(configure: Callable[..., Settings]) -> None:
    settings = configure(require_api_key="true")
    db = Database(settings)
    db.migrate()
    _, token = create_api_key(db, "studio")
    _, other = create_api_key(db, "other")
    db.dispose()
    with running_app() as client:
        ok = {"Authorization": f"Bearer {token}", "X-API-Key": token}
        assert client.get("/api/v1/profiles", headers=ok).status_code == 200
        for headers in (
            {"Authorization": f"Bearer {token}", "X-API-Key": "av_wrong_key_000000000"},
            {"Authorization": "Bearer av_wrong_key_000000000", "X-API-Key": token},
            {"Authorization": f"Bearer {token}", "X-API-Key": other},  # two valid keys: which one?
        ):
            r = client.get("/api/v1/profiles", headers=headers)
            assert r.status_code == 401, headers
            assert r.json()["error"]["code"] == "conflicting_api_keys"
        bad = client.get("/metrics", headers={"Authorization": f"Bearer {token}", "X-API-Key": "av_x"})
        assert bad.status_code == 401
        with client.websocket_connect(
            f"/api/v1/conversions/job_0123456789abcdef/events?api_key={other}",
            headers={"X-API-Key": token},
        ) as ws:
            assert ws.receive_json()["error"]["code"] == "conflicting_api_keys"


def test_bad_json_body_is_named_as_such(settings: Settings) -> None:
    with running_app() as client:
        r = client.post(
            "/api/v1/tts", content=b'{"text": oops}', headers={"Content-Type": "application/json"}
        )
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert error["message"].startswith("The request body is not valid JSON at character 9")
    assert "Invalid 9" not in error["message"]


def test_health_names_model_files_without_their_paths(settings: Settings) -> None:
    from autovoice.models.cache import CACHE

    name = "piper:/opt/venv/lib/python3.11/site-packages/joe_voice/en_US-joe-medium.onnx"
    CACHE.get(name, "cpu", object)
    try:
        with running_app() as client:
            models = client.get("/health").json()["models"]
    finally:
        CACHE.drop(name)
    assert "piper:en_US-joe-medium.onnx@cpu" in models
    assert not any("/" in m for m in models), models


@pytest.mark.parametrize(
    ("entry", "shown"),
    [
        ("piper:/a/b/en_US-joe-medium.onnx@cpu", "piper:en_US-joe-medium.onnx@cpu"),
        ("fcpe@cpu", "fcpe@cpu"),
        ("rvc:mdl_0123@cuda:0", "rvc:mdl_0123@cuda:0"),
        ("/srv/models/hubert_base.pt@cpu", "hubert_base.pt@cpu"),
    ],
)
def test_public_model_name(entry: str, shown: str) -> None:
    assert public_model_name(entry) == shown


def _records(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.getMessage()]


def test_websocket_sessions_are_logged_with_their_handshake_status(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="autovoice")
    with running_app() as client:
        with client.websocket_connect("/api/v1/conversions/job_0123456789abcdef/events") as ws:
            assert ws.receive_json()["error"]["code"] == "job_not_found"
        client.get("/health/live")
    lines = [r for r in caplog.records if r.getMessage().startswith("WS /api/v1/conversions")]
    assert lines, [r.getMessage() for r in caplog.records]
    assert all(getattr(r, "status", None) == 101 for r in lines), [vars(r) for r in lines]
    assert all(getattr(r, "status", None) != 500 for r in caplog.records if hasattr(r, "route"))


def test_an_unexpected_error_is_logged_once_and_answered_500(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The app answers the 500 itself: the exception does not reach the server (which would log its
    trace a second time), and the trace is in the log once."""
    from autovoice.service import create_app

    app = create_app(settings)

    def boom() -> None:
        raise ZeroDivisionError("the secret internals")

    app.router.routes.insert(0, APIRoute("/boom", boom))

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/boom", headers={"X-Request-ID": "req-boom-1"})

    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="autovoice")
    r = asyncio.run(call())
    assert r.status_code == 500
    error = r.json()["error"]
    assert error["code"] == "internal_error"
    assert "req-boom-1" in error["message"]
    assert "secret" not in r.text
    traced = [rec for rec in caplog.records if rec.exc_info]
    assert len(traced) == 1, [rec.getMessage() for rec in traced]
    access = [rec for rec in caplog.records if getattr(rec, "route", None) == "/boom"]
    assert [getattr(rec, "status", None) for rec in access] == [500]


def test_schemathesis_config_points_at_a_real_docs_section() -> None:
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    text = (root / "schemathesis.toml").read_text()
    refs = re.findall(r"\(see (docs/[\w./-]+\.md), \"([^\"]+)\"\)", text)
    assert refs, "schemathesis.toml names no docs section"
    for doc, section in refs:
        headings = [
            line.lstrip("#").strip() for line in (root / doc).read_text().splitlines() if line.startswith("#")
        ]
        assert section in headings, (doc, section)


def test_a_websocket_that_fails_is_closed_1011_and_logged_once(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    from autovoice.service import create_app

    async def boom(websocket: WebSocket) -> None:
        await websocket.accept()
        raise ZeroDivisionError("the secret internals")

    app = create_app(settings)
    app.router.routes.insert(0, APIWebSocketRoute("/wsboom", boom))
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="autovoice")
    with (
        TestClient(app) as client,
        client.websocket_connect("/wsboom") as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        ws.receive_text()
    assert closed.value.code == 1011
    assert len([rec for rec in caplog.records if rec.exc_info]) == 1
    access = [rec for rec in caplog.records if getattr(rec, "route", None) == "/wsboom"]
    assert [getattr(rec, "status", None) for rec in access] == [500]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("0f8fad5b-d9cb-469f-a165-70867728950e", True),  # a UUID
        ("3fa9c6e0b1d24c8e9a7f0b2c4d6e8f10", True),  # nginx's $request_id
        ("req-boom-1", True),
        ("web.7:42", True),
        ("av_" + "Zx9-Qw_Er" * 5, False),  # an API key
        ("Zx9-QwEr" * 6, False),  # a key's secret part: too long for a name, not hex
        ("x" * 33, False),
        ("id with spaces", False),
        ("", False),
        ("é", False),
        ("0" * 65, False),
    ],
)
def test_only_request_ids_of_a_safe_shape_are_taken(sent: str, kept: bool) -> None:
    from autovoice.service.observability import SAFE_REQUEST_ID

    assert bool(SAFE_REQUEST_ID.fullmatch(sent)) is kept
