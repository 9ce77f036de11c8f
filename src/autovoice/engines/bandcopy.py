"""The ``bandcopy`` engine: the world engine below ``split_hz``, the target's own voiced frames above it.

What a strong speaker verifier hears of a voice is largely in the spectral detail of its own frames,
and the words are largely in the lower formants (see ``../shared/docs/FINDINGS.md`` and
``bench/candidates.py``): copying whole target frames everywhere gives the verifier the target but
loses the words; mapping envelope statistics keeps the words but not the voice. This engine splits the
difference by frequency:

1. **Below** ``split_hz`` (2 kHz by default) the vocal is the world engine's conversion (TD-PSOLA at
   the planned pitch and the envelope filter), so F1/F2, where vowels are told apart, stay the source's
   mapped ones.
2. **Above** it, in voiced frames, the vocal is WORLD synthesis at the planned F0 of envelopes and
   aperiodicities copied from the profile's own voiced frames: the mean of the ``copy_k`` enrollment
   frames nearest to the source frame in *what is being said*, position-free Whisper content features
   (:func:`autovoice.analysis.content.content_features`), smoothed over ~25 ms. Matching on the voices'
   own mel-cepstra instead, even normalised per speaker, gained nothing with a strong verifier and cost
   as many words (``bench/candidates.py``).
3. The two meet in a short-time Fourier transform: a crossfade ``split_hz`` +- ``split_width_hz`` / 2
   wide, weighted by voicing (unvoiced sounds, fricatives above all, keep the world engine's band),
   with the copied band's level matched frame by frame to the band it replaces (the loudness contour
   stays the source's). Above :data:`~autovoice.engines.world.dsp.MERGE_HZ` the world engine's band stays
   (a 44.1/48 kHz input keeps its air).

Stored profile features (``bandcopy.`` prefix; the engine also reads the ``world.*`` features):

=============  ==================  ======================================================
key            shape, dtype        meaning
=============  ==================  ======================================================
``version``    (1,) int32          :data:`FEATURE_VERSION`
``keys``       (N, 512) float16    voiced 20 ms frames' content features
``log_env``    (N, N_MEL) float16  their CheapTrick log power envelopes on the mel grid (0..8 kHz)
``log_ap``     (N, N_MEL) float16  their D4C log aperiodicities on the same grid
=============  ==================  ======================================================

N <= :data:`MAX_FRAMES` (a minute of voiced sound); about 4.6 MB per profile at the cap. Envelopes and
aperiodicities are analysed every 10 ms at 16 kHz and averaged over each 20 ms content frame.

It does not stream: the copied band comes from WORLD synthesis over whole windows, and the live path
keeps the ``world`` engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import ConfigDict, Field

from autovoice.analysis.content import content_features
from autovoice.analysis.f0 import FRAME_HOP_S
from autovoice.audio import resample
from autovoice.engines.base import Preset, profile_outdated
from autovoice.engines.world.dsp import (
    INTERNAL_SR,
    N_MEL,
    check_enrollment,
    n_frames,
    regrid_f0,
    smooth_time,
    to_internal,
)
from autovoice.engines.world.engine import WorldFamilyEngine
from autovoice.engines.world.mapping import profile_stats
from autovoice.engines.world.options import WorldOptions, WorldParams
from autovoice.engines.world.synth import analyse_frames, crossover, smooth_voiced, synthesize, to_bins
from autovoice.errors import ParameterError
from autovoice.progress import ProgressCallback, no_progress

if TYPE_CHECKING:
    from autovoice.analysis.f0 import F0Track
    from autovoice.profiles.profile import VoiceProfile

#: Version of the stored ``bandcopy.*`` features; a profile with another version must be rebuilt.
FEATURE_VERSION = 1
#: Most enrollment frames (20 ms) kept, evenly spread over the voiced ones.
MAX_FRAMES = 3000
#: Width of a content feature.
KEY_DIM = 512

#: The copied band on top of the world engine's presets (which it keeps for the band below).
PRESET_OPTIONS: dict[str, dict[str, Any]] = {
    "fast": {"split_hz": 2000.0},
    "balanced": {"split_hz": 2000.0},
    "quality": {"split_hz": 2000.0},
}
#: Options every preset shares: ``copy_k`` neighbours averaged; ``copy_smooth_ms`` smoothing of the
#: copied envelopes over time; ``split_width_hz`` width of the crossover.
COMMON_OPTIONS: dict[str, Any] = {"copy_k": 4, "copy_smooth_ms": 25.0, "split_width_hz": 400.0}


class BandcopyOptions(WorldOptions):
    """The bandcopy engine's options: the world engine's (for the band below the split) plus the copied
    band's. Each one left out takes its preset's value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    split_hz: float | None = Field(
        default=None, ge=1000.0, le=6000.0, description="Where the copied band starts, Hz."
    )
    split_width_hz: float | None = Field(
        default=None, ge=100.0, le=2000.0, description="Crossover width, Hz."
    )
    copy_k: int | None = Field(default=None, ge=1, le=32, description="Enrollment frames averaged.")
    copy_smooth_ms: float | None = Field(
        default=None, ge=0.0, le=200.0, description="Smoothing of the copied envelopes, ms."
    )


class BandcopyParams(WorldParams):
    """The options a bandcopy conversion runs with: the world engine's and the copied band's, all set."""

    engine: ClassVar[str] = "bandcopy"
    overrides: ClassVar[type[WorldOptions]] = BandcopyOptions
    own_common: ClassVar[Mapping[str, Any]] = COMMON_OPTIONS
    own_presets: ClassVar[Mapping[str, Mapping[str, Any]]] = PRESET_OPTIONS

    split_hz: float
    split_width_hz: float
    copy_k: int
    copy_smooth_ms: float


class BandcopyEngine(WorldFamilyEngine[BandcopyParams]):
    """The world engine below the split, the target's own frames above it (see the module docstring)."""

    name: ClassVar[str] = "bandcopy"
    params_model: ClassVar[type[WorldParams]] = BandcopyParams

    def profile_features(self, y: np.ndarray, *, sr: int, f0: F0Track) -> dict[str, np.ndarray]:
        """The voice's voiced frames for copying (see the module docstring for the keys).

        Raises what :meth:`WorldEngine.profile_features` raises (too little voiced audio, bad input), without
        repeating its analysis (the world engine's own features are computed by that engine).
        """
        x, _ = check_enrollment(y, sr=sr, f0=f0)  # checked as the world engine checks it
        x16 = to_internal(x, sr=sr)
        content = content_features(x16, device=self.device)
        n = 2 * len(content)
        f0_grid = regrid_f0(
            np.asarray(f0.f0, dtype=np.float64), src_hop_s=f0.hop_s, dst_hop_s=FRAME_HOP_S, n=n
        )
        voiced = (f0_grid[0::2] > 0) & (f0_grid[1::2] > 0)  # content frames voiced in both halves
        idx = np.flatnonzero(voiced)
        if len(idx) > MAX_FRAMES:
            idx = idx[np.linspace(0, len(idx) - 1, MAX_FRAMES).round().astype(int)]
        frames = np.stack([2 * idx, 2 * idx + 1], axis=1).reshape(-1)
        log_env, log_ap = analyse_frames(x16, f0_grid, frames)
        return {
            "version": np.array([FEATURE_VERSION], dtype=np.int32),
            "keys": content[idx].astype(np.float16),
            "log_env": log_env.reshape(len(idx), 2, N_MEL).mean(1).astype(np.float16),
            "log_ap": log_ap.reshape(len(idx), 2, N_MEL).mean(1).astype(np.float16),
        }

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
        """Convert like :meth:`WorldEngine.convert` below the split and copy the target's frames above.

        Raises what the world engine raises; ``profile_outdated`` when the profile was built before this
        engine's features existed (or with another version of them).
        """
        o = self.params_for(preset, options)
        bank = _profile_bank(profile)  # profile_outdated before any work
        low = super().convert(
            y,
            sr=sr,
            f0=f0,
            target_f0=target_f0,
            profile=profile,
            preset=preset,
            options=options,
            progress=lambda p, s: progress(0.7 * p, s),
        )
        x = np.asarray(y, dtype=np.float32).reshape(-1)
        x16 = to_internal(x, sr=sr)
        n = n_frames(len(x16), sr=INTERNAL_SR, hop_s=FRAME_HOP_S)
        src_f0 = regrid_f0(
            np.asarray(f0.f0, dtype=np.float64), src_hop_s=f0.hop_s, dst_hop_s=FRAME_HOP_S, n=n
        )
        tgt_f0 = regrid_f0(
            np.asarray(target_f0, dtype=np.float64), src_hop_s=f0.hop_s, dst_hop_s=FRAME_HOP_S, n=n
        )
        voiced = np.flatnonzero((src_f0 > 0) & (tgt_f0 > 0))
        if len(voiced) < 2:
            return low
        progress(0.7, "convert")
        content = content_features(x16, device=self.device)
        is_voiced = np.zeros(n, dtype=bool)
        is_voiced[voiced] = True
        mask = smooth_time(is_voiced.astype(np.float32), 20.0, hop_s=FRAME_HOP_S)
        # In windows with context and crossfades, as the world engine converts, so memory stays bounded.
        plan = o.window_plan(n, n_samples=len(x), sr=sr, hop_s=FRAME_HOP_S)
        out = np.zeros(len(x), dtype=np.float32)
        for i, w in enumerate(plan.windows):
            here = np.flatnonzero(is_voiced[w.a : w.b])
            seg = low[w.s0 : w.s1]
            if len(here) >= 2:
                high = _copied_band(content, tgt_f0[w.a : w.b], here, first=w.a, bank=bank, params=o)
                high = resample(high, orig_sr=INTERNAL_SR, target_sr=sr)
                seg = crossover(
                    seg, high, mask[w.a : w.b], sr=sr, split_hz=o.split_hz, width_hz=o.split_width_hz
                )
            plan.add(out, seg, w)
            progress(0.7 + 0.3 * (i + 1) / len(plan.windows), "convert")
        return np.asarray(np.clip(out, -1.0, 1.0), dtype=np.float32)


class _Bank:
    """A profile's copyable frames: keys, log envelopes and log aperiodicities on the mel grid."""

    def __init__(self, keys: np.ndarray, log_env: np.ndarray, log_ap: np.ndarray) -> None:
        self.keys, self.log_env, self.log_ap = keys, log_env, log_ap


def _profile_bank(profile: VoiceProfile) -> _Bank:
    feats = profile.features
    missing = [k for k in ("version", "keys", "log_env", "log_ap") if f"bandcopy.{k}" not in feats]
    version = (
        int(np.asarray(feats["bandcopy.version"]).reshape(-1)[0]) if "bandcopy.version" in feats else None
    )
    if missing or version != FEATURE_VERSION:
        why = (
            f"lacks the bandcopy engine's features ({', '.join('bandcopy.' + k for k in missing)})"
            if missing
            else f"has bandcopy engine features of version {version}; this engine reads {FEATURE_VERSION}"
        )
        raise profile_outdated(
            profile.name, "bandcopy", why, missing=["bandcopy." + k for k in missing], version=version
        )
    k = np.asarray(feats["bandcopy.keys"], dtype=np.float32)
    env = np.asarray(feats["bandcopy.log_env"], dtype=np.float32)
    ap = np.asarray(feats["bandcopy.log_ap"], dtype=np.float32)
    if (
        k.ndim != 2
        or k.shape[1] != KEY_DIM
        or env.shape != (len(k), N_MEL)
        or ap.shape != env.shape
        or not len(k)
    ):
        raise ParameterError(
            "profile_incompatible",
            f"Profile '{profile.name}' has malformed bandcopy features. Rebuild the profile from its samples "
            "(autovoice profile create).",
            {"profile": profile.name},
        )
    profile_stats(profile)  # the world engine's features, checked as it checks them
    return _Bank(k, env, ap)


def _copied_band(
    content: np.ndarray,
    tgt_f0: np.ndarray,
    voiced: np.ndarray,
    *,
    first: int,
    bank: _Bank,
    params: BandcopyParams,
) -> np.ndarray:
    """WORLD synthesis (16 kHz) at ``tgt_f0`` of the enrollment frames nearest in content to each voiced
    10 ms frame of a window (``voiced``: frame indices in the window, which starts at frame ``first`` of
    ``content``, the whole source's 20 ms content features)."""
    query = content[np.minimum((first + voiced) // 2, len(content) - 1)]
    k = min(params.copy_k, len(bank.keys))
    idx = np.empty((len(query), k), dtype=np.int64)
    for i in range(0, len(query), 512):  # bounded similarity matrices
        sim = query[i : i + 512] @ bank.keys.T
        idx[i : i + 512] = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    n = len(tgt_f0)
    env = np.full((n, N_MEL), np.log(1e-12), dtype=np.float64)
    ap = np.zeros((n, N_MEL), dtype=np.float64)  # log 1: noise where nothing is copied
    env[voiced] = bank.log_env[idx].mean(1)
    ap[voiced] = bank.log_ap[idx].mean(1)
    ms = params.copy_smooth_ms
    env = smooth_voiced(env, voiced, ms)
    ap = smooth_voiced(ap, voiced, ms)
    f0 = np.zeros(n)
    f0[voiced] = tgt_f0[voiced]
    return synthesize(f0, to_bins(env), to_bins(ap))
