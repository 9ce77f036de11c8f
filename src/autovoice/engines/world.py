"""The default engine, ``world``: training-free voice conversion on CPU, offline.

WORLD's CheapTrick measures spectral envelopes. The target voice's envelopes come from the profile's
statistics. TD-PSOLA moves the pitch, and an envelope-ratio filter gives the result the target's
timbre. Stages, in order (one function each):

1. **Analyse** (:func:`_analyse`). CheapTrick envelopes of the vocal, resampled to
   :data:`INTERNAL_SR` (16 kHz), computed with the *given* F0 track (no second pitch tracker).
2. **Encode** (:func:`_encode`). Each log envelope is read on a mel-spaced grid up to
   :data:`BAND_HZ` (8 kHz) and turned into a mel-cepstrum by a DCT. The source is read through a
   frequency warp ``f -> f / warp``. The warp follows the pitch ratio of the two voices,
   ``warp = (profile median F0 / source median F0) ** warp_exponent`` (exponent 1/4 by default).
   Formants scale roughly with the fourth root of F0 across speakers, so male-to-female raises them
   by about 19 %.
3. **Map** (:class:`_Mapper`). Per-speaker mean/variance normalisation moves the source's cepstra
   into the target's distribution, with separate statistics for voiced and unvoiced frames. For
   voiced frames the result is blended with a k-nearest-neighbour estimate: the mean of the
   ``knn_k`` enrollment frames closest to the normalised source frame on c1..c20, smoothed over
   ~25 ms. The global map keeps the words; the k-NN part brings in the target's formant detail.
   A k-NN estimate alone would copy the enrollment clip rather than the speaker.
4. **Pitch** (:func:`_psola`). TD-PSOLA at the input's own sample rate: two-period Hann grains
   around the source's pitch marks are overlap-added at the target's pitch marks. Both mark
   sequences come from the F0 contours' running phase, which is carried from window to window.
   The grains are read at ``warp`` times normal speed, which moves the formants by ``warp``
   the way a shorter or longer vocal tract would.
5. **Filter** (:func:`_filter`). A zero-phase STFT filter applies the ratio of the mapped envelope
   to the warped source envelope, both at the same cepstral resolution. It is smoothed over
   ~30 ms and faded out in frames near the noise floor, because a time-varying filter on
   background noise is heard as "musical" noise.

Why PSOLA rather than WORLD's own synthesis: on our LibriSpeech sources plain WORLD
analysis/resynthesis already costs ~0.5 DNSMOS OVRL. TD-PSOLA keeps the source's natural excitation
and loses ~0.2 at the same transpositions, is 3-5x cheaper, and reached the same speaker similarity
(see ``bench/engine_dev.py``).

**Bandwidth.** The envelope is converted on 0..8 kHz only. Enrollment audio is often 16 kHz speech,
and the voice's identity lives below 8 kHz. Between :data:`MERGE_HZ` (6.8..7.6 kHz) the filter
fades to unity, which also hides the anti-alias roll-off of band-limited enrollments. Above that,
a 44.1/48 kHz input keeps its own upper band, pitch-shifted by the same PSOLA, so the converted
vocal keeps its air and sibilance at the planned pitch.

Long input is processed in windows of ``window_s`` seconds with context on both sides and short
linear crossfades, so memory does not grow with the input's length. The source statistics come
from a sparse first pass over the whole input (at most :data:`MAX_STATS_FRAMES` frames).

Stored profile features (keys without the ``world.`` prefix the profile builder adds):

===============  ================  ==========================================================
key              shape, dtype      meaning
===============  ================  ==========================================================
``version``      (1,) int32        :data:`FEATURE_VERSION`
``mcep_mean_v``  (D,) float32      mean mel-cepstrum of voiced frames (D = :data:`N_CEP`)
``mcep_std_v``   (D,) float32      its standard deviation
``mcep_mean_u``  (D,) float32      mean of unvoiced, non-silent frames
``mcep_std_u``   (D,) float32      its standard deviation
``knn_mcep``     (N, D) float16    voiced enrollment frames for k-NN, N <= :data:`MAX_KNN_FRAMES`
``f0_stats``     (3,) float32      median F0 (Hz), mean and std of log2 F0 of voiced frames
===============  ================  ==========================================================

About 0.6 MB per profile at the frame cap; 10 ms frames.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, get_args

import numpy as np
import pyworld
import scipy.fft as sfft
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autovoice.analysis.f0 import FRAME_HOP_S, F0Track
from autovoice.audio import resample
from autovoice.config import Settings
from autovoice.engines.base import Preset, options_error
from autovoice.errors import AudioError, ParameterError, unknown_choice
from autovoice.progress import ProgressCallback, no_progress

if TYPE_CHECKING:  # only for annotations: conversion reads the profile it is given
    from autovoice.profiles.profile import VoiceProfile

PRESETS: tuple[str, ...] = get_args(Preset)

#: Version of the stored ``world.*`` features; a profile with another version must be rebuilt.
FEATURE_VERSION = 1
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
#: Most enrollment frames kept for k-NN matching (uniformly subsampled beyond that).
MAX_KNN_FRAMES = 8000
#: Most frames the first pass analyses for the source's statistics.
MAX_STATS_FRAMES = 2000
#: Frames this far (dB) below the loudest are silence, left out of the unvoiced statistics.
SILENCE_DB = 45.0

#: What each preset changes. ``frame_period_ms``: hop of the envelope analysis and conversion.
#: ``n_cep``: cepstral order converted (fewer = smoother filter). ``knn_k``: neighbours averaged
#: (0 = global mean/variance map only, cheaper). ``knn_weight``: share of the k-NN estimate in
#: voiced frames. The options that all presets share are in :data:`COMMON_OPTIONS`.
PRESET_OPTIONS: dict[str, dict[str, Any]] = {
    "fast": {"frame_period_ms": 10.0, "n_cep": 30, "knn_k": 0, "knn_weight": 0.0},
    "balanced": {"frame_period_ms": 10.0, "n_cep": 40, "knn_k": 4, "knn_weight": 0.5},
    "quality": {"frame_period_ms": 5.0, "n_cep": 40, "knn_k": 4, "knn_weight": 0.5},
}
#: Options every preset shares (any of these or of :data:`PRESET_OPTIONS` can be overridden through
#: ``WorldEngine(options=...)``, for experiments):
#:
#: - ``knn_dims``: cepstral coefficients c1..cN used for matching;
#: - ``knn_smooth_ms``: Hann window smoothing the k-NN estimate over time;
#: - ``warp_exponent``: formant ratio = F0 ratio ** this (0 disables the warp);
#: - ``max_warp``: the formant ratio is clipped to ``1/max_warp..max_warp``;
#: - ``gain_smooth_ms``: Hann window smoothing the filter over time;
#: - ``gain_gate_db``: the filter fades out over 10 dB in frames this far below the loud frames;
#: - ``gain_max_db``: the largest boost (dB) the filter applies; more would only raise the source's
#:   noise in a band where it has no voice (a band-limited source toward a bright target);
#: - ``window_s``/``context_s``/``crossfade_s``: processing windows.
COMMON_OPTIONS: dict[str, Any] = {
    "knn_dims": 20,
    "knn_smooth_ms": 25.0,
    "warp_exponent": 0.25,
    "max_warp": 1.3,
    "gain_smooth_ms": 30.0,
    "gain_gate_db": 30.0,
    "gain_max_db": 24.0,
    "window_s": 15.0,
    "context_s": 0.3,
    "crossfade_s": 0.1,
}


class WorldOptions(BaseModel):
    """The world engine's own options; each one left out takes its preset's value.

    See :data:`PRESET_OPTIONS` and :data:`COMMON_OPTIONS` for what each does and its defaults.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    frame_period_ms: float | None = Field(default=None, ge=2.5, le=20.0, description="Analysis hop, ms.")
    n_cep: int | None = Field(default=None, ge=10, le=N_CEP, description="Cepstral order converted.")
    knn_k: int | None = Field(
        default=None, ge=0, le=32, description="Neighbours averaged (0 = global map only)."
    )
    knn_weight: float | None = Field(default=None, ge=0.0, le=1.0, description="Share of the k-NN estimate.")
    knn_dims: int | None = Field(
        default=None, ge=4, le=N_CEP, description="Cepstra c1..cN used for matching."
    )
    knn_smooth_ms: float | None = Field(default=None, ge=0.0, le=200.0, description="k-NN smoothing, ms.")
    warp_exponent: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Formant ratio = F0 ratio ** this."
    )
    max_warp: float | None = Field(default=None, ge=1.0, le=2.0, description="Largest formant ratio.")
    gain_smooth_ms: float | None = Field(default=None, ge=0.0, le=200.0, description="Filter smoothing, ms.")
    gain_gate_db: float | None = Field(
        default=None, ge=0.0, le=90.0, description="Filter fades below loud frames."
    )
    gain_max_db: float | None = Field(default=None, ge=0.0, le=48.0, description="Largest filter boost, dB.")
    window_s: float | None = Field(default=None, ge=1.0, le=60.0, description="Processing window, s.")
    context_s: float | None = Field(default=None, ge=0.05, le=2.0, description="Context each side, s.")
    crossfade_s: float | None = Field(default=None, ge=0.01, le=0.5, description="Crossfade at joins, s.")


def resolve_options(
    preset: Preset,
    options: Mapping[str, Any] | None = None,
    *,
    engine: str = "world",
    model: type[WorldOptions] = WorldOptions,
    common: Mapping[str, Any] | None = None,
    presets: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The full option set of ``preset`` with ``options`` (validated by ``model``) on top.

    Engines built on this one (``gmm``, ``bandcopy``) pass their name, their options model (a subclass of
    :class:`WorldOptions`) and their own ``common`` and per-preset defaults, which go on top of the world
    engine's.
    """
    if preset not in PRESET_OPTIONS:
        raise unknown_choice("invalid_preset", "preset", preset, PRESETS)
    try:
        given = model.model_validate(dict(options or {})).model_dump(exclude_none=True)
    except ValidationError as exc:
        raise options_error(engine, exc) from None
    own = (presets or {}).get(preset, {})
    return {**COMMON_OPTIONS, **PRESET_OPTIONS[preset], **(common or {}), **own, **given}


_REQUIRED_KEYS = ("version", "mcep_mean_v", "mcep_std_v", "mcep_mean_u", "mcep_std_u", "knn_mcep", "f0_stats")
#: dB per natural-log unit of power.
_NP_DB = 10.0 * np.log10(np.e)


class WorldEngine:
    """Training-free voice conversion: WORLD envelopes, statistics and k-NN mapping, TD-PSOLA.

    See the module docstring for the method.

    Parameters
    ----------
    preset
        ``"fast"``, ``"balanced"`` (default) or ``"quality"``; see :data:`PRESET_OPTIONS`.
    options
        Overrides of :data:`PRESET_OPTIONS` / :data:`COMMON_OPTIONS` entries (for experiments).
    """

    name: ClassVar[str] = "world"

    def __init__(
        self,
        *,
        preset: Preset = "balanced",
        options: Mapping[str, Any] | None = None,
        device: str = "cpu",
        settings: Settings | None = None,
    ) -> None:
        self.device = device  # the world engine runs on the CPU whatever the device
        self.preset: Preset = preset
        self.options = self._resolve(preset, options)

    # ------------------------------------------------------------------------------------------
    # profile
    # ------------------------------------------------------------------------------------------
    # profile
    # ------------------------------------------------------------------------------------------
    def profile_features(self, y: np.ndarray, *, sr: int, f0: F0Track) -> dict[str, np.ndarray]:
        """Statistics of a voice's enrollment audio, stored with the profile.

        Parameters
        ----------
        y
            ``(samples,)`` float32 enrollment audio (all samples of the voice, concatenated).
        sr
            Its sample rate in Hz (16000..192000).
        f0
            Its F0 track (any hop; 0 = unvoiced) covering ``y``.

        Returns
        -------
        dict
            The arrays listed in the module docstring, keyed without the ``world.`` prefix. They do
            not depend on ``sr`` (analysis at 16 kHz, 0..8 kHz).

        Raises
        ------
        AudioError
            ``audio_empty``, ``audio_invalid_samples``; ``insufficient_voiced_audio`` with less than
            1 s of voiced frames.
        ParameterError
            ``invalid_parameter`` for a bad sample rate or shape, or an F0 track that does not
            cover ``y``.
        """
        x, f0_grid = _enrollment(y, sr=sr, f0=f0)
        hop_s = FRAME_HOP_S
        voiced = f0_grid > 0
        x16 = _to_internal(x, sr=sr)
        mcep = _encode(np.log(_analyse(x16, f0_grid, np.arange(len(f0_grid)), hop_s=hop_s)), warp=1.0)
        unvoiced = ~voiced & _loud(mcep)
        if unvoiced.sum() < 10:  # nothing but voiced sound: fall back on what there is
            unvoiced = ~voiced if (~voiced).sum() >= 10 else voiced
        idx = np.flatnonzero(voiced)
        if len(idx) > MAX_KNN_FRAMES:
            idx = idx[np.linspace(0, len(idx) - 1, MAX_KNN_FRAMES).round().astype(int)]
        lf0 = np.log2(f0_grid[voiced])
        return {
            "version": np.array([FEATURE_VERSION], dtype=np.int32),
            "mcep_mean_v": mcep[voiced].mean(0).astype(np.float32),
            "mcep_std_v": (mcep[voiced].std(0) + 1e-4).astype(np.float32),
            "mcep_mean_u": mcep[unvoiced].mean(0).astype(np.float32),
            "mcep_std_u": (mcep[unvoiced].std(0) + 1e-4).astype(np.float32),
            "knn_mcep": mcep[idx].astype(np.float16),
            "f0_stats": np.array([2.0 ** np.median(lf0), lf0.mean(), lf0.std()], dtype=np.float32),
        }

    # ------------------------------------------------------------------------------------------
    # conversion
    # ------------------------------------------------------------------------------------------
    def convert(
        self,
        y: np.ndarray,
        *,
        sr: int,
        f0: F0Track,
        target_f0: np.ndarray,
        profile: VoiceProfile,
        preset: Preset | None = None,
        options: Mapping[str, Any] | None = None,
        progress: ProgressCallback = no_progress,
    ) -> np.ndarray:
        """Convert a mono vocal to the profile's voice at the planned pitch.

        Parameters
        ----------
        y
            ``(samples,)`` float32 vocal at ``sr``.
        sr
            Sample rate in Hz (16000..192000; songs at 44.1/48 kHz keep their band above 8 kHz).
        f0
            The source's F0 track (0 = unvoiced), covering ``y``.
        target_f0
            ``(frames,)`` planned output F0 in Hz on ``f0``'s frame grid (0 = unvoiced).
        profile
            A profile holding this engine's features (``world.*``).
        preset, options
            This call's preset and option overrides (:class:`WorldOptions`); by default the ones the
            engine was built with.
        progress
            ``progress(fraction, "convert")`` callback, called once per processing window.

        Returns
        -------
        np.ndarray
            ``(samples,)`` float32 converted vocal at ``sr``, as long as ``y``, within [-1, 1].

        Raises
        ------
        AudioError
            ``audio_empty`` / ``audio_invalid_samples``.
        ParameterError
            ``invalid_parameter`` (sample rate, shape, track lengths, negative or non-finite F0);
            ``profile_outdated`` (no or older ``world.*`` features) or ``profile_incompatible``
            (malformed ones): rebuild the profile.
        """
        x = _check_audio(y, sr=sr)
        src = _check_track(f0, n_samples=len(x), sr=sr, name="f0")
        tgt = np.asarray(target_f0, dtype=np.float64).reshape(-1)
        if tgt.shape != src.shape:
            raise ParameterError(
                "invalid_parameter",
                f"target_f0 has {tgt.size} frames but the source F0 track has {src.size}; plan the "
                "target F0 on the source track's frame grid.",
                {"target_frames": int(tgt.size), "source_frames": int(src.size)},
            )
        if not np.all(np.isfinite(tgt)) or np.any(tgt < 0):
            raise ParameterError("invalid_parameter", "target_f0 must be finite and >= 0 Hz (0 = unvoiced).")
        target = self._target(profile)
        o = self.options
        if preset is not None or options is not None:
            o = self._resolve(preset or self.preset, options)
        hop_s = float(o["frame_period_ms"]) / 1000.0
        n = _n_frames(len(x), sr=sr, hop_s=hop_s)
        src_f0 = _regrid_f0(src, src_hop_s=f0.hop_s, dst_hop_s=hop_s, n=n)
        tgt_f0 = _regrid_f0(tgt, src_hop_s=f0.hop_s, dst_hop_s=hop_s, n=n)
        progress(0.0, "convert")

        x16 = _to_internal(x, sr=sr)
        warp = _warp_factor(
            src_f0, target.f0_median, exponent=float(o["warp_exponent"]), max_warp=float(o["max_warp"])
        )
        source, envelopes = _source_stats(x16, src_f0, hop_s=hop_s, warp=warp)
        mapper = self._mapper(target, source, profile=profile, warp=warp, options=o, hop_s=hop_s)

        hop_n = hop_s * sr  # frame period in input samples (may be fractional)
        win = max(int(round(float(o["window_s"]) / hop_s)), 1)
        ctx = int(round(float(o["context_s"]) / hop_s))
        fade = max(min(int(round(float(o["crossfade_s"]) / hop_s)), ctx), 1)
        out = np.zeros(len(x), dtype=np.float32)
        starts = list(range(0, n, win))
        phases = (0.0, 0.0)
        for w, f_lo in enumerate(starts):
            f_hi = min(f_lo + win, n)
            a, b = max(f_lo - ctx, 0), min(f_hi + ctx, n)
            if envelopes is not None:
                log_src = envelopes[a:b]
            else:
                log_src = np.log(_analyse(x16, src_f0[a:b], np.arange(a, b), hop_s=hop_s))
            log_gain = mapper.log_gain(log_src, src_f0[a:b])
            s0, s1 = int(round(a * hop_n)), min(int(round(b * hop_n)), len(x))
            t_frames = np.arange(b - a) * hop_n + (a * hop_n - s0)  # frame times in segment samples
            # The next window starts its pitch marks where this one's phase is at its first sample.
            nxt = int(round((starts[w + 1] - ctx) * hop_n)) - s0 if w + 1 < len(starts) else 0
            seg, phases = _psola(
                x[s0:s1],
                src_f0[a:b],
                tgt_f0[a:b],
                t_frames=t_frames,
                sr=sr,
                warp=warp,
                phases=phases,
                carry_at=nxt,
            )
            seg = _filter(seg, log_gain, t_frames=t_frames, sr=sr)
            core = (int(round(f_lo * hop_n)), min(int(round(f_hi * hop_n)), len(x)))
            _overlap_add(
                out,
                seg,
                s0=s0,
                core=core,
                fade=int(round(fade * hop_n)),
                first=w == 0,
                last=w == len(starts) - 1,
            )
            progress((w + 1) / len(starts), "convert")
        return np.clip(out, -1.0, 1.0)

    # Hooks for engines that change only the mapping step (``gmm``).
    def _resolve(self, preset: Preset, options: Mapping[str, Any] | None) -> dict[str, Any]:
        return resolve_options(preset, options)

    def _target(self, profile: VoiceProfile) -> _Stats:
        return _profile_stats(profile)

    def _mapper(
        self,
        target: _Stats,
        source: _Stats,
        *,
        profile: VoiceProfile,
        warp: float,
        options: dict[str, Any],
        hop_s: float,
    ) -> _Mapper:
        return _Mapper(target, source, warp=warp, options=options, hop_s=hop_s)


# ----------------------------------------------------------------------------------------------
# validation and small helpers
# ----------------------------------------------------------------------------------------------
def _check_audio(y: np.ndarray, *, sr: int) -> np.ndarray:
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


def _enrollment(y: np.ndarray, *, sr: int, f0: F0Track) -> tuple[np.ndarray, np.ndarray]:
    """Checked enrollment audio and its F0 on the 10 ms grid; ``insufficient_voiced_audio`` with less
    than 1 s of voiced frames (what every engine of the world family needs from a profile's audio)."""
    x = _check_audio(y, sr=sr)
    track = _check_track(f0, n_samples=len(x), sr=sr, name="f0")
    n = _n_frames(len(x), sr=sr, hop_s=FRAME_HOP_S)
    f0_grid = _regrid_f0(track, src_hop_s=f0.hop_s, dst_hop_s=FRAME_HOP_S, n=n)
    voiced_s = float((f0_grid > 0).sum() * FRAME_HOP_S)
    if voiced_s < 1.0:
        raise AudioError(
            "insufficient_voiced_audio",
            f"The enrollment audio holds {voiced_s:.1f} s of voiced sound; the world engine needs at "
            "least 1 s (30 s or more recommended).",
            {"voiced_seconds": round(voiced_s, 2), "min_seconds": 1.0},
        )
    return x, f0_grid


def _n_frames(n_samples: int, *, sr: int, hop_s: float) -> int:
    return max(int(np.ceil(n_samples / sr / hop_s - 1e-9)), 1)


def _check_track(track: F0Track, *, n_samples: int, sr: int, name: str) -> np.ndarray:
    """The track's F0 as float64, if it covers ``n_samples`` (within 3 frames or 2 %)."""
    f = np.asarray(track.f0, dtype=np.float64).reshape(-1)
    expected = _n_frames(n_samples, sr=sr, hop_s=track.hop_s)
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


def _regrid_f0(f0: np.ndarray, *, src_hop_s: float, dst_hop_s: float, n: int) -> np.ndarray:
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


def _to_internal(x: np.ndarray, *, sr: int) -> np.ndarray:
    """``x`` at :data:`INTERNAL_SR`, float32 (windows are handed to WORLD as float64 one at a time)."""
    return np.asarray(resample(x, orig_sr=sr, target_sr=INTERNAL_SR), dtype=np.float32)


def _smooth_time(a: np.ndarray, ms: float, *, hop_s: float) -> np.ndarray:
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
def _analyse(x16: np.ndarray, f0: np.ndarray, frames: np.ndarray, *, hop_s: float) -> np.ndarray:
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


_BINS_HZ = np.arange(FFT_SIZE // 2 + 1) * INTERNAL_SR / FFT_SIZE
_MEL_HZ = _mel_grid()
_DCT = _dct_matrix(N_CEP)
_MERGE = 0.5 - 0.5 * np.cos(np.pi * np.clip((_BINS_HZ - MERGE_HZ[0]) / (MERGE_HZ[1] - MERGE_HZ[0]), 0, 1))


def _lerp_columns(a: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Columns of ``a`` at fractional indices ``pos`` (linear interpolation)."""
    i0 = np.clip(np.floor(pos).astype(int), 0, a.shape[1] - 2)
    frac = pos - i0
    return np.asarray(a[:, i0] * (1 - frac) + a[:, i0 + 1] * frac)


def _encode(log_sp: np.ndarray, *, warp: float) -> np.ndarray:
    """Mel-cepstra ``(frames, N_CEP)`` of natural-log power envelopes ``(frames, bins)``.

    ``warp`` > 1 moves formants up: the envelope at ``f`` is read at ``f / warp`` (edge value held).
    """
    pos = np.interp(_MEL_HZ / warp, _BINS_HZ, np.arange(len(_BINS_HZ)))
    return np.asarray(_lerp_columns(log_sp, pos) @ _DCT.T)


def _decode(mcep: np.ndarray) -> np.ndarray:
    """Natural-log power on the analysis bins from mel-cepstra ``(frames, n <= N_CEP)``.

    Above :data:`BAND_HZ` (only at 16 kHz: the Nyquist bin) the value at BAND_HZ is held.
    """
    log_mel = mcep @ _DCT[: mcep.shape[1]]
    return _lerp_columns(log_mel, np.interp(_BINS_HZ, _MEL_HZ, np.arange(N_MEL)))


def _log_power(log_sp: np.ndarray) -> np.ndarray:
    """Natural log of each frame's total power, ``(frames,)``."""
    top = log_sp.max(1, keepdims=True)
    return np.asarray(top[:, 0] + np.log(np.exp(log_sp - top).sum(1)))


def _loud(mcep: np.ndarray) -> np.ndarray:
    """Frames within :data:`SILENCE_DB` of the loud ones (c0 is sqrt(N_MEL) x the mean log power)."""
    level = mcep[:, 0] / np.sqrt(N_MEL) * _NP_DB
    return np.asarray(level > np.percentile(level, 95) - SILENCE_DB)


# ----------------------------------------------------------------------------------------------
# statistics and mapping
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Stats:
    """Mean/std of voiced (``_v``) and unvoiced (``_u``) mel-cepstra of one voice."""

    mean_v: np.ndarray
    std_v: np.ndarray
    mean_u: np.ndarray
    std_u: np.ndarray
    f0_median: float = 0.0
    knn: np.ndarray | None = None  # (N, N_CEP) voiced frames (the target's only)
    loud_db: float = 0.0  # 95th percentile of frame power, dB (the source's only)
    frames_v: np.ndarray | None = None  # (M, N_CEP) voiced frames of the first pass (the source's only)


def _profile_stats(profile: VoiceProfile) -> _Stats:
    feats = getattr(profile, "features", None) or {}
    name = getattr(profile, "name", "?")
    missing = [k for k in _REQUIRED_KEYS if f"world.{k}" not in feats]
    version = int(np.asarray(feats["world.version"]).reshape(-1)[0]) if "world.version" in feats else None
    if missing or version != FEATURE_VERSION:
        why = (
            f"lacks the world engine's features ({', '.join('world.' + k for k in missing)})"
            if missing
            else f"has world engine features of version {version}; this engine reads {FEATURE_VERSION}"
        )
        raise profile_outdated(name, "world", why, missing=["world." + k for k in missing], version=version)

    def arr(key: str, shape: tuple[int, ...]) -> np.ndarray:
        a = np.asarray(feats[f"world.{key}"], dtype=np.float64)
        if (
            a.ndim != len(shape)
            or any(s not in (-1, d) for s, d in zip(shape, a.shape, strict=True))
            or not np.all(np.isfinite(a))
        ):
            raise ParameterError(
                "profile_incompatible",
                f"Profile '{name}' has a malformed world.{key} {a.shape}. Rebuild the profile from its "
                "samples (autovoice profile create).",
                {"profile": name, "key": f"world.{key}", "shape": list(a.shape)},
            )
        return a

    knn = arr("knn_mcep", (-1, N_CEP))
    if len(knn) == 0:
        raise ParameterError(
            "profile_incompatible",
            f"Profile '{name}' has no voiced frames in world.knn_mcep. Rebuild the profile from its samples.",
            {"profile": name},
        )
    return _Stats(
        arr("mcep_mean_v", (N_CEP,)),
        arr("mcep_std_v", (N_CEP,)),
        arr("mcep_mean_u", (N_CEP,)),
        arr("mcep_std_u", (N_CEP,)),
        f0_median=float(arr("f0_stats", (3,))[0]),
        knn=knn,
    )


def profile_outdated(
    name: str, engine: str, why: str, *, missing: list[str], version: int | None
) -> ParameterError:
    """``profile_outdated``: the profile was built before this engine (or this version of its
    features) existed; rebuilding it from its recordings computes them."""
    return ParameterError(
        "profile_outdated",
        f"Profile '{name}' {why}. Rebuild it from its recordings (autovoice profile create '{name}' "
        f"FILE...) to convert with the {engine} engine.",
        {
            "profile": name,
            "engine": engine,
            "missing": missing,
            "version": version,
            "rebuild": f"autovoice profile create '{name}' FILE...",
        },
    )


def _warp_factor(src_f0: np.ndarray, target_median: float, *, exponent: float, max_warp: float) -> float:
    """Formant ratio from the two voices' median F0, ``(target / source) ** exponent``, clipped."""
    voiced = src_f0[src_f0 > 0]
    if exponent == 0 or len(voiced) == 0 or not target_median > 0:
        return 1.0
    ratio = (target_median / float(np.exp(np.median(np.log(voiced))))) ** exponent
    return float(np.clip(ratio, 1.0 / max_warp, max_warp))


def _source_stats(
    x16: np.ndarray, f0: np.ndarray, *, hop_s: float, warp: float
) -> tuple[_Stats, np.ndarray | None]:
    """Statistics of the (warped) source cepstra over at most :data:`MAX_STATS_FRAMES` frames spread
    evenly over the whole input, so that every window is mapped the same way.

    Also returns the log envelopes of all frames when the input is short enough that the first pass
    analysed every frame (then the windows reuse them), else ``None``.
    """
    n = len(f0)
    every = n <= MAX_STATS_FRAMES
    frames = np.arange(n) if every else np.linspace(0, n - 1, MAX_STATS_FRAMES).astype(int)
    mceps, powers, envelopes = [], [], []
    # Chunks keep the audio handed to CheapTrick short when the frames are sparse.
    for chunk in np.array_split(frames, max(1, len(frames) // 500)):
        log_sp = np.log(_analyse(x16, f0[chunk], chunk, hop_s=hop_s))
        mceps.append(_encode(log_sp, warp=warp))
        powers.append(_log_power(log_sp) * _NP_DB)
        if every:
            envelopes.append(log_sp)
    mcep = np.concatenate(mceps)
    voiced = f0[frames] > 0
    unvoiced = ~voiced & _loud(mcep)

    def mean_std(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sel = mcep[mask] if mask.sum() >= 10 else mcep
        return sel.mean(0), sel.std(0) + 1e-4

    mv, sv = mean_std(voiced)
    mu, su = mean_std(unvoiced)
    stats = _Stats(
        mv, sv, mu, su, loud_db=float(np.percentile(np.concatenate(powers), 95)), frames_v=mcep[voiced]
    )
    return stats, (np.concatenate(envelopes) if every else None)


class _Mapper:
    """Source envelopes -> log filter gains toward the target voice (see the module docstring)."""

    def __init__(
        self, target: _Stats, source: _Stats, *, warp: float, options: dict[str, Any], hop_s: float
    ) -> None:
        assert target.knn is not None
        self.t, self.s, self.warp, self.hop_s = target, source, warp, hop_s
        self.n_cep = int(options["n_cep"])
        self.k = min(int(options["knn_k"]), len(target.knn))
        self.w = float(options["knn_weight"]) if self.k > 0 else 0.0
        self.q = int(options["knn_dims"])
        self.knn_smooth_ms = float(options["knn_smooth_ms"])
        self.gain_smooth_ms = float(options["gain_smooth_ms"])
        self.gate_db = float(options["gain_gate_db"])
        self.max_gain = float(options["gain_max_db"]) / (20.0 * np.log10(np.e))
        self.keys = ((target.knn - target.mean_v) / target.std_v)[:, 1 : self.q + 1].astype(np.float32)
        self.key_norms = (self.keys**2).sum(1)

    def map(self, c: np.ndarray, voiced: np.ndarray) -> np.ndarray:
        """Mapped mel-cepstra ``(frames, N_CEP)`` of warped source cepstra ``c``."""
        t, s = self.t, self.s
        out = np.empty_like(c)
        z = (c - s.mean_v) / s.std_v
        zv = self.refine(z[voiced])
        out[voiced] = t.mean_v + t.std_v * zv
        out[~voiced] = t.mean_u + t.std_u * (c[~voiced] - s.mean_u) / s.std_u
        if self.w > 0 and voiced.any():
            # k-NN estimate in voiced frames, smoothed over ~25 ms (unvoiced neighbours hold the global
            # estimate so that the smoothing does not pull toward zero at voicing edges).
            knn = out.copy()
            knn[voiced] = self._knn(zv)
            knn = _smooth_time(knn, self.knn_smooth_ms, hop_s=self.hop_s)
            out[voiced] = (1 - self.w) * out[voiced] + self.w * knn[voiced]
        return out

    def refine(self, z: np.ndarray) -> np.ndarray:
        """Normalised voiced frames ``(frames, N_CEP)`` in the target's coordinates; the global map
        takes them as they are (the ``gmm`` engine moves each phonetic class)."""
        return z

    def log_gain(self, log_src: np.ndarray, f0: np.ndarray) -> np.ndarray:
        """Log amplitude gains ``(frames, bins)`` that turn the warped source into the target.

        Both envelopes are decoded at the same cepstral order and carry the source's frame power,
        so the filter changes colour, not loudness. 0 above :data:`MERGE_HZ`.
        """
        c = _encode(log_src, warp=self.warp)
        mapped = self.map(c, f0 > 0)
        c[:, self.n_cep :] = 0.0
        mapped[:, self.n_cep :] = 0.0
        power = _log_power(log_src)
        ref, conv = _decode(c), _decode(mapped)
        ref += (power - _log_power(ref))[:, None]
        conv += (power - _log_power(conv))[:, None]
        gain = np.minimum(0.5 * (conv - ref), self.max_gain) * (1.0 - _MERGE)
        if self.gate_db > 0:
            level = power * _NP_DB
            gain *= np.clip((level - (self.s.loud_db - self.gate_db)) / 10.0, 0.0, 1.0)[:, None]
        return _smooth_time(gain, self.gain_smooth_ms, hop_s=self.hop_s)

    def _knn(self, z: np.ndarray) -> np.ndarray:
        """Mean of the ``k`` enrollment frames nearest to each normalised frame (on c1..c_q)."""
        assert self.t.knn is not None
        q = z[:, 1 : self.q + 1].astype(np.float32)
        idx = np.empty((len(q), self.k), dtype=np.int64)
        for i in range(0, len(q), 512):  # bounded distance matrices
            d = self.key_norms[None, :] - 2.0 * q[i : i + 512] @ self.keys.T
            idx[i : i + 512] = np.argpartition(d, self.k - 1, axis=1)[:, : self.k]
        return np.asarray(self.t.knn[idx].mean(1))


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


def _psola(
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


def _filter(y: np.ndarray, log_gain: np.ndarray, *, t_frames: np.ndarray, sr: int) -> np.ndarray:
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


def _overlap_add(
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
