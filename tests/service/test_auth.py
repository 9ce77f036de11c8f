"""API keys (required, optional, invalid, revoked) and rate limits (429 with Retry-After)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from autovoice.config import Settings
from autovoice.service.auth import api_key_required, create_api_key, list_api_keys, revoke_api_key
from autovoice.storage import Database
from tests.service.conftest import running_app


def _db(settings: Settings) -> Database:
    db = Database(settings)
    db.migrate()
    return db


def test_key_required_on_non_loopback(settings: Settings) -> None:
    assert api_key_required(settings, "127.0.0.1") is False
    assert api_key_required(settings, "::1") is False
    assert api_key_required(settings, "localhost") is False
    assert api_key_required(settings, "0.0.0.0") is True
    assert api_key_required(settings, "192.168.1.20") is True
    assert api_key_required(settings, None) is False  # no host: the default bind address, loopback


def test_required_keys(configure: Callable[..., Settings], profile_id: str) -> None:
    settings = configure(require_api_key="true")
    db = _db(settings)
    record, token = create_api_key(db, "studio")
    assert token.startswith("av_")
    assert record["prefix"] == token[:10]
    assert token not in str(list_api_keys(db))  # only the hash is stored
    with running_app() as client:
        missing = client.get("/api/v1/profiles")
        assert (missing.status_code, missing.json()["error"]["code"]) == (401, "api_key_required")
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = client.get("/api/v1/profiles", headers={"Authorization": "Bearer av_wrong"})
        assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "invalid_api_key")
        assert client.get("/api/v1/profiles", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert client.get("/api/v1/profiles", headers={"X-API-Key": token}).status_code == 200
        assert client.get("/health").status_code == 200  # probes stay open
        assert client.get("/metrics").status_code == 401
        with client.websocket_connect("/api/v1/conversions/job_0123456789abcdef/events") as ws:
            assert ws.receive_json()["error"]["code"] == "api_key_required"
        with client.websocket_connect(
            f"/api/v1/conversions/job_0123456789abcdef/events?api_key={token}"
        ) as ws:
            assert ws.receive_json()["error"]["code"] == "job_not_found"
        revoke_api_key(db, record["id"])
        revoked = client.get("/api/v1/profiles", headers={"X-API-Key": token})
        assert (revoked.status_code, revoked.json()["error"]["code"]) == (401, "invalid_api_key")
    assert list_api_keys(db)[0]["revoked"] is True


def test_optional_keys_on_loopback_still_checked(profile_id: str) -> None:
    with running_app() as client:
        assert client.get("/api/v1/profiles").status_code == 200
        bad = client.get("/api/v1/profiles", headers={"X-API-Key": "nope"})
        assert (bad.status_code, bad.json()["error"]["code"]) == (401, "invalid_api_key")


def test_rate_limit(configure: Callable[..., Settings], profile_id: str) -> None:
    configure(rate_limit="3/minute", job_rate_limit="1/minute")
    with running_app() as client:
        codes = [client.get("/api/v1/profiles").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = client.get("/api/v1/profiles")
        assert r.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert client.get("/health").status_code == 200  # probes are not limited


def test_job_rate_limit_is_stricter(configure: Callable[..., Settings], profile_id: str) -> None:
    configure(rate_limit="100/minute", job_rate_limit="2/minute")
    with running_app() as client:
        statuses = [
            client.post("/api/v1/tts", json={"text": "Hi", "voice": "nobody"}).status_code for _ in range(3)
        ]
        assert statuses == [404, 404, 429]
        assert client.get("/api/v1/profiles").status_code == 200


def test_cors_off_unless_configured(configure: Callable[..., Settings], profile_id: str) -> None:
    with running_app() as client:
        r = client.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
    configure(cors_origins='["https://studio.example"]')
    with running_app() as client:
        r = client.get("/health", headers={"Origin": "https://studio.example"})
        assert r.headers["access-control-allow-origin"] == "https://studio.example"


@pytest.mark.parametrize("name", ["", " " * 3, "x" * 200])
def test_bad_key_names(settings: Settings, name: str) -> None:
    from autovoice.errors import ParameterError

    with pytest.raises(ParameterError):
        create_api_key(_db(settings), name)
