"""A bounded schemathesis pass over ``/openapi.json``: generated requests never get a 5xx."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from autovoice.config import Settings, get_settings

#: Examples per operation: enough to hit every validation path, bounded to keep the suite fast.
EXAMPLES = 30


@pytest.mark.timeout(180)
def test_no_server_errors(configure: Callable[..., Settings], profile_id: str) -> None:
    from autovoice.service import create_app

    configure(rate_limit="", job_rate_limit="")  # fuzzing is many requests by design
    app = create_app(get_settings())
    failures: list[Any] = []
    with TestClient(app):  # runs the lifespan: database, queue, profile index
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [r.ok() for r in schema.get_all_operations()]
        assert len(operations) >= 10
        for op in operations:
            if op.path == "/api/v1/tts":
                # A generated 5000-character text takes minutes to speak on 2 cores; TTS validation
                # has its own table in test_api.py.
                continue

            @given(case=op.as_strategy())
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def check(case: Any) -> None:
                response = case.call()
                if response.status_code >= 500:
                    failures.append(
                        (case.method, case.formatted_path, response.status_code, response.text[:300])
                    )
                ctype = str(response.headers.get("content-type", ""))  # a list in schemathesis 4
                if response.status_code >= 400 and "application/json" in ctype:
                    assert set(response.json()["error"]) == {"code", "message", "details"}

            check()
    assert not failures, failures
