"""The live converter: fixed blocks in, as many samples out, at a constant latency (see
:mod:`autovoice.pipeline.live`)."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from autovoice.analysis.f0 import F0_METHODS, FRAME_HOP_S
from autovoice.engines.base import EngineStream, Preset, StreamingEngine
from autovoice.errors import ParameterError
from autovoice.pipeline.live.options import (
    AUTO_KEY_FRAMES,
    F0_CONTEXT_S,
    SILENCE_DB,
    TIMING_HISTORY,
    LiveOptions,
    check_sample_rate,
)
from autovoice.pipeline.live.pitch import LiveTracker

if TYPE_CHECKING:
    from autovoice.config import Settings
    from autovoice.engines.base import Engine
    from autovoice.pipeline.live.options import BlockChoice
    from autovoice.profiles.profile import VoiceProfile


def open_engine_stream(
    engine: Engine, profile: VoiceProfile, *, sr: int, preset: Preset, options: Mapping[str, Any]
) -> EngineStream:
    """The stream of ``engine`` for ``profile`` at ``sr``; ``engine_cannot_stream`` if it has none."""
    if isinstance(engine, StreamingEngine):
        return engine.open_stream(profile, sr=sr, preset=preset, options=options)
    raise ParameterError(
        "engine_cannot_stream",
        f"The {engine.name} engine cannot convert live; use the world engine (or an engine that streams).",
        {"engine": engine.name, "streaming_engines": streaming_engines()},
    )


def streaming_engines() -> list[str]:
    """Names of the registered engines that can convert live."""
    from autovoice.engines import ENGINES

    out = []
    for choice in ENGINES:
        try:
            cls = choice.load()
        except Exception:  # nosec B112 # an engine whose optional dependencies are missing cannot stream here
            continue
        if issubclass(cls, StreamingEngine):
            out.append(choice.name)
    return out


# ----------------------------------------------------------------------------------------------
# the converter
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LiveLatency:
    """Where a live stream's constant latency comes from, in samples at ``sr``."""

    sr: int
    block: int
    lookahead: int
    crossfade: int
    sola_search: int

    @property
    def delay(self) -> int:
        """Samples by which the output stream lags the input stream (without the block)."""
        return self.lookahead + self.crossfade + self.sola_search

    @property
    def total_ms(self) -> float:
        """Algorithmic latency: block + lookahead + crossfade + SOLA search, ms."""
        return 1000.0 * (self.block + self.delay) / self.sr

    def to_dict(self) -> dict[str, Any]:
        ms = 1000.0 / self.sr
        return {
            "sample_rate": self.sr,
            "block_ms": round(self.block * ms, 3),
            "lookahead_ms": round(self.lookahead * ms, 3),
            "crossfade_ms": round(self.crossfade * ms, 3),
            "sola_search_ms": round(self.sola_search * ms, 3),
            "total_ms": round(self.total_ms, 3),
        }


@dataclass(frozen=True)
class LiveStats:
    """What a stream has done so far. Times are wall-clock milliseconds of the conversion alone."""

    blocks: int  # blocks received
    converted: int  # blocks whose conversion was played
    dropped: int  # blocks that played silence: skipped + late
    skipped: int  # picked up after their deadline: not converted
    late: int  # converted, but finished after their deadline: thrown away
    latency_ms: float  # algorithmic latency (constant)
    block_ms: float
    processing_ms_p50: float | None
    processing_ms_p99: float | None
    processing_ms_max: float | None
    pitch_shift: float | None  # semitones applied (None: auto key not decided yet)

    @property
    def p99_share(self) -> float | None:
        """p99 processing time as a share of the block (0..; 1 = a whole block's time)."""
        return None if self.processing_ms_p99 is None else self.processing_ms_p99 / self.block_ms

    def to_dict(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 3)

        return {
            "blocks": self.blocks,
            "converted": self.converted,
            "dropped": self.dropped,
            "skipped": self.skipped,
            "late": self.late,
            "latency_ms": r(self.latency_ms),
            "block_ms": r(self.block_ms),
            "processing_ms_p50": r(self.processing_ms_p50),
            "processing_ms_p99": r(self.processing_ms_p99),
            "processing_ms_max": r(self.processing_ms_max),
            "p99_share": r(self.p99_share),
            "pitch_shift": r(self.pitch_shift),
        }


class LiveConverter:
    """Converts a stream block by block; see the module docstring.

    Parameters
    ----------
    profile
        The target voice (with the engine's features, and its vocal range for the auto key).
    sr
        The stream's sample rate (one of :data:`LIVE_SAMPLE_RATES`).
    options
        The stream's choices (validated :class:`LiveOptions`).
    engine
        The engine instance (default: the process's shared one, :func:`autovoice.engines.load_engine`).
    stream
        An engine stream to use instead of opening one (tests use a deliberately slow one).
    device, settings
        For the engine and the F0 tracker.

    Raises
    ------
    ParameterError
        ``invalid_sample_rate``; ``engine_cannot_stream``; ``auto_key_needs_recordings`` (auto key with a
        profile that has no vocal range); ``profile_incompatible`` (no features for the engine).
    """

    def __init__(
        self,
        profile: VoiceProfile,
        *,
        sr: int,
        options: LiveOptions | None = None,
        engine: Engine | None = None,
        stream: EngineStream | None = None,
        device: str = "cpu",
        settings: Settings | None = None,
    ) -> None:
        self.options = opts = options or LiveOptions()
        if not isinstance(opts.block_ms, int):
            raise ParameterError(
                "invalid_parameter",
                "block_ms 'auto' is chosen by measuring the machine when a stream opens (warm_converter); "
                "a LiveConverter needs a number of ms.",
                {"field": "block_ms"},
            )
        self.sr = check_sample_rate(sr)
        self.device = device
        self.hop = int(round(FRAME_HOP_S * self.sr))
        if opts.auto_key and profile.vocal_range is None:
            raise ParameterError(
                "auto_key_needs_recordings",
                f"Auto key needs the vocal range of profile '{profile.name}', which has no recordings; "
                "give a pitch shift instead.",
                {"profile": profile.name},
            )
        self.profile = profile
        if stream is None:
            from autovoice.engines import load_engine

            engine = engine or load_engine(opts.engine, device=device, settings=settings)
            stream = open_engine_stream(
                engine, profile, sr=self.sr, preset=opts.preset, options=opts.engine_options
            )
        self.stream = stream
        if opts.f0_method != "dio":
            F0_METHODS.get(opts.f0_method)  # invalid_f0_method before any audio
        self.tracker = LiveTracker(opts.f0_method, sr=self.sr, device=device)
        hop = self.hop
        block = opts.block_ms * hop // 10
        look = max(opts.lookahead_ms * hop // 10, _ceil_to(stream.lookahead_s * self.sr, hop))
        fade = max(int(round(opts.crossfade_ms / 1000.0 * self.sr)), 1)
        search = int(round(opts.sola_search_ms / 1000.0 * self.sr))
        self.latency = LiveLatency(self.sr, block, look, fade, search)
        delay = self.latency.delay
        #: Past samples before the output span, so that the window starts on a frame.
        self._ctx = _ceil_to(delay + stream.context_s * self.sr, hop) - delay
        self._window = block + delay + self._ctx
        self._f0_window = max(
            _ceil_to(0.15 * self.sr, hop), _ceil_to(block + look + F0_CONTEXT_S * self.sr, hop)
        )
        keep = max(self._window, self._f0_window)
        # The history starts with `keep` samples of silence, so the first blocks need no special case.
        self._hist = np.zeros(keep, dtype=np.float32)
        self._end = keep  # global index one past the newest sample
        self._hist_start = 0  # global index of self._hist[0]
        self._f0_final: dict[int, float] = {}
        self._final_until = keep // hop  # global frames below this are final (silence before start)
        self._loudest_db = -200.0
        self._tail: np.ndarray | None = None
        self._prev_tail: np.ndarray | None = None
        self._fade_in = ((np.arange(fade) + 0.5) / fade).astype(np.float32)
        self._voiced_midi: list[float] = []
        self._shift: float | None = None if opts.auto_key else float(opts.pitch_shift or 0.0)
        self._shift_held = not opts.auto_key
        self._in_gain = float(10.0 ** (opts.input_gain_db / 20.0))
        self._out_gain = float(10.0 ** (opts.output_gain_db / 20.0))
        #: How ``block_ms="auto"`` chose the block (set by ``warm_converter``); None for a fixed block.
        self.block_choice: BlockChoice | None = None
        self._times: deque[float] = deque(maxlen=TIMING_HISTORY)
        self._counts = {"blocks": 0, "converted": 0, "skipped": 0, "late": 0}

    @property
    def block_size(self) -> int:
        """Samples per block, in and out."""
        return self.latency.block

    # ------------------------------------------------------------------------------------------
    def process(self, block: np.ndarray) -> np.ndarray:
        """Convert one block: ``(block_size,)`` float32 in, ``(block_size,)`` float32 out (in [-1, 1])."""
        t0 = time.perf_counter()
        x = self._feed(block)
        e, hop, lat = self._end, self.hop, self.latency
        track = self._track_f0()
        w0 = e - self._window
        first = w0 // hop
        n = self._window // hop
        src = np.array([self._f0_at(first + j, track) for j in range(n)], dtype=np.float64)
        tgt = self._plan(src)
        final = min(max(self._final_until - first, 0), n)
        conv = self.stream.convert_window(
            x[-self._window :],
            source_f0=src,
            target_f0=tgt,
            first_frame=first,
            final_frames=final,
            advance=lat.block,
        )
        new = np.asarray(conv, dtype=np.float32)[self._ctx :]  # starts at the output span, B + C + S long
        out = self._join(new)
        self._times.append(time.perf_counter() - t0)
        self._counts["converted"] += 1
        return np.clip(out * self._out_gain, -1.0, 1.0)

    def skip(self, block: np.ndarray) -> np.ndarray:
        """Take a block without converting it (it was late): its slot plays the previous tail fading out."""
        self._feed(block)
        self._counts["skipped"] += 1
        return self._silence(self._tail)

    def drop_last(self) -> np.ndarray:
        """Throw away the block :meth:`process` just returned (it finished late): silence in its slot."""
        self._counts["converted"] -= 1
        self._counts["late"] += 1
        return self._silence(self._prev_tail)

    def configure(
        self,
        *,
        pitch_shift: float | None = None,
        input_gain_db: float | None = None,
        output_gain_db: float | None = None,
    ) -> None:
        """Change the pitch shift (which ends the auto key) or the gains while streaming; the values are
        validated as :class:`LiveOptions` fields."""
        changes = {
            k: v
            for k, v in {
                "pitch_shift": pitch_shift,
                "input_gain_db": input_gain_db,
                "output_gain_db": output_gain_db,
            }.items()
            if v is not None
        }
        if not changes:
            return
        base = self.options.model_dump()
        if "pitch_shift" in changes:
            base["auto_key"] = False
        opts = LiveOptions.parse({**base, **changes})
        self.options = opts
        if "pitch_shift" in changes:
            self._shift, self._shift_held = float(opts.pitch_shift or 0.0), True
        self._in_gain = float(10.0 ** (opts.input_gain_db / 20.0))
        self._out_gain = float(10.0 ** (opts.output_gain_db / 20.0))

    def stats(self) -> LiveStats:
        """The stream's counters and processing-time percentiles so far."""
        t = np.asarray(self._times) * 1000.0
        c = self._counts
        return LiveStats(
            blocks=c["blocks"],
            converted=c["converted"],
            dropped=c["skipped"] + c["late"],
            skipped=c["skipped"],
            late=c["late"],
            latency_ms=self.latency.total_ms,
            block_ms=1000.0 * self.latency.block / self.sr,
            processing_ms_p50=float(np.percentile(t, 50)) if len(t) else None,
            processing_ms_p99=float(np.percentile(t, 99)) if len(t) else None,
            processing_ms_max=float(t.max()) if len(t) else None,
            pitch_shift=self._shift,
        )

    # ------------------------------------------------------------------------------------------
    def _feed(self, block: np.ndarray) -> np.ndarray:
        b = np.asarray(block, dtype=np.float32).reshape(-1)
        if b.shape != (self.latency.block,):
            raise ParameterError(
                "invalid_block",
                f"A live block holds {self.latency.block} samples (mono float32), got {b.size}.",
                {"samples": int(b.size), "expected": self.latency.block},
            )
        if not np.all(np.isfinite(b)):
            raise ParameterError("invalid_block", "A live block contains NaN or infinite samples.")
        self._counts["blocks"] += 1
        keep = max(self._window, self._f0_window)
        self._hist = np.concatenate([self._hist[-(keep - len(b)) :], b * self._in_gain])
        self._end += len(b)
        self._hist_start = self._end - len(self._hist)
        return self._hist

    def _track_f0(self) -> tuple[int, np.ndarray]:
        """F0 of the last :attr:`_f0_window` samples; finalises the frames now past the lookahead.

        Returns the window's first global frame and its (gated) F0.
        """
        hop, e = self.hop, self._end
        seg = self._hist[-self._f0_window :]
        first = (e - self._f0_window) // hop
        n = len(seg) // hop
        f0 = self.tracker(seg, n_frames=n)
        frames = seg[: n * hop].reshape(n, hop)
        level = 10.0 * np.log10(np.maximum(np.mean(frames.astype(np.float64) ** 2, axis=1), 1e-20))
        self._loudest_db = max(self._loudest_db, float(level.max()))
        f0[level < self._loudest_db - SILENCE_DB] = 0.0
        last_final = (e - self.latency.lookahead) // hop  # frames centred at or before e - lookahead
        for g in range(self._final_until, last_final + 1):
            j = g - first
            self._f0_final[g] = float(f0[j]) if 0 <= j < n else 0.0
            if self._f0_final[g] > 0:
                self._voiced_midi.append(12.0 * math.log2(self._f0_final[g] / 440.0) + 69.0)
        self._final_until = max(self._final_until, last_final + 1)
        for g in [g for g in self._f0_final if g < self._final_until - 4 * self._window // hop]:
            del self._f0_final[g]
        if len(self._voiced_midi) > 4 * AUTO_KEY_FRAMES:
            del self._voiced_midi[:-AUTO_KEY_FRAMES]
        return first, f0

    def _f0_at(self, g: int, track: tuple[int, np.ndarray]) -> float:
        if g < self._final_until:
            return self._f0_final.get(g, 0.0)
        first, f0 = track
        j = g - first
        return float(f0[j]) if 0 <= j < len(f0) else 0.0

    def _plan(self, src: np.ndarray) -> np.ndarray:
        if not self._shift_held:
            assert self.profile.vocal_range is not None
            heard = self._voiced_midi[:AUTO_KEY_FRAMES]
            if heard:
                self._shift = float(
                    np.clip(self.profile.vocal_range.median_midi - np.median(heard), -24.0, 24.0)
                )
            if len(self._voiced_midi) >= AUTO_KEY_FRAMES:
                self._shift_held = True
        shift = self._shift or 0.0
        return np.where(src > 0, src * 2.0 ** (shift / 12.0), 0.0)

    def _join(self, new: np.ndarray) -> np.ndarray:
        """SOLA: the output block from the new span and the previous tail; keeps the new tail."""
        lat = self.latency
        b, c, s = lat.block, lat.crossfade, lat.sola_search
        self._prev_tail = self._tail
        offset = 0
        if self._tail is not None and s > 0:
            offset = _best_offset(new[: c + s], self._tail)
        out = new[offset : offset + b].copy()
        if self._tail is not None:
            out[:c] = out[:c] * self._fade_in + self._tail * self._fade_in[::-1]
        else:
            out[:c] *= self._fade_in
        self._tail = new[offset + b : offset + b + c].copy()
        return out

    def _silence(self, tail: np.ndarray | None) -> np.ndarray:
        out = np.zeros(self.latency.block, dtype=np.float32)
        if tail is not None:
            c = len(tail)
            out[:c] = tail * self._fade_in[::-1] * self._out_gain
        self._tail = None
        return np.clip(out, -1.0, 1.0)


def _ceil_to(value: float, step: int) -> int:
    return int(math.ceil(value / step - 1e-9)) * step


def _best_offset(head: np.ndarray, tail: np.ndarray) -> int:
    """Offset (0..len(head) - len(tail)) where ``head`` best continues ``tail`` (normalised correlation)."""
    c = len(tail)
    num = np.correlate(head.astype(np.float64), tail.astype(np.float64), mode="valid")
    energy = np.convolve(head.astype(np.float64) ** 2, np.ones(c), mode="valid")
    return int(np.argmax(num / np.sqrt(energy + 1e-9)))
