"""Fixtures for the web page tests: the real app under uvicorn in a subprocess, and a headless Chromium.

The browser is Debian's ``chromium`` package (``apt-get install -y chromium``) driven by Playwright's
Python client; no browser is ever downloaded. Screenshots go to ``$AUTOVOICE_SCREENSHOTS`` (or a pytest
temporary folder); the folder is printed in the terminal summary.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import free_port

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Extra flags for the recording test only: a synthetic microphone, permission granted without a prompt.
FAKE_MIC_ARGS = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]

# The app as the service will serve it, with the page mounted at "/" when the app does not do it yet.
_SERVER_CODE = """
import sys
import uvicorn
from fastapi.staticfiles import StaticFiles
from starlette.routing import Mount
from autovoice.service.app import create_app
from autovoice.web import static_dir

app = create_app()
if not any(isinstance(r, Mount) and r.path in ("", "/") for r in app.routes):
    app.mount("/", StaticFiles(directory=static_dir(), html=True), name="web")
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", ws="websockets-sansio")
"""

_SCREENSHOT_KEY = pytest.StashKey[Path]()


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a test server: its own data dir, CPU, no rate limits (one client, many calls)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOVOICE_")}
    env.update(
        AUTOVOICE_DATA_DIR=str(data_dir),
        AUTOVOICE_DEVICE="cpu",
        AUTOVOICE_RATE_LIMIT="",
        AUTOVOICE_JOB_RATE_LIMIT="",
        **{f"AUTOVOICE_{k.upper()}": v for k, v in extra.items()},
    )
    return env


@contextmanager
def serve_app(data_dir: Path, **settings: str) -> Iterator[str]:
    """Run the app with uvicorn on 127.0.0.1 (a free port) in a subprocess; yields its base URL."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = data_dir / "server.log"
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER_CODE, str(port)],
            env=server_env(data_dir, **settings),
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the server exited ({proc.returncode}):\n{log.read_text()[-4000:]}")
            try:
                if httpx.get(url + "health/live", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not start:\n{log.read_text()[-4000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def create_api_key(data_dir: Path) -> str:
    """A new API key in ``data_dir``'s database (what ``autovoice apikey create`` does)."""
    from autovoice.config import Settings
    from autovoice.service.auth import create_api_key as create
    from autovoice.storage import Database

    db = Database(Settings(data_dir=data_dir, device="cpu"))
    try:
        db.migrate()
        _, token = create(db, "web-test")
    finally:
        db.dispose()
    return token


# -- fixtures -------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def screenshots(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: ``$AUTOVOICE_SCREENSHOTS`` or a pytest temporary folder."""
    env = os.environ.get("AUTOVOICE_SCREENSHOTS")
    folder = Path(env) if env else tmp_path_factory.mktemp("web-screenshots", numbered=True)
    folder.mkdir(parents=True, exist_ok=True)
    request.config.stash[_SCREENSHOT_KEY] = folder
    return folder


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    folder = config.stash.get(_SCREENSHOT_KEY, None)
    if folder is not None:
        terminalreporter.write_line(f"web page screenshots: {folder}")


@pytest.fixture(scope="session")
def playwright_api() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's browser with `apt-get install -y chromium`")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the Python playwright package is missing")
    with sync_api.sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright_api: Any) -> Iterator[Any]:
    b = playwright_api.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
    yield b
    b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, playwright_api: Any) -> Iterator[str]:
    """One app per test module (profile building is slow; tests in a module share its data)."""
    with serve_app(tmp_path_factory.mktemp("web-server")) as url:
        yield url


class Shots:
    """Numbered screenshots of one test: ``shot("progress")`` -> ``<folder>/<test>-01-progress.png``."""

    def __init__(self, page: Any, folder: Path, prefix: str) -> None:
        self.page, self.folder, self.prefix, self.n = page, folder, prefix, 0

    def __call__(self, name: str, *, full_page: bool = True) -> Path:
        self.n += 1
        path = self.folder / f"{self.prefix}-{self.n:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture
def new_page(browser: Any, screenshots: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``new_page(url, width=1280, height=900)`` -> (page, shot); console errors fail the test."""
    contexts: list[Any] = []
    errors: list[str] = []

    def make(url: str, *, width: int = 1280, height: int = 900, b: Any = None) -> tuple[Any, Shots]:
        ctx = (b or browser).new_context(viewport={"width": width, "height": height}, accept_downloads=True)
        contexts.append(ctx)
        page = ctx.new_page()
        page.set_default_timeout(30_000)
        page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
        page.on("console", lambda msg: msg.type == "error" and errors.append(f"console: {msg.text}"))
        page.goto(url)
        page.wait_for_selector("html[data-ready='true']")
        return page, Shots(page, screenshots, request.node.name.removeprefix("test_"))

    yield make
    for ctx in contexts:
        with contextlib.suppress(Exception):  # its browser may be closed already
            ctx.close()
    # HTTP errors the test provokes show in the console as "Failed to load resource"; scripts must not fail.
    unexpected = [e for e in errors if "Failed to load resource" not in e]
    assert not unexpected, unexpected
