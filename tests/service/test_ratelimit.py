"""Rate limits: per API key, per client address on top, isolation between clients, 429 + Retry-After,
and counters shared through Redis (several server processes)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable

import pytest

from autovoice.config import Settings
from autovoice.errors import ParameterError
from autovoice.service.errors import RateLimitedError
from autovoice.service.ratelimit import RateLimits
from autovoice.storage import Database
from tests.service.conftest import running_app


def _keys(settings: Settings, *names: str) -> list[str]:
    from autovoice.service.auth import create_api_key

    db = Database(settings)
    db.migrate()
    try:
        return [create_api_key(db, name)[1] for name in names]
    finally:
        db.dispose()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_one_key_flooding_does_not_starve_another(
    configure: Callable[..., Settings], profile_id: str
) -> None:
    settings = configure(rate_limit="5/minute", job_rate_limit="")
    alice, bob = _keys(settings, "alice", "bob")
    with running_app() as client:
        flood = [client.get("/api/v1/profiles", headers=_bearer(alice)).status_code for _ in range(8)]
        assert flood == [200] * 5 + [429] * 3
        # Bob (another key, same address) and a client without a key each have their own budget.
        assert [client.get("/api/v1/profiles", headers=_bearer(bob)).status_code for _ in range(5)] == [
            200
        ] * 5
        assert client.get("/api/v1/profiles").status_code == 200
        r = client.get("/api/v1/profiles", headers=_bearer(alice))
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(r.headers["retry-after"]) <= 60


def test_address_limit_spans_keys(configure: Callable[..., Settings], profile_id: str) -> None:
    settings = configure(rate_limit="100/minute", address_rate_limit="6/minute", job_rate_limit="")
    keys = _keys(settings, "k1", "k2", "k3")
    with running_app() as client:
        codes = [client.get("/api/v1/profiles", headers=_bearer(keys[i % 3])).status_code for i in range(8)]
        assert codes == [200] * 6 + [429] * 2  # new keys do not buy more from the same address
        r = client.get("/api/v1/profiles", headers=_bearer(keys[0]))
        assert r.status_code == 429
        assert "address" in r.json()["error"]["message"]
        assert int(r.headers["retry-after"]) >= 1
        assert client.get("/health").status_code == 200  # probes are never limited


def test_limits_unit() -> None:
    limits = RateLimits("2/minute", "1/minute", address="3/minute")
    limits.check("key:a", address="10.0.0.1")
    limits.check("key:a", address="10.0.0.1")
    with pytest.raises(RateLimitedError) as err:
        limits.check("key:a", address="10.0.0.1")
    assert err.value.details["retry_after_s"] >= 1
    assert err.value.details["scope"] == "key"
    # A refused request is not counted against the address: key b from there still gets one more.
    limits.check("key:b", address="10.0.0.1")
    with pytest.raises(RateLimitedError) as err:
        limits.check("key:c", address="10.0.0.1")
    assert err.value.details["scope"] == "address"
    limits.check("key:c", address="10.0.0.2")  # another address is untouched
    limits.check("key:c", job=True)
    with pytest.raises(RateLimitedError):
        limits.check("key:c", job=True)
    RateLimits("", "").check("key:x", address="10.0.0.1")  # '' disables


@pytest.mark.parametrize("bad", ["lots", "5/fortnight", "-1/minute"])
def test_bad_limit_strings(bad: str) -> None:
    with pytest.raises(ParameterError) as err:
        RateLimits("100/minute", "10/minute", address=bad)
    assert err.value.code == "invalid_rate_limit"


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_up(), reason="needs Redis on 127.0.0.1:6379")
def test_counters_shared_through_redis() -> None:
    """Two server processes (here: two limiters) pointed at one Redis share each key's budget."""
    uri = "redis://127.0.0.1:6379/14"
    first, second = RateLimits("3/minute", "", storage_uri=uri), RateLimits("3/minute", "", storage_uri=uri)
    ident = f"key:test-{uuid.uuid4().hex}"
    first.check(ident)
    second.check(ident)
    first.check(ident)
    with pytest.raises(RateLimitedError):
        second.check(ident)
