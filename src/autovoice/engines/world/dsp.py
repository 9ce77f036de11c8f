"""The world family's signal processing: WORLD envelopes, the mel-cepstrum, TD-PSOLA, the envelope
filter and windowed processing. Public building blocks for the ``world``, ``gmm`` and ``bandcopy`` engines
and the world engine's live stream; the method is described in :mod:`autovoice.engines.world`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyworld
import scipy.fft as sfft

from autovoice.analysis.f0 import FRAME_HOP_S, F0Track
from autovoice.audio import resample
from autovoice.errors import AudioError, ParameterError

#: Sample rate (Hz) of the envelope analysis.
INTERNAL_SR = 16_000
#: CheapTrick FFT size at :data:`INTERNAL_SR` (lowest F0 it resolves: 3 * sr / fft ~ 47 Hz).
FFT_SIZE = 1024
#: Upper edge (Hz) of the converted band; the mel-cepstrum covers 0..BAND_HZ.
BAND_HZ = 8_000.0
#: Between these frequencies (Hz) the conversion fades out; above them the source's band is kept.
MERGE_HZ = (6_800.0, 7_600.0)
#: Points of the mel grid the cepstrum is taken over, and cepstral coefficients stored per frame.
N_MEL = 128
N_CEP = 40
#: Frames this far (dB) below the loudest are silence, left out of the unvoiced statistics.
SILENCE_DB = 45.0

#: dB per natural-log unit of power.
NP_DB = 10.0 * np.log10(np.e)


# ----------------------------------------------------------------------------------------------
# validation and small helpers
# ----------------------------------------------------------------------------------------------
def check_audio(y: np.ndarray, *, sr: int) -> np.ndarray:
    """``y`` as float32 mono samples, if the world family can convert it (16..192 kHz, finite, not empty)."""
    if not isinstance(sr, int | np.integer) or not 16_000 <= int(sr) <= 192_000:
        raise ParameterError(
            "invalid_parameter",
            f"The world engine needs a sample rate of 16000..192000 Hz, got {sr}. Resample the audio first.",
            {"sr": sr, "min": 16_000, "max": 192_000},
        )
    x = np.asarray(y, dtype=np.float32)
    if x.ndim != 1:
        raise ParameterError(
            "invalid_parameter",
            f"The world engine takes mono audio of shape (samples,), got {x.shape}. Downmix it first.",
            {"shape": list(x.shape)},
        )
    if x.size == 0:
        raise AudioError("audio_empty", "The audio is empty (0 samples).")
    if not np.all(np.isfinite(x)):
        raise AudioError("audio_invalid_samples", "The audio contains NaN or infinite samples.")
    return x


def check_enrollment(y: np.ndarray, *, sr: int, f0: F0Track) -> tuple[np.ndarray, np.ndarray]:
    """Checked enrollment audio and its F0 on the 10 ms grid; ``insufficient_voiced_audio`` with less
    than 1 s of voiced frames (what every engine of the world family needs from a profile's audio)."""
    x = check_audio(y, sr=sr)
    track = check_track(f0, n_samples=len(x), sr=sr, name="f0")
    n = n_frames(len(x), sr=sr, hop_s=FRAME_HOP_S)
    f0_grid = regrid_f0(track, src_hop_s=f0.hop_s, dst_hop_s=FRAME_HOP_S, n=n)
    voiced_s = float((f0_grid > 0).sum() * FRAME_HOP_S)
    if voiced_s < 1.0:
        raise AudioError(
            "insufficient_voiced_audio",
            f"The enrollment audio holds {voiced_s:.1f} s of voiced sound; the world engine needs at "
            "least 1 s (30 s or more recommended).",
            {"voiced_seconds": round(voiced_s, 2), "min_seconds": 1.0},
        )
    return x, f0_grid


def n_frames(n_samples: int, *, sr: int, hop_s: float) -> int:
    """Frames of ``hop_s`` that cover ``n_samples`` at ``sr`` (at least one)."""
    return max(int(np.ceil(n_samples / sr / hop_s - 1e-9)), 1)


def check_track(track: F0Track, *, n_samples: int, sr: int, name: str) -> np.ndarray:
    """The track's F0 as float64, if it covers ``n_samples`` (within 3 frames or 2 %)."""
    f = np.asarray(track.f0, dtype=np.float64).reshape(-1)
    expected = n_frames(n_samples, sr=sr, hop_s=track.hop_s)
    if f.size == 0 or abs(f.size - expected) > max(3, 0.02 * expected):
        raise ParameterError(
            "invalid_parameter",
            f"{name} has {f.size} frames of {track.hop_s * 1000:g} ms but the audio needs {expected}: "
            "track the F0 of this very audio.",
            {"frames": int(f.size), "expected": expected},
        )
    if not np.all(np.isfinite(f)) or np.any(f < 0):
        raise ParameterError("invalid_parameter", f"{name} must be finite and >= 0 Hz (0 = unvoiced).")
    return f


def regrid_f0(f0: np.ndarray, *, src_hop_s: float, dst_hop_s: float, n: int) -> np.ndarray:
    """F0 on ``n`` frames of ``dst_hop_s``: linear inside voiced runs, voicing from the nearest frame."""
    if np.isclose(src_hop_s, dst_hop_s) and len(f0) >= n:
        return np.asarray(f0[:n], dtype=np.float64).copy()
    pos = np.arange(n) * dst_hop_s / src_hop_s
    voiced = f0[np.clip(np.round(pos).astype(int), 0, len(f0) - 1)] > 0
    vi = np.flatnonzero(f0 > 0)
    out = np.zeros(n)
    if len(vi):
        out[voiced] = np.interp(pos[voiced], vi, f0[vi])
    return out


def to_internal(x: np.ndarray, *, sr: int) -> np.ndarray:
    """``x`` at :data:`INTERNAL_SR`, float32 (windows are handed to WORLD as float64 one at a time)."""
    return np.asarray(resample(x, orig_sr=sr, target_sr=INTERNAL_SR), dtype=np.float32)


def smooth_time(a: np.ndarray, ms: float, *, hop_s: float) -> np.ndarray:
    """``(frames, ...)`` smoothed along frames with a Hann window of about ``ms`` milliseconds."""
    k = max(int(round(ms / 1000.0 / hop_s)), 1) | 1  # odd
    if k == 1 or len(a) < 2:
        return a
    win = np.hanning(k + 2)[1:-1]
    win /= win.sum()
    pad = k // 2
    padded = np.pad(a, ((pad, pad),) + ((0, 0),) * (a.ndim - 1), mode="edge")
    out = np.zeros_like(a)
    for i, w in enumerate(win):
        out += w * padded[i : i + len(a)]
    return out


# ----------------------------------------------------------------------------------------------
# analysis and the mel-cepstrum
# ----------------------------------------------------------------------------------------------
def analyse(x16: np.ndarray, f0: np.ndarray, frames: np.ndarray, *, hop_s: float) -> np.ndarray:
    """CheapTrick power envelopes ``(len(frames), FFT_SIZE // 2 + 1)`` at times ``frames * hop_s``.

    Only the audio around the frames goes to WORLD, so the cost follows ``len(frames)``. A floor
    1e-12 keeps the logarithm finite in digital silence.
    """
    t = frames * hop_s
    s0 = max(int((t.min() - 0.05) * INTERNAL_SR), 0)
    s1 = min(int((t.max() + 0.05) * INTERNAL_SR) + 1, len(x16))
    seg = np.ascontiguousarray(x16[s0:s1], dtype=np.float64)
    if len(seg) < 2:
        seg = np.zeros(2)
    sp = pyworld.cheaptrick(
        seg,
        np.ascontiguousarray(f0, dtype=np.float64),
        np.ascontiguousarray(t - s0 / INTERNAL_SR),
        INTERNAL_SR,
        fft_size=FFT_SIZE,
    )
    return np.asarray(sp) + 1e-12


def _mel_grid() -> np.ndarray:
    """Frequencies (Hz) of :data:`N_MEL` mel-spaced points covering 0..BAND_HZ."""
    m = np.linspace(0.0, 1127.0 * np.log1p(BAND_HZ / 700.0), N_MEL)
    return np.asarray(700.0 * np.expm1(m / 1127.0))


def _dct_matrix(n_cep: int) -> np.ndarray:
    """Orthonormal DCT-II basis ``(n_cep, N_MEL)``: cepstrum = basis @ log_mel."""
    k = np.arange(n_cep)[:, None]
    m = np.arange(N_MEL)[None, :]
    basis = np.asarray(np.cos(np.pi * k * (2 * m + 1) / (2 * N_MEL)) * np.sqrt(2.0 / N_MEL))
    basis[0] /= np.sqrt(2.0)
    return basis


BINS_HZ = np.arange(FFT_SIZE // 2 + 1) * INTERNAL_SR / FFT_SIZE
MEL_HZ = _mel_grid()
DCT = _dct_matrix(N_CEP)
MERGE_FADE = 0.5 - 0.5 * np.cos(np.pi * np.clip((BINS_HZ - MERGE_HZ[0]) / (MERGE_HZ[1] - MERGE_HZ[0]), 0, 1))


def lerp_columns(a: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Columns of ``a`` at fractional indices ``pos`` (linear interpolation)."""
    i0 = np.clip(np.floor(pos).astype(int), 0, a.shape[1] - 2)
    frac = pos - i0
    return np.asarray(a[:, i0] * (1 - frac) + a[:, i0 + 1] * frac)


def encode(log_sp: np.ndarray, *, warp: float) -> np.ndarray:
    """Mel-cepstra ``(frames, N_CEP)`` of natural-log power envelopes ``(frames, bins)``.

    ``warp`` > 1 moves formants up: the envelope at ``f`` is read at ``f / warp`` (edge value held).
    """
    pos = np.interp(MEL_HZ / warp, BINS_HZ, np.arange(len(BINS_HZ)))
    return np.asarray(lerp_columns(log_sp, pos) @ DCT.T)


def decode(mcep: np.ndarray) -> np.ndarray:
    """Natural-log power on the analysis bins from mel-cepstra ``(frames, n <= N_CEP)``.

    Above :data:`BAND_HZ` (only at 16 kHz: the Nyquist bin) the value at BAND_HZ is held.
    """
    log_mel = mcep @ DCT[: mcep.shape[1]]
    return lerp_columns(log_mel, np.interp(BINS_HZ, MEL_HZ, np.arange(N_MEL)))


def log_power(log_sp: np.ndarray) -> np.ndarray:
    """Natural log of each frame's total power, ``(frames,)``."""
    top = log_sp.max(1, keepdims=True)
    return np.asarray(top[:, 0] + np.log(np.exp(log_sp - top).sum(1)))


def loud(mcep: np.ndarray) -> np.ndarray:
    """Frames within :data:`SILENCE_DB` of the loud ones (c0 is sqrt(N_MEL) x the mean log power)."""
    level = mcep[:, 0] / np.sqrt(N_MEL) * NP_DB
    return np.asarray(level > np.percentile(level, 95) - SILENCE_DB)


# ----------------------------------------------------------------------------------------------
# pitch (TD-PSOLA) and the envelope filter
# ----------------------------------------------------------------------------------------------
#: F0 (Hz) that places the marks of unvoiced stretches (their grains are re-placed, not re-pitched).
_UNVOICED_F0 = 100.0


def _per_sample_f0(f0: np.ndarray, t_frames: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """F0 at every sample (linear between voiced frames; :data:`_UNVOICED_F0` where unvoiced) and the
    voicing of the nearest frame."""
    s = np.arange(n)
    voiced = f0 > 0
    near = np.clip(np.round(np.interp(s, t_frames, np.arange(len(f0)))).astype(int), 0, len(f0) - 1)
    v = voiced[near]
    vi = np.flatnonzero(voiced)
    f = np.interp(s, t_frames[vi], f0[vi]) if len(vi) else np.full(n, _UNVOICED_F0)
    return np.where(v, f, _UNVOICED_F0), v


def _marks(f: np.ndarray, *, sr: int, phase0: float, carry_at: int) -> tuple[np.ndarray, float]:
    """Sample indices where the running phase of ``f`` (cycles, from ``phase0``) passes a whole cycle,
    and the phase just before sample ``carry_at`` (``phase0`` when 0)."""
    cum = phase0 + np.cumsum(f / sr)
    prev = np.concatenate([[np.floor(phase0)], np.floor(cum[:-1])])
    return np.flatnonzero(np.floor(cum) > prev), float(cum[carry_at - 1]) if carry_at > 0 else phase0


def psola(
    x: np.ndarray,
    src_f0: np.ndarray,
    tgt_f0: np.ndarray,
    *,
    t_frames: np.ndarray,
    sr: int,
    warp: float,
    phases: tuple[float, float],
    carry_at: int,
) -> tuple[np.ndarray, tuple[float, float]]:
    """TD-PSOLA from the source's to the target's F0, with grains read ``warp`` times faster.

    Parameters
    ----------
    x
        ``(samples,)`` segment at ``sr``.
    src_f0, tgt_f0
        ``(frames,)`` F0 in Hz at the segment's frame times ``t_frames`` (in samples).
    warp
        Formant ratio (> 1 moves formants up).
    phases
        Running phase (cycles) of the source and target marks at the segment's first sample.
    carry_at
        Sample whose phases are returned, for the next segment.

    Returns
    -------
    (y, phases)
        ``(samples,)`` float64 and the phases at ``carry_at``. Where both F0s are unvoiced, ``y`` is
        ``x`` itself (a 10 ms ramp around voiced stretches).
    """
    n = len(x)
    xd = x.astype(np.float64)
    fs, vs = _per_sample_f0(src_f0, t_frames, n)
    ft, vt = _per_sample_f0(tgt_f0, t_frames, n)
    am, ph_s = _marks(fs, sr=sr, phase0=phases[0], carry_at=carry_at)
    sm, ph_t = _marks(ft, sr=sr, phase0=phases[1], carry_at=carry_at)
    if len(am) < 2 or len(sm) < 1 or not (vs | vt).any():
        return xd, (ph_s, ph_t)
    j = np.clip(np.searchsorted(am, sm), 1, len(am) - 1)
    j = np.where(np.abs(am[j - 1] - sm) < np.abs(am[j] - sm), j - 1, j)  # nearest source mark
    centre = am[j]
    # Grain half-length: one source period, read warp x faster -> period / warp output samples.
    half = np.maximum(np.round(sr / fs[centre] / warp).astype(int), 2)
    pad = int(np.ceil(half.max() * warp)) + 2
    xp = np.pad(xd, (pad, pad))
    acc = np.zeros(n)
    wsum = np.zeros(n)
    for blk in range(0, len(sm), 1024):  # bounded grain matrices
        h, c, at = half[blk : blk + 1024], centre[blk : blk + 1024], sm[blk : blk + 1024]
        m = int(h.max())
        off = np.arange(-m, m + 1)
        inside = np.abs(off)[None, :] < h[:, None]
        w = np.where(inside, 0.5 + 0.5 * np.cos(np.pi * off[None, :] / h[:, None]), 0.0)
        src_pos = c[:, None] + pad + off[None, :] * warp
        i0 = np.clip(np.floor(src_pos).astype(int), 0, len(xp) - 2)
        frac = src_pos - i0
        grains = (xp[i0] * (1 - frac) + xp[i0 + 1] * frac) * w
        pos = at[:, None] + off[None, :]
        ok = inside & (pos >= 0) & (pos < n)
        acc += np.bincount(pos[ok], weights=grains[ok], minlength=n)
        wsum += np.bincount(pos[ok], weights=w[ok], minlength=n)
    y = acc / np.maximum(wsum, 1e-3)  # normalised overlap-add: the level does not follow the shift
    ramp = max(int(0.01 * sr), 1)
    v = np.clip(2.0 * np.convolve((vs | vt).astype(np.float64), np.ones(ramp) / ramp, mode="same"), 0.0, 1.0)
    return v * y + (1.0 - v) * xd, (ph_s, ph_t)


#: Hop (s) of the filter's STFT; its sine window is two hops long.
_FILTER_HOP_S = 0.01


def apply_gains(y: np.ndarray, log_gain: np.ndarray, *, t_frames: np.ndarray, sr: int) -> np.ndarray:
    """Apply log amplitude gains ``(frames, bins)`` (analysis bins up to 8 kHz; 0 above) to ``y``.

    A Hann-window STFT at 50 % overlap (hop :data:`_FILTER_HOP_S`), zero-padded 2x so that the zero-phase
    filter's response does not wrap; the gains are interpolated between frames (times ``t_frames``,
    in samples). Returns float32 ``(samples,)``.
    """
    n = len(y)
    hop = max(int(round(_FILTER_HOP_S * sr)), 16)
    win_len = 2 * hop
    n_fft = 1 << int(np.ceil(np.log2(2 * win_len)))
    q = n_fft // 4
    # sin^2 (a periodic Hann) sums to exactly 1 at 50 % overlap: unity gains give back the input.
    win = (np.sin(np.pi * (np.arange(win_len) + 0.5) / win_len) ** 2).astype(np.float32)
    centres = np.arange(n // hop + 2) * hop
    padded = np.pad(y.astype(np.float32), (win_len, win_len))
    frames = padded[(centres - hop + win_len)[:, None] + np.arange(win_len)[None, :]] * win
    spec = sfft.rfft(frames, n=n_fft, axis=1)
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    bins = np.clip(np.round(freqs / INTERNAL_SR * FFT_SIZE).astype(int), 0, FFT_SIZE // 2)
    g = log_gain[:, bins].astype(np.float32)
    g[:, freqs >= BAND_HZ] = 0.0
    pos = np.interp(centres, t_frames, np.arange(len(t_frames)))
    i0 = np.minimum(np.floor(pos).astype(int), len(t_frames) - 1)
    i1 = np.minimum(i0 + 1, len(t_frames) - 1)
    a = (pos - i0).astype(np.float32)[:, None]
    spec *= np.exp(g[i0] * (1 - a) + g[i1] * a)
    # The filtered frame reaches a quarter FFT before and after the window.
    out_frames = np.roll(sfft.irfft(spec, n=n_fft, axis=1), q, axis=1)[:, : win_len + 2 * q]
    idx = (centres - hop - q)[:, None] + np.arange(win_len + 2 * q)[None, :]
    ok = (idx >= 0) & (idx < n)
    return np.bincount(idx[ok], weights=out_frames[ok], minlength=n).astype(np.float32)


def overlap_add(
    out: np.ndarray, seg: np.ndarray, *, s0: int, core: tuple[int, int], fade: int, first: bool, last: bool
) -> None:
    """Add ``seg`` (which starts at sample ``s0`` of ``out``) over ``core``, with linear crossfades of
    ``fade`` samples centred on the core's inner edges."""
    c0, c1 = core
    lo = c0 if first else max(c0 - fade // 2, s0)
    hi = c1 if last else min(c1 + fade // 2, s0 + len(seg), len(out))
    t = np.arange(lo, hi)
    gain = np.ones(hi - lo, dtype=np.float32)
    if not first:
        gain *= np.clip((t - (c0 - fade / 2)) / fade, 0.0, 1.0).astype(np.float32)
    if not last:
        gain *= np.clip(((c1 + fade / 2) - t) / fade, 0.0, 1.0).astype(np.float32)
    out[lo:hi] += seg[lo - s0 : hi - s0] * gain


# ----------------------------------------------------------------------------------------------
# windowed processing
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """One processing window: frames ``a..b`` (with context) around the core frames ``lo..hi``; samples
    ``s0..s1`` of the input; ``core``, the samples it contributes to the output (before crossfades)."""

    a: int
    b: int
    lo: int
    hi: int
    s0: int
    s1: int
    core: tuple[int, int]
    first: bool
    last: bool


@dataclass(frozen=True)
class WindowPlan:
    """Long input in windows of ``window_s`` seconds with ``context_s`` on both sides, joined by linear
    crossfades of ``crossfade_s`` (so memory does not grow with the input's length)."""

    windows: tuple[Window, ...]
    #: Frame period in input samples (may be fractional).
    hop_n: float
    #: Context frames on each side.
    context: int
    #: Crossfade, samples.
    fade: int

    @classmethod
    def over(
        cls,
        n: int,
        *,
        n_samples: int,
        sr: int,
        hop_s: float,
        window_s: float,
        context_s: float,
        crossfade_s: float,
    ) -> WindowPlan:
        """The windows over ``n`` frames of ``hop_s`` covering ``n_samples`` at ``sr``."""
        hop_n = hop_s * sr
        win = max(int(round(window_s / hop_s)), 1)
        ctx = int(round(context_s / hop_s))
        fade = max(min(int(round(crossfade_s / hop_s)), ctx), 1)
        starts = list(range(0, n, win))
        windows = []
        for i, lo in enumerate(starts):
            hi = min(lo + win, n)
            a, b = max(lo - ctx, 0), min(hi + ctx, n)
            last = i == len(starts) - 1
            s0 = int(round(a * hop_n))
            s1 = n_samples if last else min(int(round(b * hop_n)), n_samples)
            core_end = n_samples if last else min(int(round(hi * hop_n)), n_samples)
            windows.append(Window(a, b, lo, hi, s0, s1, (int(round(lo * hop_n)), core_end), i == 0, last))
        return cls(tuple(windows), hop_n, ctx, int(round(fade * hop_n)))

    def frame_times(self, w: Window) -> np.ndarray:
        """Times of the window's frames ``a..b`` in samples of its segment (``s0`` = 0)."""
        return np.asarray(np.arange(w.b - w.a) * self.hop_n + (w.a * self.hop_n - w.s0))

    def next_start(self, i: int) -> int:
        """Where window ``i + 1`` starts its pitch marks, in samples of window ``i``'s segment (0: last)."""
        if i + 1 >= len(self.windows):
            return 0
        return int(round((self.windows[i + 1].lo - self.context) * self.hop_n)) - self.windows[i].s0

    def add(self, out: np.ndarray, seg: np.ndarray, w: Window) -> None:
        """Add window ``w``'s converted segment into ``out`` with the crossfades."""
        overlap_add(out, seg, s0=w.s0, core=w.core, fade=self.fade, first=w.first, last=w.last)
