"""The world engine's statistics and mapping: a voice's mel-cepstral statistics (:class:`VoiceStats`),
the profile features they are stored as, and the :class:`Mapper` that turns source envelopes into the
filter toward the target (steps 2-3 of the method in :mod:`autovoice.engines.world`).

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

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from autovoice.analysis.f0 import FRAME_HOP_S, F0Track
from autovoice.engines.base import profile_outdated
from autovoice.engines.world.dsp import (
    MERGE_FADE,
    N_CEP,
    NP_DB,
    analyse,
    check_enrollment,
    decode,
    encode,
    log_power,
    loud,
    smooth_time,
    to_internal,
)
from autovoice.engines.world.options import WorldParams
from autovoice.errors import ParameterError

if TYPE_CHECKING:  # only for annotations: conversion reads the profile it is given
    from autovoice.profiles.profile import VoiceProfile

#: Version of the stored ``world.*`` features; a profile with another version must be rebuilt.
FEATURE_VERSION = 1
#: Most enrollment frames kept for k-NN matching (uniformly subsampled beyond that).
MAX_KNN_FRAMES = 8000
#: Most frames the first pass analyses for the source's statistics.
MAX_STATS_FRAMES = 2000

_REQUIRED_KEYS = ("version", "mcep_mean_v", "mcep_std_v", "mcep_mean_u", "mcep_std_u", "knn_mcep", "f0_stats")


def enrollment_features(y: np.ndarray, *, sr: int, f0: F0Track) -> dict[str, np.ndarray]:
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
    x, f0_grid = check_enrollment(y, sr=sr, f0=f0)
    hop_s = FRAME_HOP_S
    voiced = f0_grid > 0
    x16 = to_internal(x, sr=sr)
    mcep = encode(np.log(analyse(x16, f0_grid, np.arange(len(f0_grid)), hop_s=hop_s)), warp=1.0)
    unvoiced = ~voiced & loud(mcep)
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


@dataclass(frozen=True)
class VoiceStats:
    """Mean/std of voiced (``_v``) and unvoiced (``_u``) mel-cepstra of one voice."""

    mean_v: np.ndarray
    std_v: np.ndarray
    mean_u: np.ndarray
    std_u: np.ndarray
    f0_median: float = 0.0
    knn: np.ndarray | None = None  # (N, N_CEP) voiced frames (the target's only)
    loud_db: float = 0.0  # 95th percentile of frame power, dB (the source's only)
    frames_v: np.ndarray | None = None  # (M, N_CEP) voiced frames of the first pass (the source's only)


def profile_stats(profile: VoiceProfile) -> VoiceStats:
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
    return VoiceStats(
        arr("mcep_mean_v", (N_CEP,)),
        arr("mcep_std_v", (N_CEP,)),
        arr("mcep_mean_u", (N_CEP,)),
        arr("mcep_std_u", (N_CEP,)),
        f0_median=float(arr("f0_stats", (3,))[0]),
        knn=knn,
    )


def warp_factor(src_f0: np.ndarray, target_median: float, *, exponent: float, max_warp: float) -> float:
    """Formant ratio from the two voices' median F0, ``(target / source) ** exponent``, clipped."""
    voiced = src_f0[src_f0 > 0]
    if exponent == 0 or len(voiced) == 0 or not target_median > 0:
        return 1.0
    ratio = (target_median / float(np.exp(np.median(np.log(voiced))))) ** exponent
    return float(np.clip(ratio, 1.0 / max_warp, max_warp))


def source_stats(
    x16: np.ndarray, f0: np.ndarray, *, hop_s: float, warp: float
) -> tuple[VoiceStats, np.ndarray | None]:
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
        log_sp = np.log(analyse(x16, f0[chunk], chunk, hop_s=hop_s))
        mceps.append(encode(log_sp, warp=warp))
        powers.append(log_power(log_sp) * NP_DB)
        if every:
            envelopes.append(log_sp)
    mcep = np.concatenate(mceps)
    voiced = f0[frames] > 0
    unvoiced = ~voiced & loud(mcep)

    def mean_std(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sel = mcep[mask] if mask.sum() >= 10 else mcep
        return sel.mean(0), sel.std(0) + 1e-4

    mv, sv = mean_std(voiced)
    mu, su = mean_std(unvoiced)
    stats = VoiceStats(
        mv, sv, mu, su, loud_db=float(np.percentile(np.concatenate(powers), 95)), frames_v=mcep[voiced]
    )
    return stats, (np.concatenate(envelopes) if every else None)


class Mapper:
    """Source envelopes -> log filter gains toward the target voice (see the module docstring)."""

    def __init__(
        self, target: VoiceStats, source: VoiceStats, *, warp: float, params: WorldParams, hop_s: float
    ) -> None:
        assert target.knn is not None
        self.t, self.s, self.warp, self.hop_s = target, source, warp, hop_s
        self.n_cep = params.n_cep
        self.k = min(params.knn_k, len(target.knn))
        self.w = params.knn_weight if self.k > 0 else 0.0
        self.q = params.knn_dims
        self.knn_smooth_ms = params.knn_smooth_ms
        self.gain_smooth_ms = params.gain_smooth_ms
        self.gate_db = params.gain_gate_db
        self.max_gain = params.gain_max_db / (20.0 * np.log10(np.e))
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
            knn = smooth_time(knn, self.knn_smooth_ms, hop_s=self.hop_s)
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
        c = encode(log_src, warp=self.warp)
        mapped = self.map(c, f0 > 0)
        c[:, self.n_cep :] = 0.0
        mapped[:, self.n_cep :] = 0.0
        power = log_power(log_src)
        ref, conv = decode(c), decode(mapped)
        ref += (power - log_power(ref))[:, None]
        conv += (power - log_power(conv))[:, None]
        gain = np.minimum(0.5 * (conv - ref), self.max_gain) * (1.0 - MERGE_FADE)
        if self.gate_db > 0:
            level = power * NP_DB
            gain *= np.clip((level - (self.s.loud_db - self.gate_db)) / 10.0, 0.0, 1.0)[:, None]
        return smooth_time(gain, self.gain_smooth_ms, hop_s=self.hop_s)

    def _knn(self, z: np.ndarray) -> np.ndarray:
        """Mean of the ``k`` enrollment frames nearest to each normalised frame (on c1..c_q)."""
        assert self.t.knn is not None
        q = z[:, 1 : self.q + 1].astype(np.float32)
        idx = np.empty((len(q), self.k), dtype=np.int64)
        for i in range(0, len(q), 512):  # bounded distance matrices
            d = self.key_norms[None, :] - 2.0 * q[i : i + 512] @ self.keys.T
            idx[i : i + 512] = np.argpartition(d, self.k - 1, axis=1)[:, : self.k]
        return np.asarray(self.t.knn[idx].mean(1))
