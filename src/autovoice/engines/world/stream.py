"""The world engine, streaming (:class:`WorldStream`): what :meth:`WorldEngine.open_stream
<autovoice.engines.world.engine.WorldEngine.open_stream>` returns to the live converter."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from autovoice.analysis.f0 import FRAME_HOP_S
from autovoice.engines.world.dsp import (
    FFT_SIZE,
    INTERNAL_SR,
    N_CEP,
    NP_DB,
    SILENCE_DB,
    analyse,
    apply_gains,
    encode,
    log_power,
    psola,
    to_internal,
)
from autovoice.engines.world.mapping import Mapper, VoiceStats, profile_stats, warp_factor
from autovoice.engines.world.options import WorldParams
from autovoice.errors import ParameterError

if TYPE_CHECKING:
    from autovoice.profiles.profile import VoiceProfile

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

    def __init__(self, profile: VoiceProfile, *, sr: int, params: WorldParams) -> None:
        self.hop = int(round(FRAME_HOP_S * sr))
        if not 16_000 <= sr <= 192_000 or self.hop != FRAME_HOP_S * sr:
            raise ParameterError(
                "invalid_sample_rate",
                f"The world engine streams at 16000..192000 Hz in whole samples per 10 ms frame, got {sr}.",
                {"sample_rate": sr},
            )
        self.sr = sr
        self.params = params.model_copy(update={"frame_period_ms": FRAME_HOP_S * 1000.0})
        self.target = profile_stats(profile)
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
        if not len(log_sp):
            return
        self._mcep.extend(encode(log_sp, warp=self.warp))
        if not self.warp_held:
            self._log_sp.extend(log_sp.astype(np.float32))
        self._power.extend((log_power(log_sp) * NP_DB).tolist())
        self._voiced.extend((f0 > 0).tolist())
        self._lf0.extend(np.log(f0[f0 > 0]).tolist())
        self._since_refresh += len(log_sp)
        every = 10 if len(self._mcep) < 500 else 50
        if self._since_refresh >= every:
            self._since_refresh = 0
            self._refresh()

    def _refresh(self) -> None:
        if not self.warp_held and self._lf0:
            median = float(np.exp(np.median(np.asarray(self._lf0))))
            warp = warp_factor(
                np.array([median]),
                self.target.f0_median,
                exponent=self.params.warp_exponent,
                max_warp=self.params.max_warp,
            )
            if abs(warp - self.warp) > 1e-3:
                self.warp = warp
                self._mcep = deque(encode(np.asarray(self._log_sp), warp=warp), maxlen=STATS_FRAMES)
            if len(self._lf0) >= WARP_HOLD_FRAMES:
                self.warp_held = True
                self._log_sp.clear()
        self.mapper = self._make_mapper()

    def _source_stats(self) -> VoiceStats:
        t = self.target
        mcep = np.asarray(self._mcep) if self._mcep else np.zeros((0, N_CEP))
        voiced = np.asarray(self._voiced, dtype=bool)
        power = np.asarray(self._power)
        loud_db = float(np.percentile(power, 95)) if len(power) >= 20 else -1e9  # no gate until heard
        unvoiced = ~voiced & (power > loud_db - SILENCE_DB) if len(power) else voiced

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
        return VoiceStats(mv, sv, mu, su, loud_db=loud_db)

    def _make_mapper(self) -> Mapper:
        return Mapper(
            self.target, self._source_stats(), warp=self.warp, params=self.params, hop_s=FRAME_HOP_S
        )

    # conversion ---------------------------------------------------------------------------------
    def _envelopes(self, x16: np.ndarray, src: np.ndarray, first_frame: int, final_frames: int) -> np.ndarray:
        """Log CheapTrick envelopes of the window's frames. A final frame past the left context has its
        audio and F0 settled, so its envelope is kept and not analysed again by the next windows."""
        n = len(src)
        ctx = int(round(self.context_s / FRAME_HOP_S))
        out = np.empty((n, FFT_SIZE // 2 + 1))
        todo = []
        for j in range(n):
            cached = self._env_cache.get(first_frame + j)
            if cached is None:
                todo.append(j)
            else:
                out[j] = cached
        if todo:
            idx = np.asarray(todo)
            out[idx] = np.log(analyse(x16, src[idx], idx, hop_s=FRAME_HOP_S))
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
        src = np.asarray(source_f0, dtype=np.float64)
        tgt = np.asarray(target_f0, dtype=np.float64)
        n = len(src)
        x16 = x if self.sr == INTERNAL_SR else to_internal(x, sr=self.sr)
        log_sp = self._envelopes(np.asarray(x16, np.float32), src, first_frame, final_frames)
        # Frames past the context (edge-free) and final are learned once each.
        lo = max(self._fed_until + 1 - first_frame, int(round(self.context_s / FRAME_HOP_S)))
        if final_frames > lo:
            self._learn(log_sp[lo:final_frames], src[lo:final_frames])
            self._fed_until = first_frame + final_frames - 1
        log_gain = self.mapper.log_gain(log_sp, src)
        t_frames = np.arange(n, dtype=np.float64) * self.hop
        phases = self.phases if self._expect_frame == first_frame else (0.0, 0.0)
        y, self.phases = psola(
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
        return np.asarray(apply_gains(y, log_gain, t_frames=t_frames, sr=self.sr), dtype=np.float32)
