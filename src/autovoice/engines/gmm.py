"""The ``gmm`` engine: the world engine with a phonetic-class timbre map instead of frame copying.

It keeps every stage of :mod:`autovoice.engines.world` (CheapTrick envelopes, the formant warp,
TD-PSOLA, the envelope filter) and changes what the mapping does to voiced frames:

1. **At profile build** a Gaussian mixture (:data:`N_CLASSES` diagonal components) is fitted to the
   profile's voiced mel-cepstra, normalised by the voice's own mean and deviation (c1..c\\ :data:`Q`).
   Its components stand for broad phonetic classes of *this* voice; each class's mean over all
   cepstra is stored too.
2. **At conversion** the source's normalised frames are scored by the same mixture. The source's own
   class means come from its first pass (posterior-weighted, shrunk toward no change where the source
   has few frames of a class), and each frame moves by the posterior-weighted difference between the
   target's and the source's class means (posteriors smoothed over ~30 ms). The frame keeps its own
   detail, so the words stay the source's; each class lands where the target voice puts it, which a
   global mean/variance map cannot do. No enrollment frame is copied (the world engine's k-NN blend
   is off by default here, and available as an option).
3. **A closed-loop correction**: the converted vocal is analysed again at its planned F0, and a
   static filter removes what is left between its mean voiced envelope and the profile's (PSOLA at
   a new pitch and the filter's limits leave a third or so of the shift undone).

This is classic GMM-based conversion in its training-free form (class-dependent mean shifts, as in
MLLR adaptation), chosen after kNN-VC-style frame replacement was measured to destroy the words (see
``docs/conversion.md`` for the measured table of every candidate).

Stored profile features (``gmm.`` prefix; the engine also reads the ``world.*`` features):

================  ================  ========================================================
key               shape, dtype      meaning
================  ================  ========================================================
``version``       (1,) int32        :data:`FEATURE_VERSION`
``weights``       (K,) float32      mixture weights
``means``         (K, Q) float32    component means on normalised c1..cQ
``variances``     (K, Q) float32    component variances
``class_means``   (K, N_CEP) float32  each class's mean normalised cepstrum (all coefficients)
================  ================  ========================================================

About 10 KB per profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import ConfigDict, Field

from autovoice.engines.base import Preset, profile_outdated
from autovoice.engines.world.dsp import (
    MERGE_FADE,
    N_CEP,
    analyse,
    apply_gains,
    decode,
    encode,
    n_frames,
    smooth_time,
    to_internal,
)
from autovoice.engines.world.engine import WorldFamilyEngine
from autovoice.engines.world.mapping import Mapper, VoiceStats
from autovoice.engines.world.options import WorldOptions, WorldParams
from autovoice.errors import ParameterError
from autovoice.progress import ProgressCallback, no_progress

if TYPE_CHECKING:
    from autovoice.analysis.f0 import F0Track
    from autovoice.profiles.profile import VoiceProfile

#: Version of the stored ``gmm.*`` features; a profile with another version must be rebuilt.
FEATURE_VERSION = 1
#: Mixture components (broad phonetic classes) and the cepstra c1..cQ they are fitted on.
N_CLASSES = 16
Q = 20

#: What each preset changes on top of the world engine's presets: the class map is always on, the
#: k-NN blend off; ``correct``: passes of the closed-loop correction.
PRESET_OPTIONS: dict[str, dict[str, Any]] = {
    "fast": {"knn_k": 0, "knn_weight": 0.0, "correct": 0},
    "balanced": {"knn_k": 0, "knn_weight": 0.0, "correct": 1},
    "quality": {"knn_k": 0, "knn_weight": 0.0, "correct": 1},
}
#: Options of the class map every preset shares: ``class_weight`` scales the class shift (0 = the
#: world engine's global map); ``class_shrink``: source frames of a class at which its shift is
#: half trusted; ``class_smooth_ms``: smoothing of the posteriors over time; ``correct_max_db``:
#: the largest boost or cut of the correction filter.
COMMON_OPTIONS: dict[str, Any] = {
    "class_weight": 1.0,
    "class_shrink": 20.0,
    "class_smooth_ms": 30.0,
    "correct_max_db": 12.0,
}
_REQUIRED_KEYS = ("version", "weights", "means", "variances", "class_means")


class GmmOptions(WorldOptions):
    """The gmm engine's options: the world engine's (:class:`~autovoice.engines.world.options.WorldOptions`)
    plus the class map's. Each one left out takes its preset's value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    class_weight: float | None = Field(default=None, ge=0.0, le=2.0, description="Scale of the class shift.")
    class_shrink: float | None = Field(
        default=None, ge=0.0, le=1000.0, description="Source frames at which a class shift is half trusted."
    )
    class_smooth_ms: float | None = Field(
        default=None, ge=0.0, le=200.0, description="Posterior smoothing, ms."
    )
    correct: int | None = Field(default=None, ge=0, le=2, description="Closed-loop correction passes.")
    correct_max_db: float | None = Field(
        default=None, ge=0.0, le=24.0, description="Largest correction boost or cut, dB."
    )


class GmmParams(WorldParams):
    """The options a gmm conversion runs with: the world engine's plus the class map's, every one set."""

    engine: ClassVar[str] = "gmm"
    overrides: ClassVar[type[WorldOptions]] = GmmOptions
    own_common: ClassVar[Mapping[str, Any]] = COMMON_OPTIONS
    own_presets: ClassVar[Mapping[str, Mapping[str, Any]]] = PRESET_OPTIONS

    class_weight: float
    class_shrink: float
    class_smooth_ms: float
    correct: int
    correct_max_db: float


class GmmEngine(WorldFamilyEngine[GmmParams]):
    """Training-free conversion with a per-profile phonetic-class map (see the module docstring)."""

    name: ClassVar[str] = "gmm"
    params_model: ClassVar[type[WorldParams]] = GmmParams

    def profile_features(self, y: np.ndarray, *, sr: int, f0: F0Track) -> dict[str, np.ndarray]:
        """The class map of a voice's enrollment audio (see the module docstring for the keys).

        Raises what :meth:`WorldEngine.profile_features` raises (too little voiced audio, bad input).
        """
        from sklearn.mixture import GaussianMixture

        feats = super().profile_features(y, sr=sr, f0=f0)
        frames = np.asarray(feats["knn_mcep"], dtype=np.float64)
        z = (frames - feats["mcep_mean_v"]) / feats["mcep_std_v"]
        k = int(min(N_CLASSES, max(len(z) // 50, 1)))
        gmm = GaussianMixture(k, covariance_type="diag", reg_covar=1e-2, random_state=0, max_iter=100)
        gmm.fit(z[:, 1 : Q + 1])
        classes = PhoneticClasses(gmm.weights_, gmm.means_, gmm.covariances_, np.zeros((k, N_CEP)))
        post = classes.posteriors(z)
        class_means = (post.T @ z) / np.maximum(post.sum(0), 1e-6)[:, None]
        return {
            "version": np.array([FEATURE_VERSION], dtype=np.int32),
            "weights": gmm.weights_.astype(np.float32),
            "means": gmm.means_.astype(np.float32),
            "variances": gmm.covariances_.astype(np.float32),
            "class_means": class_means.astype(np.float32),
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
        """Convert like :meth:`WorldEngine.convert`, with the class map and the correction.

        Raises what the world engine raises; ``profile_outdated`` when the profile was built before
        this engine's features existed (or with another version of them).
        """
        o = self.params_for(preset, options)
        _profile_classes(profile)  # profile_outdated before any work
        out = super().convert(
            y,
            sr=sr,
            f0=f0,
            target_f0=target_f0,
            profile=profile,
            preset=preset,
            options=options,
            progress=progress,
        )
        for _ in range(o.correct):
            out = correct_envelope(out, sr=sr, target_f0=target_f0, hop_s=f0.hop_s, profile=profile, params=o)
        return out

    def make_mapper(
        self, target: VoiceStats, source: VoiceStats, *, profile: VoiceProfile, warp: float, params: GmmParams
    ) -> Mapper:
        return ClassMapper(
            target, source, classes=_profile_classes(profile), warp=warp, params=params, hop_s=params.hop_s
        )


class PhoneticClasses:
    """A diagonal Gaussian mixture on normalised c1..cQ and each class's mean normalised cepstrum."""

    def __init__(
        self, weights: np.ndarray, means: np.ndarray, variances: np.ndarray, class_means: np.ndarray
    ):
        self.log_w = np.log(np.maximum(np.asarray(weights, dtype=np.float64), 1e-12))
        self.means = np.asarray(means, dtype=np.float64)
        self.prec = 1.0 / np.maximum(np.asarray(variances, dtype=np.float64), 1e-6)
        self.class_means = np.asarray(class_means, dtype=np.float64)
        self.const = self.log_w - 0.5 * (np.log(2 * np.pi / self.prec)).sum(1)

    def posteriors(self, z: np.ndarray) -> np.ndarray:
        """``(frames, K)`` class posteriors of normalised cepstra ``z`` ``(frames, >= Q + 1)``."""
        x = z[:, 1 : Q + 1]
        # -0.5 * sum_d prec (x - m)^2, expanded so that it is one matrix product per term.
        ll = (
            -0.5 * (x**2) @ self.prec.T
            + x @ (self.prec * self.means).T
            - 0.5 * (self.prec * self.means**2).sum(1)
            + self.const
        )
        ll -= ll.max(1, keepdims=True)
        p = np.exp(ll)
        return np.asarray(p / p.sum(1, keepdims=True))


def _profile_classes(profile: VoiceProfile) -> PhoneticClasses:
    feats = getattr(profile, "features", None) or {}
    name = getattr(profile, "name", "?")
    missing = [k for k in _REQUIRED_KEYS if f"gmm.{k}" not in feats]
    version = int(np.asarray(feats["gmm.version"]).reshape(-1)[0]) if "gmm.version" in feats else None
    if missing or version != FEATURE_VERSION:
        why = (
            "was built before the gmm engine's features existed"
            if missing
            else f"has gmm engine features of version {version}; this engine reads {FEATURE_VERSION}"
        )
        raise profile_outdated(name, "gmm", why, missing=["gmm." + k for k in missing], version=version)
    arrays = [np.asarray(feats[f"gmm.{k}"], dtype=np.float64) for k in _REQUIRED_KEYS[1:]]
    w, m, v, cm = arrays
    k = w.shape[0] if w.ndim == 1 else -1
    if (
        k < 1
        or m.shape != (k, Q)
        or v.shape != (k, Q)
        or cm.shape != (k, N_CEP)
        or not all(np.all(np.isfinite(a)) for a in arrays)
        or np.any(v <= 0)
    ):
        raise ParameterError(
            "profile_incompatible",
            f"Profile '{name}' has malformed gmm.* features. Rebuild the profile from its recordings.",
            {
                "profile": name,
                "shapes": {key: list(a.shape) for key, a in zip(_REQUIRED_KEYS[1:], arrays, strict=True)},
            },
        )
    return PhoneticClasses(w, m, v, cm)


class ClassMapper(Mapper):
    """The world engine's mapper with each voiced frame moved by its classes' mean shifts."""

    def __init__(
        self,
        target: VoiceStats,
        source: VoiceStats,
        *,
        classes: PhoneticClasses,
        warp: float,
        params: GmmParams,
        hop_s: float,
    ) -> None:
        super().__init__(target, source, warp=warp, params=params, hop_s=hop_s)
        self.classes = classes
        self.weight = params.class_weight
        self.smooth_ms = params.class_smooth_ms
        frames = source.frames_v
        if frames is None or len(frames) == 0 or self.weight == 0:
            self.delta = np.zeros_like(classes.class_means)
            return
        zs = (frames - source.mean_v) / source.std_v
        post = classes.posteriors(zs)
        counts = post.sum(0)
        src_means = (post.T @ zs) / np.maximum(counts, 1e-6)[:, None]
        trust = counts / (counts + params.class_shrink + 1e-9)
        delta = trust[:, None] * (classes.class_means - src_means)
        delta[:, 0] = 0.0  # the level stays the source's
        self.delta = self.weight * delta

    def refine(self, z: np.ndarray) -> np.ndarray:
        if len(z) == 0 or not np.any(self.delta):
            return z
        post = smooth_time(self.classes.posteriors(z), self.smooth_ms, hop_s=self.hop_s)
        return np.asarray(z + post @ self.delta)


#: Most frames the correction analyses (spread over the whole output).
_CORRECT_FRAMES = 2000
#: Cepstra the correction acts on (c1..c29: the envelope's shape, not its fine detail).
_CORRECT_CEP = 30


def correct_envelope(
    out: np.ndarray,
    *,
    sr: int,
    target_f0: np.ndarray,
    hop_s: float,
    profile: VoiceProfile,
    params: GmmParams,
) -> np.ndarray:
    """``out`` with a static filter on its voiced frames that moves their mean envelope onto the
    profile's (the closed-loop correction, see the module docstring)."""
    f0 = np.asarray(target_f0, dtype=np.float64)
    n = min(len(f0), n_frames(len(out), sr=sr, hop_s=hop_s))
    f0 = f0[:n]
    voiced = np.flatnonzero(f0 > 0)
    if len(voiced) < 10:
        return out
    frames = (
        voiced
        if len(voiced) <= _CORRECT_FRAMES
        else voiced[np.linspace(0, len(voiced) - 1, _CORRECT_FRAMES).astype(int)]
    )
    x16 = to_internal(out, sr=sr)
    mcep = encode(np.log(analyse(x16, f0[frames], frames, hop_s=hop_s)), warp=1.0)
    target = np.asarray(profile.features["world.mcep_mean_v"], dtype=np.float64)
    delta = np.zeros(N_CEP)
    delta[1:_CORRECT_CEP] = (target - mcep.mean(0))[1:_CORRECT_CEP]
    gain = 0.5 * decode(delta[None, :])[0]  # log amplitude on the analysis bins
    gain -= 0.5 * np.log(np.mean(np.exp(2 * gain)))  # colour, not loudness
    limit = params.correct_max_db / (20.0 * np.log10(np.e))
    gain = (np.clip(gain, -limit, limit) * (1.0 - MERGE_FADE)).astype(np.float32)
    mask = smooth_time((f0 > 0).astype(np.float32)[:, None], 30.0, hop_s=hop_s)
    # In windows with context and crossfades, as the world engine filters, so memory stays bounded.
    plan = params.window_plan(n, n_samples=len(out), sr=sr, hop_s=hop_s)
    filtered = np.zeros(len(out), dtype=np.float32)
    for w in plan.windows:
        seg = apply_gains(
            out[w.s0 : w.s1], mask[w.a : w.b] * gain[None, :], t_frames=plan.frame_times(w), sr=sr
        )
        plan.add(filtered, seg, w)
    return np.asarray(np.clip(filtered, -1.0, 1.0), dtype=np.float32)
