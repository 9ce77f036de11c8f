"""``autovoice serve`` closes connections whose headers never finish (``header_timeout_s``), while
complete requests, kept-alive connections and WebSockets go on as before."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from autovoice.config import Settings
from tests.support import free_port, http_ok, spawn, stop, wait_until


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closes ``sock`` (reads return b""), or None if it stays open."""
    sock.settimeout(0.2)
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - started
    return None


@pytest.mark.timeout(120)
def test_incomplete_headers_are_closed_and_health_stays_up(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "server.log"
    env = {
        "AUTOVOICE_DATA_DIR": str(settings.data_dir),
        "AUTOVOICE_DEVICE": "cpu",
        "AUTOVOICE_HEADER_TIMEOUT_S": "1.5",
        "AUTOVOICE_RATE_LIMIT": "",
    }
    server = spawn(f"from autovoice.service import serve; serve('127.0.0.1', {port})", env=env, log=log)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_ok(f"{url}/health/live"), timeout=60, what="start", log=log)
        # Connections that never finish their headers: 60 of them, one of which trickles a byte a
        # second (bytes that arrive do not restart the clock).
        stalled = []
        for _ in range(60):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            stalled.append(s)
        trickle = socket.create_connection(("127.0.0.1", port))
        trickle.sendall(b"GET /health HTTP/1.1\r\n")
        started = time.monotonic()
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200  # others are still served
        for _ in range(3):
            time.sleep(0.6)
            trickle.sendall(b"X")
        assert _closed_within(trickle, 3.0) is not None, "a trickling connection was kept open"
        for s in stalled:
            waited = _closed_within(s, 4.0)
            assert waited is not None, "a connection without complete headers was kept open"
            s.close()
        assert time.monotonic() - started < 8.0
        trickle.close()
        # A complete request sent slowly but within the limit, then a second one on the same
        # (kept-alive) connection: both answered.
        with socket.create_connection(("127.0.0.1", port)) as s:
            for part in (b"GET /health/live HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
                s.sendall(part)
                time.sleep(0.3)
            s.settimeout(5)
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
            s.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
        # A WebSocket outlives the header timeout (it is no longer an HTTP connection).
        from websockets.sync.client import connect

        with connect(f"ws://127.0.0.1:{port}/api/v1/live") as ws:
            time.sleep(2.0)
            ws.send("not json")  # answered after the timeout: the connection is still open
            assert "invalid_message" in str(ws.recv(timeout=5))
    finally:
        stop(server)
