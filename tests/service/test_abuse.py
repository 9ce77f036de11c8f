"""Hostile uploads and clients: every one is refused (4xx) or timed out, never a 5xx, and nothing of it
stays on disk. Secrets (API keys, passwords in database and broker URLs) never reach the logs.

The in-process tests go through the real app under a TestClient; the slow-client and log tests run a
real ``serve()`` process, since only a real socket can stall or trickle.
"""

from __future__ import annotations

import io
import socket
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from autovoice.config import Settings
from tests.service.conftest import running_app
from tests.support import free_port, http_ok, spawn, stop, wait_until

PROFILES = "/api/v1/profiles"


# -- crafted files -------------------------------------------------------------------------------
def _tone(seconds: float, sr: int) -> np.ndarray:
    return (0.2 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


def wav_header_claiming(claim_s: float, *, real_s: float, sr: int = 16000, channels: int = 1) -> bytes:
    """A 16-bit PCM WAV whose RIFF and data sizes claim ``claim_s`` seconds but which holds ``real_s``."""
    pcm = (np.repeat(_tone(real_s, sr)[:, None], channels, axis=1) * 32767).astype("<i2").tobytes()
    data_len = min(int(claim_s * sr * channels * 2), 2**32 - 64)
    fmt = struct.pack("<IHHIIHH", 16, 1, channels, sr, sr * channels * 2, channels * 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", data_len + 36)
        + b"WAVEfmt "
        + fmt
        + b"data"
        + struct.pack("<I", data_len)
        + pcm
    )


def flac_claiming(claim_s: float, *, real_s: float = 2.0, sr: int = 16000) -> bytes:
    """A FLAC whose STREAMINFO says ``claim_s`` seconds (total samples) but which holds ``real_s``."""
    buf = io.BytesIO()
    sf.write(buf, _tone(real_s, sr), sr, format="FLAC")
    data = bytearray(buf.getvalue())
    assert data[:4] == b"fLaC"
    assert data[4] & 0x7F == 0  # STREAMINFO first
    word = int.from_bytes(data[18:26], "big")  # rate(20) channels(3) bits(5) total samples(36)
    word = (word & ~((1 << 36) - 1)) | int(claim_s * sr)
    data[18:26] = word.to_bytes(8, "big")
    return bytes(data)


def wav_with_channels(channels: int) -> bytes:
    """An 8-bit PCM WAV header with ``channels`` channels and a few frames of data."""
    frames = 4
    fmt = struct.pack("<IHHIIHH", 16, 1, channels, 8000, 8000 * channels, channels, 8)
    data = bytes([128]) * (frames * channels)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + len(data))
        + b"WAVEfmt "
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )


def webm_opus_bomb(real_s: float, *, claim_s: float = 2.0) -> bytes:
    """WebM/Opus silence (a few hundred bytes per second, 48 kHz stereo once decoded) whose Duration
    element claims ``claim_s``: a decompression bomb that only a bounded decoder survives."""
    import av

    sr, buf = 48000, io.BytesIO()
    with av.open(buf, "w", format="webm") as container:
        stream: Any = container.add_stream("libopus", rate=sr)
        stream.layout, stream.bit_rate = "stereo", 6000
        pts, left, block = 0, int(real_s * sr), 48000
        while left > 0:
            n = min(block, left)
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 2 * n), np.int16), format="s16", layout="stereo")
            frame.sample_rate, frame.pts = sr, pts
            for packet in stream.encode(frame):
                container.mux(packet)
            pts, left = pts + n, left - n
        for packet in stream.encode(None):
            container.mux(packet)
    data = bytearray(buf.getvalue())
    at = data.find(b"\x44\x89")  # Segment Info > Duration, in ms (TimecodeScale 1e6)
    assert at > 0
    assert data[at + 2] == 0x88, "unexpected Duration element"
    data[at + 3 : at + 11] = struct.pack(">d", claim_s * 1000)
    return bytes(data)


# -- helpers -------------------------------------------------------------------------------------
def leftovers(data_dir: Path) -> list[str]:
    """Files left by refused uploads: scratch folders and job folders. A folder the server removes
    while it is being listed counts as still there (the caller polls until the list is empty)."""
    found = []
    for sub in ("uploads", "jobs"):
        root = data_dir / sub
        if root.is_dir():
            try:
                found += [str(p.relative_to(data_dir)) for p in root.rglob("*")]
            except FileNotFoundError as exc:  # removed mid-listing: not gone yet as far as we saw
                found.append(f"{sub}/(vanishing: {Path(str(exc.filename)).name})")
    return found


def assert_refused(r: httpx.Response, *codes: str) -> dict[str, Any]:
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:500])
    error: dict[str, Any] = r.json()["error"]
    if codes:
        assert error["code"] in codes, error
    return error


@pytest.fixture
def app(configure: Callable[..., Settings]) -> Iterator[TestClient]:
    configure(rate_limit="", job_rate_limit="", max_audio_seconds=20)
    with running_app() as client:
        yield client


def post_profile(client: TestClient, payload: bytes, filename: str) -> httpx.Response:
    return client.post(PROFILES, data={"name": "abuse"}, files={"files": (filename, payload, "audio/wav")})


# -- in-process ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("label", "make", "filename", "codes"),
    [
        # FLAC's STREAMINFO is trusted for the duration: refused from the header, nothing decoded.
        ("flac-claims-16-min", lambda: flac_claiming(960), "x.flac", ("audio_too_long",)),
        # A WAV's data size is clamped to the file: its real 0.5 s is what counts.
        ("wav-claims-16-min", lambda: wav_header_claiming(960, real_s=0.5), "x.wav", ("audio_too_short",)),
        # More channels than the decoders open: the header says how many, and that is the refusal.
        ("wav-65535-channels", lambda: wav_with_channels(65535), "x.wav", ("too_many_channels",)),
        ("wav-10000-channels", lambda: wav_with_channels(10_000), "x.wav", ("too_many_channels",)),
        ("wav-3-channels", lambda: wav_with_channels(3), "x.wav", ("too_many_channels",)),
    ],
)
def test_lying_headers_are_refused(
    app: TestClient,
    settings: Settings,
    label: str,
    make: Callable[[], bytes],
    filename: str,
    codes: tuple[str, ...],
) -> None:
    payload = make()
    assert len(payload) < 300_000  # a tiny file
    started = time.monotonic()
    r = post_profile(app, payload, filename)
    assert_refused(r, *codes)
    assert time.monotonic() - started < 10
    assert leftovers(settings.data_dir) == []


def test_decompression_bomb_stops_at_the_limit(app: TestClient, settings: Settings) -> None:
    # 120 s of Opus silence (~100 kB) claiming 2 s; the limit is 20 s. Before the decoder was bounded it
    # decoded all 120 s (46 MB of float32 here; a 10 MB upload would have been hours, gigabytes).
    bomb = webm_opus_bomb(120.0)
    assert len(bomb) < 200_000
    r = post_profile(app, bomb, "x.webm")
    error = assert_refused(r, "audio_too_long")
    assert 20 <= error["details"]["duration_s"] < 22, error  # decoding stopped just past the limit
    assert leftovers(settings.data_dir) == []


def _multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "abuse") -> bytes:
    out = io.BytesIO()
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out.write(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode())
        out.write(value + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue()


@pytest.mark.parametrize(
    ("label", "parts", "code"),
    [
        ("5000-fields", [(f"f{i}", None, b"x") for i in range(5000)], "invalid_parameter"),
        ("3000-files", [("files", f"{i}.wav", b"RIFF") for i in range(3000)], "too_many_files"),
        ("3000-unnamed", [("", None, b"") for _ in range(3000)], "invalid_parameter"),
    ],
)
def test_thousands_of_parts_are_refused(
    app: TestClient, settings: Settings, label: str, parts: list[tuple[str, str | None, bytes]], code: str
) -> None:
    body = _multipart([("name", None, b"abuse"), *parts])
    started = time.monotonic()
    r = app.post(PROFILES, content=body, headers={"content-type": "multipart/form-data; boundary=abuse"})
    assert_refused(r, code)
    assert time.monotonic() - started < 10
    assert leftovers(settings.data_dir) == []


# -- a real server -------------------------------------------------------------------------------
# Short timeouts for the test; production values are in autovoice.service.bodies.
SERVE = (
    "import autovoice.service.bodies as b\n"
    "b.BODY_IDLE_TIMEOUT_S, b.BODY_GRACE_S, b.BODY_MIN_BYTES_PER_S = 1.5, 2.0, 4096\n"
    "from autovoice.service import serve\n"
    "serve('127.0.0.1', {port})\n"
)
HEAD = (
    b"POST /api/v1/profiles HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=XX\r\n"
    b"Content-Length: 1000000\r\n\r\n"
    b'--XX\r\nContent-Disposition: form-data; name="files"; filename="a.wav"\r\n\r\nRIFF'
)


@contextmanager
def _serving(settings: Settings, tmp_path: Path, **extra: str) -> Iterator[dict[str, Any]]:
    port = free_port()
    log = tmp_path / "server.log"
    env = {
        "AUTOVOICE_DATA_DIR": str(settings.data_dir),
        "AUTOVOICE_DEVICE": "cpu",
        "AUTOVOICE_LOG_FORMAT": "json",
        "AUTOVOICE_RATE_LIMIT": "",
        **extra,
    }
    proc = spawn(SERVE.format(port=port), env=env, log=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(f"{base}/health/live"), timeout=60, what="server start", log=log)
        yield {"port": port, "base": base, "log": log, "proc": proc}
    finally:
        stop(proc)


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[dict[str, Any]]:
    with _serving(settings, tmp_path) as running:
        yield running


TTS_HEAD = (
    b"POST /api/v1/tts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Content-Length: 100000\r\n\r\n"
)


def _complete(sock: socket.socket, reply: bytes) -> bytes:
    """``reply`` (what was read so far) with the rest of its head and body (by its Content-Length)."""
    import re

    sock.settimeout(5)
    try:
        while True:
            head, _, body = reply.partition(b"\r\n\r\n")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            if _ and length and len(body) >= int(length.group(1)):
                return reply
            chunk = sock.recv(4096)
            if not chunk:
                return reply
            reply += chunk
    except (TimeoutError, ConnectionResetError):
        return reply


def _read_response(sock: socket.socket, timeout: float) -> bytes:
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def _server_5xx(base: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=5).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("autovoice_http_requests_total{") and 'status="5' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.timeout(120)
def test_slow_clients_are_timed_out(server: dict[str, Any], settings: Settings) -> None:
    port = server["port"]
    # 1. headers and the start of a file, then nothing: 408 after the idle timeout.
    stalled = socket.create_connection(("127.0.0.1", port))
    stalled.sendall(HEAD)
    started = time.monotonic()
    reply = _read_response(stalled, timeout=15)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert 1.0 < time.monotonic() - started < 10
    stalled.close()

    # 2. a trickle: a byte every 0.2 s keeps the idle timer happy but not the minimum rate.
    trickle = socket.create_connection(("127.0.0.1", port))
    trickle.sendall(HEAD)
    trickle.settimeout(0.2)
    started, reply = time.monotonic(), b""
    while time.monotonic() - started < 15 and not reply:
        try:
            trickle.sendall(b"x")
            reply = trickle.recv(4096)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
    reply += _read_response(trickle, timeout=2) if reply and b"\r\n\r\n" not in reply else b""
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert time.monotonic() - started < 10
    trickle.close()

    # 3. the same with JSON bodies (POST /api/v1/tts): read under the same deadline.
    for pause in (None, 0.2):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(TTS_HEAD + b'{"text": "')
        started, reply = time.monotonic(), b""
        sock.settimeout(pause or 15)
        while time.monotonic() - started < 15 and not reply:
            try:
                if pause:
                    sock.sendall(b"a")
                reply = sock.recv(4096)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        reply = _complete(sock, reply)
        sock.close()
        assert reply.startswith(b"HTTP/1.1 408"), (pause, reply[:300])
        assert b'"code":"upload_timeout"' in reply, reply[:400]
        assert time.monotonic() - started < 10

    # 4. a client that hangs up half-way through its upload.
    gone = socket.create_connection(("127.0.0.1", port))
    gone.sendall(HEAD + b"\0" * 50_000)
    wait_until(lambda: leftovers(settings.data_dir) != [], timeout=10, what="the upload's scratch folder")
    gone.close()

    wait_until(lambda: leftovers(settings.data_dir) == [], timeout=10, what="scratch folders removed")
    assert _server_5xx(server["base"]) == 0
    assert httpx.get(f"{server['base']}/health/live", timeout=5).status_code == 200


@pytest.mark.timeout(120)
def test_rate_limits_apply_before_the_body_is_read(settings: Settings, tmp_path: Path) -> None:
    """Slow JSON bodies from one client: past its job limit (3 a minute here) the next requests get their
    429 at once, without sending a byte of their bodies; those admitted are timed out (408)."""
    with _serving(settings, tmp_path, AUTOVOICE_JOB_RATE_LIMIT="3/minute") as running:
        socks = []
        for _ in range(6):
            sock = socket.create_connection(("127.0.0.1", running["port"]))
            sock.sendall(TTS_HEAD + b"{")
            socks.append(sock)
        started = time.monotonic()
        replies = [_read_response(sock, timeout=1.0) for sock in socks]
        refused = [r for r in replies if r.startswith(b"HTTP/1.1 429")]
        assert len(refused) == 3, [r[:40] for r in replies]
        assert all(b"retry-after" in r.lower() for r in refused)
        assert time.monotonic() - started < 6  # not after a body deadline
        replies = [r or _read_response(sock, timeout=10) for r, sock in zip(replies, socks, strict=True)]
        for sock in socks:
            sock.close()
        assert sorted(r[:12] for r in replies) == [b"HTTP/1.1 408"] * 3 + [b"HTTP/1.1 429"] * 3
        assert _server_5xx(running["base"]) == 0


@pytest.mark.timeout(120)
def test_api_keys_never_reach_the_logs(server: dict[str, Any], settings: Settings) -> None:
    from autovoice.service.auth import create_api_key
    from autovoice.storage import Database

    db = Database(settings)
    _, token = create_api_key(db, "log-test")
    db.dispose()
    secret = token[10:]  # the first 10 characters are the public prefix (shown by `apikey list`)
    wrong = "av_" + "Z" * 43
    base = server["base"]
    for headers in ({"Authorization": f"Bearer {token}"}, {"X-API-Key": token}, {"X-API-Key": wrong}):
        r = httpx.get(f"{base}{PROFILES}", headers=headers, timeout=10)
        assert r.status_code in (200, 401)
    assert httpx.get(f"{base}{PROFILES}", params={"api_key": token}, timeout=10).status_code < 500
    # A key pasted into the request id header: not taken as the id, so neither logged nor echoed.
    for wrong_place in (token, token[3:]):
        r = httpx.get(f"{base}/health", headers={"X-Request-ID": wrong_place}, timeout=10)
        assert r.headers["x-request-id"] != wrong_place
        assert secret not in r.headers["x-request-id"]
    assert httpx.get(f"{base}/api/v1/nowhere", params={"api_key": wrong}, timeout=10).status_code == 404
    import websockets.sync.client as ws_client

    for key in (token, wrong):
        url = f"ws://127.0.0.1:{server['port']}/api/v1/conversions/job_missing/events?api_key={key}"
        try:
            with ws_client.connect(url, open_timeout=10) as ws:
                ws.recv(timeout=5)
        except Exception:  # closed by the server with an error event or a close code: both fine
            pass
    # A WebSocket's line is written when the server has closed it: once both are in, the log holds every
    # request above.
    wait_until(
        lambda: server["log"].read_text(errors="replace").count("WS /") >= 2,
        timeout=10,
        what="both WebSocket sessions logged",
        log=server["log"],
    )
    log = server["log"].read_text(errors="replace")
    assert "/api/v1/profiles" in log  # the requests were logged...
    assert secret not in log  # ...without the key
    assert "Z" * 43 not in log


def _mp3_with_a_damaged_frame() -> bytes:
    """Three seconds of a tone as MP3 with 400 bytes of garbage in the middle: libmpg123 (in libsndfile)
    decodes around it and says so on file descriptor 2 ("Note: Illegal Audio-MPEG-Header ...")."""
    buf = io.BytesIO()
    sf.write(buf, _tone(3.0, 16_000), 16_000, format="MP3")
    data = bytearray(buf.getvalue())
    middle = len(data) // 2
    data[middle : middle + 400] = bytes(range(256)) + bytes(144)
    return bytes(data)


@pytest.mark.timeout(120)
def test_native_stderr_lines_stay_json(settings: Settings, tmp_path: Path, profile_id: str) -> None:
    """What libmpg123 writes to stderr, in the server and in its worker processes, and what a child
    process writes there (multiprocessing's resource tracker is one), arrives as JSON log records."""
    with _serving(settings, tmp_path) as running:
        r = httpx.post(
            f"{running['base']}/api/v1/conversions",
            data={"profile_id": profile_id, "preset": "fast", "separation": "none"},
            files={"file": ("damaged.mp3", _mp3_with_a_damaged_frame(), "audio/mpeg")},
            timeout=60,
        )
        assert r.status_code == 202, r.text
        log = running["log"]

        def said() -> list[dict[str, Any]]:
            import json

            docs = [
                json.loads(line) for line in log.read_text(errors="replace").splitlines() if line[:1] == "{"
            ]
            return [d for d in docs if "Illegal Audio-MPEG-Header" in d["message"]]

        wait_until(lambda: bool(said()), timeout=30, what="libmpg123's note as a log record", log=log)
        assert said()[0]["logger"] == "autovoice.stderr"
        assert said()[0]["level"] == "WARNING"
        raw = [
            line
            for line in log.read_text(errors="replace").splitlines()
            if "MPEG" in line and line[:1] != "{"
        ]
        assert raw == []


def test_passwords_in_urls_never_reach_the_logs(settings: Settings, tmp_path: Path) -> None:
    """A server whose database and broker refuse connections reports it without printing passwords."""
    port = free_port()
    log = tmp_path / "server.log"
    env = {
        "AUTOVOICE_DATA_DIR": str(settings.data_dir),
        "AUTOVOICE_DEVICE": "cpu",
        "AUTOVOICE_DATABASE_URL": "postgresql://autovoice:Db-Pa55-word@127.0.0.1:1/autovoice",
        "AUTOVOICE_BROKER_URL": "redis://:Br0ker-Pa55@127.0.0.1:1/0",
        "AUTOVOICE_LOG_LEVEL": "DEBUG",
    }
    proc = spawn(f"from autovoice.service import serve; serve('127.0.0.1', {port})", env=env, log=log)
    try:
        proc.wait(timeout=60)  # the database cannot be migrated: the server stops
    except Exception:
        with_server = http_ok(f"http://127.0.0.1:{port}/health")
        stop(proc)
        assert not with_server
    else:
        assert proc.returncode != 0
    text = log.read_text(errors="replace")
    assert text.strip(), "the failure was not reported at all"
    assert "Db-Pa55-word" not in text
    assert "Br0ker-Pa55" not in text
