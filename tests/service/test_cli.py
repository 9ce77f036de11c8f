"""``autovoice apikey create|list|revoke`` (the sub-app wired into the main CLI)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from autovoice.config import Settings
from autovoice.service.auth import ApiKeyAuth
from autovoice.service.cli import apikey_app
from autovoice.storage import Database


def test_apikey_commands(settings: Settings) -> None:
    runner = CliRunner()
    created = runner.invoke(apikey_app, ["create", "studio", "--json"])
    assert created.exit_code == 0, created.output
    doc = json.loads(created.stdout)
    assert doc["key"].startswith("av_")
    assert doc["name"] == "studio"

    listed = json.loads(runner.invoke(apikey_app, ["list", "--json"]).stdout)["keys"]
    assert [k["id"] for k in listed] == [doc["id"]]
    assert "key" not in listed[0]

    db = Database(settings)
    auth = ApiKeyAuth(db, required=True)
    assert auth.authenticate(doc["key"]) == doc["id"]

    revoked = runner.invoke(apikey_app, ["revoke", doc["id"], "--json"])
    assert revoked.exit_code == 0
    assert json.loads(revoked.stdout)["revoked"] is True
    assert json.loads(runner.invoke(apikey_app, ["list", "--json"]).stdout)["keys"] == []
    assert len(json.loads(runner.invoke(apikey_app, ["list", "--all", "--json"]).stdout)["keys"]) == 1

    missing = runner.invoke(apikey_app, ["revoke", "key_nope", "--json"])
    assert missing.exit_code == 2
    assert json.loads(missing.stdout)["error"]["code"] == "api_key_not_found"
    db.dispose()
