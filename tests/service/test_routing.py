"""A method an API path does not serve gets 405 with that path's real methods in ``Allow``; the web page
keeps every path no API route knows."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from autovoice.config import Settings
from tests.service.conftest import running_app

ID = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/api/v1/profiles", "GET, POST"),
        ("PUT", "/api/v1/profiles", "GET, POST"),
        ("OPTIONS", f"/api/v1/profiles/{ID}", "GET, DELETE"),
        ("PATCH", f"/api/v1/profiles/{ID}", "GET, DELETE"),
        ("OPTIONS", "/api/v1/conversions", "POST"),
        ("OPTIONS", f"/api/v1/conversions/{ID}", "GET, DELETE"),
        ("POST", f"/api/v1/conversions/{ID}/audio", "GET"),
        ("OPTIONS", "/api/v1/tts", "POST"),
        ("DELETE", "/api/v1/voices", "GET"),
        ("OPTIONS", "/health", "GET"),
        ("PUT", "/health/ready", "GET"),
        ("POST", "/metrics", "GET"),
        ("POST", "/docs", "GET, HEAD"),
    ],
)
def test_unsupported_method_is_405_with_allow(settings: Settings, method: str, path: str, allow: str) -> None:
    with running_app() as client:
        r = client.request(method, path)
    assert r.status_code == 405, r.text
    assert r.headers["allow"] == allow
    error = r.json()["error"]
    assert error["code"] == "method_not_allowed"
    assert method in error["message"]
    assert allow in error["message"]


def test_allow_matches_the_schema_for_every_operation(settings: Settings) -> None:
    """What schemathesis checks: ``OPTIONS`` on each path lists exactly the path's documented methods."""
    with running_app() as client:
        paths = client.get("/openapi.json").json()["paths"]
        assert len(paths) >= 10
        for template, operations in paths.items():
            path = re.sub(r"\{[^}]+\}", ID, template)
            r = client.options(path)
            assert r.status_code == 405, (path, r.status_code, r.text)
            allowed = {m.strip().lower() for m in r.headers["allow"].split(",")}
            assert allowed == set(operations), (template, r.headers["allow"])
            assert set(r.json()["error"]) == {"code", "message", "details"}


def test_the_page_keeps_its_paths(settings: Settings) -> None:
    with running_app() as client:
        page = client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert client.head("/").status_code == 200
        static = client.post("/")  # the page's own answer: a static file takes GET and HEAD
        assert static.status_code == 405
        assert static.headers["allow"] == "GET, HEAD"
        missing = client.get("/no-such-page")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
        unknown_api = client.put("/api/v1/no-such-thing")
        assert unknown_api.status_code == 404
        assert unknown_api.json()["error"]["code"] == "not_found"
        assert client.get("/health").status_code == 200  # supported methods are untouched


def test_cors_preflight_still_answered(configure: Callable[..., Settings], settings: Settings) -> None:
    configure(cors_origins='["http://studio.example"]')
    with running_app() as client:
        r = client.options(
            "/api/v1/profiles",
            headers={"Origin": "http://studio.example", "Access-Control-Request-Method": "POST"},
        )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "http://studio.example"


def test_unknown_websocket_path_is_refused(settings: Settings) -> None:
    from starlette.websockets import WebSocketDisconnect

    with (
        running_app() as client,
        pytest.raises(WebSocketDisconnect) as info,
        client.websocket_connect("/api/v1/no-such-socket") as ws,
    ):
        ws.receive_text()
    assert info.value.code == 1008
