"""``WS /api/v1/live``: live conversion over a WebSocket.

Protocol (one stream at a time per connection; see docs/live.md):

1. Connect (API key in a header or ``?api_key=``). Send ``{"type": "start", "profile_id": "prof_...",
   "sample_rate": 48000, ...}`` with any :class:`~autovoice.pipeline.live.LiveOptions` field
   (``engine``, ``pitch_shift`` or ``auto_key``, ``block_ms``, ``input_gain_db``, ``output_gain_db``,
   ``f0_method``, ``preset``...). ``block_ms`` is ``"auto"`` unless a number is given: the server
   measures its converter for about a second and picks the smallest block it converts in at most half
   its time (``live_too_slow`` when none). The server answers ``{"type": "started", "block_samples",
   "sample_rate", "format": "f32le", "latency": {...}, "block_choice": {...} | null}``
   (``block_choice``: the block chosen, its measured p99, the trials and the reason).
2. Send the microphone as **binary messages of float32 little-endian mono samples** at ``sample_rate``,
   of any length (whole samples). The server cuts them into blocks and sends back **one binary
   message of ``block_samples`` float32 LE samples per block**, in order: the converted block, or
   silence for a dropped one. The output lags the input by the constant ``latency``.
3. ``{"type": "set", "pitch_shift"?, "input_gain_db"?, "output_gain_db"?}`` changes those on the fly.
   ``{"type": "stats"}`` asks for the counters now; they also come every second as ``{"type": "stats",
   "stats": {...}}`` (blocks, converted, dropped, processing time p50/p99 per block, latency).
4. ``{"type": "stop"}`` ends the stream (``{"type": "stopped", "stats"}``); ``start`` may follow.

Errors come as ``{"type": "error", "error": {"code", "message", "details"}}``; the ones that end the
connection (authentication, limits) close it with code 1008. A connection counts against the
general rate limit once; ``live_sessions_per_key`` streams may be open at once per key (or client
address) and ``live_max_sessions`` per server (``live_busy``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from autovoice.errors import AutoVoiceError, ConflictError, ParameterError
from autovoice.service.auth import token_from_headers

if TYPE_CHECKING:
    from autovoice.pipeline.live import LiveSession
    from autovoice.service.state import ServiceState

log = logging.getLogger("autovoice.service")
router = APIRouter(prefix="/api/v1", tags=["live"])
#: Seconds between the stats messages sent while streaming.
STATS_INTERVAL_S = 1.0
#: Largest binary message accepted, in samples (1 s at 48 kHz).
MAX_MESSAGE_SAMPLES = 48_000


@dataclass
class _Slots:
    """Open live streams, per identity and in all (kept on the app's state)."""

    per_identity: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.per_identity.values())


def _slots(websocket: WebSocket) -> _Slots:
    app_state = websocket.app.state
    slots: _Slots | None = getattr(app_state, "live_slots", None)
    if slots is None:
        slots = _Slots()
        app_state.live_slots = slots
    return slots


@router.websocket("/live")
async def live(websocket: WebSocket) -> None:
    """Live conversion: binary float32 LE mono PCM both ways, JSON control and stats (module docs)."""
    state: ServiceState = websocket.app.state.service
    await websocket.accept()
    slots = _slots(websocket)
    identity: str | None = None
    try:
        key_id = await run_in_threadpool(
            state.auth.authenticate, token_from_headers(websocket.headers, websocket.query_params)
        )
        identity = f"key:{key_id}" if key_id else f"ip:{websocket.client.host if websocket.client else '?'}"
        state.limits.check(identity)
        s = state.settings
        if slots.per_identity.get(identity, 0) >= s.live_sessions_per_key:
            identity_ = identity
            identity = None  # not ours to release
            raise ConflictError(
                "live_session_open",
                f"This key already has {s.live_sessions_per_key} live stream(s) open; stop one first.",
                {"limit": s.live_sessions_per_key, "identity": identity_.split(":", 1)[0]},
            )
        if slots.total >= s.live_max_sessions:
            identity = None
            raise ConflictError(
                "live_busy",
                f"The server already runs {s.live_max_sessions} live stream(s); try again later.",
                {"limit": s.live_max_sessions},
            )
        slots.per_identity[identity] = slots.per_identity.get(identity, 0) + 1
        await _Connection(websocket, state).run()
    except AutoVoiceError as exc:
        with contextlib.suppress(Exception):
            await websocket.send_json({"type": "error", "error": exc.to_dict()})
            await websocket.close(code=1008)
    except WebSocketDisconnect:
        pass
    finally:
        if identity is not None and identity in slots.per_identity:
            slots.per_identity[identity] -= 1
            if slots.per_identity[identity] <= 0:
                del slots.per_identity[identity]


class _Connection:
    """One WebSocket: control messages in the receive loop, conversion in a worker task."""

    def __init__(self, websocket: WebSocket, state: ServiceState) -> None:
        self.ws = websocket
        self.state = state
        self.session: LiveSession | None = None
        self.pending: deque[tuple[np.ndarray, float]] = deque()
        self.buffer = np.zeros(0, dtype=np.float32)
        self.wake = asyncio.Event()
        self.worker: asyncio.Task[None] | None = None
        self.send_lock = asyncio.Lock()
        self.last_stats = 0.0

    async def run(self) -> None:
        try:
            while True:
                msg = await self.ws.receive()
                if msg["type"] == "websocket.disconnect":
                    return
                if msg.get("bytes") is not None:
                    self._audio(msg["bytes"])
                elif msg.get("text") is not None:
                    await self._control(msg["text"])
        finally:
            await self._stop_worker()

    # control ------------------------------------------------------------------------------------
    async def _control(self, text: str) -> None:
        import json

        try:
            doc = json.loads(text)
            if not isinstance(doc, dict):
                raise ValueError("not an object")
        except ValueError:
            await self._error(
                ParameterError("invalid_message", "Control messages are JSON objects with a 'type'.")
            )
            return
        kind = doc.pop("type", None)
        try:
            if kind == "start":
                await self._start(doc)
            elif kind == "set":
                session = self._need_session()
                await run_in_threadpool(
                    session.converter.configure,
                    **_pick(doc, "pitch_shift", "input_gain_db", "output_gain_db"),
                )
                await self._send_json(
                    {"type": "set", "options": session.converter.options.model_dump(mode="json")}
                )
            elif kind == "stats":
                await self._send_stats()
            elif kind == "stop":
                session = self._need_session()
                await self._stop_worker()
                self.session = None
                await self._send_json({"type": "stopped", "stats": session.converter.stats().to_dict()})
            else:
                raise ParameterError(
                    "invalid_message",
                    f"Unknown control message type {str(kind)[:40]!r}; use start, set, stats or stop.",
                    {"type": str(kind)[:40]},
                )
        except AutoVoiceError as exc:
            await self._error(exc)

    async def _start(self, doc: dict[str, Any]) -> None:
        from autovoice.pipeline.live import (
            LiveConverter,
            LiveOptions,
            LiveSession,
            check_sample_rate,
            warm_converter,
        )

        if self.session is not None:
            raise ParameterError(
                "live_already_started", "This connection is already streaming; send stop first."
            )
        profile_id = doc.pop("profile_id", None)
        if not isinstance(profile_id, str) or not profile_id:
            raise ParameterError("invalid_parameter", "start needs a profile_id.", {"field": "profile_id"})
        sr = check_sample_rate(doc.pop("sample_rate", 48_000))
        options = LiveOptions.parse(doc)
        state = self.state

        def build() -> LiveConverter:
            profile = state.profiles.load(profile_id)
            return warm_converter(
                profile, sr=sr, options=options, device=state.device, settings=state.settings
            )

        converter = await run_in_threadpool(build)
        self.session = LiveSession(converter)
        self.buffer = np.zeros(0, dtype=np.float32)
        self.pending.clear()
        self.last_stats = time.monotonic()
        self.worker = asyncio.create_task(self._work(self.session))
        await self._send_json(
            {
                "type": "started",
                "sample_rate": sr,
                "block_samples": converter.block_size,
                "format": "f32le",
                "channels": 1,
                "latency": converter.latency.to_dict(),
                "block_choice": None if converter.block_choice is None else converter.block_choice.to_dict(),
                "options": converter.options.model_dump(mode="json"),
            }
        )

    def _need_session(self) -> LiveSession:
        if self.session is None:
            raise ParameterError("live_not_started", "Send a start message first.")
        return self.session

    # audio --------------------------------------------------------------------------------------
    def _audio(self, data: bytes) -> None:
        now = time.perf_counter()
        if self.session is None:
            return  # audio before start (or after stop) is ignored
        if len(data) % 4 or len(data) // 4 > MAX_MESSAGE_SAMPLES:
            raise_later = ParameterError(
                "invalid_block",
                f"Audio messages are float32 little-endian mono samples (a multiple of 4 bytes, at most "
                f"{MAX_MESSAGE_SAMPLES} samples), got {len(data)} bytes.",
                {"bytes": len(data)},
            )
            asyncio.get_running_loop().create_task(self._error(raise_later))
            return
        x = np.frombuffer(data, dtype="<f4").astype(np.float32)
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        self.buffer = np.concatenate([self.buffer, x])
        block = self.session.converter.block_size
        while len(self.buffer) >= block:
            self.pending.append((self.buffer[:block].copy(), now))
            self.buffer = self.buffer[block:]
        self.wake.set()

    async def _work(self, session: LiveSession) -> None:
        try:
            await self._convert(session)
        except asyncio.CancelledError:
            raise
        except AutoVoiceError as exc:
            await self._error(exc)
        except Exception as exc:  # a bug: report it on the socket and in the log, keep the connection
            log.exception("live stream failed")
            from autovoice.errors import InternalError

            await self._error(
                InternalError("internal_error", f"The live stream failed: {type(exc).__name__}.")
            )

    async def _convert(self, session: LiveSession) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.pending:
                block, arrival = self.pending.popleft()
                out = await asyncio.to_thread(session.handle, block, arrival=arrival)
                await self._send_bytes(np.asarray(out, dtype="<f4").tobytes())
                if time.monotonic() - self.last_stats >= STATS_INTERVAL_S:
                    await self._send_stats()

    async def _stop_worker(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.worker
            self.worker = None

    # sending ------------------------------------------------------------------------------------
    async def _send_stats(self) -> None:
        session = self._need_session()
        self.last_stats = time.monotonic()
        await self._send_json({"type": "stats", "stats": session.converter.stats().to_dict()})

    async def _send_json(self, doc: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.ws.send_json(doc)

    async def _send_bytes(self, data: bytes) -> None:
        async with self.send_lock:
            await self.ws.send_bytes(data)

    async def _error(self, exc: AutoVoiceError) -> None:
        with contextlib.suppress(Exception):
            await self._send_json({"type": "error", "error": exc.to_dict()})


def _pick(doc: dict[str, Any], *names: str) -> dict[str, Any]:
    unknown = sorted(set(doc) - set(names))
    if unknown:
        raise ParameterError(
            "invalid_parameter",
            f"set changes only {', '.join(names)}; got '{unknown[0][:40]}'.",
            {"field": unknown[0][:40]},
        )
    return {k: doc[k] for k in names if k in doc}
