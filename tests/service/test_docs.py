"""``/docs`` and ``/redoc`` work offline: their pages load only local assets, and the assets are served."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from autovoice.config import Settings
from autovoice.service.docs import ASSETS_URL, assets_dir
from tests.service.conftest import running_app

#: The src/href/spec-url attributes of <script>, <link>, <img> and <redoc>, and Swagger UI's ``url: '...'``.
_ATTR = re.compile(
    r"""<(?:script|link|img|redoc)\b[^>]*?\b(?:src|href|spec-url)\s*=\s*["']([^"']+)["']""", re.I
)
_JS_URL = re.compile(r"""\burl\s*:\s*['"]([^'"]+)['"]""")
_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


def _references(html: str) -> list[str]:
    return _ATTR.findall(html) + _JS_URL.findall(html)


def test_assets_folder_holds_the_bundles() -> None:
    names = {p.name for p in assets_dir().iterdir()}
    assert {"swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"} <= names
    assert (assets_dir() / "swagger-ui-bundle.js").stat().st_size > 500_000  # the real bundle, not a stub


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png"}),
    ],
)
def test_docs_pages_reference_only_local_assets(settings: Settings, page: str, expected: set[str]) -> None:
    with running_app() as client:
        r = client.get(page)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        html = r.text
        assert not re.search(r"https?://", html), re.findall(r"https?://[^\s\"'<>]+", html)
        refs = _references(html)
        assert "/openapi.json" in refs
        assets = [u for u in refs if u.startswith(ASSETS_URL + "/")]
        assert {u.rsplit("/", 1)[1] for u in assets} == expected
        for url in assets:
            got = client.get(url)
            assert got.status_code == 200, url
            assert _TYPES[Path(url).suffix] in got.headers["content-type"], (url, got.headers)
            assert len(got.content) == (assets_dir() / Path(url).name).stat().st_size
        assert client.get("/openapi.json").json()["info"]["title"] == "AutoVoice"
        assert client.head(page).status_code == 200


def test_docs_stay_out_of_the_schema(settings: Settings) -> None:
    with running_app() as client:
        paths = client.get("/openapi.json").json()["paths"]
        assert not [p for p in paths if p.startswith(("/docs", "/redoc"))]
        assert client.get("/docs/oauth2-redirect").status_code == 200
        assert client.get(f"{ASSETS_URL}/nope.js").status_code == 404


@pytest.mark.timeout(120)
def test_swagger_ui_renders_offline(settings: Settings, tmp_path: Path) -> None:
    """A headless Chromium that may reach nothing but the server renders every operation."""
    from tests.web.conftest import CHROMIUM, LAUNCH_ARGS, serve_app

    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's browser with `apt-get install -y chromium`")
    sync_api = pytest.importorskip("playwright.sync_api")
    blocked: list[str] = []
    with serve_app(tmp_path / "data") as base, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})

            def only_local(route: Any) -> None:
                if route.request.url.startswith(base):
                    route.continue_()
                else:
                    blocked.append(route.request.url)
                    route.abort()

            page.route("**/*", only_local)
            page.goto(base + "docs")
            page.wait_for_selector(".opblock", timeout=30_000)
            folder = Path(os.environ.get("AUTOVOICE_SCREENSHOTS") or tmp_path)
            shot = folder / "docs-swagger-ui.png"
            page.screenshot(path=str(shot), full_page=True)
            operations = page.locator(".opblock").count()
            title = page.locator(".information-container .title").inner_text()
        finally:
            browser.close()
        import httpx

        expected = sum(len(v) for v in httpx.get(base + "openapi.json").json()["paths"].values())
    assert not blocked, blocked
    assert operations == expected
    assert "AutoVoice" in title
    assert shot.stat().st_size > 20_000
