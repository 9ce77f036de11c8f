"""Log set-up: readable lines on a terminal, JSON lines otherwise, and other libraries kept quiet at DEBUG."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from autovoice.config import Settings
from autovoice.errors import AutoVoiceError
from autovoice.service.logs import (
    configure_logging,
    configure_server_logging,
    configured_level,
    current_request_id,
    json_from_format,
    parse_level,
)
from tests.service.conftest import running_app

_TOUCHED = ("", "autovoice", "uvicorn", "uvicorn.access", "celery", "numba", "numba.core.ssa")


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Each test may reconfigure logging; put the root handlers and the levels back afterwards."""
    root = logging.getLogger()
    handlers = root.handlers[:]
    levels = {name: logging.getLogger(name).level for name in _TOUCHED}
    yield
    logging.captureWarnings(False)
    root.handlers[:] = handlers
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    configure_logging("INFO", stream=out)
    token = current_request_id.set("req123")
    try:
        logging.getLogger("autovoice.test").info("hello %s", "world", extra={"route": "/x"})
    finally:
        current_request_id.reset(token)
    (doc,) = _records(out)
    assert doc["message"] == "hello world"
    assert doc["level"] == "INFO"
    assert doc["logger"] == "autovoice.test"
    assert doc["request_id"] == "req123"
    assert doc["route"] == "/x"


def test_readable_lines_on_a_terminal() -> None:
    out = Terminal()
    configure_logging("INFO", stream=out)
    logging.getLogger("autovoice.test").warning("disk nearly full")
    token = current_request_id.set("abc")
    try:
        logging.getLogger("autovoice.test").info("with id")
    finally:
        current_request_id.reset(token)
    first, second = out.getvalue().splitlines()
    assert first.endswith("WARNING autovoice.test: disk nearly full")  # no empty id brackets
    assert "None" not in first
    assert second.endswith("INFO    autovoice.test: with id  [request abc]")
    with pytest.raises(json.JSONDecodeError):
        json.loads(first)


@pytest.mark.parametrize(
    ("force", "stream_cls", "is_json"), [(True, Terminal, True), (False, io.StringIO, False)]
)
def test_format_can_be_forced(force: bool, stream_cls: type[io.StringIO], is_json: bool) -> None:
    out = stream_cls()
    configure_logging("INFO", json=force, stream=out)
    logging.getLogger("autovoice.test").info("x")
    line = out.getvalue().strip()
    assert line.startswith("{") is is_json


def test_exceptions_keep_their_traceback() -> None:
    out = io.StringIO()
    configure_logging("INFO", stream=out)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("autovoice.test").exception("failed")
    (doc,) = _records(out)
    assert "RuntimeError: boom" in str(doc["exc"])


def test_other_libraries_stay_quiet_at_debug() -> None:
    out = io.StringIO()
    configure_logging("DEBUG", stream=out)
    logging.getLogger("autovoice.engines").debug("ours")
    logging.getLogger("matplotlib.font_manager").debug("font cache")
    logging.getLogger("urllib3.connectionpool").info("connection")
    ssa = logging.getLogger("numba.core.ssa")
    ssa.setLevel(logging.DEBUG)  # a library that turns its own logger up still cannot flood the log
    ssa.debug("ssa rewrite")
    logging.getLogger("uvicorn.error").info("Uvicorn running on http://127.0.0.1:8000")
    logging.getLogger("uvicorn.error").debug("connection made")
    logging.getLogger("httpx").warning("a library's warning")
    got = [(d["logger"], d["message"]) for d in _records(out)]
    assert got == [
        ("autovoice.engines", "ours"),
        ("uvicorn.error", "Uvicorn running on http://127.0.0.1:8000"),
        ("httpx", "a library's warning"),
    ]
    assert configured_level() == logging.DEBUG


def test_quiet_third_party_can_be_lifted() -> None:
    out = io.StringIO()
    configure_logging("DEBUG", stream=out, quiet_third_party=False)
    logging.getLogger("matplotlib.font_manager").debug("font cache")
    assert [d["logger"] for d in _records(out)] == ["matplotlib.font_manager"]


def test_numba_compilation_at_debug_logs_nothing() -> None:
    """A real JIT compile (numba logs hundreds of DEBUG lines per function when allowed to)."""
    numba = pytest.importorskip("numba")
    out = io.StringIO()
    configure_logging("DEBUG", stream=out)

    @numba.njit(cache=False)  # type: ignore[untyped-decorator]
    def total(n: int) -> int:
        s = 0
        for i in range(n):
            if i % 3:
                s += i
        return s

    assert total(10) == 1 + 2 + 4 + 5 + 7 + 8
    assert [d for d in _records(out) if str(d["logger"]).startswith("numba")] == []


def test_app_at_debug_logs_only_its_own_lines(settings: Settings, tmp_path: Path) -> None:
    """A multipart upload through the real app at DEBUG: python-multipart, asyncio, httpx stay silent."""
    out = io.StringIO()
    configure_logging("DEBUG", stream=out)
    sample = tmp_path / "not-audio.wav"
    sample.write_bytes(b"definitely not a wav file" * 100)
    with running_app() as client, sample.open("rb") as fh:
        r = client.post("/api/v1/profiles", data={"name": "x"}, files={"files": ("a.wav", fh, "audio/wav")})
    assert 400 <= r.status_code < 500
    loggers = {str(d["logger"]) for d in _records(out)}
    assert "autovoice.service" in loggers  # the request line
    assert {n for n in loggers if not n.startswith(("autovoice", "uvicorn"))} == set()


@pytest.mark.parametrize(("name", "number"), [("debug", 10), ("INFO", 20), (" Warning ", 30), (40, 40)])
def test_parse_level(name: str | int, number: int) -> None:
    assert parse_level(name) == number


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda: parse_level("verbose"), "invalid_log_level"),
        (lambda: configure_logging("loud", stream=io.StringIO()), "invalid_log_level"),
        (lambda: json_from_format("yaml"), "invalid_log_format"),
    ],
)
def test_bad_values(call: object, code: str) -> None:
    with pytest.raises(AutoVoiceError) as info:
        call()  # type: ignore[operator]
    assert info.value.code == code
    assert "Valid:" in info.value.message


@pytest.mark.parametrize(
    ("value", "expected"), [(None, None), ("auto", None), ("JSON", True), ("text", False)]
)
def test_json_from_format(value: str | None, expected: bool | None) -> None:
    assert json_from_format(value) is expected


@pytest.mark.parametrize(
    ("cli_level", "setting", "expected"),
    [(None, "INFO", logging.INFO), ("WARNING", "INFO", logging.INFO), ("DEBUG", "INFO", logging.DEBUG)],
)
def test_server_logging_keeps_the_cli_verbosity(
    settings: Settings, cli_level: str | None, setting: str, expected: int
) -> None:
    """``autovoice -v serve``: the server's INFO setting does not undo the CLI's DEBUG."""
    if cli_level is None:
        logging.getLogger().handlers[:] = []
    else:
        configure_logging(cli_level, stream=io.StringIO())
    configure_server_logging(settings.model_copy(update={"log_level": setting}))
    assert configured_level() == expected
    assert logging.getLogger("autovoice").level == expected


def test_native_writes_to_stderr_become_json_records(tmp_path: Path) -> None:
    """In a process that logs JSON: a native write to descriptor 2 and a child process's stderr (what
    libmpg123 and multiprocessing's resource tracker do) arrive as records; JSON lines pass as they are."""
    import json
    import subprocess
    import sys

    code = (
        "import logging, os, subprocess, sys, time\n"
        "from autovoice.service.logs import configure_logging, route_native_stderr\n"
        "configure_logging('INFO', json=True)\n"
        "assert route_native_stderr()\n"
        "assert not route_native_stderr()  # once\n"
        "os.write(2, b'Note: Illegal Audio-MPEG-Header 0x00010203 at offset 2052.\\n')\n"
        "subprocess.run(['sh', '-c', 'echo resource_tracker: leaked semaphore >&2'], check=True)\n"
        'os.write(2, b\'{"level": "INFO", "message": "a child logging JSON"}\\n\')\n'
        "logging.getLogger('autovoice.test').info('ours')\n"
        "time.sleep(0.5)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr
    docs = [json.loads(line) for line in run.stderr.splitlines()]  # every line is JSON
    by_message = {d["message"]: d for d in docs}
    assert (
        by_message["Note: Illegal Audio-MPEG-Header 0x00010203 at offset 2052."]["logger"]
        == "autovoice.stderr"
    )
    assert by_message["resource_tracker: leaked semaphore"]["level"] == "WARNING"
    assert "logger" not in by_message["a child logging JSON"]  # passed on as it was
    assert by_message["ours"]["logger"] == "autovoice.test"


def test_a_text_log_is_left_alone() -> None:
    from autovoice.service.logs import route_native_stderr

    configure_logging("INFO", json=False, stream=io.StringIO())
    assert not route_native_stderr()
