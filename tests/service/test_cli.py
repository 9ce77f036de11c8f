"""``autovoice apikey create|list|revoke``, through the CLI's own entry point (``autovoice.cli.run``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from autovoice.cli import run
from autovoice.config import Settings
from autovoice.service.auth import ApiKeyAuth
from autovoice.storage import Database


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code = run(list(args))
    return code, json.loads(capsys.readouterr().out)


def test_apikey_commands(settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _run(capsys, "apikey", "create", "studio", "--json")
    assert code == 0
    assert doc["key"].startswith("av_")
    assert doc["name"] == "studio"

    listed = _run(capsys, "apikey", "list", "--json")[1]["keys"]
    assert [k["id"] for k in listed] == [doc["id"]]
    assert "key" not in listed[0]

    db = Database(settings)
    auth = ApiKeyAuth(db, required=True)
    assert auth.authenticate(doc["key"]) == doc["id"]

    code, revoked = _run(capsys, "apikey", "revoke", doc["id"], "--json")
    assert code == 0
    assert revoked["revoked"] is True
    assert _run(capsys, "apikey", "list", "--json")[1]["keys"] == []
    assert len(_run(capsys, "apikey", "list", "--all", "--json")[1]["keys"]) == 1

    code, missing = _run(capsys, "apikey", "revoke", "key_nope", "--json")
    assert code == 2
    assert missing["error"]["code"] == "api_key_not_found"

    assert run(["apikey", "list", "--all"]) == 0
    assert "LAST USED" in capsys.readouterr().out  # the human table has a header row
    db.dispose()
