"""The banner ``autovoice serve`` prints once it is up, as text and from a real server process."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from autovoice import __version__
from autovoice.config import Settings
from autovoice.service.banner import redact_url, startup_banner
from tests.support import free_port, http_ok, spawn, stop, wait_until


def _rows(text: str) -> dict[str, str]:
    rows = {}
    for line in text.splitlines()[1:-1]:
        label, _, value = line.strip().partition(":")
        rows[label] = value.strip()
    return rows


def test_embedded_on_loopback(settings: Settings) -> None:
    text = startup_banner(settings, "127.0.0.1", 8000, device="cpu", web_page=True)
    lines = text.splitlines()
    assert lines[0] == f"AutoVoice {__version__} is running."
    assert lines[-1] == "Press Ctrl+C to stop."
    assert _rows(text) == {
        "Web page": "http://127.0.0.1:8000/",
        "API docs": "http://127.0.0.1:8000/docs",
        "Listening": "127.0.0.1:8000",
        "Mode": "embedded: jobs run in this process, 1 at a time",
        "Data dir": str(settings.data_dir),
        "Device": "cpu",
        "API keys": "not required",
    }


def test_all_interfaces_need_keys(settings: Settings) -> None:
    rows = _rows(startup_banner(settings, "0.0.0.0", 9000))
    assert rows["API docs"] == "http://127.0.0.1:9000/docs"  # a URL one can open on this machine
    assert rows["Listening"] == "0.0.0.0:9000 (all interfaces)"
    assert rows["API keys"].startswith("required")
    assert rows["Device"] == "cpu"  # the setting as written when no resolved device is given


def test_keys_switched_off_on_a_public_address_warn() -> None:
    s = Settings(data_dir=Path("/srv/autovoice"), device="cpu", require_api_key=False)
    assert _rows(startup_banner(s, "::", 8000))["API keys"] == (
        "not required: anyone who can reach this address can use the API"
    )
    assert _rows(startup_banner(s, "fe80::1", 8000))["API docs"] == "http://[fe80::1]:8000/docs"


def test_distributed_mode_hides_the_broker_password() -> None:
    s = Settings(
        data_dir=Path("/srv/av"), device="cuda:0", broker_url="redis://:s3cret@redis.internal:6379/0"
    )
    text = startup_banner(s, "127.0.0.1", 8000, device="cuda:0")
    assert "s3cret" not in text
    assert _rows(text)["Mode"] == (
        "distributed: jobs go to `autovoice worker` processes via redis://:***@redis.internal:6379/0"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://user:pw@host/1", "redis://user:***@host/1"),
        ("rediss://:pw@[::1]:6380/2", "rediss://:***@[::1]:6380/2"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.timeout(120)
def test_serve_prints_the_banner_and_json_logs(settings: Settings, tmp_path: Path) -> None:
    """A real ``serve`` process: banner on stdout, and (stderr is not a terminal) JSON log lines."""
    port = free_port()
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    env = {"AUTOVOICE_DATA_DIR": str(settings.data_dir), "AUTOVOICE_DEVICE": "cpu"}
    code = (
        "import sys; from autovoice.service import serve; "
        f"sys.stderr = open({str(err)!r}, 'w', buffering=1); serve('127.0.0.1', {port})"
    )
    server = spawn(code, env=env, log=out)
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/health/live"), timeout=60, what="start", log=out)
        wait_until(lambda: "Press Ctrl+C" in out.read_text(), timeout=10, what="banner", log=out)
        assert httpx.get(f"http://127.0.0.1:{port}/docs").status_code == 200
    finally:
        stop(server)
    text = out.read_text()
    start, end = text.index(f"AutoVoice {__version__} is running."), text.index("Press Ctrl+C to stop.")
    rows = _rows(text[start : end + len("Press Ctrl+C to stop.")])
    assert rows["API docs"] == f"http://127.0.0.1:{port}/docs"
    assert rows["Device"] == "cpu"
    assert rows["Mode"].startswith("embedded")
    logs = [json.loads(line) for line in err.read_text().splitlines() if line.strip()]
    messages = [str(d["message"]) for d in logs]
    assert any(m.startswith(f"AutoVoice {__version__} ready") for m in messages)
    assert any("Uvicorn running on" in m for m in messages)
    assert any(m.startswith("GET /health/live -> 200") for m in messages)
