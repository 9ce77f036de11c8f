"""Live conversion: fixed blocks in, as many samples out, at a latency that never grows.

A :class:`LiveConverter` takes blocks of ``block`` samples (a microphone callback, WebSocket frames, or a
file cut into blocks) and returns one converted block for each. Every block:

1. **Pitch.** The F0 tracker (FCPE by default) runs over the block, the lookahead and 100 ms before. Frames at
   least ``lookahead`` before the newest sample are *final*: they are stored and never re-estimated,
   so the pitch marks of consecutive blocks agree. Frames in the lookahead are provisional.
2. **Pitch plan.** The target F0 is the source's moved by a manual shift, or by the auto key: the
   distance from the source's median pitch to the profile's, chosen once :data:`AUTO_KEY_FRAMES`
   voiced frames have been heard and then held (until then it follows the median heard so far).
3. **Engine.** The engine's stream (:class:`EngineStream`) converts a window made of ``context``
   past samples, the span to output and the lookahead; it carries its own state (the world engine's
   running source statistics, formant warp and PSOLA phase) from block to block.
4. **Join.** SOLA: the new span's start is searched within ``sola_search`` samples for the offset
   that best continues the previous block's tail, and the two are crossfaded over ``crossfade``
   samples (equal-gain linear fades).

The output is therefore the conversion of the input delayed by exactly ``lookahead + crossfade +
sola_search`` samples; with the block that has to be collected first, the algorithmic latency is
``block + lookahead + crossfade + sola_search`` (:attr:`LiveConverter.latency`), whatever happens.

**Late blocks are dropped, never queued.** :class:`LiveSession` gives each block a deadline, its
arrival plus one block: when the worker picks up a block already past its deadline, the block is
skipped (its input still feeds the history); when its conversion finishes after the deadline, its
output is thrown away. Either way the slot plays silence (the previous tail fades out, the next
block fades in) and the drop is counted in :class:`LiveStats`. A slow machine loses blocks; it
never accumulates delay.

Engines opt in to streaming: the ``world`` engine streams through :class:`WorldStream` (here, on top
of the engine's own analysis, mapping, PSOLA and filter functions); any other engine whose class sets
``streams = True`` and has ``open_stream(profile, *, sr, preset, options) -> EngineStream`` streams
too. Others get ``engine_cannot_stream``.

Differences from the offline conversion of the same file: the source statistics and the formant warp
are learned as the voice is heard (a prior equal to the target's own statistics, i.e. no timbre change,
weighted as :data:`PRIOR_FRAMES` frames, fades out); the auto key uses the speech rule (exact shift,
no whole-phrase octave moves); the frame period is 10 ms whatever the preset.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from autovoice.analysis.f0 import F0_METHODS, FRAME_HOP_S
from autovoice.engines.base import Preset
from autovoice.errors import ParameterError

if TYPE_CHECKING:
    from autovoice.config import Settings
    from autovoice.engines.base import Engine
    from autovoice.profiles.profile import VoiceProfile

#: Pitch trackers a live stream can run: ``dio`` (WORLD's DIO refined by StoneMask: ~1 ms a block, no
#: model) and the F0 methods of :data:`autovoice.analysis.f0.F0_METHODS`.
LiveF0Method = Literal["dio", "fcpe", "world", "crepe", "crepe-tiny"]
LIVE_F0_METHODS: tuple[str, ...] = get_args(LiveF0Method)
#: Sample rates a live stream may run at (10 ms must be a whole number of samples).
LIVE_SAMPLE_RATES: tuple[int, ...] = (16_000, 24_000, 32_000, 44_100, 48_000)
#: Audio (s) the F0 tracker sees before a block's newly final frames (its cost grows with the window).
F0_CONTEXT_S = 0.1
#: Voiced frames heard before the auto key's shift is fixed.
AUTO_KEY_FRAMES = 100
#: Frames quieter than the loudest frame heard so far by this many dB are unvoiced.
SILENCE_DB = 50.0
#: Processing times (per converted block) kept for the percentiles in :class:`LiveStats`.
TIMING_HISTORY = 20_000


class LiveOptions(BaseModel):
    """A live stream's choices. Every field has a default; :meth:`parse` validates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: str = Field(default="world", description="Conversion engine; it must be able to stream.")
    preset: Preset = Field(default="balanced", description="The engine's preset: fast, balanced or quality.")
    f0_method: LiveF0Method = Field(
        default="fcpe", description="Pitch tracker run on every block: dio, or one of the F0 methods."
    )
    pitch_shift: float | None = Field(
        default=None, ge=-24.0, le=24.0, allow_inf_nan=False, description="Semitones (-24..24)."
    )
    auto_key: bool = Field(default=False, description="Move the voice's median pitch onto the profile's.")
    block_ms: int = Field(default=40, ge=20, le=500, description="Block length, ms (a multiple of 10).")
    lookahead_ms: int = Field(
        default=40, ge=20, le=200, description="Audio after a block the tracker and engine wait for, ms."
    )
    crossfade_ms: float = Field(default=10.0, ge=2.0, le=50.0, description="Crossfade at block joins, ms.")
    sola_search_ms: float = Field(
        default=4.0, ge=0.0, le=20.0, description="How far SOLA searches for the best join, ms."
    )
    input_gain_db: float = Field(default=0.0, ge=-40.0, le=24.0, description="Gain before conversion, dB.")
    output_gain_db: float = Field(default=0.0, ge=-40.0, le=24.0, description="Gain after conversion, dB.")
    engine_options: dict[str, Any] = Field(default_factory=dict, description="The engine's own options.")

    @field_validator("block_ms", "lookahead_ms")
    @classmethod
    def _whole_frames(cls, value: int) -> int:
        if value % 10:
            raise ValueError(f"must be a multiple of 10 ms (the frame period), got {value}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> LiveOptions:
        if self.pitch_shift is not None and self.auto_key:
            raise ValueError("give either pitch_shift or auto_key, not both")
        return self

    @classmethod
    def parse(cls, data: Mapping[str, Any] | None = None, /, **fields: Any) -> LiveOptions:
        """Validated options from a mapping and/or keyword fields (``None`` values mean the default).

        Raises
        ------
        ParameterError
            ``unknown_engine``, ``invalid_preset``, ``invalid_f0_method`` (listing the valid names),
            ``invalid_pitch_shift``, ``invalid_engine_options``, ``invalid_parameter`` (naming the field).
        """
        from autovoice.pipeline.options import parse_options

        return parse_options(cls, data, fields)


def check_sample_rate(sr: int) -> int:
    """``sr`` if a live stream can run at it, else ``invalid_sample_rate`` listing the valid rates."""
    if isinstance(sr, bool) or not isinstance(sr, int | np.integer) or int(sr) not in LIVE_SAMPLE_RATES:
        raise ParameterError(
            "invalid_sample_rate",
            f"A live stream runs at one of {', '.join(map(str, LIVE_SAMPLE_RATES))} Hz, got {sr}.",
            {"sample_rate": str(sr)[:20], "valid": list(LIVE_SAMPLE_RATES)},
        )
    return int(sr)


# ----------------------------------------------------------------------------------------------
# the engine side of a stream
# ----------------------------------------------------------------------------------------------
class EngineStream(Protocol):
    """One live stream's conversion state for an engine.

    The converter hands it consecutive, overlapping windows of the input. A window's frame ``j`` is
    centred at sample ``j * hop`` of the window (``hop`` = 10 ms); the window's first frame is global
    frame ``first_frame``. Frames before ``final_frames`` will never change (their F0 is final); the
    rest lie in the lookahead. The next window will start ``advance`` samples later, where the
    stream may pick up state it carried (such as a pitch-mark phase).
    """

    #: Past audio (s) the stream needs before the span it converts.
    context_s: float
    #: Future audio (s) it needs after the span.
    lookahead_s: float

    def convert_window(
        self,
        x: np.ndarray,
        *,
        source_f0: np.ndarray,
        target_f0: np.ndarray,
        first_frame: int,
        final_frames: int,
        advance: int,
    ) -> np.ndarray:
        """The converted window: ``(len(x),)`` float32 at the stream's rate."""
        ...


def open_engine_stream(
    engine: Engine, profile: VoiceProfile, *, sr: int, preset: Preset, options: Mapping[str, Any]
) -> EngineStream:
    """The stream of ``engine`` for ``profile`` at ``sr``; ``engine_cannot_stream`` if it has none."""
    if getattr(engine, "name", None) == "world":
        from autovoice.engines.world import WorldEngine

        if isinstance(engine, WorldEngine):
            return WorldStream(profile, sr=sr, preset=preset, options=options)
    if getattr(type(engine), "streams", False) and hasattr(engine, "open_stream"):
        stream: EngineStream = engine.open_stream(profile, sr=sr, preset=preset, options=options)
        return stream
    name = getattr(engine, "name", "?")
    raise ParameterError(
        "engine_cannot_stream",
        f"The {name} engine cannot convert live; use the world engine (or an engine that streams).",
        {"engine": name, "streaming_engines": streaming_engines()},
    )


def streaming_engines() -> list[str]:
    """Names of the registered engines that can convert live."""
    from autovoice.engines import ENGINES

    out = []
    for choice in ENGINES:
        if choice.name == "world":
            out.append(choice.name)
            continue
        try:
            cls = choice.load()
        except Exception:  # nosec B112 # an engine whose optional dependencies are missing cannot stream here
            continue
        if getattr(cls, "streams", False):
            out.append(choice.name)
    return out


#: Frames the world stream's prior (the target's own statistics: no timbre change) counts as.
PRIOR_FRAMES = 100
#: Most recent frames whose envelopes make the world stream's source statistics (30 s).
STATS_FRAMES = 3000
#: Voiced frames after which the formant warp is fixed.
WARP_HOLD_FRAMES = 200


class WorldStream:
    """The world engine, streaming: the same analysis, mapping, PSOLA and filter as
    :meth:`autovoice.engines.world.WorldEngine.convert`, over short windows.

    What the offline conversion measures over the whole input first (the source's cepstral statistics,
    its loudness reference, the formant warp from its median F0) is learned here from the frames heard
    so far (the last :data:`STATS_FRAMES`), blended with a prior of :data:`PRIOR_FRAMES` frames equal to
    the target's own statistics. The warp follows the running median F0 until
    :data:`WARP_HOLD_FRAMES` voiced frames, then holds. PSOLA's mark phase is carried from window to
    window, so consecutive windows place the same pitch marks where they overlap.
    """

    context_s = 0.05
    lookahead_s = 0.03

    def __init__(
        self,
        profile: VoiceProfile,
        *,
        sr: int,
        preset: Preset = "balanced",
        options: Mapping[str, Any] | None = None,
    ) -> None:
        from autovoice.engines import world as w

        self._w = w
        self.sr = check_sample_rate(sr)
        self.hop = int(round(FRAME_HOP_S * sr))
        self.options = {**w.resolve_options(preset, options), "frame_period_ms": FRAME_HOP_S * 1000.0}
        self.target = w._profile_stats(profile)
        self.warp = 1.0
        self.warp_held = False
        self.phases = (0.0, 0.0)
        self._expect_frame: int | None = None  # where a phase-continuous next window starts
        self._fed_until = -1  # global frames up to here went into the statistics
        self._mcep: deque[np.ndarray] = deque(maxlen=STATS_FRAMES)
        self._log_sp: deque[np.ndarray] = deque(maxlen=STATS_FRAMES)  # kept until the warp holds
        self._power: deque[float] = deque(maxlen=STATS_FRAMES)
        self._voiced: deque[bool] = deque(maxlen=STATS_FRAMES)
        self._lf0: deque[float] = deque(maxlen=STATS_FRAMES)
        self._since_refresh = 0
        self._env_cache: dict[int, np.ndarray] = {}  # global frame -> log envelope (final frames)
        self.mapper = self._make_mapper()

    # statistics ---------------------------------------------------------------------------------
    def _learn(self, log_sp: np.ndarray, f0: np.ndarray) -> None:
        w = self._w
        if not len(log_sp):
            return
        self._mcep.extend(w._encode(log_sp, warp=self.warp))
        if not self.warp_held:
            self._log_sp.extend(log_sp.astype(np.float32))
        self._power.extend((w._log_power(log_sp) * w._NP_DB).tolist())
        self._voiced.extend((f0 > 0).tolist())
        self._lf0.extend(np.log(f0[f0 > 0]).tolist())
        self._since_refresh += len(log_sp)
        every = 10 if len(self._mcep) < 500 else 50
        if self._since_refresh >= every:
            self._since_refresh = 0
            self._refresh()

    def _refresh(self) -> None:
        w = self._w
        if not self.warp_held and self._lf0:
            median = float(np.exp(np.median(np.asarray(self._lf0))))
            warp = w._warp_factor(
                np.array([median]),
                self.target.f0_median,
                exponent=float(self.options["warp_exponent"]),
                max_warp=float(self.options["max_warp"]),
            )
            if abs(warp - self.warp) > 1e-3:
                self.warp = warp
                self._mcep = deque(w._encode(np.asarray(self._log_sp), warp=warp), maxlen=STATS_FRAMES)
            if len(self._lf0) >= WARP_HOLD_FRAMES:
                self.warp_held = True
                self._log_sp.clear()
        self.mapper = self._make_mapper()

    def _source_stats(self) -> Any:
        w, t = self._w, self.target
        mcep = np.asarray(self._mcep) if self._mcep else np.zeros((0, w.N_CEP))
        voiced = np.asarray(self._voiced, dtype=bool)
        power = np.asarray(self._power)
        loud_db = float(np.percentile(power, 95)) if len(power) >= 20 else -1e9  # no gate until heard
        unvoiced = ~voiced & (power > loud_db - w.SILENCE_DB) if len(power) else voiced

        def blend(sel: np.ndarray, mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            n = len(sel)
            if n == 0:
                return mean, std
            m_o, v_o = sel.mean(0), sel.var(0)
            k = PRIOR_FRAMES + n
            m = (PRIOR_FRAMES * mean + n * m_o) / k
            v = (PRIOR_FRAMES * (std**2 + (mean - m) ** 2) + n * (v_o + (m_o - m) ** 2)) / k
            return m, np.sqrt(v) + 1e-4

        mv, sv = blend(mcep[voiced] if len(mcep) else mcep, t.mean_v, t.std_v)
        mu, su = blend(mcep[unvoiced] if len(mcep) else mcep, t.mean_u, t.std_u)
        return w._Stats(mv, sv, mu, su, loud_db=loud_db)

    def _make_mapper(self) -> Any:
        return self._w._Mapper(
            self.target, self._source_stats(), warp=self.warp, options=self.options, hop_s=FRAME_HOP_S
        )

    # conversion ---------------------------------------------------------------------------------
    def _envelopes(self, x16: np.ndarray, src: np.ndarray, first_frame: int, final_frames: int) -> np.ndarray:
        """Log CheapTrick envelopes of the window's frames. A final frame past the left context has its
        audio and F0 settled, so its envelope is kept and not analysed again by the next windows."""
        w = self._w
        n = len(src)
        ctx = int(round(self.context_s / FRAME_HOP_S))
        out = np.empty((n, w.FFT_SIZE // 2 + 1))
        todo = []
        for j in range(n):
            cached = self._env_cache.get(first_frame + j)
            if cached is None:
                todo.append(j)
            else:
                out[j] = cached
        if todo:
            idx = np.asarray(todo)
            out[idx] = np.log(w._analyse(x16, src[idx], idx, hop_s=FRAME_HOP_S))
            for j in todo:
                if ctx <= j < final_frames:
                    self._env_cache[first_frame + j] = out[j]
        for g in [g for g in self._env_cache if g < first_frame]:
            del self._env_cache[g]
        return out

    def convert_window(
        self,
        x: np.ndarray,
        *,
        source_f0: np.ndarray,
        target_f0: np.ndarray,
        first_frame: int,
        final_frames: int,
        advance: int,
    ) -> np.ndarray:
        w = self._w
        src = np.asarray(source_f0, dtype=np.float64)
        tgt = np.asarray(target_f0, dtype=np.float64)
        n = len(src)
        x16 = x if self.sr == w.INTERNAL_SR else w._to_internal(x, sr=self.sr)
        log_sp = self._envelopes(np.asarray(x16, np.float32), src, first_frame, final_frames)
        # Frames past the context (edge-free) and final are learned once each.
        lo = max(self._fed_until + 1 - first_frame, int(round(self.context_s / FRAME_HOP_S)))
        if final_frames > lo:
            self._learn(log_sp[lo:final_frames], src[lo:final_frames])
            self._fed_until = first_frame + final_frames - 1
        log_gain = self.mapper.log_gain(log_sp, src)
        t_frames = np.arange(n, dtype=np.float64) * self.hop
        phases = self.phases if self._expect_frame == first_frame else (0.0, 0.0)
        y, self.phases = w._psola(
            np.asarray(x, np.float32),
            src,
            tgt,
            t_frames=t_frames,
            sr=self.sr,
            warp=self.warp,
            phases=phases,
            carry_at=advance,
        )
        self._expect_frame = first_frame + advance // self.hop
        return np.asarray(w._filter(y, log_gain, t_frames=t_frames, sr=self.sr), dtype=np.float32)


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
        from autovoice.analysis import estimate_f0

        hop, e = self.hop, self._end
        seg = self._hist[-self._f0_window :]
        first = (e - self._f0_window) // hop
        n = len(seg) // hop
        if self.options.f0_method == "dio":
            f0 = _dio(seg, sr=self.sr, n_frames=n)
        else:
            f0 = estimate_f0(
                seg,
                sr=self.sr,
                method=self.options.f0_method,
                hop_s=FRAME_HOP_S,
                device=self.device,
                silence_db=-1000.0,
            ).f0.astype(np.float64)[:n]
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


def warm_converter(
    profile: VoiceProfile,
    *,
    sr: int,
    options: LiveOptions | None = None,
    device: str = "cpu",
    settings: Settings | None = None,
) -> LiveConverter:
    """A :class:`LiveConverter` whose models are loaded and whose first call has been paid for: a
    throwaway converter with the same options converts two silent blocks first (the first call of a
    tracker allocates, which would make the stream's first block late)."""
    scratch = LiveConverter(profile, sr=sr, options=options, device=device, settings=settings)
    for _ in range(2):
        scratch.process(np.zeros(scratch.block_size, np.float32))
    return LiveConverter(profile, sr=sr, options=options, device=device, settings=settings)


def _dio(seg: np.ndarray, *, sr: int, n_frames: int) -> np.ndarray:
    """F0 (Hz, 0 = unvoiced) of ``n_frames`` 10 ms frames by WORLD's DIO + StoneMask at 16 kHz."""
    import pyworld

    from autovoice.analysis.f0 import DEFAULT_FMAX, DEFAULT_FMIN
    from autovoice.audio import resample

    x = np.ascontiguousarray(resample(seg, orig_sr=sr, target_sr=16_000), dtype=np.float64)
    f0, t = pyworld.dio(
        x, 16_000, f0_floor=DEFAULT_FMIN, f0_ceil=DEFAULT_FMAX, frame_period=FRAME_HOP_S * 1000.0
    )
    f0 = pyworld.stonemask(x, f0, t, 16_000)
    out = np.zeros(n_frames)
    m = min(n_frames, len(f0))
    out[:m] = f0[:m]
    return out


def _ceil_to(value: float, step: int) -> int:
    return int(math.ceil(value / step - 1e-9)) * step


def _best_offset(head: np.ndarray, tail: np.ndarray) -> int:
    """Offset (0..len(head) - len(tail)) where ``head`` best continues ``tail`` (normalised correlation)."""
    c = len(tail)
    num = np.correlate(head.astype(np.float64), tail.astype(np.float64), mode="valid")
    energy = np.convolve(head.astype(np.float64) ** 2, np.ones(c), mode="valid")
    return int(np.argmax(num / np.sqrt(energy + 1e-9)))


# ----------------------------------------------------------------------------------------------
# deadlines: drop, never queue
# ----------------------------------------------------------------------------------------------
class Clock(Protocol):
    """Time for :class:`LiveSession`: the wall clock, or a simulated one for files."""

    def wait_until(self, t: float) -> None:
        """The worker is idle until ``t`` (a block's arrival)."""

    def now(self) -> float: ...

    def spent(self, seconds: float) -> None:
        """The worker just spent ``seconds`` converting."""


class WallClock:
    """The real clock: blocks arrive when they arrive; the time spent is already past."""

    def wait_until(self, t: float) -> None:
        return None

    def now(self) -> float:
        return time.perf_counter()

    def spent(self, seconds: float) -> None:
        return None


class SimulatedClock:
    """A clock for streaming a file "as a microphone would": block ``k`` arrives at ``(k + 1) * block``
    seconds of stream time, and the worker's time advances by the conversion times measured for real."""

    def __init__(self) -> None:
        self.t = 0.0

    def wait_until(self, t: float) -> None:
        self.t = max(self.t, t)

    def now(self) -> float:
        return self.t

    def spent(self, seconds: float) -> None:
        self.t += seconds


class UnhurriedClock:
    """A clock under which no block is ever late (every block is converted): for tests and for
    rendering a file through the live path on a machine too busy to keep time."""

    def __init__(self) -> None:
        self.t = 0.0

    def wait_until(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def spent(self, seconds: float) -> None:
        return None


class LiveSession:
    """A converter plus the deadline rule: each block must be converted before the next one arrives.

    ``handle(block, arrival)``: skip the block if it is already past its deadline (``arrival + block``),
    else convert it and throw the result away if it finished after the deadline.
    """

    def __init__(self, converter: LiveConverter, clock: Clock | None = None) -> None:
        self.converter = converter
        self.clock = clock or WallClock()
        self.block_s = converter.latency.block / converter.sr

    def handle(self, block: np.ndarray, *, arrival: float) -> np.ndarray:
        conv, clock = self.converter, self.clock
        clock.wait_until(arrival)
        deadline = arrival + self.block_s
        if clock.now() >= deadline:
            return conv.skip(block)
        t0 = time.perf_counter()
        out = conv.process(block)
        clock.spent(time.perf_counter() - t0)
        if clock.now() > deadline:
            return conv.drop_last()
        return out


def blocks_of(y: np.ndarray, block: int) -> Iterator[np.ndarray]:
    """``y`` cut into blocks of ``block`` samples, the last one padded with silence."""
    for i in range(0, len(y), block):
        b = y[i : i + block]
        yield b if len(b) == block else np.pad(b, (0, block - len(b)))


def stream_array(
    y: np.ndarray,
    converter: LiveConverter,
    *,
    clock: Clock | None = None,
    on_block: Callable[[int, LiveStats], None] | None = None,
) -> tuple[np.ndarray, LiveStats]:
    """Stream mono ``y`` (at the converter's rate) through the live path as a microphone would.

    Blocks arrive every block length of (simulated, by default) time and go through the deadline
    rule of :class:`LiveSession`; silence blocks are streamed after the end so the whole input comes
    out. Returns the output *aligned with the input* (the constant delay removed; same length as
    ``y``) and the stream's statistics.
    """
    session = LiveSession(converter, clock or SimulatedClock())
    lat = converter.latency
    extra = int(math.ceil(lat.delay / lat.block))
    source: Iterable[np.ndarray] = (
        list(blocks_of(np.asarray(y, np.float32), lat.block)) + [np.zeros(lat.block, np.float32)] * extra
    )
    outs = []
    for k, b in enumerate(source):
        outs.append(session.handle(b, arrival=(k + 1) * session.block_s))
        if on_block is not None:
            on_block(k, converter.stats())
    out = np.concatenate(outs)[lat.delay : lat.delay + len(y)]
    return out, converter.stats()
