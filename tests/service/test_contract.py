"""The API keeps its OpenAPI contract: ``schemathesis run --checks all`` against a real server.

All checks (server errors, status codes and headers the schema documents, schema-valid requests
accepted and schema-violating ones rejected, response schemas, ``Allow`` headers, the stateful phase)
over every operation, TTS included, with the project's ``schemathesis.toml``. A fixed seed keeps the
run repeatable; the budget keeps it to a few seconds of generated requests.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from autovoice.config import Settings
from tests.service.conftest import free_port, http_ok, spawn, stop, wait_until

REPO = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("seed", [1, 2])
def test_schemathesis_all_checks_pass(settings: Settings, tmp_path: Path, seed: int) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    env = {
        "AUTOVOICE_DATA_DIR": str(settings.data_dir),
        "AUTOVOICE_DEVICE": "cpu",
        "AUTOVOICE_RATE_LIMIT": "",  # many requests by design
        "AUTOVOICE_JOB_RATE_LIMIT": "",
    }
    server = spawn(f"from autovoice.service import serve; serve('127.0.0.1', {port})", env=env, log=log)
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/health/live"), timeout=60, what="start", log=log)
        run = subprocess.run(
            [str(SCHEMATHESIS), "run", f"http://127.0.0.1:{port}/openapi.json", "--checks", "all",
             "--max-examples", "20", "--seed", str(seed), "--request-timeout", "120", "--no-color"],
            cwd=REPO, capture_output=True, text=True, timeout=280, check=False,
        )  # fmt: skip
    finally:
        stop(server)
    summary = run.stdout[-4000:]
    assert run.returncode == 0, summary
    assert " passed" in summary
    selected = re.search(r"Selected: (\d+)/(\d+)", summary)
    assert selected is not None, summary
    assert selected[1] == selected[2]  # every operation, TTS included
    assert f"Tested: {selected[2]}" in summary
