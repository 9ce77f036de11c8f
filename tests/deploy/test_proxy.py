"""The reverse proxy and file limits in deploy/: the units raise LimitNOFILE and keep the API on
loopback behind nginx; nginx (Debian's, when installed) runs the shipped configuration in front of a
real ``autovoice serve``: requests and WebSockets pass, a connection whose headers stall is closed."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from autovoice.config import Settings
from tests.support import free_port, http_ok, spawn, stop, wait_until

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def _directive(text: str, name: str) -> str:
    found = re.search(rf"^\s*{name}\s+([^;]+);", text, re.MULTILINE)
    assert found is not None, name
    return found[1].strip()


def test_units_raise_the_file_limit_and_keep_the_api_behind_the_proxy() -> None:
    api = (DEPLOY / "systemd" / "autovoice-api.service").read_text()
    assert int(re.search(r"^LimitNOFILE=(\d+)$", api, re.MULTILINE)[1]) >= 65536  # type: ignore[index]
    assert "--host 127.0.0.1" in api
    assert "0.0.0.0" not in api
    assert "AUTOVOICE_REQUIRE_API_KEY=true" in api  # loopback bind, yet every request comes via the proxy
    worker = (DEPLOY / "systemd" / "autovoice-worker@.service").read_text()
    assert re.search(r"^LimitNOFILE=\d+$", worker, re.MULTILINE)
    compose = (DEPLOY / "docker-compose.yml").read_text()
    assert "proxy:" in compose
    assert "nofile" in compose
    assert '"127.0.0.1:8000:8000"' not in compose  # the API is reached through the proxy only


def test_proxy_timeouts_are_set() -> None:
    limits = (DEPLOY / "nginx" / "autovoice-limits.conf").read_text()
    assert _directive(limits, "client_header_timeout") == "10s"
    assert _directive(limits, "client_body_timeout") == "30s"
    assert _directive(limits, "send_timeout") == "60s"
    assert "limit_conn_zone" in limits
    locations = (DEPLOY / "nginx" / "autovoice-locations.conf").read_text()
    assert _directive(locations, "proxy_request_buffering") == "off"  # uploads stream through
    assert "Upgrade $http_upgrade" in locations


@pytest.fixture
def proxied(settings: Settings, tmp_path: Path) -> Iterator[tuple[int, int]]:
    """``autovoice serve`` on loopback and nginx with deploy/nginx's files in front (header timeout cut
    to 2 s so the test is quick). Yields (proxy port, server port)."""
    if NGINX is None:
        pytest.skip("needs nginx (Debian: nginx-light)")
    port, proxy_port = free_port(), free_port()
    log = tmp_path / "server.log"
    env = {
        "AUTOVOICE_DATA_DIR": str(settings.data_dir),
        "AUTOVOICE_DEVICE": "cpu",
        "AUTOVOICE_RATE_LIMIT": "",
    }
    server = spawn(f"from autovoice.service import serve; serve('127.0.0.1', {port})", env=env, log=log)
    prefix = tmp_path / "nginx"
    (prefix / "logs").mkdir(parents=True)
    limits = (DEPLOY / "nginx" / "autovoice-limits.conf").read_text()
    limits = re.sub(r"client_header_timeout\s+\d+s;", "client_header_timeout 2s;", limits)
    (prefix / "limits.conf").write_text(limits)
    shutil.copy(DEPLOY / "nginx" / "autovoice-locations.conf", prefix / "locations.conf")
    site = (DEPLOY / "nginx" / "compose.conf").read_text()
    site = site.replace("server api:8000;", f"server 127.0.0.1:{port};")
    site = site.replace("listen 8080;", f"listen 127.0.0.1:{proxy_port};")
    site = site.replace("/etc/nginx/snippets/autovoice-limits.conf", str(prefix / "limits.conf"))
    site = site.replace("/etc/nginx/snippets/autovoice-locations.conf", str(prefix / "locations.conf"))
    (prefix / "site.conf").write_text(site)
    (prefix / "nginx.conf").write_text(
        f"worker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/logs/error.log;\n"
        "events { worker_connections 512; }\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {prefix}/body;\n"
        f"  proxy_temp_path {prefix}/proxy;\n  include {prefix}/site.conf;\n}}\n"
    )
    checked = subprocess.run(
        [NGINX, "-t", "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    proxy = subprocess.Popen(
        [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/health/live"), timeout=60, what="start", log=log)
        wait_until(lambda: http_ok(f"http://127.0.0.1:{proxy_port}/health/live"), timeout=20, what="nginx")
        yield proxy_port, port
    finally:
        proxy.terminate()
        proxy.wait(timeout=20)
        stop(server)


@pytest.mark.timeout(120)
def test_nginx_in_front_passes_requests_and_closes_stalled_headers(proxied: tuple[int, int]) -> None:
    proxy_port, _ = proxied
    url = f"http://127.0.0.1:{proxy_port}"
    r = httpx.get(f"{url}/health", timeout=10)
    assert r.status_code == 200
    assert r.headers["x-request-id"]  # the proxy's request id reached the app and came back
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{proxy_port}/api/v1/live") as ws:
        ws.send("not json")
        assert "invalid_message" in str(ws.recv(timeout=10))
    stalled = socket.create_connection(("127.0.0.1", proxy_port))
    stalled.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    stalled.settimeout(0.2)
    started = time.monotonic()
    closed = None
    while time.monotonic() - started < 8:
        try:
            data = stalled.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            data = b""
        if data == b"" or data.startswith(b"HTTP/1.1 408"):
            closed = time.monotonic() - started
            break
    stalled.close()
    assert closed is not None, "nginx kept a connection whose headers never finished"
    assert closed < 5
