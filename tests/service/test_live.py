"""``WS /api/v1/live``: PCM round trip through the real app, control messages, keys and session limits."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autovoice.config import Settings
from autovoice.service.auth import create_api_key
from autovoice.storage import Database
from tests.service.conftest import running_app

SR = 16_000


def _speech(speech_dir: Path, seconds: float) -> np.ndarray:
    from autovoice.audio import load, resample

    y, sr = load(sorted((speech_dir / "1688").glob("*.flac"))[0], mono=True)
    return np.asarray(resample(y, orig_sr=sr, target_sr=SR)[: int(seconds * SR)], dtype=np.float32)


def _next(ws: Any) -> dict[str, Any] | bytes:
    msg = ws.receive()
    if msg.get("bytes") is not None:
        return bytes(msg["bytes"])
    import json

    doc: dict[str, Any] = json.loads(msg["text"])
    return doc


def _next_json(ws: Any, kind: str) -> dict[str, Any]:
    """The next JSON message of type ``kind`` (audio and periodic stats in between are skipped)."""
    while True:
        m = _next(ws)
        if isinstance(m, dict) and m["type"] in (kind, "error"):
            return m


def test_pcm_round_trip_keeps_one_block_out_per_block_in(
    speech_dir: Path, client: Any, profile_id: str
) -> None:
    """1.2 s of speech sent in real time as messages of odd sizes: one float32 block comes back for
    every block sent, the counters add up, and converted blocks carry sound."""
    y = _speech(speech_dir, 1.2)
    with client.websocket_connect("/api/v1/live") as ws:
        ws.send_json(
            {
                "type": "start",
                "profile_id": profile_id,
                "sample_rate": SR,
                "block_ms": 200,
                "f0_method": "dio",
            }
        )
        started = _next_json(ws, "started")
        assert started["type"] == "started", started
        block = started["block_samples"]
        assert block == 3200
        assert started["format"] == "f32le"
        assert started["latency"]["total_ms"] == pytest.approx(200 + 40 + 10 + 4)
        t0 = time.perf_counter()
        for i, start in enumerate(range(0, len(y), 1111)):  # not a divisor of the block
            chunk = y[start : start + 1111]
            time.sleep(max(0.0, t0 + start / SR - time.perf_counter()))  # as a microphone would
            ws.send_bytes(chunk.astype("<f4").tobytes())
            if i == 0:
                ws.send_json({"type": "set", "output_gain_db": -6})
        n_blocks = len(y) // block
        outs: list[np.ndarray] = []
        while len(outs) < n_blocks:
            m = _next(ws)
            if isinstance(m, bytes):
                assert len(m) == 4 * block
                outs.append(np.frombuffer(m, dtype="<f4"))
            else:
                assert m["type"] in ("stats", "set"), m
        ws.send_json({"type": "stop"})
        stopped = _next_json(ws, "stopped")
    stats = stopped["stats"]
    assert stats["blocks"] == n_blocks
    assert stats["converted"] + stats["dropped"] == n_blocks
    assert stats["converted"] >= 1
    out = np.concatenate(outs)
    assert np.all(np.isfinite(out))
    assert np.abs(out).max() <= 1.0
    audible = sum(1 for o in outs if np.sqrt(np.mean(o**2)) > 1e-3)
    assert audible >= stats["converted"] - 1  # the first block holds mostly the latency's silence


def test_control_errors_keep_the_connection(client: Any, profile_id: str) -> None:
    with client.websocket_connect("/api/v1/live") as ws:
        ws.send_json({"type": "set", "pitch_shift": 2})
        assert _next_json(ws, "error")["error"]["code"] == "live_not_started"
        ws.send_json({"type": "start", "profile_id": "prof_000000000000", "sample_rate": SR})
        assert _next_json(ws, "error")["error"]["code"] == "profile_not_found"
        ws.send_json({"type": "start", "profile_id": profile_id, "sample_rate": 22_050})
        assert _next_json(ws, "error")["error"]["code"] == "invalid_sample_rate"
        ws.send_json({"type": "start", "profile_id": profile_id, "block_ms": 45})
        assert _next_json(ws, "error")["error"]["code"] == "invalid_parameter"
        ws.send_text("not json")
        assert _next_json(ws, "error")["error"]["code"] == "invalid_message"
        ws.send_json({"type": "dance"})
        assert _next_json(ws, "error")["error"]["code"] == "invalid_message"
        ws.send_json({"type": "start", "profile_id": profile_id, "sample_rate": SR, "f0_method": "dio"})
        assert _next_json(ws, "started")["sample_rate"] == SR
        ws.send_json({"type": "start", "profile_id": profile_id})
        assert _next_json(ws, "error")["error"]["code"] == "live_already_started"
        ws.send_bytes(b"\x00" * 7)
        assert _next_json(ws, "error")["error"]["code"] == "invalid_block"
        ws.send_json({"type": "set", "pitch_shift": 40})
        assert _next_json(ws, "error")["error"]["code"] == "invalid_pitch_shift"
        ws.send_json({"type": "set", "pitch_shift": 3, "colour": 1})
        assert _next_json(ws, "error")["error"]["code"] == "invalid_parameter"
        ws.send_json({"type": "set", "pitch_shift": 3})
        assert _next_json(ws, "set")["options"]["pitch_shift"] == 3
        ws.send_json({"type": "stats"})
        assert _next_json(ws, "stats")["stats"]["pitch_shift"] == 3


def test_one_live_stream_per_key(client: Any, profile_id: str) -> None:
    with client.websocket_connect("/api/v1/live") as first:
        first.send_json({"type": "stats"})  # the first connection holds its slot
        assert _next_json(first, "error")["error"]["code"] == "live_not_started"
        with client.websocket_connect("/api/v1/live") as second:
            err = _next_json(second, "error")
            assert err["error"]["code"] == "live_session_open"
    with client.websocket_connect("/api/v1/live") as again:  # released when the first closed
        again.send_json({"type": "stats"})
        assert _next_json(again, "error")["error"]["code"] == "live_not_started"


def test_keys_and_configured_limits(configure: Callable[..., Settings], profile_id: str) -> None:
    settings = configure(require_api_key="true", live_sessions_per_key=2)
    db = Database(settings)
    db.migrate()
    _, token = create_api_key(db, "studio")
    with running_app() as client:
        with client.websocket_connect("/api/v1/live") as ws:
            assert _next_json(ws, "error")["error"]["code"] == "api_key_required"
        with (
            client.websocket_connect(f"/api/v1/live?api_key={token}") as a,
            client.websocket_connect("/api/v1/live", headers={"X-API-Key": token}) as b,
        ):
            for ws in (a, b):  # two streams for this key are allowed now
                ws.send_json({"type": "stats"})
                assert _next_json(ws, "error")["error"]["code"] == "live_not_started"
            with client.websocket_connect(f"/api/v1/live?api_key={token}") as c:
                assert _next_json(c, "error")["error"]["code"] in ("live_session_open", "live_busy")


def test_the_block_is_chosen_by_measuring_unless_given(client: Any, profile_id: str) -> None:
    """No block_ms (or "auto"): the server measures, says which block and why, and streams at it."""
    with client.websocket_connect("/api/v1/live") as ws:
        ws.send_json({"type": "start", "profile_id": profile_id, "sample_rate": SR, "f0_method": "dio"})
        started = _next_json(ws, "started")
        if started["type"] == "error":  # an overloaded test machine may honestly be too slow
            assert started["error"]["code"] == "live_too_slow"
            return
        choice = started["block_choice"]
        assert choice["block_ms"] == started["options"]["block_ms"] == started["latency"]["block_ms"]
        assert started["block_samples"] == choice["block_ms"] * SR // 1000
        assert choice["p99_ms"] <= 0.5 * choice["block_ms"]
        assert choice["trials"][-1]["ok"]
        assert choice["reason"].startswith(f"{choice['block_ms']} ms blocks")
        ws.send_json({"type": "stop"})
        assert _next_json(ws, "stopped")["type"] == "stopped"
        ws.send_json({"type": "start", "profile_id": profile_id, "sample_rate": SR, "block_ms": 60})
        started = _next_json(ws, "started")
        assert started["block_choice"] is None
        assert started["block_samples"] == 60 * SR // 1000


def test_too_slow_for_every_block_is_an_error_before_streaming(
    client: Any, profile_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A budget no block can meet (0.01 % of the block): live_too_slow with the trials, no stream; the
    connection stays open for another start."""
    from autovoice.pipeline.live import calibrate

    monkeypatch.setattr(calibrate, "AUTO_MAX_SHARE", 0.0001)
    with client.websocket_connect("/api/v1/live") as ws:
        ws.send_json({"type": "start", "profile_id": profile_id, "sample_rate": SR, "f0_method": "dio"})
        err = _next_json(ws, "started")
        assert err["type"] == "error"
        assert err["error"]["code"] == "live_too_slow"
        assert err["error"]["details"]["trials"][-1]["block_ms"] == calibrate.AUTO_BLOCKS_MS[-1]
        ws.send_json({"type": "stats"})
        assert _next_json(ws, "error")["error"]["code"] == "live_not_started"
        monkeypatch.setattr(calibrate, "AUTO_MAX_SHARE", 0.5)
        ws.send_json({"type": "start", "profile_id": profile_id, "sample_rate": SR, "block_ms": 100})
        assert _next_json(ws, "started")["block_samples"] == 1600
